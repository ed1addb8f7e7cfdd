#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The training backend: AVX2/FMA code through `SIMD8<Float>` (the package builds with
/// `-march=x86-64-v3`), no allocation per call, no bounds checks in loops.
///
/// An instance owns the packing buffers of its matrix multiply, so one instance must not be
/// used from two threads at once; a future multi-threaded rank gives each thread its own.
public final class SIMDBackend: Backend {
    private let workspace = GEMMWorkspace()

    public init() {}
    deinit { workspace.deallocate() }

    public func gemm(transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int,
                     a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
                     c: UnsafeMutablePointer<Float>, ldc: Int, accumulate: Bool) {
        workspace.multiply(transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k,
                           a: a, lda: lda, b: b, ldb: ldb, c: c, ldc: ldc, accumulate: accumulate)
    }

    public func addBias(_ bias: UnsafePointer<Float>, to x: UnsafeMutablePointer<Float>, rows: Int, columns: Int) {
        for r in 0..<rows { axpy(1, bias, x + r * columns, count: columns) }
    }

    public func accumulateBiasGradient(_ dy: UnsafePointer<Float>, rows: Int, columns: Int,
                                       into biasGradient: UnsafeMutablePointer<Float>) {
        for r in 0..<rows { axpy(1, dy + r * columns, biasGradient, count: columns) }
    }

    public func leakyReLU(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, count: Int, slope: Float) {
        let s = V8(repeating: slope), zero = V8()
        map(x, y, count) { v in v.replacing(with: v * s, where: v .<= zero) }
    }

    public func leakyReLUBackward(_ x: UnsafePointer<Float>, _ dy: UnsafePointer<Float>,
                                  _ dx: UnsafeMutablePointer<Float>, count: Int, slope: Float) {
        let s = V8(repeating: slope), zero = V8()
        zipMap(x, dy, dx, count) { xv, g in g.replacing(with: g * s, where: xv .<= zero) }
    }

    public func tanh(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, count: Int) {
        map(x, y, count, fastTanh)
    }

    public func tanhBackward(_ y: UnsafePointer<Float>, _ dy: UnsafePointer<Float>,
                             _ dx: UnsafeMutablePointer<Float>, count: Int) {
        let one = V8(repeating: 1)
        zipMap(y, dy, dx, count) { yv, g in g * (one - yv * yv) }
    }

    public func sigmoid(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, count: Int) {
        // sigmoid(x) = (1 + tanh(x/2)) / 2, exact identity; reuses the vector tanh.
        let half = V8(repeating: 0.5)
        map(x, y, count) { v in half + half * fastTanh(v * half) }
    }

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

    public func sum(_ x: UnsafePointer<Float>, count: Int) -> Double {
        var acc = SIMD8<Double>(), i = 0
        while i + 8 <= count {
            let v = UnsafeRawPointer(x + i).loadUnaligned(as: V8.self)
            acc += SIMD8<Double>(v)
            i += 8
        }
        var s = acc.sum()
        while i < count { s += Double(x[i]); i += 1 }
        return s
    }

    public func axpy(_ alpha: Float, _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, count: Int) {
        let a = V8(repeating: alpha)
        zipMap(x, y, y, count) { xv, yv in yv.addingProduct(a, xv) }
    }

    public func scale(_ x: UnsafeMutablePointer<Float>, by alpha: Float, count: Int) {
        let a = V8(repeating: alpha)
        map(x, x, count) { v in v * a }
    }
}

// MARK: - Vector helpers

/// `y[i] = f(x[i])` eight lanes at a time; the tail goes through the same `f` on a padded
/// vector, so the tail gets exactly the same arithmetic as the body.
@inline(__always)
func map(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ count: Int,
         _ f: (V8) -> V8) {
    var i = 0
    while i + 8 <= count {
        UnsafeMutableRawPointer(y + i).storeBytes(of: f(UnsafeRawPointer(x + i).loadUnaligned(as: V8.self)), as: V8.self)
        i += 8
    }
    if i < count {
        var v = V8()
        for j in 0..<(count - i) { v[j] = x[i + j] }
        let r = f(v)
        for j in 0..<(count - i) { y[i + j] = r[j] }
    }
}

/// `z[i] = f(x[i], y[i])` eight lanes at a time (`z` may alias `x` or `y`).
@inline(__always)
func zipMap(_ x: UnsafePointer<Float>, _ y: UnsafePointer<Float>, _ z: UnsafeMutablePointer<Float>,
            _ count: Int, _ f: (V8, V8) -> V8) {
    var i = 0
    while i + 8 <= count {
        let r = f(UnsafeRawPointer(x + i).loadUnaligned(as: V8.self), UnsafeRawPointer(y + i).loadUnaligned(as: V8.self))
        UnsafeMutableRawPointer(z + i).storeBytes(of: r, as: V8.self)
        i += 8
    }
    if i < count {
        var a = V8(), b = V8()
        for j in 0..<(count - i) { a[j] = x[i + j]; b[j] = y[i + j] }
        let r = f(a, b)
        for j in 0..<(count - i) { z[i + j] = r[j] }
    }
}

/// tanh as a 13/6 rational function of x on [-7.9, 7.9] (Eigen's `ptanh_float` coefficients),
/// within a few ulp of libm's tanhf; exactly ±1 outside (the rational form stops 2e-7 short), and returns x for |x| < 4e-4
/// where the rational form loses relative accuracy.
@inline(__always)
func fastTanh(_ input: V8) -> V8 {
    let clamp = V8(repeating: 7.90531110763549805)
    let x = input.clamped(lowerBound: -clamp, upperBound: clamp)
    let x2 = x * x
    var p = V8(repeating: -2.76076847742355e-16)
    p = V8(repeating: 2.00018790482477e-13).addingProduct(p, x2)
    p = V8(repeating: -8.60467152213735e-11).addingProduct(p, x2)
    p = V8(repeating: 5.12229709037114e-08).addingProduct(p, x2)
    p = V8(repeating: 1.48572235717979e-05).addingProduct(p, x2)
    p = V8(repeating: 6.37261928875436e-04).addingProduct(p, x2)
    p = V8(repeating: 4.89352455891786e-03).addingProduct(p, x2)
    p *= x
    var q = V8(repeating: 1.19825839466702e-06)
    q = V8(repeating: 1.18534705686654e-04).addingProduct(q, x2)
    q = V8(repeating: 2.26843463243900e-03).addingProduct(q, x2)
    q = V8(repeating: 4.89352518554385e-03).addingProduct(q, x2)
    let magnitude = input.replacing(with: -input, where: input .< V8())
    let tiny = magnitude .< V8(repeating: 0.0004)
    let one = V8(repeating: 1)
    let saturated = one.replacing(with: -one, where: input .< V8())
    return (p / q).replacing(with: input, where: tiny).replacing(with: saturated, where: magnitude .> clamp)
}
