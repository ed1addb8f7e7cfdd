import XCTest
import Backends
@testable import Kernels

/// The thread pool, and every kernel split over 2 and 3 threads against the same kernel on
/// one, bit for bit, on every instruction set this CPU supports. The backends split even the
/// smallest kernels here (`.always`), so every split is exercised on shapes that are not
/// multiples of the tiles, vectors or blocks; `.measured` thresholds are checked too.
final class ThreadingTests: XCTestCase {
    func random(_ count: Int, seed: UInt64) -> [Float] {
        let stream = RandomStream(seed: seed)
        return (0..<count).map { stream.unitFloat(at: UInt64($0)) * 2 - 1 }
    }

    /// (ISA, threads, thresholds) for every multi-threaded backend compared with one thread.
    func backends() -> [(isa: InstructionSet, single: Backend, split: [(String, Backend)])] {
        Backends.supported.map { isa in
            let split: [(String, Backend)] = [2, 3].flatMap { threads in
                [("\(threads) threads, always", try! Backends.make(isa, threads: threads, thresholds: .always)),
                 ("\(threads) threads, measured", try! Backends.make(isa, threads: threads))]
            }
            return (isa, try! Backends.make(isa), split)
        }
    }

    // MARK: The pool

    /// Each worker writes its slot of a phase, meets the others at a barrier, and checks that
    /// it sees every slot of the phase.
    struct Phases: PoolWork {
        let calls: UnsafeMutablePointer<Int>, slots: UnsafeMutablePointer<Int>, round: Int

        func run(worker i: Int, pool: ThreadPool) {
            calls[i] += 1
            for phase in 0..<3 {
                slots[phase * pool.count + i] = round * 3 + phase
                pool.barrier()
                for j in 0..<pool.count { precondition(slots[phase * pool.count + j] == round * 3 + phase) }
                pool.barrier()
            }
        }
    }

    func testRunCallsEveryWorkerOnceAndBarriersOrderPhases() {
        for threads in 1...4 {
            let pool = ThreadPool(threads: threads)
            var calls = [Int](repeating: 0, count: threads)
            var slots = [Int](repeating: -1, count: threads * 3)
            calls.withUnsafeMutableBufferPointer { calls in
                slots.withUnsafeMutableBufferPointer { slots in
                    for round in 0..<200 {
                        let work = Phases(calls: calls.baseAddress!, slots: slots.baseAddress!, round: round)
                        pool.run(work)
                        pool.runUnspecialized(work)
                    }
                }
            }
            XCTAssertEqual(calls, [Int](repeating: 400, count: threads), "\(threads) threads")
        }
    }

    struct AddIndexPlusOne: RangeWork {
        let values: UnsafeMutablePointer<Int>
        func callAsFunction(_ range: Range<Int>) { for i in range { values[i] += i + 1 } }
    }

    func testPoolWakesAfterItsThreadsSleep() {
        let pool = ThreadPool(threads: 3)
        let values = UnsafeMutablePointer<Int>.allocate(capacity: 3)
        defer { values.deallocate() }
        values.initialize(repeating: 0, count: 3)
        for _ in 0..<3 {
            usleep(20_000) // long enough for every worker to stop polling and sleep
            pool.split(3, granularity: 1, AddIndexPlusOne(values: values))
        }
        XCTAssertEqual(Array(UnsafeBufferPointer(start: values, count: 3)), [3, 6, 9])
    }

    func testDefaultThreadsIsAFairShareOfTheCoresAtLeastOne() {
        XCTAssertGreaterThanOrEqual(Backends.availableCores, 1)
        XCTAssertLessThanOrEqual(Backends.availableCores, Backends.onlineCores)
        XCTAssertEqual(Backends.defaultThreads(localRanks: 1), Backends.availableCores)
        XCTAssertEqual(Backends.defaultThreads(localRanks: 1000), 1)
        XCTAssertLessThanOrEqual(Backends.defaultThreads(localRanks: 2), max(1, Backends.onlineCores / 2))
    }

    // MARK: Kernels, bit for bit

    func testGEMMIsBitIdenticalForEveryThreadCount() {
        // Shapes smaller and larger than the tiles (6 x 16, 12 x 32) and blocks (MC 96, KC 256,
        // NC 1024); M small with N large and the reverse; K over several KC blocks.
        let shapes = [(1, 1, 1), (5, 7, 3), (13, 37, 300), (64, 25, 64), (3, 2100, 70), (2000, 3, 50),
                      (7, 1030, 600), (300, 40, 600), (197, 1100, 530), (200, 70, 9)]
        for (isa, single, split) in backends() {
            var seed: UInt64 = 100
            for (m, n, k) in shapes {
                for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
                    for accumulate in [false, true] {
                        seed += 1
                        let a = random(m * k, seed: seed), b = random(k * n, seed: seed + 1), c0 = random(m * n, seed: seed + 2)
                        let lda = ta ? m : k, ldb = tb ? k : n
                        var expected = c0
                        single.gemm(transposeA: ta, transposeB: tb, m: m, n: n, k: k, a: a, lda: lda, b: b, ldb: ldb,
                                    c: &expected, ldc: n, accumulate: accumulate)
                        for (name, backend) in split {
                            var c = c0
                            backend.gemm(transposeA: ta, transposeB: tb, m: m, n: n, k: k, a: a, lda: lda, b: b, ldb: ldb,
                                         c: &c, ldc: n, accumulate: accumulate)
                            XCTAssert(c == expected, "[\(isa) \(name)] gemm \(m)x\(n)x\(k) tA=\(ta) tB=\(tb) acc=\(accumulate)")
                        }
                    }
                }
            }
        }
    }

    /// The gathered multiplies (convolution taps): rows read out of order, C rows scattered;
    /// N over several of a thread's B regions; K over several KC blocks.
    func testGatheredMultipliesAreBitIdenticalForEveryThreadCount() {
        let shapes = [(1, 1, 1), (13, 37, 17), (100, 64, 300), (197, 33, 530), (30, 1100, 20), (600, 256, 128)]
        for (isa, single, split) in backends() {
            for (m, n, k) in shapes {
                let rowsA = 2 * max(m, k) + 3, stride = max(k, m) + 5
                let a = random(rowsA * stride, seed: UInt64(m * 7 + k)), b = random(2 * k * n + 2 * n, seed: UInt64(n))
                let aRows = (0..<max(m, k)).map { Int32((5 * $0 + 3) % rowsA) }
                let cRows = (0..<m).map { Int32(2 * m - 2 * $0) }
                let bRows = (0..<k).map { Int32((7 * $0 + 1) % (k + 2)) }
                for transposeB in [false, true] {
                    let c0 = random((2 * m + 1) * (n + 3), seed: 99)
                    var expected = c0
                    single.gemmGatheredRows(m: m, n: n, k: k, a: a, aRows: aRows, aStride: stride, transposeB: transposeB,
                                            b: b, ldb: transposeB ? k : n, c: &expected, cRows: cRows, cStride: n + 3)
                    for (name, backend) in split {
                        var c = c0
                        backend.gemmGatheredRows(m: m, n: n, k: k, a: a, aRows: aRows, aStride: stride, transposeB: transposeB,
                                                 b: b, ldb: transposeB ? k : n, c: &c, cRows: cRows, cStride: n + 3)
                        XCTAssert(c == expected, "[\(isa) \(name)] gathered rows \(m)x\(n)x\(k) tB=\(transposeB)")
                    }
                }
                let c0 = random(m * n, seed: 6)
                var expected = c0
                single.gemmGatheredInner(m: m, n: n, k: k, a: a, aRows: aRows, aStride: stride,
                                         b: b, bRows: bRows, bStride: n, c: &expected, ldc: n)
                for (name, backend) in split {
                    var c = c0
                    backend.gemmGatheredInner(m: m, n: n, k: k, a: a, aRows: aRows, aStride: stride,
                                              b: b, bRows: bRows, bStride: n, c: &c, ldc: n)
                    XCTAssert(c == expected, "[\(isa) \(name)] gathered inner \(m)x\(n)x\(k)")
                }
            }
        }
    }

    func testAdamUpdateIsBitIdenticalForEveryThreadCount() {
        for (isa, single, split) in backends() {
            for count in [1, 17, 1000, 70_001] {
                let g = random(count, seed: 1), p0 = random(count, seed: 2), m0 = random(count, seed: 3)
                let v0 = random(count, seed: 4).map { $0 * $0 }
                var (p, m, v) = (p0, m0, v0)
                single.adamUpdate(parameters: &p, gradients: g, m: &m, v: &v, count: count,
                                  beta1: 0.5, beta2: 0.999, stepSize: 1e-3, epsilon: 1e-7)
                for (name, backend) in split {
                    var (q, mq, vq) = (p0, m0, v0)
                    backend.adamUpdate(parameters: &q, gradients: g, m: &mq, v: &vq, count: count,
                                       beta1: 0.5, beta2: 0.999, stepSize: 1e-3, epsilon: 1e-7)
                    XCTAssert(q == p && mq == m && vq == v, "[\(isa) \(name)] adam \(count)")
                }
            }
        }
    }

    func testGEMMWithLeadingDimensionsLeavesTheRestOfCAlone() {
        for (isa, single, split) in backends() {
            let m = 150, n = 70, k = 30, ldc = 101
            let a = random(m * k, seed: 3), b = random(k * n, seed: 4)
            var expected = [Float](repeating: 42, count: m * ldc)
            single.gemm(transposeA: false, transposeB: false, m: m, n: n, k: k, a: a, lda: k, b: b, ldb: n,
                        c: &expected, ldc: ldc, accumulate: false)
            for (name, backend) in split {
                var c = [Float](repeating: 42, count: m * ldc)
                backend.gemm(transposeA: false, transposeB: false, m: m, n: n, k: k, a: a, lda: k, b: b, ldb: n,
                             c: &c, ldc: ldc, accumulate: false)
                XCTAssert(c == expected, "[\(isa) \(name)] strided C")
            }
        }
    }

    func testElementwiseKernelsAreBitIdenticalForEveryThreadCount() {
        for (isa, single, split) in backends() {
            for count in [1, 15, 17, 100, 1001, 40_003, 100_000] {
                let x = random(count, seed: UInt64(count)).map { $0 * 6 }
                let dy = random(count, seed: UInt64(count) + 7)
                func same(_ what: String, _ f: (Backend, UnsafeMutablePointer<Float>) -> Void) {
                    var expected = dy
                    f(single, &expected)
                    for (name, backend) in split {
                        var y = dy
                        f(backend, &y)
                        XCTAssert(y == expected, "[\(isa) \(name)] \(what) of \(count)")
                    }
                }
                same("leakyReLU") { $0.leakyReLU(x, $1, count: count, slope: 0.3) }
                same("leakyReLU in place") { $0.leakyReLU($1, $1, count: count, slope: 0.01) }
                same("leakyReLU backward") { $0.leakyReLUBackward(x, dy, $1, count: count, slope: 0.3) }
                same("tanh") { $0.tanh(x, $1, count: count) }
                same("tanh backward") { $0.tanhBackward(dy, x, $1, count: count) }
                same("sigmoid") { $0.sigmoid(x, $1, count: count) }
                same("axpy") { $0.axpy(0.37, x, $1, count: count) }
                same("scale") { $0.scale($1, by: -1.7, count: count) }
                for columns in [1, 7, 64, 100] where count % columns == 0 {
                    let rows = count / columns
                    same("bias \(rows)x\(columns)") { $0.addBias(x, to: $1, rows: rows, columns: columns) }
                    same("bias gradient \(rows)x\(columns)") {
                        $0.accumulateBiasGradient(x, rows: rows, columns: columns, into: $1)
                    }
                }
            }
        }
    }

    func testIm2colAndCol2imAreBitIdenticalForEveryThreadCount() {
        for (isa, single, split) in backends() {
            for (h, w, c, k, stride, batch) in [(28, 28, 1, 5, 2, 5), (7, 9, 3, 3, 1, 3), (14, 14, 64, 5, 2, 2)] {
                let g = ConvolutionGeometry.same(inputHeight: h, inputWidth: w, channels: c, kernelSize: k, stride: stride)
                let image = random(batch * g.inputCount, seed: 21)
                let columns = random(batch * g.outputPixels * g.columnCount, seed: 22)
                var expectedColumns = [Float](repeating: .nan, count: columns.count)
                var expectedImage = [Float](repeating: .nan, count: image.count)
                single.im2col(g, image, batch: batch, into: &expectedColumns)
                single.col2im(g, columns, batch: batch, into: &expectedImage)
                for (name, backend) in split {
                    var x = [Float](repeating: .nan, count: columns.count), y = [Float](repeating: .nan, count: image.count)
                    backend.im2col(g, image, batch: batch, into: &x)
                    backend.col2im(g, columns, batch: batch, into: &y)
                    XCTAssert(x == expectedColumns, "[\(isa) \(name)] im2col \((h, w, c, k, stride, batch))")
                    XCTAssert(y == expectedImage, "[\(isa) \(name)] col2im \((h, w, c, k, stride, batch))")
                }
            }
        }
    }

    /// Counts each index it is given, and ranges that start off the granularity.
    struct CountHits: RangeWork {
        let hits: UnsafeMutablePointer<UInt8>, misaligned: UnsafeMutablePointer<Bool>, granularity: Int
        func callAsFunction(_ range: Range<Int>) {
            if range.lowerBound % granularity != 0 { misaligned.pointee = true }
            for i in range { hits[i] &+= 1 }
        }
    }

    func testParallelForCoversEveryIndexOnceInAlignedRanges() {
        for (isa, single, split) in backends() {
            for (name, backend) in [("1 thread", single)] + split {
                for count in [0, 1, 15, 16, 17, 100, 1000, 100_003] {
                    for granularity in [1, 8, 16] {
                        var hits = [UInt8](repeating: 0, count: count + 1)
                        var misaligned = false
                        hits.withUnsafeMutableBufferPointer { hits in
                            withUnsafeMutablePointer(to: &misaligned) { misaligned in
                                backend.parallelFor(count, granularity: granularity, cost: 1,
                                                    CountHits(hits: hits.baseAddress!, misaligned: misaligned,
                                                              granularity: granularity))
                            }
                        }
                        XCTAssert(hits.dropLast().allSatisfy { $0 == 1 } && hits.last == 0 && !misaligned,
                                  "[\(isa) \(name)] parallelFor \(count) by \(granularity)")
                    }
                }
            }
        }
    }
}
