import XCTest
import Backends
@testable import Kernels

/// The instruments of `gantry bench --kernels`: the FMA peak of every instruction set this
/// CPU has is measurable.
final class MeasurementTests: XCTestCase {
    func testPeakOfEverySupportedInstructionSet() throws {
        for isa in Backends.supported {
            let peak = try Backends.measurePeakGFLOPS(isa, seconds: 0.02)
            // Any x86-64 core of the last decade does several FMAs per nanosecond.
            XCTAssertGreaterThan(peak, 2, "\(isa)")
            XCTAssertLessThan(peak, 10_000, "\(isa)")
        }
    }
}
