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

/// Below which sizes a kernel runs on the calling thread alone: a dispatch to a polling pool
/// costs about 0.2-0.4 µs (more when a thread has to be woken), which a small kernel does not
/// repay. Any value gives the same results; only the speed changes.
public struct ParallelThresholds: Sendable, Equatable {
    /// Multiply-adds (m·n·k) of the smallest GEMM that is split.
    public var gemm: Int
    /// Values of the smallest elementwise kernel (or bias matrix) that is split.
    public var elementwise: Int

    public init(gemm: Int, elementwise: Int) {
        self.gemm = gemm
        self.elementwise = elementwise
    }

    /// Near the break-even of 2 threads against 1 on a 2-core Zen 5 (AVX-512 kernels, best of
    /// repeated runs): a 48 x 48 x 48 multiply (110 K multiply-adds) runs at 1.0x, 64³ (262 K)
    /// at 1.2-1.3x, 128 x 784 x 128 at 1.85x; an axpy of 16 K values at 1.0-1.1x (a leakyReLU,
    /// 10x costlier per value, at 1.8x), 128 K values at 2x.
    public static let measured = ParallelThresholds(gemm: 1 << 17, elementwise: 1 << 14)
    /// Split everything, however small: what the tests use to exercise every split.
    public static let always = ParallelThresholds(gemm: 0, elementwise: 0)
}

extension VectorBackend {
    public var threads: Int { pool.count }

    /// Runs `work` over `0 ..< count`: on the calling thread alone below `minimum`, else split
    /// over the pool's threads (see `ThreadPool.split`).
    @inlinable @inline(__always)
    func split<Work: RangeWork>(_ count: Int, granularity: Int = 16, output: UnsafeMutablePointer<Float>? = nil,
                                minimum: Int, _ work: Work) {
        guard pool.count > 1, count >= minimum, count > granularity else { return work(0 ..< count) }
        pool.split(count, granularity: granularity, output: output, work)
    }

    @inlinable
    public func gemm(transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int,
                     a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
                     c: UnsafeMutablePointer<Float>, ldc: Int, accumulate: Bool) {
        engine.multiply(transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k,
                        a: a, lda: lda, b: b, ldb: ldb, c: c, ldc: ldc, accumulate: accumulate,
                        pool: m * n * k >= thresholds.gemm ? pool : nil)
    }

    /// Rows split over the threads (see `GEMMEngine.multiplyGatheredRows`).
    @inlinable
    public func gemmGatheredRows(m: Int, n: Int, k: Int,
                                 a: UnsafePointer<Float>, aRows: UnsafePointer<Int32>, aStride: Int,
                                 transposeB: Bool, b: UnsafePointer<Float>, ldb: Int,
                                 c: UnsafeMutablePointer<Float>, cRows: UnsafePointer<Int32>, cStride: Int) {
        engine.multiplyGatheredRows(m: m, n: n, k: k, a: a, aRows: aRows, aStride: aStride, transposeB: transposeB,
                                    b: b, ldb: ldb, c: c, cRows: cRows, cStride: cStride,
                                    pool: m * n * k >= thresholds.gemm ? pool : nil)
    }

    /// Columns split over the threads (see `GEMMEngine.multiplyGatheredInner`).
    @inlinable
    public func gemmGatheredInner(m: Int, n: Int, k: Int,
                                  a: UnsafePointer<Float>, aRows: UnsafePointer<Int32>, aStride: Int,
                                  b: UnsafePointer<Float>, bRows: UnsafePointer<Int32>, bStride: Int,
                                  c: UnsafeMutablePointer<Float>, ldc: Int) {
        engine.multiplyGatheredInner(m: m, n: n, k: k, a: a, aRows: aRows, aStride: aStride,
                                     b: b, bRows: bRows, bStride: bStride, c: c, ldc: ldc,
                                     pool: m * n * k >= thresholds.gemm ? pool : nil)
    }

    /// Values split over the threads (each is a pure function of its position).
    @inlinable
    public func fillNormal(_ out: UnsafeMutablePointer<Float>, count: Int, stream: RandomStream, first: UInt64) {
        // A normal costs a few dozen elementwise values' worth.
        split(count, output: out, minimum: thresholds.elementwise / 32, RandomRange<Vector>(.normal, out, stream, first))
    }

    /// Values split over the threads, eight at a time (each is a pure function of its position).
    @inlinable
    public func dropoutMask(_ mask: UnsafeMutablePointer<Float>, count: Int, stream: RandomStream, first: UInt64,
                            rate: Float, keep: Float) {
        split(count, output: mask, minimum: thresholds.elementwise / 4,
              RandomRange<Vector>(.dropout(rate: rate, keep: keep), mask, stream, first))
    }

    /// Values split over the threads; each value's update is its own.
    @inlinable
    public func adamUpdate(parameters: UnsafeMutablePointer<Float>, gradients: UnsafePointer<Float>,
                           m: UnsafeMutablePointer<Float>, v: UnsafeMutablePointer<Float>, count: Int,
                           beta1: Float, beta2: Float, stepSize: Float, epsilon: Float) {
        // Four streams and a division and a square root per value: a few leakyReLUs' worth.
        split(count, output: parameters, minimum: thresholds.elementwise / 4,
              AdamRange<Vector>(parameters: parameters, gradients: gradients, m: m, v: v,
                                beta1: beta1, beta2: beta2, stepSize: stepSize, epsilon: epsilon))
    }

    /// Rows split over the threads.
    @inlinable
    public func addBias(_ bias: UnsafePointer<Float>, to x: UnsafeMutablePointer<Float>, rows: Int, columns: Int) {
        let minimumRows = (thresholds.elementwise + columns - 1) / max(columns, 1)
        split(rows, granularity: 1, minimum: minimumRows, BiasRows<Vector>(bias: bias, x: x, columns: columns))
    }

    /// Columns split over the threads; each column is summed in row order whatever the split.
    @inlinable
    public func accumulateBiasGradient(_ dy: UnsafePointer<Float>, rows: Int, columns: Int,
                                       into biasGradient: UnsafeMutablePointer<Float>) {
        let minimumColumns = (thresholds.elementwise + rows - 1) / max(rows, 1)
        split(columns, minimum: minimumColumns,
              BiasGradientColumns<Vector>(dy: dy, rows: rows, columns: columns, gradient: biasGradient))
    }

    @inlinable
    public func leakyReLU(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, count: Int, slope: Float) {
        split(count, output: y, minimum: thresholds.elementwise, Elementwise<Vector>(.leakyReLU, x, x, y, slope))
    }

    @inlinable
    public func leakyReLUBackward(_ x: UnsafePointer<Float>, _ dy: UnsafePointer<Float>,
                                  _ dx: UnsafeMutablePointer<Float>, count: Int, slope: Float) {
        split(count, output: dx, minimum: thresholds.elementwise, Elementwise<Vector>(.leakyReLUBackward, x, dy, dx, slope))
    }

    @inlinable
    public func tanh(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, count: Int) {
        split(count, output: y, minimum: thresholds.elementwise, Elementwise<Vector>(.tanh, x, x, y))
    }

    @inlinable
    public func tanhBackward(_ y: UnsafePointer<Float>, _ dy: UnsafePointer<Float>,
                             _ dx: UnsafeMutablePointer<Float>, count: Int) {
        split(count, output: dx, minimum: thresholds.elementwise, Elementwise<Vector>(.tanhBackward, y, dy, dx))
    }

    @inlinable
    public func sigmoid(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, count: Int) {
        split(count, output: y, minimum: thresholds.elementwise, Elementwise<Vector>(.sigmoid, x, x, y))
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
        split(count, output: y, minimum: thresholds.elementwise, Elementwise<Vector>(.axpy, x, y, y, alpha))
    }

    @inlinable
    public func scale(_ x: UnsafeMutablePointer<Float>, by alpha: Float, count: Int) {
        split(count, output: x, minimum: thresholds.elementwise, Elementwise<Vector>(.scale, x, x, x, alpha))
    }

    /// One chunk per thread, each with its own maximum: a maximum is exact, so the chunks'
    /// maximum is the same value for every split.
    @inlinable
    public func maxAbs(_ x: UnsafePointer<Float>, count: Int) -> Float {
        let chunks = pool.count
        guard chunks > 1, count >= thresholds.elementwise else { return MaxAbsChunks<Vector>.maxAbs(x, count) }
        return withUnsafeTemporaryAllocation(of: Float.self, capacity: chunks) { maxima in
            pool.split(chunks, granularity: 1, MaxAbsChunks<Vector>(x, count: count, chunks: chunks, maxima: maxima.baseAddress!))
            return maxima.max()!  // +inf where a chunk held a NaN; no chunk's maximum is NaN
        }
    }

    /// Values split over the threads, in pieces of 32 halves (a cache line of them).
    @inlinable
    public func convertToHalf(_ x: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float16>, count: Int, scale: Float) {
        split(count, granularity: 32, minimum: thresholds.elementwise, ToHalf<Vector>(x, out, scale: scale))
    }

    /// Values split over the threads.
    @inlinable
    public func convertFromHalf(_ x: UnsafePointer<Float16>, _ out: UnsafeMutablePointer<Float>, count: Int, scale: Float) {
        split(count, output: out, minimum: thresholds.elementwise, FromHalf<Vector>(x, out, scale: scale))
    }

    /// Examples split over the threads: each example's rows of the column matrix are its own.
    @inlinable
    public func im2col(_ geometry: ConvolutionGeometry, _ image: UnsafePointer<Float>, batch: Int,
                       into columns: UnsafeMutablePointer<Float>) {
        let perExample = geometry.outputPixels * geometry.columnCount
        split(batch, granularity: 1, minimum: (thresholds.elementwise + perExample - 1) / perExample,
              ConvolutionExamples(geometry: geometry, adjoint: false, from: image, to: columns))
    }

    /// Examples split over the threads: each writes its own images, adding its taps in the
    /// order one thread does.
    @inlinable
    public func col2im(_ geometry: ConvolutionGeometry, _ columns: UnsafePointer<Float>, batch: Int,
                       into image: UnsafeMutablePointer<Float>) {
        let perExample = geometry.outputPixels * geometry.columnCount
        split(batch, granularity: 1, minimum: (thresholds.elementwise + perExample - 1) / perExample,
              ConvolutionExamples(geometry: geometry, adjoint: true, from: columns, to: image))
    }

    /// `work`'s type is only known at run time here (the callers reach this through `any
    /// Backend`), so the split goes through its witness table (`ThreadPool.runUnspecialized`).
    @inlinable
    public func parallelFor<Work: RangeWork>(_ count: Int, granularity: Int, cost: Int, _ work: Work) {
        guard pool.count > 1, count >= thresholds.elementwise / max(cost, 1), count > granularity else {
            return work(0 ..< count)
        }
        pool.splitUnspecialized(count, granularity: granularity, work)
    }
}

// MARK: - The kernels' loops, on one range each

/// The elementwise kernels on `range`: `out = f(x)` or `out = f(x, y)`, a vector at a time
/// (`out` may alias `x` or `y`). One value per call of a kernel, so that the pool's threads
/// can each run it on their own range (see `PoolWork`); the arithmetic of every kernel is here.
@usableFromInline
struct Elementwise<V: FloatVector>: RangeWork {
    @usableFromInline
    enum Operation {
        /// `x > 0 ? x : slope * x`, and its backward `y * (x > 0 ? 1 : slope)` (x: the forward input).
        case leakyReLU, leakyReLUBackward
        /// `tanh(x)`, and its backward `y * (1 - x²)` (x: the forward output).
        case tanh, tanhBackward
        /// `1 / (1 + exp(-x))`.
        case sigmoid
        /// `y + parameter * x`, fused; `parameter * x`.
        case axpy, scale
    }

    @usableFromInline let operation: Operation
    @usableFromInline let x: UnsafePointer<Float>, y: UnsafePointer<Float>, out: UnsafeMutablePointer<Float>
    /// The slope or the alpha.
    @usableFromInline let parameter: Float

    @inlinable
    init(_ operation: Operation, _ x: UnsafePointer<Float>, _ y: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>,
         _ parameter: Float = 0) {
        self.operation = operation
        self.x = x
        self.y = y
        self.out = out
        self.parameter = parameter
    }

    @inlinable
    func callAsFunction(_ range: Range<Int>) {
        let n = range.count, x = self.x + range.lowerBound, y = self.y + range.lowerBound, out = self.out + range.lowerBound
        switch operation {
        case .leakyReLU: Self.leakyReLU(x, out, n, parameter)
        case .leakyReLUBackward: Self.leakyReLUBackward(x, y, out, n, parameter)
        case .tanh: Self.tanh(x, out, n)
        case .tanhBackward: Self.tanhBackward(x, y, out, n)
        case .sigmoid: Self.sigmoid(x, out, n)
        case .axpy: Self.axpy(x, y, out, n, parameter)
        case .scale: Self.scale(x, out, n, parameter)
        }
    }

    // One function per operation, not inlined into the switch: one large function is more
    // than the optimizer inlines well (with closures, axpy ran 3x slower).

    @inlinable @inline(never)
    static func leakyReLU(_ x: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>, _ n: Int, _ slope: Float) {
        vectorMap(x, out, n, LeakyReLUForward<V>(slope: slope))
    }

    @inlinable @inline(never)
    static func leakyReLUBackward(_ x: UnsafePointer<Float>, _ dy: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>,
                                  _ n: Int, _ slope: Float) {
        vectorZipMap(x, dy, out, n, LeakyReLUBackward<V>(slope: slope))
    }

    @inlinable @inline(never)
    static func tanh(_ x: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>, _ n: Int) {
        vectorMap(x, out, n, TanhForward<V>())
    }

    @inlinable @inline(never)
    static func tanhBackward(_ y: UnsafePointer<Float>, _ dy: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>, _ n: Int) {
        vectorZipMap(y, dy, out, n, TanhBackward<V>())
    }

    @inlinable @inline(never)
    static func sigmoid(_ x: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>, _ n: Int) {
        vectorMap(x, out, n, SigmoidForward<V>())
    }

    @inlinable @inline(never)
    static func axpy(_ x: UnsafePointer<Float>, _ y: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>,
                     _ n: Int, _ alpha: Float) {
        vectorZipMap(x, y, out, n, MultiplyAdd<V>(alpha: alpha))
    }

    @inlinable @inline(never)
    static func scale(_ x: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>, _ n: Int, _ alpha: Float) {
        vectorMap(x, out, n, Multiply<V>(alpha: alpha))
    }
}

/// Random values for the positions in the range (`Backend.fillNormal`, `Backend.dropoutMask`),
/// compiled in each instruction-set module: the counter hash eight lanes at a time, with one
/// vector 64-bit multiply per step on AVX-512. Generic over the backend's vector type only so
/// that each instruction-set module compiles its own, distinctly named copy.
@usableFromInline
struct RandomRange<V: FloatVector>: RangeWork {
    @usableFromInline
    enum Kind {
        case normal
        case dropout(rate: Float, keep: Float)
    }

    @usableFromInline let kind: Kind
    @usableFromInline let out: UnsafeMutablePointer<Float>
    @usableFromInline let stream: RandomStream
    @usableFromInline let first: UInt64

    @inlinable
    init(_ kind: Kind, _ out: UnsafeMutablePointer<Float>, _ stream: RandomStream, _ first: UInt64) {
        self.kind = kind
        self.out = out
        self.stream = stream
        self.first = first
    }

    @inlinable
    func callAsFunction(_ range: Range<Int>) {
        let at = first &+ UInt64(range.lowerBound), o = out + range.lowerBound
        switch kind {
        case .normal: Self.normals(stream, o, range.count, at)
        case let .dropout(rate, keep): Self.mask(stream, o, range.count, at, rate, keep)
        }
    }

    @inlinable @inline(never)
    static func normals(_ stream: RandomStream, _ out: UnsafeMutablePointer<Float>, _ count: Int, _ first: UInt64) {
        stream.fillNormal(out, count: count, first: first)
    }

    /// `unitFloat(at:) < rate`, that is `(bits >> 40) · 2⁻²⁴ < rate`, decided on the integer:
    /// `bits >> 40 < ⌈rate · 2²⁴⌉`, exactly the same test.
    @inlinable @inline(never)
    static func mask(_ stream: RandomStream, _ out: UnsafeMutablePointer<Float>, _ count: Int, _ first: UInt64,
                     _ rate: Float, _ keep: Float) {
        let threshold = SIMD8(repeating: UInt64((Double(rate) * 16_777_216).rounded(.up)))
        let keepBits = SIMD8(repeating: UInt64(keep.bitPattern)), lanes = SIMD8<UInt64>(0, 1, 2, 3, 4, 5, 6, 7)
        var i = 0
        while i < count {
            let x = stream.bits(at: SIMD8(repeating: first &+ UInt64(i)) &+ lanes) &>> 40
            let bits = SIMD8<UInt64>().replacing(with: keepBits, where: x .>= threshold)
            let values = unsafeBitCast(SIMD8<UInt32>(truncatingIfNeeded: bits), to: SIMD8<Float>.self)
            if i + 8 <= count {
                UnsafeMutableRawPointer(out + i).storeBytes(of: values, as: SIMD8<Float>.self)
            } else {
                for j in 0..<(count - i) { out[i + j] = values[j] }
            }
            i += 8
        }
    }
}

/// `Backend.maxAbs` of chunk `c` of `x` into `maxima[c]`, for each chunk in the range. Chunk
/// `c` of `chunks` starts at `count · c / chunks` rounded down to a multiple of 16 values.
@usableFromInline
struct MaxAbsChunks<V: FloatVector>: RangeWork {
    @usableFromInline let x: UnsafePointer<Float>, count: Int, chunks: Int, maxima: UnsafeMutablePointer<Float>

    @inlinable
    init(_ x: UnsafePointer<Float>, count: Int, chunks: Int, maxima: UnsafeMutablePointer<Float>) {
        self.x = x
        self.count = count
        self.chunks = chunks
        self.maxima = maxima
    }

    @inlinable
    func callAsFunction(_ range: Range<Int>) {
        @inline(__always) func start(_ c: Int) -> Int { c == chunks ? count : (count * c / chunks) & ~15 }
        for c in range { maxima[c] = Self.maxAbs(x + start(c), start(c + 1) - start(c)) }
    }

    /// The largest magnitude of `x[0 ..< n]`, a NaN counting as +inf, a vector at a time: each
    /// lane keeps its own maximum, a NaN lane is made +inf before it is compared (no comparison
    /// sees a NaN, which every comparison would lose), and the tail is padded with zeros.
    @inlinable @inline(never)
    static func maxAbs(_ x: UnsafePointer<Float>, _ n: Int) -> Float {
        let zero = V(), infinity = V(repeating: .infinity)
        var m = zero
        @inline(__always) func fold(_ v: V) {
            let magnitude = v.replacing(with: -v, where: v, isBelow: zero)
            let number = infinity.replacing(with: magnitude, where: magnitude, isAtMost: infinity)
            m = m.replacing(with: number, where: m, isBelow: number)
        }
        let w = V.scalarCount
        var i = 0
        while i + w <= n {
            fold(UnsafeRawPointer(x + i).loadUnaligned(as: V.self))
            i += w
        }
        if i < n {
            var v = zero
            for j in 0..<(n - i) { v[j] = x[i + j] }
            fold(v)
        }
        var result: Float = 0
        for j in 0..<w { result = max(result, m[j]) }
        return result
    }
}

/// `out[i] = Float16(x[i] * scale)` for the values in the range (`Backend.convertToHalf`), a
/// vector at a time; the tail goes through the same vector arithmetic on a padded vector.
@usableFromInline
struct ToHalf<V: FloatVector>: RangeWork {
    @usableFromInline let x: UnsafePointer<Float>, out: UnsafeMutablePointer<Float16>, scale: Float

    @inlinable
    init(_ x: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float16>, scale: Float) {
        self.x = x
        self.out = out
        self.scale = scale
    }

    @inlinable
    func callAsFunction(_ range: Range<Int>) {
        Self.convert(x + range.lowerBound, out + range.lowerBound, range.count, scale)
    }

    @inlinable @inline(never)
    static func convert(_ x: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float16>, _ n: Int, _ scale: Float) {
        let s = V(repeating: scale), w = V.scalarCount
        var i = 0
        while i + w <= n {
            let halves = (UnsafeRawPointer(x + i).loadUnaligned(as: V.self) * s).roundedToHalves()
            UnsafeMutableRawPointer(out + i).storeBytes(of: halves, as: V.Halves.self)
            i += w
        }
        if i < n {
            var v = V()
            for j in 0..<(n - i) { v[j] = x[i + j] }
            let halves = (v * s).roundedToHalves()
            for j in 0..<(n - i) { out[i + j] = halves[j] }
        }
    }
}

/// `out[i] = Float(x[i]) * scale` for the values in the range (`Backend.convertFromHalf`), a
/// vector at a time; the tail goes through the same vector arithmetic on a padded vector.
@usableFromInline
struct FromHalf<V: FloatVector>: RangeWork {
    @usableFromInline let x: UnsafePointer<Float16>, out: UnsafeMutablePointer<Float>, scale: Float

    @inlinable
    init(_ x: UnsafePointer<Float16>, _ out: UnsafeMutablePointer<Float>, scale: Float) {
        self.x = x
        self.out = out
        self.scale = scale
    }

    @inlinable
    func callAsFunction(_ range: Range<Int>) {
        Self.convert(x + range.lowerBound, out + range.lowerBound, range.count, scale)
    }

    @inlinable @inline(never)
    static func convert(_ x: UnsafePointer<Float16>, _ out: UnsafeMutablePointer<Float>, _ n: Int, _ scale: Float) {
        let s = V(repeating: scale), w = V.scalarCount
        var i = 0
        while i + w <= n {
            let values = V(widening: UnsafeRawPointer(x + i).loadUnaligned(as: V.Halves.self)) * s
            UnsafeMutableRawPointer(out + i).storeBytes(of: values, as: V.self)
            i += w
        }
        if i < n {
            var halves = V.Halves()
            for j in 0..<(n - i) { halves[j] = x[i + j] }
            let values = V(widening: halves) * s
            for j in 0..<(n - i) { out[i + j] = values[j] }
        }
    }
}

/// Adam's update (see `Backend.adamUpdate`) of the values in the range, a vector at a time;
/// the tail runs the same vector arithmetic on padded lanes, so no value depends on where a
/// range ends.
@usableFromInline
struct AdamRange<V: FloatVector>: RangeWork {
    @usableFromInline let parameters: UnsafeMutablePointer<Float>, gradients: UnsafePointer<Float>
    @usableFromInline let m: UnsafeMutablePointer<Float>, v: UnsafeMutablePointer<Float>
    @usableFromInline let beta1: Float, beta2: Float, stepSize: Float, epsilon: Float

    @inlinable
    init(parameters: UnsafeMutablePointer<Float>, gradients: UnsafePointer<Float>, m: UnsafeMutablePointer<Float>,
         v: UnsafeMutablePointer<Float>, beta1: Float, beta2: Float, stepSize: Float, epsilon: Float) {
        self.parameters = parameters
        self.gradients = gradients
        self.m = m
        self.v = v
        self.beta1 = beta1
        self.beta2 = beta2
        self.stepSize = stepSize
        self.epsilon = epsilon
    }

    @inlinable
    func callAsFunction(_ range: Range<Int>) { Self.update(self, range) }

    @inlinable @inline(never)
    static func update(_ work: AdamRange, _ range: Range<Int>) {
        let b1 = V(repeating: work.beta1), b2 = V(repeating: work.beta2)
        let c1 = V(repeating: 1 - work.beta1), c2 = V(repeating: 1 - work.beta2)
        let size = V(repeating: work.stepSize), eps = V(repeating: work.epsilon)
        let (parameters, gradients, m, v) = (work.parameters, work.gradients, work.m, work.v)
        @inline(__always) func load(_ p: UnsafePointer<Float>) -> V { UnsafeRawPointer(p).loadUnaligned(as: V.self) }
        @inline(__always) func store(_ x: V, _ p: UnsafeMutablePointer<Float>) {
            UnsafeMutableRawPointer(p).storeBytes(of: x, as: V.self)
        }
        @inline(__always) func step(_ g: V, _ p: V, _ m0: V, _ v0: V) -> (V, V, V) {
            let m1 = b1 * m0 + c1 * g
            let v1 = b2 * v0 + c2 * g * g
            return (p - size * m1 / (v1.squareRoot() + eps), m1, v1)
        }
        let w = V.scalarCount, end = range.upperBound
        var i = range.lowerBound
        while i + w <= end {
            let (p1, m1, v1) = step(load(gradients + i), load(parameters + i), load(m + i), load(v + i))
            store(p1, parameters + i); store(m1, m + i); store(v1, v + i)
            i += w
        }
        if i < end {
            var g = V(), p = g, m0 = g, v0 = g
            for j in 0..<(end - i) { g[j] = gradients[i + j]; p[j] = parameters[i + j]; m0[j] = m[i + j]; v0[j] = v[i + j] }
            let (p1, m1, v1) = step(g, p, m0, v0)
            for j in 0..<(end - i) { parameters[i + j] = p1[j]; m[i + j] = m1[j]; v[i + j] = v1[j] }
        }
    }
}

/// `x[r, j] += bias[j]` for the rows `r` in the range.
@usableFromInline
struct BiasRows<V: FloatVector>: RangeWork {
    @usableFromInline let bias: UnsafePointer<Float>, x: UnsafeMutablePointer<Float>, columns: Int

    @inlinable
    init(bias: UnsafePointer<Float>, x: UnsafeMutablePointer<Float>, columns: Int) {
        self.bias = bias
        self.x = x
        self.columns = columns
    }

    @inlinable
    func callAsFunction(_ range: Range<Int>) {
        for r in range {
            let row = x + r * columns
            Elementwise<V>.axpy(bias, row, row, columns, 1)
        }
    }
}

/// `gradient[j] += Σ_r dy[r, j]` for the columns `j` in the range, in row order. Up to 128
/// columns at a time are added on the stack and written back once: the gradient buffer itself,
/// written on every row, would share a cache line between two threads at the seam of their
/// columns (measured 3-4x slower than one thread).
@usableFromInline
struct BiasGradientColumns<V: FloatVector>: RangeWork {
    @usableFromInline let dy: UnsafePointer<Float>, rows: Int, columns: Int, gradient: UnsafeMutablePointer<Float>

    @inlinable
    init(dy: UnsafePointer<Float>, rows: Int, columns: Int, gradient: UnsafeMutablePointer<Float>) {
        self.dy = dy
        self.rows = rows
        self.columns = columns
        self.gradient = gradient
    }

    @inlinable
    func callAsFunction(_ range: Range<Int>) {
        withUnsafeTemporaryAllocation(of: Float.self, capacity: 128) { buffer in
            let sums = buffer.baseAddress!
            var j = range.lowerBound
            while j < range.upperBound {
                let n = min(128, range.upperBound - j)
                sums.update(from: gradient + j, count: n)
                for r in 0..<rows { Elementwise<V>.axpy(dy + r * columns + j, sums, sums, n, 1) }
                (gradient + j).update(from: sums, count: n)
                j += n
            }
        }
    }
}

/// `im2col` (or, `adjoint`, `col2im`) of the examples in the range.
@usableFromInline
struct ConvolutionExamples: RangeWork {
    @usableFromInline let geometry: ConvolutionGeometry
    @usableFromInline let adjoint: Bool
    @usableFromInline let from: UnsafePointer<Float>, to: UnsafeMutablePointer<Float>

    @inlinable
    init(geometry: ConvolutionGeometry, adjoint: Bool, from: UnsafePointer<Float>, to: UnsafeMutablePointer<Float>) {
        self.geometry = geometry
        self.adjoint = adjoint
        self.from = from
        self.to = to
    }

    @inlinable
    func callAsFunction(_ range: Range<Int>) {
        let image = geometry.inputCount, columns = geometry.outputPixels * geometry.columnCount
        let (first, batch) = (range.lowerBound, range.count)
        if adjoint {
            geometry.col2im(from + first * columns, batch: batch, into: to + first * image)
        } else {
            geometry.im2col(from + first * image, batch: batch, into: to + first * columns)
        }
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
    /// `min(max(self, lowerBound), upperBound)` lane by lane (compare and select).
    func clamped(lowerBound: Self, upperBound: Self) -> Self
    func squareRoot() -> Self

    /// As many Float16 lanes (`SIMD8<Float16>` for `SIMD8<Float>`).
    associatedtype Halves: SIMD where Halves.Scalar == Float16
    /// Each lane rounded to Float16: to nearest, ties to even, ±inf beyond 65504, NaN to NaN.
    func roundedToHalves() -> Halves
    /// Each lane of `halves`, widened (exactly).
    init(widening halves: Halves)
}

extension FloatVector {
    @inlinable @inline(__always) public static func += (a: inout Self, b: Self) { a = a + b }
    @inlinable @inline(__always) public static func *= (a: inout Self, b: Self) { a = a * b }
}

/// A function of one vector. The elementwise kernels pass these as values of concrete types
/// rather than closures: the optimizer reliably inlines a generic method call into the loop,
/// while closures here were called once per vector.
public protocol VectorFunction {
    associatedtype V: FloatVector
    func callAsFunction(_ x: V) -> V
}

/// A function of two vectors (see `VectorFunction`).
public protocol VectorFunction2 {
    associatedtype V: FloatVector
    func callAsFunction(_ x: V, _ y: V) -> V
}

/// `x > 0 ? x : slope * x`.
@frozen public struct LeakyReLUForward<V: FloatVector>: VectorFunction {
    @usableFromInline let slope: V
    @inlinable public init(slope: Float) { self.slope = V(repeating: slope) }
    @inlinable @inline(__always) public func callAsFunction(_ x: V) -> V {
        x.replacing(with: x * slope, where: x, isAtMost: V())
    }
}

/// `dy * (x > 0 ? 1 : slope)` of (x, dy).
@frozen public struct LeakyReLUBackward<V: FloatVector>: VectorFunction2 {
    @usableFromInline let slope: V
    @inlinable public init(slope: Float) { self.slope = V(repeating: slope) }
    @inlinable @inline(__always) public func callAsFunction(_ x: V, _ dy: V) -> V {
        dy.replacing(with: dy * slope, where: x, isAtMost: V())
    }
}

@frozen public struct TanhForward<V: FloatVector>: VectorFunction {
    @inlinable public init() {}
    @inlinable @inline(__always) public func callAsFunction(_ x: V) -> V { fastTanh(x) }
}

/// `dy * (1 - y²)` of (y, dy).
@frozen public struct TanhBackward<V: FloatVector>: VectorFunction2 {
    @inlinable public init() {}
    @inlinable @inline(__always) public func callAsFunction(_ y: V, _ dy: V) -> V { dy * (V(repeating: 1) - y * y) }
}

/// sigmoid(x) = (1 + tanh(x/2)) / 2, an exact identity; reuses the vector tanh.
@frozen public struct SigmoidForward<V: FloatVector>: VectorFunction {
    @inlinable public init() {}
    @inlinable @inline(__always) public func callAsFunction(_ x: V) -> V {
        let half = V(repeating: 0.5)
        return half + half * fastTanh(x * half)
    }
}

/// `y + alpha * x` of (x, y).
@frozen public struct MultiplyAdd<V: FloatVector>: VectorFunction2 {
    @usableFromInline let alpha: V
    @inlinable public init(alpha: Float) { self.alpha = V(repeating: alpha) }
    @inlinable @inline(__always) public func callAsFunction(_ x: V, _ y: V) -> V { y.addingProduct(alpha, x) }
}

/// `alpha * x`.
@frozen public struct Multiply<V: FloatVector>: VectorFunction {
    @usableFromInline let alpha: V
    @inlinable public init(alpha: Float) { self.alpha = V(repeating: alpha) }
    @inlinable @inline(__always) public func callAsFunction(_ x: V) -> V { x * alpha }
}

/// `y[i] = f(x[i])` a vector at a time; the tail goes through the same `f` on a padded
/// vector, so the tail gets exactly the same arithmetic as the body.
@inlinable @inline(__always)
public func vectorMap<F: VectorFunction>(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ count: Int,
                                         _ f: F) {
    typealias V = F.V
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
public func vectorZipMap<F: VectorFunction2>(_ x: UnsafePointer<Float>, _ y: UnsafePointer<Float>,
                                             _ z: UnsafeMutablePointer<Float>, _ count: Int, _ f: F) {
    typealias V = F.V
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
