import XCTest
@testable import Kernels

/// im2col against its definition, col2im against im2col (its adjoint), and Keras's "same" sizes.
final class ConvolutionGeometryTests: XCTestCase {
    func testSameMatchesKeras() {
        // (in, k, stride) -> (out, pad before): out = ceil(in / s), pad = max((out-1)s + k - in, 0) / 2.
        for (input, k, stride, output, before) in [(28, 5, 2, 14, 1), (14, 5, 2, 7, 1), (7, 5, 1, 7, 2), (14, 5, 2, 7, 1),
                                                   (4, 3, 2, 2, 0), (5, 3, 2, 3, 1), (1, 5, 2, 1, 2), (5, 1, 2, 3, 0),
                                                   (9, 3, 3, 3, 0), (2, 4, 1, 2, 1)] {
            let g = ConvolutionGeometry.same(inputHeight: input, inputWidth: 3, channels: 1, kernelSize: k, stride: stride)
            XCTAssertEqual([g.outputHeight, g.padTop], [output, before], "in \(input) k \(k) s \(stride)")
        }
    }

    func testIm2colMatchesDefinitionAndCol2imIsItsAdjoint() {
        for (h, w, c, k, stride, batch) in [(4, 5, 3, 3, 2, 2), (7, 7, 1, 5, 1, 1), (6, 6, 9, 5, 2, 3), (1, 3, 2, 5, 2, 1),
                                            (5, 4, 17, 1, 2, 2), (8, 3, 2, 4, 3, 1)] {
            let g = ConvolutionGeometry.same(inputHeight: h, inputWidth: w, channels: c, kernelSize: k, stride: stride)
            let stream = RandomStream(seed: UInt64(h * 31 + c))
            let x = (0..<(batch * g.inputCount)).map { stream.unitFloat(at: UInt64($0)) - 0.5 }
            let rows = batch * g.outputPixels
            var columns = [Float](repeating: .nan, count: rows * g.columnCount)
            g.im2col(x, batch: batch, into: &columns)
            var expected = [Float](repeating: 0, count: columns.count)
            for b in 0..<batch { for oh in 0..<g.outputHeight { for ow in 0..<g.outputWidth {
                for kh in 0..<k { for kw in 0..<k { for ch in 0..<c {
                    let ih = oh * stride - g.padTop + kh, iw = ow * stride - g.padLeft + kw
                    let row = (b * g.outputHeight + oh) * g.outputWidth + ow
                    if ih >= 0 && ih < h && iw >= 0 && iw < w {
                        expected[row * g.columnCount + (kh * k + kw) * c + ch] = x[((b * h + ih) * w + iw) * c + ch]
                    }
                } } }
            } } }
            XCTAssertEqual(columns, expected, "im2col \((h, w, c, k, stride, batch))")

            // <im2col(x), y> = <x, col2im(y)> for a random y.
            let y = (0..<columns.count).map { stream.unitFloat(at: UInt64(100_000 + $0)) - 0.5 }
            var image = [Float](repeating: .nan, count: x.count)
            g.col2im(y, batch: batch, into: &image)
            let lhs = zip(columns, y).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
            let rhs = zip(x, image).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
            XCTAssertEqual(lhs, rhs, accuracy: 1e-5 * max(1, abs(lhs)), "col2im \((h, w, c, k, stride, batch))")
        }
    }
}
