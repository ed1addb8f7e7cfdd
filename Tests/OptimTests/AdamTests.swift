import XCTest
import Backends
import Kernels
@testable import Optim

final class AdamTests: XCTestCase {
    /// Two steps worked by hand with lr 0.1, β₁ 0.9, β₂ 0.999, ε 1e-7:
    /// step 1, g = 0.5:  m = 0.05, v = 0.00025, m̂ = 0.5, v̂ = 0.25, θ = 1 - 0.1·0.5/(0.5+ε) ≈ 0.9
    /// step 2, g = -1:   m = 0.045 - 0.1 = -0.055, v = 0.00024975 + 0.001 = 0.00124975,
    ///                   m̂ = -0.055/0.19 = -0.289474, v̂ = 0.00124975/0.001999 = 0.625188,
    ///                   θ = 0.9 + 0.1·0.289474/0.790688 = 0.936610
    func testTwoStepsByHand() {
        let adam = Adam(count: 1, config: OptimizerConfig.adam(learningRate: 0.1), backend: Backends.automatic())
        var theta: [Float] = [1]
        adam.step(parameters: &theta, gradients: [0.5])
        XCTAssertEqual(theta[0], 0.9, accuracy: 1e-6)
        // Float β₂ = 0.99900001 makes 1-β₂ 1.3e-5 smaller than the decimal value: tolerances are relative 3e-5.
        XCTAssertEqual(adam.m[0], 0.05, accuracy: 1e-7)
        XCTAssertEqual(adam.v[0], 0.00025, accuracy: 1e-8)
        adam.step(parameters: &theta, gradients: [-1])
        XCTAssertEqual(adam.m[0], -0.055, accuracy: 1e-7)
        XCTAssertEqual(adam.v[0], 0.00124975, accuracy: 5e-8)
        XCTAssertEqual(theta[0], 0.936610, accuracy: 2e-6)
        XCTAssertEqual(adam.stepCount, 2)
    }

    /// ε is added to √v, not to √v̂, as in Keras: a gradient of 1e-6 at step 1 moves θ by
    /// lr·√0.001/0.1 · 1e-7/(√1e-15 + 1e-7) = 0.24025·lr (the other form would give 0.909·lr).
    func testEpsilonIsAddedAsKerasDoes() {
        let adam = Adam(count: 1, config: OptimizerConfig.adam(learningRate: 1e-3), backend: Backends.automatic())
        var theta: [Float] = [0]
        adam.step(parameters: &theta, gradients: [1e-6])
        XCTAssertEqual(theta[0], -0.24025e-3, accuracy: 1e-8)
    }

    /// The vector body and the scalar tail give identical results, and each element follows
    /// the formula in Double to float precision.
    func testMatchesFormulaOnOddLengths() {
        let backends: [Backend] = [ReferenceBackend()] + Backends.supported.map { try! Backends.make($0) }
        for backend in backends { for count in [1, 7, 8, 9, 15, 16, 17, 33, 129] {
            let config = OptimizerConfig(learningRate: 1e-3, beta1: 0.5, beta2: 0.999, epsilon: 1e-7)
            let adam = Adam(count: count, config: config, backend: backend)
            var theta = (0..<count).map { Float($0) * 0.01 - 0.3 }
            var m = [Double](repeating: 0, count: count), v = m
            var expected = theta.map(Double.init)
            for t in 1...3 {
                let g = (0..<count).map { Float(sin(Double($0 * t))) }
                adam.step(parameters: &theta, gradients: g)
                for i in 0..<count {
                    let gi = Double(g[i])
                    m[i] = 0.5 * m[i] + 0.5 * gi
                    v[i] = 0.999 * v[i] + 0.001 * gi * gi
                    let alpha = 1e-3 * (1 - pow(0.999, Double(t))).squareRoot() / (1 - pow(0.5, Double(t)))
                    expected[i] -= alpha * m[i] / (v[i].squareRoot() + 1e-7)
                }
            }
            for i in 0..<count {
                XCTAssertEqual(Double(theta[i]), expected[i], accuracy: 1e-6, "\(type(of: backend)), count \(count), element \(i)")
            }
        } }
    }
}
