import XCTest
import Backends
@testable import Kernels

/// The Float16 kernels (`maxAbs`, `convertToHalf`, `convertFromHalf`) against the reference,
/// bit for bit, on every instruction set this CPU supports and on 1, 2 and 3 threads (split
/// however small, `.always`), on counts that no vector width or split divides; and
/// `HalfScale` on its edges.
final class HalfPrecisionTests: XCTestCase {
    let reference = ReferenceBackend()
    let counts = [0, 1, 7, 17, 1003]

    /// Every backend to compare with the reference, named by instruction set and threads.
    func backends() -> [(String, Backend)] {
        Backends.supported.flatMap { isa in
            [1, 2, 3].map { threads in
                ("\(isa) \(threads) thread\(threads == 1 ? "" : "s")",
                 try! Backends.make(isa, threads: threads, thresholds: .always))
            }
        }
    }

    /// Floats spanning Float16's range and beyond, each class recurring along the buffer:
    /// below its smallest subnormal (3e-8, to zero), subnormal in half, normal, ties between
    /// two halves, past 65504 (to inf), zeros of both signs, infinities and NaN.
    func floats(_ count: Int, seed: UInt64) -> [Float] {
        let stream = RandomStream(seed: seed)
        let special: [Float] = [0, -0.0, 1, -1, 65504, 65519.99, 65520, -65520, 1e6, .infinity, -.infinity, .nan,
                                1 + 0x1p-11, 1 + 3 * 0x1p-11, 0x1p-24, 0x1p-25, 3 * 0x1p-26, -0x1p-14, 6e-5]
        return (0..<count).map { i in
            let u = stream.unitFloat(at: UInt64(i)) * 2 - 1
            switch i % 6 {
            case 0: return special[(i / 6) % special.count]
            case 1: return u * 1e-9   // below half's subnormals
            case 2: return u * 1e-6   // subnormal in half
            case 3: return u * 100    // normal
            case 4: return u * 2e5    // often past 65504
            default: return u
            }
        }
    }

    func bits(_ x: [Float]) -> [UInt32] { x.map(\.bitPattern) }
    func bits(_ x: [Float16]) -> [UInt16] { x.map(\.bitPattern) }

    func testConvertToHalfMatchesReferenceBitForBit() {
        for count in counts {
            let x = floats(count, seed: UInt64(count))
            // Powers of two (exact products) and scales that round (two roundings, the same in both).
            for scale: Float in [1, 0x1p10, 0x1p-3, 0.3, 1 / 3] {
                var expected = [Float16](repeating: 0, count: count)
                reference.convertToHalf(x, &expected, count: count, scale: scale)
                for (name, backend) in backends() {
                    var out = [Float16](repeating: 7, count: count + 1)
                    backend.convertToHalf(x, &out, count: count, scale: scale)
                    XCTAssertEqual(bits(Array(out.prefix(count))), bits(expected), "[\(name)] \(count) values, scale \(scale)")
                    XCTAssertEqual(out.last, 7, "[\(name)] wrote past \(count) values")
                }
            }
        }
    }

    func testConvertToHalfRoundsToNearestEvenAndOverflowsToInfinity() {
        let x: [Float] = [1 + 0x1p-11, 1 + 3 * 0x1p-11, 65504, 65519.99, 65520, -65520, 0x1p-25, 3 * 0x1p-26, 0x1p-26, -0.0]
        let expected: [Float16] = [1, 1 + 0x1p-9, 65504, 65504, .infinity, -.infinity, 0, 0x1p-24, 0, -0.0]
        for (name, backend) in backends() {
            var out = [Float16](repeating: 7, count: x.count)
            backend.convertToHalf(x, &out, count: x.count, scale: 1)
            XCTAssertEqual(bits(out), bits(expected), "[\(name)]")
            var nan: [Float16] = [0]
            backend.convertToHalf([.nan], &nan, count: 1, scale: 2)
            XCTAssert(nan[0].isNaN, "[\(name)] NaN became \(nan[0])")
        }
    }

    /// Every one of the 65536 halves (NaNs, infinities and subnormals included), in odd-length
    /// prefixes, widened and scaled.
    func testConvertFromHalfMatchesReferenceBitForBitOnEveryHalf() {
        let all = (0...UInt16.max).map { Float16(bitPattern: $0) }
        for count in counts + [all.count] {
            let x = Array(all.shuffled(seed: UInt64(count)).prefix(count))
            for scale: Float in [1, 0x1p-10, 0x1p20, 1 / 3, -0.5] {
                var expected = [Float](repeating: 0, count: count)
                reference.convertFromHalf(x, &expected, count: count, scale: scale)
                for (name, backend) in backends() {
                    var out = [Float](repeating: 7, count: count + 1)
                    backend.convertFromHalf(x, &out, count: count, scale: scale)
                    XCTAssertEqual(bits(Array(out.prefix(count))), bits(expected), "[\(name)] \(count) values, scale \(scale)")
                    XCTAssertEqual(out.last, 7, "[\(name)] wrote past \(count) values")
                }
            }
        }
    }

    func testRoundTripThroughHalfIsExactForHalves() {
        let all = (0...UInt16.max).map { Float16(bitPattern: $0) }.filter { !$0.isNaN }
        for (name, backend) in backends() {
            var floats = [Float](repeating: 0, count: all.count), back = [Float16](repeating: 0, count: all.count)
            backend.convertFromHalf(all, &floats, count: all.count, scale: 0x1p-5)
            backend.convertToHalf(floats, &back, count: all.count, scale: 0x1p5)
            XCTAssertEqual(bits(back), bits(all), "[\(name)]")
        }
    }

    func testMaxAbsMatchesReferenceBitForBit() {
        for count in counts {
            // Without the specials (NaN, infinities), then with them.
            let finite = floats(count, seed: UInt64(count) + 5).map { $0.isFinite ? $0 : 0.5 }
            let all = floats(count, seed: UInt64(count) + 5)
            for x in [finite, all] {
                let expected = reference.maxAbs(x, count: count)
                for (name, backend) in backends() {
                    let m = backend.maxAbs(x, count: count)
                    XCTAssertEqual(m.bitPattern, expected.bitPattern, "[\(name)] \(count) values: \(m), expected \(expected)")
                }
            }
        }
    }

    /// A NaN anywhere, in a vector's body or the tail, on any thread's chunk, gives +inf.
    func testMaxAbsReportsNaNAsInfinity() {
        let count = 1003
        let values = floats(count, seed: 9).map { $0.isFinite ? $0 * 1e-3 : 0.25 }
        for position in [0, 1, 7, 15, 16, 500, 501, 990, 1000, 1002] {
            for poison: Float in [.nan, -.nan, .signalingNaN, .infinity, -.infinity] {
                var x = values
                x[position] = poison
                XCTAssertEqual(reference.maxAbs(x, count: count), .infinity, "reference: \(poison) at \(position)")
                for (name, backend) in backends() {
                    XCTAssertEqual(backend.maxAbs(x, count: count), .infinity, "[\(name)] \(poison) at \(position)")
                }
            }
        }
    }

    func testMaxAbsOfZerosIsPositiveZero() {
        let zeros: [Float] = [-0.0, 0, -0.0, -0.0, -0.0, -0.0, -0.0, -0.0, -0.0, -0.0, -0.0]
        for (name, backend) in backends() {
            XCTAssertEqual(backend.maxAbs(zeros, count: zeros.count).bitPattern, Float(0).bitPattern, "[\(name)]")
            XCTAssertEqual(backend.maxAbs(zeros, count: 0).bitPattern, Float(0).bitPattern, "[\(name)] no values")
            XCTAssertEqual(backend.maxAbs([-3, 2, -0.5], count: 3), 3, "[\(name)]")
        }
    }

    // MARK: The scale

    func testScaleEdges() {
        // 2 · 1 · 2¹³ = 16384 fits, 2¹⁴ would give 32768 > 32752.
        XCTAssertEqual(HalfScale.choose(largestMagnitude: 1, ranks: 2), 0x1p13)
        XCTAssertEqual(HalfScale.choose(largestMagnitude: 1, ranks: 1), 0x1p14)
        // Exactly at the bound, and just above it.
        XCTAssertEqual(HalfScale.choose(largestMagnitude: 16376, ranks: 2), 1)
        XCTAssertEqual(HalfScale.choose(largestMagnitude: 16376.002, ranks: 2), 0.5)
        XCTAssertEqual(HalfScale.choose(largestMagnitude: 32752, ranks: 1), 1)
        XCTAssertEqual(HalfScale.choose(largestMagnitude: 32768, ranks: 1), 0.5)
        // Zero: nothing to scale. Tiny: the largest scale. Not finite, or too large even for 2⁻⁶⁴: nil.
        XCTAssertEqual(HalfScale.choose(largestMagnitude: 0, ranks: 4), 1)
        XCTAssertEqual(HalfScale.choose(largestMagnitude: 1e-30, ranks: 2), 0x1p64)
        XCTAssertEqual(HalfScale.choose(largestMagnitude: .leastNonzeroMagnitude, ranks: 1), 0x1p64)
        XCTAssertNil(HalfScale.choose(largestMagnitude: .nan, ranks: 2))
        XCTAssertNil(HalfScale.choose(largestMagnitude: .infinity, ranks: 2))
        XCTAssertNil(HalfScale.choose(largestMagnitude: 1e30, ranks: 2))
        XCTAssertNil(HalfScale.choose(largestMagnitude: .greatestFiniteMagnitude, ranks: 1))
        // The smallest scale: 32752 · 2⁶⁴ on one rank needs exactly 2⁻⁶⁴; twice that on two ranks is refused.
        XCTAssertEqual(HalfScale.choose(largestMagnitude: 32752 * 0x1p64, ranks: 1), 0x1p-64)
        XCTAssertNil(HalfScale.choose(largestMagnitude: 32752 * 0x1p64, ranks: 2))
        // Many ranks: 1000 · 3 · 2³ = 24000 fits, 2⁴ would give 48000.
        XCTAssertEqual(HalfScale.choose(largestMagnitude: 3, ranks: 1000), 0x1p3)
    }

    /// The scale is the largest power of two within the bound, and the worst case it allows,
    /// every rank sending the largest value, sums to a finite half in Float16 arithmetic.
    func testScaleIsTheLargestThatKeepsEverySumFinite() {
        let stream = RandomStream(seed: 31)
        for i in 0..<2000 {
            let m = Float(pow(10, Double(stream.unitFloat(at: UInt64(i))) * 40 - 20))
            let ranks = [1, 2, 3, 7, 64, 1000][i % 6]
            guard let scale = HalfScale.choose(largestMagnitude: m, ranks: ranks) else {
                return XCTFail("no scale for \(m) over \(ranks) ranks")
            }
            XCTAssertEqual(scale.significandBitPattern, 0, "\(scale) is not a power of two")
            let total = Double(m) * Double(ranks)
            XCTAssertLessThanOrEqual(total * Double(scale), 32752, "\(m) over \(ranks) ranks, scale \(scale)")
            if scale < 0x1p64 {
                XCTAssertGreaterThan(total * Double(scale) * 2, 32752, "\(m) over \(ranks) ranks: \(scale) could double")
            }
            var sum: Float16 = 0
            for _ in 0..<ranks { sum += Float16(m * scale) }
            XCTAssert(sum.isFinite, "\(ranks) x \(m) at scale \(scale) overflowed")
        }
    }
}

private extension Array {
    /// The elements in an order fixed by `seed` (Fisher-Yates on a `RandomStream`).
    func shuffled(seed: UInt64) -> [Element] {
        var result = self
        let stream = RandomStream(seed: seed)
        for i in stride(from: result.count - 1, to: 0, by: -1) {
            let j = Int(stream.bits(at: UInt64(i)) % UInt64(i + 1))
            result.swapAt(i, j)
        }
        return result
    }
}
