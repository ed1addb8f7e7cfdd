import XCTest
@testable import Distributed
