import XCTest
import Backends
@testable import Kernels

/// The instruments of `gantry bench --kernels`: the shape recorder changes no result, and the
/// FMA peak of every instruction set this CPU has is measurable.
final class MeasurementTests: XCTestCase {
    func testRecorderPassesThroughAndRecordsShapesInOrder() throws {
        let base = try Backends.make(try Backends.choose())
        let recorder = GEMMRecorder(base)
        let a = (0..<12).map { Float($0) }, b = (0..<20).map { Float($0) / 4 }
        var viaRecorder = [Float](repeating: 0, count: 15), direct = viaRecorder
        recorder.label = "first"
        recorder.gemm(transposeA: false, transposeB: false, m: 3, n: 5, k: 4, a: a, lda: 4, b: b, ldb: 5,
                      c: &viaRecorder, ldc: 5, accumulate: false)
        base.gemm(transposeA: false, transposeB: false, m: 3, n: 5, k: 4, a: a, lda: 4, b: b, ldb: 5,
                  c: &direct, ldc: 5, accumulate: false)
        XCTAssertEqual(viaRecorder, direct)
        recorder.label = "second"
        var gradient = [Float](repeating: 0, count: 20)
        recorder.gemm(transposeA: true, transposeB: false, m: 4, n: 5, k: 3, a: a, lda: 4, b: b, ldb: 5,
                      c: &gradient, ldc: 5, accumulate: true)
        recorder.gemm(transposeA: false, transposeB: false, m: 3, n: 5, k: 4, a: a, lda: 4, b: b, ldb: 5,
                      c: &viaRecorder, ldc: 5, accumulate: false)
        XCTAssertEqual(recorder.shapes.map(\.shape), [GEMMShape(m: 3, n: 5, k: 4),
                                                      GEMMShape(transposeA: true, m: 4, n: 5, k: 3, accumulate: true)])
        XCTAssertEqual(recorder.shapes.map(\.labels), [["first", "second"], ["second"]])
        XCTAssertEqual(recorder.shapes.map(\.calls), [2, 1])
        XCTAssertEqual(recorder.shapes[1].shape.description, "4x5x3 Aᵀ +=")
        XCTAssertEqual(recorder.shapes[1].shape.lda, 4)
        XCTAssertEqual(recorder.shapes[0].shape.flops, 2 * 3 * 5 * 4)
    }

    func testPeakOfEverySupportedInstructionSet() throws {
        for isa in Backends.supported {
            let peak = try Backends.measurePeakGFLOPS(isa, seconds: 0.02)
            // Any x86-64 core of the last decade does several FMAs per nanosecond.
            XCTAssertGreaterThan(peak, 2, "\(isa)")
            XCTAssertLessThan(peak, 10_000, "\(isa)")
        }
    }
}
