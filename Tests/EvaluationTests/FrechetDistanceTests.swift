import Kernels
import XCTest
@testable import Evaluation

final class SymmetricEigenTests: XCTestCase {
    func testTwoByTwo() throws {
        let eigen = try SymmetricEigen([2, 1, 1, 2], dimension: 2, vectors: true)
        XCTAssertEqual(eigen.values[0], 1, accuracy: 1e-14)
        XCTAssertEqual(eigen.values[1], 3, accuracy: 1e-14)
        // (1, -1)/√2 and (1, 1)/√2, each up to its sign.
        let r = 0.5.squareRoot()
        XCTAssertEqual(abs(eigen.vectors[0]), r, accuracy: 1e-14)
        XCTAssertEqual(eigen.vectors[0] * eigen.vectors[1], -0.5, accuracy: 1e-14)
        XCTAssertEqual(eigen.vectors[2] * eigen.vectors[3], 0.5, accuracy: 1e-14)
    }

    /// The n x n second-difference matrix (2 on the diagonal, −1 beside it) has eigenvalues
    /// 2 − 2 cos(kπ / (n + 1)), k = 1…n.
    func testSecondDifferenceMatrix() throws {
        let n = 12
        var matrix = [Double](repeating: 0, count: n * n)
        for i in 0..<n {
            matrix[i * n + i] = 2
            if i + 1 < n { matrix[i * n + i + 1] = -1; matrix[(i + 1) * n + i] = -1 }
        }
        let eigen = try SymmetricEigen(matrix, dimension: n, vectors: false)
        XCTAssertTrue(eigen.vectors.isEmpty)
        for k in 1...n {
            XCTAssertEqual(eigen.values[k - 1], 2 - 2 * cos(Double(k) * .pi / Double(n + 1)), accuracy: 1e-13)
        }
    }

    /// A random symmetric matrix is rebuilt from its decomposition, and the vectors are
    /// orthonormal; only the upper triangle (row-major) is read.
    func testDecompositionRebuildsTheMatrix() throws {
        let n = 20
        let random = RandomStream(seed: 7)
        var matrix = [Double](repeating: 0, count: n * n)
        for i in 0..<n {
            for j in i..<n {
                matrix[i * n + j] = Double(random.normal(at: UInt64(i * n + j)))
                matrix[j * n + i] = matrix[i * n + j]
            }
        }
        var upperOnly = matrix
        for i in 0..<n { for j in 0..<i { upperOnly[i * n + j] = .nan } }
        let eigen = try SymmetricEigen(upperOnly, dimension: n, vectors: true)
        XCTAssertEqual(eigen.values, eigen.values.sorted())
        for i in 0..<n {
            for j in 0..<n {
                var rebuilt = 0.0, dot = 0.0
                for k in 0..<n {
                    rebuilt += eigen.vectors[k * n + i] * eigen.values[k] * eigen.vectors[k * n + j]
                    dot += eigen.vectors[i * n + k] * eigen.vectors[j * n + k]
                }
                XCTAssertEqual(rebuilt, matrix[i * n + j], accuracy: 1e-12)
                XCTAssertEqual(dot, i == j ? 1 : 0, accuracy: 1e-12)
            }
        }
    }
}

final class FrechetDistanceTests: XCTestCase {
    func statistics(mean: [Double], covariance: [Double]) -> FeatureStatistics {
        FeatureStatistics(mean: mean, covariance: covariance, count: 1000)
    }

    /// In one dimension the distance is (μ₁ − μ₂)² + (σ₁ − σ₂)²; for diagonal covariances it is
    /// that summed over the dimensions.
    func testDiagonalCovariances() throws {
        let a = statistics(mean: [0, 1, 2], covariance: [4, 0, 0, 0, 9, 0, 0, 0, 1])
        let b = statistics(mean: [1, 1, 0], covariance: [1, 0, 0, 0, 9, 0, 0, 0, 0.25])
        let expected = (1.0 + 0 + 4) + (1.0 + 0 + 0.25)
        XCTAssertEqual(try frechetDistance(a, b), expected, accuracy: 1e-12)
        XCTAssertEqual(try frechetDistance(b, a), expected, accuracy: 1e-12)
    }

    /// Σ₁ = I, Σ₂ = [[2, 1], [1, 2]] (eigenvalues 1 and 3): tr Σ₂^½ = 1 + √3, so the distance
    /// is 2 + 4 − 2(1 + √3) = 4 − 2√3 with equal means.
    func testNonDiagonalCovariance() throws {
        let a = statistics(mean: [0, 0], covariance: [1, 0, 0, 1])
        let b = statistics(mean: [0, 0], covariance: [2, 1, 1, 2])
        XCTAssertEqual(try frechetDistance(a, b), 4 - 2 * 3.0.squareRoot(), accuracy: 1e-12)
        XCTAssertEqual(try frechetDistance(b, a), 4 - 2 * 3.0.squareRoot(), accuracy: 1e-12)
    }

    /// `n` samples of a correlated Gaussian in `d` dimensions: x = z·A + μ with a triangular A
    /// (features of unequal scales), z standard normal from `seed`.
    func gaussianSamples(n: Int, d: Int, seed: UInt64) -> [Float] {
        var z = [Float](repeating: 0, count: n * d)
        RandomStream(seed: seed).fillNormal(&z, count: n * d)
        var x = [Float](repeating: 0, count: n * d)
        for row in 0..<n {
            for j in 0..<d {
                var value = Float(j) * 0.5
                for k in j..<d { value += z[row * d + k] * Float(k + 1) / Float(d) * (k == j ? 2 : 0.3) }
                x[row * d + j] = value
            }
        }
        return x
    }

    /// Samples of a Gaussian: their distance to themselves is 0, to the same samples shifted by
    /// δ it is ‖δ‖² (the covariances are identical), to another draw it is small but not 0.
    func testGaussianSetAgainstItselfAndShifted() throws {
        let (n, d) = (4000, 16)
        let x = gaussianSamples(n: n, d: d, seed: 3)
        let delta = (0..<d).map { Float($0 % 3) - 0.75 }
        let shifted = (0..<n * d).map { x[$0] + delta[$0 % d] }
        let a = FeatureStatistics(x, count: n, dimension: d)
        let b = FeatureStatistics(shifted, count: n, dimension: d)
        let shift = delta.reduce(0) { $0 + Double($1 * $1) }
        XCTAssertEqual(try frechetDistance(a, a), 0, accuracy: 1e-9)
        XCTAssertEqual(try frechetDistance(a, b), shift, accuracy: 1e-6 * shift)
        let other = FeatureStatistics(gaussianSamples(n: n, d: d, seed: 4), count: n, dimension: d)
        let sampling = try frechetDistance(a, other)
        XCTAssertGreaterThan(sampling, 0)
        XCTAssertLessThan(sampling, 0.02 * shift)
    }

    func testStatisticsOfThreeVectors() {
        // Vectors (1, 2), (3, 2), (5, 8): mean (3, 4); unbiased covariance [[4, 6], [6, 12]].
        let s = FeatureStatistics([1, 2, 3, 2, 5, 8], count: 3, dimension: 2)
        XCTAssertEqual(s.mean, [3, 4])
        XCTAssertEqual(s.covariance, [4, 6, 6, 12])
    }
}
