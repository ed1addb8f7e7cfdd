import XCTest
import Backends
import Kernels
@testable import Optim

final class MovingAverageTests: XCTestCase {
    /// β_t = min(β, (1 + t) / (10 + t)): 2/11 after the first update, β once (1 + t)/(10 + t) passes it.
    func testDecayWarmsUpToBeta() {
        let average = MovingAverage(decay: 0.99)
        XCTAssertEqual(average.decay(atUpdate: 1), 2 / 11)
        XCTAssertEqual(average.decay(atUpdate: 10), 11 / 20)
        XCTAssertEqual(average.decay(atUpdate: 890), 0.99)
        XCTAssertEqual(average.decay(atUpdate: 100_000), 0.99)
        XCTAssertEqual(MovingAverage(decay: 0.5).decay(atUpdate: 7), 8 / 17)
        XCTAssertEqual(MovingAverage(decay: 0.5).decay(atUpdate: 9), 0.5)
    }

    /// Every element moves by (1 − β_t)(θ − θ̄), the vector body and the scalar tail alike, on
    /// every backend and thread count.
    func testUpdateFollowsTheFormulaOnOddLengths() {
        let backends: [Backend] = [ReferenceBackend(), try! Backends.make(Backends.supported[0], threads: 3)]
            + Backends.supported.map { try! Backends.make($0) }
        let average = MovingAverage(decay: 0.999)
        for backend in backends {
            for count in [1, 7, 8, 9, 17, 33, 8191, 12_289] {
                var theta = [Float](repeating: 0, count: count), mean = theta
                RandomStream(seed: 1).fillUniform(&theta, count: count, low: -1, high: 1)
                RandomStream(seed: 2).fillUniform(&mean, count: count, low: -1, high: 1)
                let expected = zip(mean, theta).map { a, v in a + (1 - average.decay(atUpdate: 5)) * (v - a) }
                average.update(&mean, toward: theta, count: count, update: 5, backend: backend)
                XCTAssertEqual(mean, expected, "\(backend) count \(count)")
            }
        }
    }
}
