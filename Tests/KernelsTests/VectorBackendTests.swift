import XCTest
import Backends
@testable import Kernels

/// Every instruction set's backend this CPU supports against the plain-loop reference, on
/// shapes that are not multiples of the register tiles (6 x 16, 12 x 32), the vector widths
/// (8, 16) or the cache blocks (96, 256, 1024); and the instruction sets against each other,
/// bit for bit.
final class VectorBackendTests: XCTestCase {
    let reference = ReferenceBackend()
    /// One backend per supported instruction set (on an AVX-512 machine, both).
    let backends: [(isa: InstructionSet, backend: Backend)] = Backends.supported.map { ($0, try! Backends.make($0)) }

    /// Runs `body` once per instruction set; a failure's message names it.
    func forEachBackend(_ body: (Backend) throws -> Void, file: StaticString = #filePath, line: UInt = #line) rethrows {
        XCTAssertFalse(backends.isEmpty, "this CPU supports no instruction set", file: file, line: line)
        for (isa, backend) in backends {
            currentISA = isa
            try body(backend)
        }
    }
    private(set) var currentISA: InstructionSet?

    func random(_ count: Int, seed: UInt64) -> [Float] {
        let stream = RandomStream(seed: seed)
        return (0..<count).map { stream.unitFloat(at: UInt64($0)) * 2 - 1 }
    }

    func assertClose(_ a: [Float], _ b: [Float], tolerance: Float, _ message: String,
                     file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(a.count, b.count, message, file: file, line: line)
        var worst: Float = 0, worstIndex = 0
        for i in 0..<a.count {
            let err = abs(a[i] - b[i]) / max(1, abs(b[i]))
            if !(err <= worst) { worst = err; worstIndex = i }
        }
        XCTAssertLessThanOrEqual(worst, tolerance,
                                 "[\(currentISA?.rawValue ?? "?")] \(message): element \(worstIndex) is \(a[worstIndex]), expected \(b[worstIndex])",
                                 file: file, line: line)
    }

    func testGEMMAllTransposesOddShapes() {
        forEachBackend { simd in
            let sizes = [1, 7, 33, 100, 129]
            var seed: UInt64 = 1
            for m in sizes { for n in sizes { for k in [1, 7, 100, 300] {
                for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
                    for accumulate in [false, true] {
                        seed += 1
                        let a = random(m * k, seed: seed), b = random(k * n, seed: seed + 1000)
                        let c0 = random(m * n, seed: seed + 2000)
                        var fast = c0, slow = c0
                        let lda = ta ? m : k, ldb = tb ? k : n
                        simd.gemm(transposeA: ta, transposeB: tb, m: m, n: n, k: k, a: a, lda: lda,
                                  b: b, ldb: ldb, c: &fast, ldc: n, accumulate: accumulate)
                        reference.gemm(transposeA: ta, transposeB: tb, m: m, n: n, k: k, a: a, lda: lda,
                                       b: b, ldb: ldb, c: &slow, ldc: n, accumulate: accumulate)
                        assertClose(fast, slow, tolerance: 2e-5 * Float(k).squareRoot(),
                                    "gemm m=\(m) n=\(n) k=\(k) tA=\(ta) tB=\(tb) acc=\(accumulate)")
                    }
                }
            } } }
        }
    }

    func testGEMMCrossesEveryCacheBlock() {
        forEachBackend { simd in
            // m > MC, n > NC, k > KC: exercises the outer loops and the K-block accumulation.
            let m = 197, n = 1100, k = 530
            let a = random(m * k, seed: 7), b = random(k * n, seed: 8)
            var fast = [Float](repeating: .nan, count: m * n), slow = fast
            simd.gemm(transposeA: false, transposeB: false, m: m, n: n, k: k, a: a, lda: k, b: b, ldb: n,
                      c: &fast, ldc: n, accumulate: false)
            reference.gemm(transposeA: false, transposeB: false, m: m, n: n, k: k, a: a, lda: k, b: b, ldb: n,
                           c: &slow, ldc: n, accumulate: false)
            assertClose(fast, slow, tolerance: 1e-4, "large gemm")
        }
    }

    func testGEMMRespectsLeadingDimensions() {
        forEachBackend { simd in
            // C is a 5 x 9 window of a 5 x 20 matrix: columns 9..<20 must stay untouched.
            let m = 5, n = 9, k = 11, ldc = 20
            let a = random(m * k, seed: 3), b = random(k * n, seed: 4)
            var fast = [Float](repeating: 42, count: m * ldc), slow = fast
            simd.gemm(transposeA: false, transposeB: false, m: m, n: n, k: k, a: a, lda: k, b: b, ldb: n,
                      c: &fast, ldc: ldc, accumulate: false)
            reference.gemm(transposeA: false, transposeB: false, m: m, n: n, k: k, a: a, lda: k, b: b, ldb: n,
                           c: &slow, ldc: ldc, accumulate: false)
            assertClose(fast, slow, tolerance: 1e-5, "strided C")
            for i in 0..<m { for j in n..<ldc { XCTAssertEqual(fast[i * ldc + j], 42) } }
        }
    }

    func testElementwiseKernels() {
        forEachBackend { simd in
            for count in [1, 7, 8, 33, 100, 129, 1000] {
                let x = random(count, seed: UInt64(count)).map { $0 * 6 }
                let dy = random(count, seed: UInt64(count) + 99)
                func both(_ f: (Backend, UnsafeMutablePointer<Float>) -> Void) -> ([Float], [Float]) {
                    var a = [Float](repeating: 0, count: count), b = a
                    f(simd, &a); f(reference, &b)
                    return (a, b)
                }
                var (a, b) = both { $0.leakyReLU(x, $1, count: count, slope: 0.01) }
                assertClose(a, b, tolerance: 0, "leakyReLU \(count)")
                (a, b) = both { $0.leakyReLUBackward(x, dy, $1, count: count, slope: 0.3) }
                assertClose(a, b, tolerance: 0, "leakyReLU backward \(count)")
                (a, b) = both { $0.tanh(x, $1, count: count) }
                assertClose(a, b, tolerance: 3e-7, "tanh \(count)")
                (a, b) = both { $0.tanhBackward(dy, x, $1, count: count) }
                assertClose(a, b, tolerance: 1e-6, "tanh backward \(count)")
                (a, b) = both { $0.sigmoid(x, $1, count: count) }
                assertClose(a, b, tolerance: 3e-7, "sigmoid \(count)")
                (a, b) = both { $0.addBias(dy, to: $1, rows: 1, columns: count) }
                assertClose(a, b, tolerance: 0, "bias \(count)")
                (a, b) = both { $0.axpy(0.5, x, $1, count: count) }
                assertClose(a, b, tolerance: 1e-7, "axpy \(count)")
                XCTAssertEqual(simd.sum(x, count: count), reference.sum(x, count: count), accuracy: 1e-9 * Double(count))
            }
        }
    }

    func testTanhAtExtremesAndNearZero() {
        forEachBackend { simd in
            let x: [Float] = [0, 1e-8, -3e-4, 5e-4, -0.7, 3, 7.9, 8, 20, -50, .infinity, -.infinity]
            var y = [Float](repeating: .nan, count: x.count)
            simd.tanh(x, &y, count: x.count)
            for i in 0..<x.count {
                let expected = Float(Foundation.tanh(Double(x[i])))
                XCTAssertEqual(y[i], expected, accuracy: 3e-7, "tanh(\(x[i]))") // 5 ulp just below 1
            }
        }
    }

    func testBiasGradientMatrix() {
        forEachBackend { simd in
            let rows = 13, columns = 37
            let dy = random(rows * columns, seed: 5)
            var a = random(columns, seed: 6), b = a
            simd.accumulateBiasGradient(dy, rows: rows, columns: columns, into: &a)
            reference.accumulateBiasGradient(dy, rows: rows, columns: columns, into: &b)
            assertClose(a, b, tolerance: 1e-6, "bias gradient")
        }
    }

    func testBinaryCrossEntropyMatchesReferenceAndIsStable() {
        forEachBackend { simd in
            let logits: [Float] = [-100, -20, -3, -0.5, 0, 0.25, 4, 30, 100]
            let targets: [Float] = [0, 1, 0.9, 1, 0, 0.9, 1, 0, 1]
            var ga = [Float](repeating: 0, count: logits.count), gb = ga
            let la = simd.binaryCrossEntropyWithLogits(logits, targets: targets, count: logits.count, scale: 0.5, gradient: &ga)
            XCTAssert(la.isFinite)
            // The reference's log(p) underflows for |l| = 100; compare on the moderate logits.
            let moderate = 2..<7
            let lb = reference.binaryCrossEntropyWithLogits(Array(logits[moderate]), targets: Array(targets[moderate]),
                                                            count: moderate.count, scale: 0.5, gradient: &gb)
            var la2 = [Float](repeating: 0, count: moderate.count)
            let lm = simd.binaryCrossEntropyWithLogits(Array(logits[moderate]), targets: Array(targets[moderate]),
                                                       count: moderate.count, scale: 0.5, gradient: &la2)
            XCTAssertEqual(lm, lb, accuracy: 1e-5)
            assertClose(la2, Array(gb[0..<moderate.count]), tolerance: 1e-6, "bce gradient")
            // Known values: l = -100, t = 0 costs ~0; l = -20, t = 1 costs 20; l = 30, t = 0 costs 30.
            XCTAssertEqual(la, 0 + 20 + Double(lb) + 30 + 0, accuracy: 1e-3)
            XCTAssertEqual(ga[1], 0.5 * (0 - 1), accuracy: 1e-6)
            XCTAssertEqual(ga[7], 0.5 * (1 - 0), accuracy: 1e-6)
        }
    }
}

extension VectorBackendTests {
    /// The gathered multiplies (a convolution tap each) against the reference, on row counts
    /// and widths that are not multiples of the tiles, with rows read and written out of order.
    func testGatheredMultipliesMatchReference() {
        forEachBackend { simd in
            for (m, n, k) in [(1, 1, 1), (13, 37, 17), (100, 64, 300), (197, 33, 530), (30, 1100, 20)] {
                let rowsA = 2 * max(m, k) + 3, stride = max(k, m) + 5
                let a = random(rowsA * stride, seed: UInt64(m * 7 + k)), b = random(k * n + n * k, seed: UInt64(n))
                // A reads its rows out of order and with gaps; C gets distinct rows, in reverse, every other one.
                let aRows = (0..<max(m, k)).map { Int32((5 * $0 + 3) % rowsA) }
                let cRows = (0..<m).map { Int32((2 * m + 1) - 1 - 2 * $0) }
                for transposeB in [false, true] {
                    let c0 = random((2 * m + 1) * (n + 3), seed: 99)
                    var fast = c0, slow = c0
                    simd.gemmGatheredRows(m: m, n: n, k: k, a: a, aRows: aRows, aStride: stride, transposeB: transposeB,
                                          b: b, ldb: transposeB ? k : n, c: &fast, cRows: cRows, cStride: n + 3)
                    reference.gemmGatheredRows(m: m, n: n, k: k, a: a, aRows: aRows, aStride: stride, transposeB: transposeB,
                                               b: b, ldb: transposeB ? k : n, c: &slow, cRows: cRows, cStride: n + 3)
                    assertClose(fast, slow, tolerance: 2e-5 * Float(k).squareRoot(), "gathered rows \(m)x\(n)x\(k) tB=\(transposeB)")
                }
                // Inner gather: k rows of A (m wide) and of B (n wide).
                let bRows = (0..<k).map { Int32((7 * $0 + 1) % (k + 2)) }
                let bb = random((k + 2) * n, seed: 5)
                let c0 = random(m * n, seed: 6)
                var fast = c0, slow = c0
                simd.gemmGatheredInner(m: m, n: n, k: k, a: a, aRows: Array(aRows.prefix(k)) + [], aStride: stride,
                                       b: bb, bRows: bRows, bStride: n, c: &fast, ldc: n)
                reference.gemmGatheredInner(m: m, n: n, k: k, a: a, aRows: Array(aRows.prefix(k)), aStride: stride,
                                            b: bb, bRows: bRows, bStride: n, c: &slow, ldc: n)
                assertClose(fast, slow, tolerance: 2e-5 * Float(k).squareRoot(), "gathered inner \(m)x\(n)x\(k)")
            }
        }
    }

    /// GEMM and the elementwise kernels give the same bits on every instruction set: each C
    /// element is the same FMA sequence (same KC blocks) whatever the tile, and each lane the
    /// same operations whatever the width.
    func testInstructionSetsAgreeBitForBit() {
        guard let (firstISA, first) = backends.first else { return XCTFail("no instruction set") }
        for (isa, other) in backends.dropFirst() {
            for (m, n, k) in [(1, 1, 1), (13, 37, 300), (197, 1100, 530), (64, 25, 64)] {
                for (ta, tb) in [(false, false), (true, false), (false, true)] {
                    let a = random(m * k, seed: 11), b = random(k * n, seed: 12), c0 = random(m * n, seed: 13)
                    var x = c0, y = c0
                    first.gemm(transposeA: ta, transposeB: tb, m: m, n: n, k: k, a: a, lda: ta ? m : k,
                               b: b, ldb: tb ? k : n, c: &x, ldc: n, accumulate: true)
                    other.gemm(transposeA: ta, transposeB: tb, m: m, n: n, k: k, a: a, lda: ta ? m : k,
                               b: b, ldb: tb ? k : n, c: &y, ldc: n, accumulate: true)
                    XCTAssertEqual(x, y, "gemm \(m)x\(n)x\(k) tA=\(ta) tB=\(tb): \(firstISA) and \(isa) differ")
                }
            }
            let count = 1001
            let v = random(count, seed: 14).map { $0 * 9 }, g = random(count, seed: 15)
            var x = [Float](repeating: 0, count: count), y = x
            first.tanh(v, &x, count: count); other.tanh(v, &y, count: count)
            XCTAssertEqual(x, y, "tanh: \(firstISA) and \(isa) differ")
            first.sigmoid(v, &x, count: count); other.sigmoid(v, &y, count: count)
            XCTAssertEqual(x, y, "sigmoid: \(firstISA) and \(isa) differ")
            first.leakyReLUBackward(v, g, &x, count: count, slope: 0.3); other.leakyReLUBackward(v, g, &y, count: count, slope: 0.3)
            XCTAssertEqual(x, y, "leakyReLU backward: \(firstISA) and \(isa) differ")
            XCTAssertEqual(first.sum(v, count: count), other.sum(v, count: count), "sum: \(firstISA) and \(isa) differ")
        }
    }
}

final class RandomStreamTests: XCTestCase {
    func testStreamsArePureFunctionsOfKeyAndIndex() {
        let s = RandomStream(seed: 42, 1, 2)
        XCTAssertEqual(s.bits(at: 5), RandomStream(seed: 42, 1, 2).bits(at: 5))
        XCTAssertNotEqual(s.bits(at: 5), RandomStream(seed: 42, 1, 3).bits(at: 5))
        XCTAssertNotEqual(s.bits(at: 5), RandomStream(seed: 43, 1, 2).bits(at: 5))
        // A slice drawn on its own equals the same slice of a whole batch.
        var whole = [Float](repeating: 0, count: 128), half = [Float](repeating: 0, count: 64)
        s.fillNormal(&whole, count: 128)
        s.fillNormal(&half, count: 64, first: 64)
        XCTAssertEqual(Array(whole[64...]), half)
    }

    /// The vector Box-Muller against libm's log and cos in Double, rounded to Float the same way:
    /// equal but for a value in millions that lies on a Float rounding boundary, never more than
    /// an ulp apart; and the same values whether drawn one at a time or eight at a time.
    func testNormalsFollowLibm() {
        let s = RandomStream(seed: 3, 1)
        let n = 1 << 20
        var x = [Float](repeating: 0, count: n)
        s.fillNormal(&x, count: n)
        var differing = 0
        for i in 0..<n {
            let b = s.bits(at: UInt64(i))
            let u1 = (Double(b >> 32) + 1) / 4_294_967_296, u2 = Double(b & 0xFFFF_FFFF) / 4_294_967_296
            let expected = Float((-2 * Foundation.log(u1)).squareRoot() * Foundation.cos(2 * Double.pi * u2))
            if x[i] != expected {
                differing += 1
                XCTAssertLessThanOrEqual(abs(x[i] - expected), expected.ulp, "value \(i)")
            }
        }
        XCTAssertLessThan(differing, 8, "values differing from libm's by an ulp")
        for i in stride(from: 0, to: 100, by: 7) { XCTAssertEqual(s.normal(at: UInt64(i)), x[i]) }
        var tail = [Float](repeating: 0, count: 5)
        s.fillNormal(&tail, count: 5, first: 1001)
        XCTAssertEqual(tail, Array(x[1001..<1006]))
    }

    func testNormalMoments() {
        let n = 200_000
        var x = [Float](repeating: 0, count: n)
        RandomStream(seed: 7).fillNormal(&x, count: n)
        let mean = x.reduce(0.0) { $0 + Double($1) } / Double(n)
        let variance = x.reduce(0.0) { $0 + (Double($1) - mean) * (Double($1) - mean) } / Double(n)
        XCTAssertEqual(mean, 0, accuracy: 0.01)
        XCTAssertEqual(variance, 1, accuracy: 0.02)
        var u = [Float](repeating: 0, count: n)
        RandomStream(seed: 8).fillUniform(&u, count: n, low: -1, high: 1)
        XCTAssert(u.allSatisfy { $0 >= -1 && $0 < 1 })
        XCTAssertEqual(u.reduce(0.0) { $0 + Double($1) } / Double(n), 0, accuracy: 0.01)
    }
}
