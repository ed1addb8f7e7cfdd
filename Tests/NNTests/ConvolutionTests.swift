import XCTest
import Kernels
import Backends
@testable import NN

/// Conv2D and ConvTranspose2D against nested loops written from the definitions (in Double),
/// against TensorFlow's "same" conventions on hand-worked cases, and against each other: the
/// transposed convolution must be the adjoint of the convolution.
final class ConvolutionTests: XCTestCase {
    let backend = Backends.automatic()

    // MARK: - Definitions

    /// Keras "same": (output size, padding before) for one spatial dimension.
    func same(_ input: Int, k: Int, stride: Int) -> (output: Int, before: Int) {
        let output = (input + stride - 1) / stride
        return (output, max((output - 1) * stride + k - input, 0) / 2)
    }

    /// y[b, oh, ow, co] = bias[co] + Σ x[b, oh·s - pt + kh, ow·s - pl + kw, ci] · K[kh, kw, ci, co],
    /// taps outside the image contributing nothing. K is [k, k, cin, cout].
    func naiveConv(_ x: [Float], batch: Int, h: Int, w: Int, cin: Int, kernel: [Float], bias: [Float]?,
                   cout: Int, k: Int, stride: Int) -> [Float] {
        let (oh, pt) = same(h, k: k, stride: stride), (ow, pl) = same(w, k: k, stride: stride)
        var y = [Float](repeating: 0, count: batch * oh * ow * cout)
        for b in 0..<batch { for i in 0..<oh { for j in 0..<ow { for co in 0..<cout {
            var s = Double(bias?[co] ?? 0)
            for kh in 0..<k { for kw in 0..<k {
                let ih = i * stride - pt + kh, iw = j * stride - pl + kw
                guard ih >= 0, ih < h, iw >= 0, iw < w else { continue }
                for ci in 0..<cin {
                    s += Double(x[((b * h + ih) * w + iw) * cin + ci]) * Double(kernel[((kh * k + kw) * cin + ci) * cout + co])
                }
            } }
            y[((b * oh + i) * ow + j) * cout + co] = Float(s)
        } } } }
        return y
    }

    /// TensorFlow's conv2d_transpose, "same": every input pixel (h, w) scatters x[b, h, w, ci] ·
    /// K[kh, kw, co, ci] to output pixel (h·s - pt + kh, w·s - pl + kw), where the padding is
    /// that of the "same" convolution from the H·s x W·s output back to H x W. K is [k, k, cout, cin].
    func naiveConvTranspose(_ x: [Float], batch: Int, h: Int, w: Int, cin: Int, kernel: [Float], bias: [Float]?,
                            cout: Int, k: Int, stride: Int) -> [Float] {
        let oh = h * stride, ow = w * stride
        let pt = same(oh, k: k, stride: stride).before, pl = same(ow, k: k, stride: stride).before
        var y = [Double](repeating: 0, count: batch * oh * ow * cout)
        for b in 0..<batch { for i in 0..<oh { for j in 0..<ow { for co in 0..<cout {
            y[((b * oh + i) * ow + j) * cout + co] = Double(bias?[co] ?? 0)
        } } } }
        for b in 0..<batch { for i in 0..<h { for j in 0..<w { for ci in 0..<cin {
            let v = Double(x[((b * h + i) * w + j) * cin + ci])
            for kh in 0..<k { for kw in 0..<k {
                let yh = i * stride - pt + kh, yw = j * stride - pl + kw
                guard yh >= 0, yh < oh, yw >= 0, yw < ow else { continue }
                for co in 0..<cout {
                    y[((b * oh + yh) * ow + yw) * cout + co] += v * Double(kernel[((kh * k + kw) * cout + co) * cin + ci])
                }
            } }
        } } } }
        return y.map(Float.init)
    }

    // MARK: - Helpers

    func random(_ count: Int, seed: UInt64) -> [Float] {
        let stream = RandomStream(seed: seed, 77)
        return (0..<count).map { stream.unitFloat(at: UInt64($0)) * 2 - 1 }
    }

    /// Writes `values` into the parameter tensor named `name` (e.g. "0.kernel").
    func set(_ network: Sequential, _ name: String, _ values: [Float], file: StaticString = #filePath, line: UInt = #line) {
        guard let e = network.parameters.entry(named: name) else { return XCTFail("no \(name)", file: file, line: line) }
        XCTAssertEqual(e.count, values.count, file: file, line: line)
        for i in 0..<min(e.count, values.count) { network.parameters.values[e.offset + i] = values[i] }
    }

    func output(_ network: Sequential, _ x: [Float], batch: Int) -> [Float] {
        let y = network.forward(x, batch: batch, context: .init(training: true))
        return Array(UnsafeBufferPointer(start: y, count: batch * network.outputCount))
    }

    func assertClose(_ a: [Float], _ b: [Float], tolerance: Float, _ message: @autoclosure () -> String,
                     file: StaticString = #filePath, line: UInt = #line) {
        guard a.count == b.count else { return XCTFail("\(message()): \(a.count) values, expected \(b.count)", file: file, line: line) }
        var worst: Float = 0, worstIndex = 0
        for i in 0..<a.count {
            let err = abs(a[i] - b[i]) / max(1, abs(b[i]))
            if !(err <= worst) { worst = err; worstIndex = i }
        }
        if !(worst <= tolerance) {
            XCTFail("\(message()): element \(worstIndex) is \(a[worstIndex]), expected \(b[worstIndex])", file: file, line: line)
        }
    }

    func dot(_ a: [Float], _ b: [Float]) -> Double {
        zip(a, b).reduce(0) { $0 + Double($1.0) * Double($1.1) }
    }

    /// A spread of shapes: every (H, W) in {1, 4, 5, 7, 8, 9}², every k in {1, 3, 5}, both
    /// strides, with channel counts, batch and bias cycling so that every value of each occurs.
    /// Even sizes matter: only they give a "same" convolution an odd total padding at stride 2.
    func cases() -> [(h: Int, w: Int, cin: Int, cout: Int, k: Int, stride: Int, batch: Int, bias: Bool)] {
        let sizes = [1, 4, 5, 7, 8, 9], channels = [1, 3, 5, 17]
        var result: [(Int, Int, Int, Int, Int, Int, Int, Bool)] = []
        var i = 0
        for h in sizes { for w in sizes { for k in [1, 3, 5] { for stride in [1, 2] {
            // 17 x 17 channels only with small images, to keep the Double loops fast in debug.
            let cin = channels[i % 4]
            var cout = channels[(i / 4 + i / 3) % 4]
            if cin == 17 && cout == 17 && h * w > 25 { cout = 3 }
            result.append((h, w, cin, cout, k, stride, i % 2 == 0 ? 1 : 3, (i / 2) % 2 == 0))
            i += 1
        } } } }
        return result
    }

    // MARK: - Forward against the definitions

    func testConv2DForwardMatchesDefinition() {
        for algorithm in [ConvolutionAlgorithm.im2col, .taps] { for (n, c) in cases().enumerated() {
            let layer = Conv2D(inputHeight: c.h, inputWidth: c.w, inputChannels: c.cin, filters: c.cout,
                               kernelSize: c.k, stride: c.stride, bias: c.bias, algorithm: algorithm, backend: backend)
            let network = Sequential([layer], maxBatch: 3)
            let kernel = random(c.k * c.k * c.cin * c.cout, seed: UInt64(n))
            let bias = c.bias ? random(c.cout, seed: UInt64(n) + 1000) : nil
            set(network, "0.kernel", kernel)
            if let bias { set(network, "0.bias", bias) }
            let x = random(c.batch * c.h * c.w * c.cin, seed: UInt64(n) + 2000)
            let expected = naiveConv(x, batch: c.batch, h: c.h, w: c.w, cin: c.cin, kernel: kernel, bias: bias,
                                     cout: c.cout, k: c.k, stride: c.stride)
            XCTAssertEqual(layer.outputHeight, (c.h + c.stride - 1) / c.stride)
            XCTAssertEqual(layer.outputWidth, (c.w + c.stride - 1) / c.stride)
            assertClose(output(network, x, batch: c.batch), expected, tolerance: 1e-5 * Float(c.k * c.k * c.cin).squareRoot(),
                        "conv \(algorithm) \(c)")
        } }
    }

    func testConvTranspose2DForwardMatchesDefinition() {
        for algorithm in [ConvolutionAlgorithm.im2col, .taps] { for (n, c) in cases().enumerated() {
            let layer = ConvTranspose2D(inputHeight: c.h, inputWidth: c.w, inputChannels: c.cin, filters: c.cout,
                                        kernelSize: c.k, stride: c.stride, bias: c.bias, algorithm: algorithm,
                                        backend: backend)
            let network = Sequential([layer], maxBatch: 3)
            let kernel = random(c.k * c.k * c.cout * c.cin, seed: UInt64(n))
            let bias = c.bias ? random(c.cout, seed: UInt64(n) + 1000) : nil
            set(network, "0.kernel", kernel)
            if let bias { set(network, "0.bias", bias) }
            let x = random(c.batch * c.h * c.w * c.cin, seed: UInt64(n) + 2000)
            let expected = naiveConvTranspose(x, batch: c.batch, h: c.h, w: c.w, cin: c.cin, kernel: kernel, bias: bias,
                                              cout: c.cout, k: c.k, stride: c.stride)
            XCTAssertEqual(layer.outputHeight, c.h * c.stride)
            XCTAssertEqual(layer.outputWidth, c.w * c.stride)
            assertClose(output(network, x, batch: c.batch), expected, tolerance: 1e-5 * Float(c.k * c.k * c.cin).squareRoot(),
                        "conv transpose \(algorithm) \(c)")
        } }
    }

    func testBatchSmallerThanAllocatedAndRepeatedForward() {
        // Scratch sized for 5 examples, used for 2 then 5 then 2: each result depends only on its batch.
        let layer = Conv2D(inputHeight: 6, inputWidth: 5, inputChannels: 3, filters: 4, kernelSize: 3, stride: 2,
                           backend: backend)
        let network = Sequential([layer], maxBatch: 5)
        network.initializeParameters(seed: 3)
        let kernel = Array(network.parameters.values[0..<(3 * 3 * 3 * 4)])
        let x = random(5 * 6 * 5 * 3, seed: 4)
        let small = Array(x[0..<(2 * 90)])
        let expectedSmall = naiveConv(small, batch: 2, h: 6, w: 5, cin: 3, kernel: kernel, bias: [0, 0, 0, 0],
                                      cout: 4, k: 3, stride: 2)
        assertClose(output(network, small, batch: 2), expectedSmall, tolerance: 1e-5, "batch 2")
        _ = output(network, x, batch: 5)
        assertClose(output(network, small, batch: 2), expectedSmall, tolerance: 1e-5, "batch 2 again")
    }

    // MARK: - TensorFlow's conventions

    func testKerasOutputSizesAndKernelShapes() {
        let d1 = Conv2D(inputHeight: 28, inputWidth: 28, inputChannels: 1, filters: 64, kernelSize: 5, stride: 2, backend: backend)
        let d2 = Conv2D(inputHeight: 14, inputWidth: 14, inputChannels: 64, filters: 128, kernelSize: 5, stride: 2, backend: backend)
        XCTAssertEqual([d1.outputHeight, d1.outputWidth, d1.outputCount], [14, 14, 14 * 14 * 64])
        XCTAssertEqual([d2.outputHeight, d2.outputWidth, d2.outputCount], [7, 7, 7 * 7 * 128])
        // 28 -> 14 with k = 5: 3 padding rows, 1 before and 2 after (TF puts the odd one last).
        XCTAssertEqual([d1.geometry.padTop, d1.geometry.padLeft], [1, 1])
        let g1 = ConvTranspose2D(inputHeight: 7, inputWidth: 7, inputChannels: 256, filters: 128, kernelSize: 5, stride: 1,
                                 bias: false, backend: backend)
        let g2 = ConvTranspose2D(inputHeight: 7, inputWidth: 7, inputChannels: 128, filters: 64, kernelSize: 5, stride: 2,
                                 bias: false, backend: backend)
        let g3 = ConvTranspose2D(inputHeight: 14, inputWidth: 14, inputChannels: 64, filters: 1, kernelSize: 5, stride: 2,
                                 bias: false, backend: backend)
        XCTAssertEqual([g1.outputHeight, g1.outputWidth, g1.outputCount], [7, 7, 7 * 7 * 128])
        XCTAssertEqual([g2.outputHeight, g2.outputWidth, g2.outputCount], [14, 14, 14 * 14 * 64])
        XCTAssertEqual([g3.outputHeight, g3.outputWidth, g3.outputCount], [28, 28, 28 * 28])
        XCTAssertEqual(Conv2D(inputHeight: 5, inputWidth: 9, inputChannels: 1, filters: 1, kernelSize: 3, stride: 2,
                              backend: backend).outputCount, 3 * 5)

        let d = Sequential([d1, LeakyReLU(d1.outputCount, slope: 0.3, backend: backend), d2], maxBatch: 1)
        XCTAssertEqual(d.parameters.entries.map(\.name), ["0.kernel", "0.bias", "2.kernel", "2.bias"])
        XCTAssertEqual(d.parameters.entries.map(\.shape), [[5, 5, 1, 64], [64], [5, 5, 64, 128], [128]])
        let g = Sequential([g1, g2, g3], maxBatch: 1)
        XCTAssertEqual(g.parameters.entries.map(\.name), ["0.kernel", "1.kernel", "2.kernel"])
        XCTAssertEqual(g.parameters.entries.map(\.shape), [[5, 5, 128, 256], [5, 5, 64, 128], [5, 5, 1, 64]])
    }

    func testConvPaddingIsTensorFlowSame() {
        // 4 x 4 input, 3 x 3 ones kernel, stride 2: output 2 x 2, one padding row/column, all
        // of it after (bottom/right). So y[0,0] sums rows/cols 0...2, y[1,1] rows/cols 2...3.
        let layer = Conv2D(inputHeight: 4, inputWidth: 4, inputChannels: 1, filters: 1, kernelSize: 3, stride: 2,
                           bias: false, backend: backend)
        let network = Sequential([layer], maxBatch: 1)
        set(network, "0.kernel", [Float](repeating: 1, count: 9))
        let x = (0..<16).map { Float(1 << ($0 % 8)) * ($0 < 8 ? 1 : 256) } // distinct powers of two
        func block(_ rows: ClosedRange<Int>, _ cols: ClosedRange<Int>) -> Float {
            rows.flatMap { r in cols.map { c in x[r * 4 + c] } }.reduce(0, +)
        }
        XCTAssertEqual(output(network, x, batch: 1),
                       [block(0...2, 0...2), block(0...2, 2...3), block(2...3, 0...2), block(2...3, 2...3)])
    }

    func testConvTransposeMatchesTensorFlowExample() {
        // tf.nn.conv2d_transpose(ones[1, 2, 2, 1], ones[3, 3, 1, 1], [1, 4, 4, 1], strides 2, "SAME").
        let layer = ConvTranspose2D(inputHeight: 2, inputWidth: 2, inputChannels: 1, filters: 1, kernelSize: 3, stride: 2,
                                    bias: false, backend: backend)
        let network = Sequential([layer], maxBatch: 1)
        set(network, "0.kernel", [Float](repeating: 1, count: 9))
        XCTAssertEqual(output(network, [1, 1, 1, 1], batch: 1),
                       [1, 1, 2, 1,
                        1, 1, 2, 1,
                        2, 2, 4, 2,
                        1, 1, 2, 1])
    }

    // MARK: - The transposed convolution is the convolution's adjoint

    func testConvTransposeIsAdjointOfConv() {
        // Conv: (H·s, W·s, c1) -> (H, W, c2) with K[k, k, c1, c2]; ConvT: (H, W, c2) -> (H·s, W·s, c1)
        // with Keras kernel [k, k, filters = c1, in = c2]: the same array, no transposition.
        for algorithm in [ConvolutionAlgorithm.im2col, .taps] {
        for (h, w, c1, c2, k, stride, batch) in [(7, 7, 3, 5, 5, 2, 2), (7, 7, 4, 3, 5, 1, 1), (3, 5, 1, 17, 3, 2, 3),
                                                 (4, 4, 17, 1, 5, 2, 2), (5, 3, 2, 2, 1, 2, 1), (1, 1, 3, 2, 5, 2, 1)] {
            let conv = Sequential([Conv2D(inputHeight: h * stride, inputWidth: w * stride, inputChannels: c1, filters: c2,
                                          kernelSize: k, stride: stride, bias: false, algorithm: algorithm,
                                          backend: backend)], maxBatch: batch)
            let transpose = Sequential([ConvTranspose2D(inputHeight: h, inputWidth: w, inputChannels: c2, filters: c1,
                                                        kernelSize: k, stride: stride, bias: false, algorithm: algorithm,
                                                        backend: backend)],
                                       maxBatch: batch)
            XCTAssertEqual(conv.outputCount, transpose.inputCount)
            XCTAssertEqual(conv.inputCount, transpose.outputCount)
            let kernel = random(k * k * c1 * c2, seed: UInt64(h * 100 + c1))
            set(conv, "0.kernel", kernel)
            set(transpose, "0.kernel", kernel)
            let x = random(batch * conv.inputCount, seed: 5), y = random(batch * conv.outputCount, seed: 6)
            let convX = output(conv, x, batch: batch), transposeY = output(transpose, y, batch: batch)
            let lhs = dot(convX, y), rhs = dot(x, transposeY)
            XCTAssertEqual(lhs, rhs, accuracy: 1e-5 * max(1, abs(lhs)) * Double(k * k * max(c1, c2)).squareRoot(),
                           "<conv x, y> vs <x, convT y> for \((h, w, c1, c2, k, stride, batch))")
            // Each layer's input gradient is the other layer's forward.
            let convDx = conv.backward(y, batch: batch, options: .init(parameterGradients: false, inputGradient: true))!
            assertClose(Array(UnsafeBufferPointer(start: convDx, count: x.count)), transposeY, tolerance: 1e-5,
                        "conv input gradient vs convT forward")
            let transposeDx = transpose.backward(x, batch: batch, options: .init(parameterGradients: false, inputGradient: true))!
            assertClose(Array(UnsafeBufferPointer(start: transposeDx, count: y.count)), convX, tolerance: 1e-5,
                        "convT input gradient vs conv forward")
        }
        }
    }

    // MARK: - Parameters and the backward contract

    func testGlorotUniformWithKerasFans() {
        // Conv2D [5, 5, 64, 128]: fans 5·5·64 and 5·5·128. ConvT [5, 5, 64, 128] (filters 64, in 128): the same.
        for layer in [Conv2D(inputHeight: 14, inputWidth: 14, inputChannels: 64, filters: 128, kernelSize: 5, stride: 2,
                             backend: backend) as Layer,
                      ConvTranspose2D(inputHeight: 7, inputWidth: 7, inputChannels: 128, filters: 64, kernelSize: 5,
                                      stride: 2, backend: backend)] {
            let network = Sequential([layer], maxBatch: 1)
            for i in network.parameters.values.indices { network.parameters.values[i] = .nan }
            network.initializeParameters(seed: 8)
            let limit = (6.0 / Float(25 * 64 + 25 * 128)).squareRoot()
            let kernel = network.parameters.values[0..<(25 * 64 * 128)]
            XCTAssertLessThanOrEqual(kernel.map(abs).max()!, limit)
            XCTAssertGreaterThan(kernel.map(abs).max()!, 0.99 * limit)
            XCTAssertEqual(Array(network.parameters.values[(25 * 64 * 128)...]), [Float](repeating: 0, count: network.parameters.count - 25 * 64 * 128))
        }
    }

    func testBackwardAccumulatesParameterGradientsAndOverwritesInputGradient() {
        let layers: [Layer] = [
            Conv2D(inputHeight: 5, inputWidth: 6, inputChannels: 3, filters: 4, kernelSize: 3, stride: 2, backend: backend),
            ConvTranspose2D(inputHeight: 3, inputWidth: 2, inputChannels: 4, filters: 3, kernelSize: 3, stride: 2,
                            backend: backend),
        ]
        for layer in layers {
            let network = Sequential([layer], maxBatch: 2)
            network.initializeParameters(seed: 2)
            let x = random(2 * network.inputCount, seed: 1), dy = random(2 * network.outputCount, seed: 2)
            _ = network.forward(x, batch: 2, context: .init(training: true))
            network.parameters.zeroGradients()
            let dx1 = Array(UnsafeBufferPointer(start: network.backward(dy, batch: 2, options: .init(inputGradient: true))!,
                                                count: x.count))
            let once = Array(network.parameters.gradients)
            XCTAssertTrue(once.contains { $0 != 0 })
            let dx2 = Array(UnsafeBufferPointer(start: network.backward(dy, batch: 2, options: .init(inputGradient: true))!,
                                                count: x.count))
            XCTAssertEqual(dx1, dx2, "the input gradient is overwritten, not accumulated")
            assertClose(Array(network.parameters.gradients), once.map { $0 * 2 }, tolerance: 1e-6, "accumulated twice")
            XCTAssertNil(network.backward(dy, batch: 2, options: .init(parameterGradients: false, inputGradient: false)))
            assertClose(Array(network.parameters.gradients), once.map { $0 * 2 }, tolerance: 1e-6, "skipped")
            // Bias gradient: the sum of dy over every pixel of every example, per channel.
            let filters = once.count - network.parameters.entries[0].count
            let biasGradient = Array(once[network.parameters.entries[1].offset...])
            let expected = (0..<filters).map { f in stride(from: f, to: dy.count, by: filters).reduce(0.0) { $0 + Double(dy[$1]) } }
            assertClose(biasGradient, expected.map(Float.init), tolerance: 1e-5, "bias gradient")
        }
    }
}

// Both layers' backward passes against finite differences, with the shared harness.
extension FiniteDifferenceTests {
    func testConv2D() {
        for algorithm in [ConvolutionAlgorithm.im2col, .taps] {
            for (h, w, cin, cout, k, stride, batch, bias) in [(5, 6, 3, 4, 3, 1, 2, true), (7, 7, 2, 5, 5, 2, 2, true),
                                                              (6, 5, 4, 3, 3, 2, 1, false), (3, 3, 1, 2, 1, 2, 2, true)] {
                check(Sequential([Conv2D(inputHeight: h, inputWidth: w, inputChannels: cin, filters: cout, kernelSize: k,
                                         stride: stride, bias: bias, algorithm: algorithm, backend: backend)],
                                 maxBatch: batch), batch: batch)
            }
        }
    }

    func testConvTranspose2D() {
        for algorithm in [ConvolutionAlgorithm.im2col, .taps] {
            for (h, w, cin, cout, k, stride, batch, bias) in [(3, 4, 3, 4, 3, 1, 2, true), (4, 3, 5, 2, 5, 2, 2, true),
                                                              (3, 3, 4, 1, 5, 2, 1, false), (2, 3, 2, 3, 1, 2, 2, true)] {
                check(Sequential([ConvTranspose2D(inputHeight: h, inputWidth: w, inputChannels: cin, filters: cout,
                                                  kernelSize: k, stride: stride, bias: bias, algorithm: algorithm,
                                                  backend: backend)],
                                 maxBatch: batch), batch: batch)
            }
        }
    }

    func testConvolutionalStack() {
        // Through the layer boundaries: ConvT (s2) -> LeakyReLU -> Conv (s2), as in G's tail and D's head.
        let network = Sequential([
            ConvTranspose2D(inputHeight: 3, inputWidth: 3, inputChannels: 4, filters: 3, kernelSize: 5, stride: 2,
                            backend: backend),
            LeakyReLU(6 * 6 * 3, slope: 0.3, backend: backend),
            Conv2D(inputHeight: 6, inputWidth: 6, inputChannels: 3, filters: 2, kernelSize: 5, stride: 2, backend: backend),
        ], maxBatch: 2)
        check(network, batch: 2, seed: 4, h: 1e-3)
    }
}
