import XCTest
@testable import FileFormats
