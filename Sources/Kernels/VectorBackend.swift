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
public protocol VectorBackend: Backend {
    associatedtype Vector: FloatVector
    associatedtype Tile: MicroKernel
    var engine: GEMMEngine<Tile> { get }
}

extension VectorBackend {
    @inlinable
    public func gemm(transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int,
                     a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
                     c: UnsafeMutablePointer<Float>, ldc: Int, accumulate: Bool) {
        engine.multiply(transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k,
                        a: a, lda: lda, b: b, ldb: ldb, c: c, ldc: ldc, accumulate: accumulate)
    }

    @inlinable
    public func gemmGatheredRows(m: Int, n: Int, k: Int,
                                 a: UnsafePointer<Float>, aRows: UnsafePointer<Int32>, aStride: Int,
                                 transposeB: Bool, b: UnsafePointer<Float>, ldb: Int,
                                 c: UnsafeMutablePointer<Float>, cRows: UnsafePointer<Int32>, cStride: Int) {
        engine.multiplyGatheredRows(m: m, n: n, k: k, a: a, aRows: aRows, aStride: aStride, transposeB: transposeB,
                                    b: b, ldb: ldb, c: c, cRows: cRows, cStride: cStride)
    }

    @inlinable
    public func gemmGatheredInner(m: Int, n: Int, k: Int,
                                  a: UnsafePointer<Float>, aRows: UnsafePointer<Int32>, aStride: Int,
                                  b: UnsafePointer<Float>, bRows: UnsafePointer<Int32>, bStride: Int,
                                  c: UnsafeMutablePointer<Float>, ldc: Int) {
        engine.multiplyGatheredInner(m: m, n: n, k: k, a: a, aRows: aRows, aStride: aStride,
                                     b: b, bRows: bRows, bStride: bStride, c: c, ldc: ldc)
    }

    @inlinable
    public func addBias(_ bias: UnsafePointer<Float>, to x: UnsafeMutablePointer<Float>, rows: Int, columns: Int) {
        for r in 0..<rows { axpy(1, bias, x + r * columns, count: columns) }
    }

    @inlinable
    public func accumulateBiasGradient(_ dy: UnsafePointer<Float>, rows: Int, columns: Int,
                                       into biasGradient: UnsafeMutablePointer<Float>) {
        for r in 0..<rows { axpy(1, dy + r * columns, biasGradient, count: columns) }
    }

    @inlinable
    public func leakyReLU(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, count: Int, slope: Float) {
        vectorMap(x, y, count, LeakyReLUForward<Vector>(slope: slope))
    }

    @inlinable
    public func leakyReLUBackward(_ x: UnsafePointer<Float>, _ dy: UnsafePointer<Float>,
                                  _ dx: UnsafeMutablePointer<Float>, count: Int, slope: Float) {
        vectorZipMap(x, dy, dx, count, LeakyReLUBackward<Vector>(slope: slope))
    }

    @inlinable
    public func tanh(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, count: Int) {
        vectorMap(x, y, count, TanhForward<Vector>())
    }

    @inlinable
    public func tanhBackward(_ y: UnsafePointer<Float>, _ dy: UnsafePointer<Float>,
                             _ dx: UnsafeMutablePointer<Float>, count: Int) {
        vectorZipMap(y, dy, dx, count, TanhBackward<Vector>())
    }

    @inlinable
    public func sigmoid(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, count: Int) {
        vectorMap(x, y, count, SigmoidForward<Vector>())
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
        vectorZipMap(x, y, y, count, MultiplyAdd<Vector>(alpha: alpha))
    }

    @inlinable
    public func scale(_ x: UnsafeMutablePointer<Float>, by alpha: Float, count: Int) {
        vectorMap(x, x, count, Multiply<Vector>(alpha: alpha))
    }

    @inlinable
    public func adamUpdate(parameters: UnsafeMutablePointer<Float>, gradients: UnsafePointer<Float>,
                           m: UnsafeMutablePointer<Float>, v: UnsafeMutablePointer<Float>, count: Int,
                           beta1: Float, beta2: Float, stepSize: Float, epsilon: Float) {
        let b1 = Vector(repeating: beta1), b2 = Vector(repeating: beta2)
        let c1 = Vector(repeating: 1 - beta1), c2 = Vector(repeating: 1 - beta2)
        let size = Vector(repeating: stepSize), eps = Vector(repeating: epsilon)
        @inline(__always) func load(_ p: UnsafePointer<Float>) -> Vector { UnsafeRawPointer(p).loadUnaligned(as: Vector.self) }
        @inline(__always) func store(_ x: Vector, _ p: UnsafeMutablePointer<Float>) {
            UnsafeMutableRawPointer(p).storeBytes(of: x, as: Vector.self)
        }
        @inline(__always) func update(_ g: Vector, _ p: Vector, _ m0: Vector, _ v0: Vector) -> (Vector, Vector, Vector) {
            let m1 = b1 * m0 + c1 * g
            let v1 = b2 * v0 + c2 * g * g
            return (p - size * m1 / (v1.squareRoot() + eps), m1, v1)
        }
        let w = Vector.scalarCount
        var i = 0
        while i + w <= count {
            let (p1, m1, v1) = update(load(gradients + i), load(parameters + i), load(m + i), load(v + i))
            store(p1, parameters + i); store(m1, m + i); store(v1, v + i)
            i += w
        }
        // The tail runs the same vector arithmetic on padded lanes.
        if i < count {
            var g = Vector(), p = g, m0 = g, v0 = g
            for j in 0..<(count - i) { g[j] = gradients[i + j]; p[j] = parameters[i + j]; m0[j] = m[i + j]; v0[j] = v[i + j] }
            let (p1, m1, v1) = update(g, p, m0, v0)
            for j in 0..<(count - i) { parameters[i + j] = p1[j]; m[i + j] = m1[j]; v[i + j] = v1[j] }
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
