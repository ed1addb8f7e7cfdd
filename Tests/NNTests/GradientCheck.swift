import XCTest
import Kernels
@testable import NN

extension XCTestCase {
    /// Every layer's backward against finite differences:
    /// ∂L/∂input and ∂L/∂parameters of `network` against central differences of
    /// `L = Σ r ⊙ y` (r a fixed random projection, so ∂L/∂y = r), under `context`.
    ///
    /// Parameters and state are moved off their initial values so that every term is exercised:
    /// biases and betas uniform in [-0.5, 0.5], gammas in [0.5, 1.5], moving means in
    /// [-0.5, 0.5], moving variances in [0.5, 2]. Every loss evaluation runs a forward pass with
    /// the same context, so a stochastic layer's mask is the same in each.
    func checkGradients(_ network: Sequential, batch: Int, context: ForwardContext = .init(training: true),
                        seed: UInt64 = 1, h: Float = 1e-2, inputScale: Float = 1, awayFromZero: Bool = false,
                        file: StaticString = #filePath, line: UInt = #line) {
        let input = UnsafeMutableBufferPointer<Float>.allocate(capacity: batch * network.inputCount)
        defer { input.deallocate() }
        RandomStream(seed: seed, 1).fillNormal(input.baseAddress!, count: input.count)
        // An offset and a spread per input so that normalization sees non-trivial statistics.
        for i in input.indices { input[i] = inputScale * input[i] + 0.3 }
        // Keeps inputs off a kink (LeakyReLU) by more than the step h.
        if awayFromZero { for i in input.indices { input[i] += input[i] >= 0 ? 0.05 : -0.05 } }
        var r = [Float](repeating: 0, count: batch * network.outputCount)
        RandomStream(seed: seed, 2).fillNormal(&r, count: r.count)
        network.initializeParameters(seed: seed)
        func randomize(_ store: ParameterStore, _ suffix: String, _ low: Float, _ high: Float, _ path: UInt64) {
            for e in store.entries where e.name.hasSuffix(suffix) {
                RandomStream(seed: seed, path).fillUniform(store.values.baseAddress! + e.offset, count: e.count,
                                                           low: low, high: high)
            }
        }
        randomize(network.parameters, "bias", -0.5, 0.5, 3)
        randomize(network.parameters, "beta", -0.5, 0.5, 4)
        randomize(network.parameters, "gamma", 0.5, 1.5, 5)
        randomize(network.state, "moving_mean", -0.5, 0.5, 6)
        randomize(network.state, "moving_variance", 0.5, 2, 7)

        func loss() -> Double {
            let y = network.forward(input.baseAddress!, batch: batch, context: context)
            var s = 0.0
            for i in 0..<r.count { s += Double(r[i]) * Double(y[i]) }
            return s
        }

        _ = loss()
        network.parameters.zeroGradients()
        let dx = network.backward(r, batch: batch, options: .init(parameterGradients: true, inputGradient: true))!
        let analyticInput = Array(UnsafeBufferPointer(start: dx, count: input.count))
        let analyticParameters = Array(network.parameters.gradients)

        func numeric(_ value: UnsafeMutablePointer<Float>) -> Double {
            let saved = value.pointee
            value.pointee = saved + h; let plus = loss()
            value.pointee = saved - h; let minus = loss()
            value.pointee = saved
            return (plus - minus) / Double(2 * h)
        }
        func compare(_ analytic: Float, _ numeric: Double, _ what: String) {
            let tolerance = 2e-3 * max(1, abs(numeric))
            XCTAssertEqual(Double(analytic), numeric, accuracy: tolerance, what, file: file, line: line)
        }
        for i in stride(from: 0, to: input.count, by: max(1, input.count / 97)) {
            compare(analyticInput[i], numeric(input.baseAddress! + i), "∂L/∂input[\(i)]")
        }
        let p = network.parameters.values.baseAddress!
        for e in network.parameters.entries {
            for i in stride(from: e.offset, to: e.offset + e.count, by: max(1, e.count / 61)) {
                compare(analyticParameters[i], numeric(p + i), "∂L/∂\(e.name)[\(i - e.offset)]")
            }
        }
    }
}
