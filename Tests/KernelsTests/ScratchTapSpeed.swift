import XCTest
import Backends
import Kernels
import Foundation

final class ScratchTapSpeed: XCTestCase {
    func testScratchTaps() throws {
        guard ProcessInfo.processInfo.environment["SCRATCH"] != nil else { return }
        let be = try Backends.make(.avx512)
        // ConvT1's adjoint conv: input 7x7x128 (F), output 7x7x256, k5 s1.
        for (h, cin, cout, s) in [(7, 128, 256, 1), (14, 64, 128, 2)] {
            let g = ConvolutionGeometry.same(inputHeight: h, inputWidth: h, channels: cin, kernelSize: 5, stride: s)
            let batch = 64
            let taps = ConvolutionTaps(geometry: g, filters: cout, maxBatch: batch)
            let x = [Float](repeating: 0.5, count: batch * g.inputCount)
            let y = [Float](repeating: 0.25, count: batch * g.outputPixels * cout)
            let kern = [Float](repeating: 0.1, count: g.columnCount * cout)
            var outY = y, outX = x, dK = kern
            let useful = 2.0 * Double(taps.multiplyAddsPerExample * batch)
            func time(_ name: String, _ f: () -> Void) {
                var best = 1e9
                for _ in 0..<5 { let t = cpuNow(); f(); best = min(best, cpuNow() - t) }
                print(String(format: "%@ h=%d: %.1f ms, %.1f useful GFLOP/s", name, h, best * 1000, useful / best / 1e9))
            }
            time("forward") { taps.forward(x, kernel: kern, batch: batch, into: &outY, backend: be) }
            time("inputGradient") { taps.inputGradient(y, kernel: kern, batch: batch, into: &outX, backend: be) }
            time("kernelGradient") { taps.kernelGradient(x, y, batch: batch, into: &dK, backend: be) }
            // im2col + gemm equivalent of forward
            var cols = [Float](repeating: 0, count: batch * g.outputPixels * g.columnCount)
            time("im2col fwd") {
                g.im2col(x, batch: batch, into: &cols)
                be.gemm(transposeA: false, transposeB: false, m: batch * g.outputPixels, n: cout, k: g.columnCount, a: cols, lda: g.columnCount, b: kern, ldb: cout, c: &outY, ldc: cout, accumulate: false)
            }
        }
    }
}
