#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A training backend built from one SIMD vector width and one GEMM register tile: every
/// kernel of `Backend` is written here once, generically, and `@inlinable`, so that each
/// instruction-set module (KernelsAVX2: `SIMD8<Float>`, KernelsAVX512: `SIMD16<Float>`)
/// compiles all of it for its own `-march`, and no instruction of one set leaks into another.
///
/// Elementwise kernels compute each lane with the same operations whatever the width, so the
/// instruction sets agree bit for bit; reductions (`sum`) keep a fixed 8-lane order for the
/// same reason. No allocation per call; one instance must not be used from two threads at once.
///
/// Threads: the GEMM and the elementwise kernels split their work over `pool` when it is
/// large enough (`thresholds`). Every output value is computed by one thread with the same
/// operations as without the split, and the reductions (`sum`, the loss) stay on one thread,
/// so results are bit-identical for every thread count.
public protocol VectorBackend: Backend {
    associatedtype Vector: FloatVector
    associatedtype Tile: MicroKernel
    var engine: GEMMEngine<Tile> { get }
    /// The threads the kernels split over (the caller is one of them).
    var pool: ThreadPool { get }
    var thresholds: ParallelThresholds { get }
}

/// Below which sizes a kernel runs on the calling thread alone: waking the pool costs a few
/// microseconds, which a small kernel does not repay. Measured on a 2-core Zen 5 (see
/// `measured`); any value gives the same results, only the speed changes.
public struct ParallelThresholds: Sendable, Equatable {
    /// Multiply-adds (m·n·k) of the smallest GEMM that is split.
    public var gemm: Int
    /// Values of the smallest elementwise kernel (or bias matrix) that is split.
    public var elementwise: Int

    public init(gemm: Int, elementwise: Int) {
        self.gemm = gemm
        self.elementwise = elementwise
    }

    /// Break-even sizes of 2 threads against 1 (measured; see the README's Speed section).
    public static let measured = ParallelThresholds(gemm: 1 << 17, elementwise: 1 << 14)
    /// Split everything, however small: what the tests use to exercise every split.
    public static let always = ParallelThresholds(gemm: 0, elementwise: 0)
}

extension VectorBackend {
    /// Calls `body(start, count)` on the calling thread for the whole of `0 ..< count`, or
    /// on every thread of the pool for contiguous pieces of it when `count` is at least
    /// `minimum`. Pieces are whole multiples of `granularity` but for the first and last;
    /// with an `output` (the floats written are `output[0 ..< count]`), pieces start on its
    /// cache lines, so no two threads write one line.
    @inlinable @inline(__always)
    func split(_ count: Int, granularity: Int = 16, output: UnsafeMutablePointer<Float>? = nil,
               minimum: Int, _ body: (Int, Int) -> Void) {
        let team = pool.count
        guard team > 1, count >= minimum, count > granularity else { return body(0, count) }
        // Floats before the first cache-line boundary of `output` go to the first piece.
        let head = output.map { min(count, (64 - Int(bitPattern: $0) % 64) % 64 / MemoryLayout<Float>.size) } ?? 0
        let units = (count - head + granularity - 1) / granularity
        pool.run { t in
            let start = t == 0 ? 0 : min(count, head + units * t / team * granularity)
            let end = min(count, head + units * (t + 1) / team * granularity)
            if end > start { body(start, end - start) }
        }
    }

    @inlinable
    public func gemm(transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int,
                     a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
                     c: UnsafeMutablePointer<Float>, ldc: Int, accumulate: Bool) {
        engine.multiply(transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k,
                        a: a, lda: lda, b: b, ldb: ldb, c: c, ldc: ldc, accumulate: accumulate,
                        pool: m * n * k >= thresholds.gemm ? pool : nil)
    }

    /// Rows split over the threads.
    @inlinable
    public func addBias(_ bias: UnsafePointer<Float>, to x: UnsafeMutablePointer<Float>, rows: Int, columns: Int) {
        let minimumRows = (thresholds.elementwise + columns - 1) / max(columns, 1)
        split(rows, granularity: 1, minimum: minimumRows) { first, count in
            for r in first ..< first + count { vectorAXPY(1, bias, x + r * columns, count: columns) }
        }
    }

    /// Columns split over the threads; each column is summed in row order whatever the split.
    /// A thread adds up to 128 columns at a time on its stack and writes them back once: the
    /// gradient buffer itself, written on every row, would share a cache line between two
    /// threads at the seam of their columns (measured 3-4x slower than one thread).
    @inlinable
    public func accumulateBiasGradient(_ dy: UnsafePointer<Float>, rows: Int, columns: Int,
                                       into biasGradient: UnsafeMutablePointer<Float>) {
        let minimumColumns = (thresholds.elementwise + rows - 1) / max(rows, 1)
        split(columns, minimum: minimumColumns) { first, count in
            withUnsafeTemporaryAllocation(of: Float.self, capacity: 128) { buffer in
                let sums = buffer.baseAddress!
                var j = first
                while j < first + count {
                    let n = min(128, first + count - j)
                    sums.update(from: biasGradient + j, count: n)
                    for r in 0..<rows { vectorAXPY(1, dy + r * columns + j, sums, count: n) }
                    (biasGradient + j).update(from: sums, count: n)
                    j += n
                }
            }
        }
    }

    @inlinable
    public func leakyReLU(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, count: Int, slope: Float) {
        let s = Vector(repeating: slope), zero = Vector()
        split(count, output: y, minimum: thresholds.elementwise) { i, n in
            vectorMap(x + i, y + i, n) { (v: Vector) in v.replacing(with: v * s, where: v, isAtMost: zero) }
        }
    }

    @inlinable
    public func leakyReLUBackward(_ x: UnsafePointer<Float>, _ dy: UnsafePointer<Float>,
                                  _ dx: UnsafeMutablePointer<Float>, count: Int, slope: Float) {
        let s = Vector(repeating: slope), zero = Vector()
        split(count, output: dx, minimum: thresholds.elementwise) { i, n in
            vectorZipMap(x + i, dy + i, dx + i, n) { (xv: Vector, g: Vector) in g.replacing(with: g * s, where: xv, isAtMost: zero) }
        }
    }

    @inlinable
    public func tanh(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, count: Int) {
        split(count, output: y, minimum: thresholds.elementwise) { i, n in
            vectorMap(x + i, y + i, n) { (v: Vector) in fastTanh(v) }
        }
    }

    @inlinable
    public func tanhBackward(_ y: UnsafePointer<Float>, _ dy: UnsafePointer<Float>,
                             _ dx: UnsafeMutablePointer<Float>, count: Int) {
        let one = Vector(repeating: 1)
        split(count, output: dx, minimum: thresholds.elementwise) { i, n in
            vectorZipMap(y + i, dy + i, dx + i, n) { (yv: Vector, g: Vector) in g * (one - yv * yv) }
        }
    }

    @inlinable
    public func sigmoid(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, count: Int) {
        // sigmoid(x) = (1 + tanh(x/2)) / 2, exact identity; reuses the vector tanh.
        let half = Vector(repeating: 0.5)
        split(count, output: y, minimum: thresholds.elementwise) { i, n in
            vectorMap(x + i, y + i, n) { (v: Vector) in half + half * fastTanh(v * half) }
        }
    }

    @inlinable
    public func binaryCrossEntropyWithLogits(_ logits: UnsafePointer<Float>, targets: UnsafePointer<Float>,
                                             count: Int, scale: Float,
                                             gradient: UnsafeMutablePointer<Float>) -> Double {
        // One value per example: scalar libm is exact enough and cheap at batch sizes.
        var total = 0.0
        for i in 0..<count {
            let l = logits[i], t = targets[i]
            total += Double(max(l, 0) - l * t + log1pf(expf(-abs(l))))
            let p = l >= 0 ? 1 / (1 + expf(-l)) : expf(l) / (1 + expf(l))
            gradient[i] = scale * (p - t)
        }
        return total
    }

    @inlinable
    public func sum(_ x: UnsafePointer<Float>, count: Int) -> Double {
        // Eight Double lanes whatever the vector width: the same order on every instruction set.
        var acc = SIMD8<Double>(), i = 0
        while i + 8 <= count {
            acc += SIMD8<Double>(UnsafeRawPointer(x + i).loadUnaligned(as: SIMD8<Float>.self))
            i += 8
        }
        var s = acc.sum()
        while i < count { s += Double(x[i]); i += 1 }
        return s
    }

    @inlinable
    public func axpy(_ alpha: Float, _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, count: Int) {
        split(count, output: y, minimum: thresholds.elementwise) { i, n in vectorAXPY(alpha, x + i, y + i, count: n) }
    }

    @inlinable
    public func scale(_ x: UnsafeMutablePointer<Float>, by alpha: Float, count: Int) {
        let a = Vector(repeating: alpha)
        split(count, output: x, minimum: thresholds.elementwise) { i, n in
            vectorMap(x + i, x + i, n) { (v: Vector) in v * a }
        }
    }

    /// Examples split over the threads: each example's rows of the column matrix are its own.
    @inlinable
    public func im2col(_ geometry: ConvolutionGeometry, _ image: UnsafePointer<Float>, batch: Int,
                       into columns: UnsafeMutablePointer<Float>) {
        let perExample = geometry.outputPixels * geometry.columnCount
        split(batch, granularity: 1, minimum: (thresholds.elementwise + perExample - 1) / perExample) { first, count in
            geometry.im2col(image + first * geometry.inputCount, batch: count, into: columns + first * perExample)
        }
    }

    /// Examples split over the threads: each writes its own images, adding its taps in the
    /// order one thread does.
    @inlinable
    public func col2im(_ geometry: ConvolutionGeometry, _ columns: UnsafePointer<Float>, batch: Int,
                       into image: UnsafeMutablePointer<Float>) {
        let perExample = geometry.outputPixels * geometry.columnCount
        split(batch, granularity: 1, minimum: (thresholds.elementwise + perExample - 1) / perExample) { first, count in
            geometry.col2im(columns + first * perExample, batch: count, into: image + first * geometry.inputCount)
        }
    }

    @inlinable
    public func parallelFor(_ count: Int, granularity: Int, cost: Int, _ body: (Range<Int>) -> Void) {
        split(count, granularity: granularity, minimum: thresholds.elementwise / max(cost, 1)) { first, n in
            body(first ..< first + n)
        }
    }

    /// `y += alpha * x` on the calling thread: the body of `axpy` and of the bias kernels.
    @inlinable @inline(__always)
    func vectorAXPY(_ alpha: Float, _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, count: Int) {
        let a = Vector(repeating: alpha)
        vectorZipMap(x, y, y, count) { (xv: Vector, yv: Vector) in yv.addingProduct(a, xv) }
    }
}

// MARK: - Vector helpers, generic over the width

/// The vector operations the generic kernels use. Swift's `SIMD` protocol implements them
/// generically lane by lane (its fast versions are concrete overloads on `SIMD8<Float>`,
/// `SIMD16<Float>`, ... that generic code never reaches); as requirements here, each
/// instruction-set module's conformance binds them to the concrete, vectorized operations.
public protocol FloatVector: SIMD where Scalar == Float {
    static func + (a: Self, b: Self) -> Self
    static func - (a: Self, b: Self) -> Self
    static func * (a: Self, b: Self) -> Self
    static func / (a: Self, b: Self) -> Self
    static prefix func - (a: Self) -> Self
    /// `self + a * b`, fused (one rounding).
    func addingProduct(_ a: Self, _ b: Self) -> Self
    /// Lane i is `other[i]` where `x[i] <= threshold[i]`, else `self[i]`.
    func replacing(with other: Self, where x: Self, isAtMost threshold: Self) -> Self
    /// Lane i is `other[i]` where `x[i] < threshold[i]`, else `self[i]`.
    func replacing(with other: Self, where x: Self, isBelow threshold: Self) -> Self
    func clamped(lowerBound: Self, upperBound: Self) -> Self
    func squareRoot() -> Self
}

extension FloatVector {
    @inlinable @inline(__always) public static func += (a: inout Self, b: Self) { a = a + b }
    @inlinable @inline(__always) public static func *= (a: inout Self, b: Self) { a = a * b }
}

/// `y[i] = f(x[i])` a vector at a time; the tail goes through the same `f` on a padded
/// vector, so the tail gets exactly the same arithmetic as the body.
@inlinable @inline(__always)
public func vectorMap<V: FloatVector>(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ count: Int,
                                      _ f: (V) -> V) {
    let w = V.scalarCount
    var i = 0
    while i + w <= count {
        UnsafeMutableRawPointer(y + i).storeBytes(of: f(UnsafeRawPointer(x + i).loadUnaligned(as: V.self)), as: V.self)
        i += w
    }
    if i < count {
        var v = V()
        for j in 0..<(count - i) { v[j] = x[i + j] }
        let r = f(v)
        for j in 0..<(count - i) { y[i + j] = r[j] }
    }
}

/// `z[i] = f(x[i], y[i])` a vector at a time (`z` may alias `x` or `y`).
@inlinable @inline(__always)
public func vectorZipMap<V: FloatVector>(_ x: UnsafePointer<Float>, _ y: UnsafePointer<Float>, _ z: UnsafeMutablePointer<Float>,
                                         _ count: Int, _ f: (V, V) -> V) {
    let w = V.scalarCount
    var i = 0
    while i + w <= count {
        let r = f(UnsafeRawPointer(x + i).loadUnaligned(as: V.self), UnsafeRawPointer(y + i).loadUnaligned(as: V.self))
        UnsafeMutableRawPointer(z + i).storeBytes(of: r, as: V.self)
        i += w
    }
    if i < count {
        var a = V(), b = V()
        for j in 0..<(count - i) { a[j] = x[i + j]; b[j] = y[i + j] }
        let r = f(a, b)
        for j in 0..<(count - i) { z[i + j] = r[j] }
    }
}

/// tanh as a 13/6 rational function of x on [-7.9, 7.9] (Eigen's `ptanh_float` coefficients),
/// within a few ulp of libm's tanhf; exactly ±1 outside (the rational form stops 2e-7 short), and returns x for |x| < 4e-4
/// where the rational form loses relative accuracy.
@inlinable @inline(__always)
public func fastTanh<V: FloatVector>(_ input: V) -> V {
    let clamp = V(repeating: 7.90531110763549805)
    let x = input.clamped(lowerBound: -clamp, upperBound: clamp)
    let x2 = x * x
    var p = V(repeating: -2.76076847742355e-16)
    p = V(repeating: 2.00018790482477e-13).addingProduct(p, x2)
    p = V(repeating: -8.60467152213735e-11).addingProduct(p, x2)
    p = V(repeating: 5.12229709037114e-08).addingProduct(p, x2)
    p = V(repeating: 1.48572235717979e-05).addingProduct(p, x2)
    p = V(repeating: 6.37261928875436e-04).addingProduct(p, x2)
    p = V(repeating: 4.89352455891786e-03).addingProduct(p, x2)
    p *= x
    var q = V(repeating: 1.19825839466702e-06)
    q = V(repeating: 1.18534705686654e-04).addingProduct(q, x2)
    q = V(repeating: 2.26843463243900e-03).addingProduct(q, x2)
    q = V(repeating: 4.89352518554385e-03).addingProduct(q, x2)
    let magnitude = input.replacing(with: -input, where: input, isBelow: V())
    let one = V(repeating: 1)
    let saturated = one.replacing(with: -one, where: input, isBelow: V())
    return (p / q).replacing(with: input, where: magnitude, isBelow: V(repeating: 0.0004))
        .replacing(with: saturated, where: clamp, isBelow: magnitude)
}

/// Eight lanes, for the kernels in this module that are not per instruction set (im2col).
typealias V8 = SIMD8<Float>
