import XCTest
@testable import GAN
