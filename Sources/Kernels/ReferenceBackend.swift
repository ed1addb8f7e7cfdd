#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Plain loops in Double, written for obviousness: the oracle the vector backends are tested against.
/// Not used for training.
public final class ReferenceBackend: Backend {
    public init() {}

    public var threads: Int { 1 }

    public func gemm(transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int,
                     a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
                     c: UnsafeMutablePointer<Float>, ldc: Int, accumulate: Bool) {
        for i in 0..<m {
            for j in 0..<n {
                var s = 0.0
                for p in 0..<k {
                    let av = transposeA ? a[p * lda + i] : a[i * lda + p]
                    let bv = transposeB ? b[j * ldb + p] : b[p * ldb + j]
                    s += Double(av) * Double(bv)
                }
                c[i * ldc + j] = Float(s + (accumulate ? Double(c[i * ldc + j]) : 0))
            }
        }
    }

    public func gemmGatheredRows(m: Int, n: Int, k: Int,
                                 a: UnsafePointer<Float>, aRows: UnsafePointer<Int32>, aStride: Int,
                                 transposeB: Bool, b: UnsafePointer<Float>, ldb: Int,
                                 c: UnsafeMutablePointer<Float>, cRows: UnsafePointer<Int32>, cStride: Int) {
        for i in 0..<m {
            let row = a + Int(aRows[i]) * aStride, out = c + Int(cRows[i]) * cStride
            for j in 0..<n {
                var s = 0.0
                for p in 0..<k { s += Double(row[p]) * Double(transposeB ? b[j * ldb + p] : b[p * ldb + j]) }
                out[j] = Float(Double(out[j]) + s)
            }
        }
    }

    public func gemmGatheredInner(m: Int, n: Int, k: Int,
                                  a: UnsafePointer<Float>, aRows: UnsafePointer<Int32>, aStride: Int,
                                  b: UnsafePointer<Float>, bRows: UnsafePointer<Int32>, bStride: Int,
                                  c: UnsafeMutablePointer<Float>, ldc: Int) {
        for i in 0..<m {
            for j in 0..<n {
                var s = 0.0
                for p in 0..<k { s += Double(a[Int(aRows[p]) * aStride + i]) * Double(b[Int(bRows[p]) * bStride + j]) }
                c[i * ldc + j] = Float(Double(c[i * ldc + j]) + s)
            }
        }
    }

    public func addBias(_ bias: UnsafePointer<Float>, to x: UnsafeMutablePointer<Float>, rows: Int, columns: Int) {
        for r in 0..<rows { for j in 0..<columns { x[r * columns + j] += bias[j] } }
    }

    public func accumulateBiasGradient(_ dy: UnsafePointer<Float>, rows: Int, columns: Int,
                                       into biasGradient: UnsafeMutablePointer<Float>) {
        for j in 0..<columns {
            var s = 0.0
            for r in 0..<rows { s += Double(dy[r * columns + j]) }
            biasGradient[j] += Float(s)
        }
    }

    public func leakyReLU(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, count: Int, slope: Float) {
        for i in 0..<count { y[i] = x[i] > 0 ? x[i] : slope * x[i] }
    }

    public func leakyReLUBackward(_ x: UnsafePointer<Float>, _ dy: UnsafePointer<Float>,
                                  _ dx: UnsafeMutablePointer<Float>, count: Int, slope: Float) {
        for i in 0..<count { dx[i] = x[i] > 0 ? dy[i] : slope * dy[i] }
    }

    public func tanh(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, count: Int) {
        for i in 0..<count { y[i] = Float(Glibc.tanh(Double(x[i]))) }
    }

    public func tanhBackward(_ y: UnsafePointer<Float>, _ dy: UnsafePointer<Float>,
                             _ dx: UnsafeMutablePointer<Float>, count: Int) {
        for i in 0..<count { dx[i] = dy[i] * (1 - y[i] * y[i]) }
    }

    public func sigmoid(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, count: Int) {
        for i in 0..<count { y[i] = Float(1 / (1 + exp(-Double(x[i])))) }
    }

    public func binaryCrossEntropyWithLogits(_ logits: UnsafePointer<Float>, targets: UnsafePointer<Float>,
                                             count: Int, scale: Float,
                                             gradient: UnsafeMutablePointer<Float>) -> Double {
        var total = 0.0
        for i in 0..<count {
            let l = Double(logits[i]), t = Double(targets[i])
            let p = 1 / (1 + exp(-l))
            total += -(t * log(p) + (1 - t) * log(1 - p))
            gradient[i] = Float(Double(scale) * (p - t))
        }
        return total
    }

    public func sum(_ x: UnsafePointer<Float>, count: Int) -> Double {
        var s = 0.0
        for i in 0..<count { s += Double(x[i]) }
        return s
    }

    public func axpy(_ alpha: Float, _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, count: Int) {
        for i in 0..<count { y[i] += alpha * x[i] }
    }

    public func scale(_ x: UnsafeMutablePointer<Float>, by alpha: Float, count: Int) {
        for i in 0..<count { x[i] *= alpha }
    }

    public func maxAbs(_ x: UnsafePointer<Float>, count: Int) -> Float {
        var m: Float = 0
        for i in 0..<count {
            if x[i].isNaN { return .infinity }
            m = max(m, x[i].magnitude)
        }
        return m
    }

    public func convertToHalf(_ x: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float16>, count: Int, scale: Float) {
        for i in 0..<count { out[i] = Float16(x[i] * scale) }
    }

    public func convertFromHalf(_ x: UnsafePointer<Float16>, _ out: UnsafeMutablePointer<Float>, count: Int, scale: Float) {
        for i in 0..<count { out[i] = Float(x[i]) * scale }
    }

    public func adamUpdate(parameters: UnsafeMutablePointer<Float>, gradients: UnsafePointer<Float>,
                           m: UnsafeMutablePointer<Float>, v: UnsafeMutablePointer<Float>, count: Int,
                           beta1: Float, beta2: Float, stepSize: Float, epsilon: Float) {
        for i in 0..<count {
            let g = gradients[i]
            m[i] = beta1 * m[i] + (1 - beta1) * g
            v[i] = beta2 * v[i] + (1 - beta2) * g * g
            parameters[i] -= stepSize * m[i] / (v[i].squareRoot() + epsilon)
        }
    }
}
