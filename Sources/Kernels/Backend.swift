/// The compute interface every layer, loss and optimizer is written against.
///
/// All tensors are contiguous, row-major `Float` buffers passed as raw pointers; shapes are
/// given explicitly in each call. Training uses a `VectorBackend` for the CPU at hand
/// (`AVX2Backend` or `AVX512Backend`, chosen by module Backends); `ReferenceBackend`, plain
/// loops, is the oracle tests compare them with. The interface is
/// deliberately small: the handful of kernels two GANs need, no tensor type, no graph.
///
/// Conventions: a matrix argument `a` with leading dimension `lda` holds element (i, j) at
/// `a[i * lda + j]`. "Accumulate" means `c += result` instead of `c = result`, which is how
/// backward passes add into a network's flat gradient buffer.
public protocol Backend: AnyObject {
    /// The threads its kernels split over (the caller's included).
    var threads: Int { get }

    /// `c[m x n] (+)= op(a) * op(b)`, where `op(a)` is `m x k` and `op(b)` is `k x n`.
    /// `transposeA` means `a` is stored as `k x m` (so `op(a) = aᵀ`); likewise for `b`.
    /// The three cases a dense layer needs: forward `X·W` (none, none), weight gradient
    /// `Xᵀ·dY` (transposeA), input gradient `dY·Wᵀ` (transposeB).
    func gemm(transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int,
              a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
              c: UnsafeMutablePointer<Float>, ldc: Int, accumulate: Bool)

    /// `c[cRows[i]·cStride ..< +n] += a[aRows[i]·aStride ..< +k] · op(b)` for each row `i < m`:
    /// gathered rows of A times `op(b)` (`k x n`, as in `gemm`), added into scattered rows of C
    /// (distinct). One kernel tap of a convolution (see `ConvolutionTaps`).
    func gemmGatheredRows(m: Int, n: Int, k: Int,
                          a: UnsafePointer<Float>, aRows: UnsafePointer<Int32>, aStride: Int,
                          transposeB: Bool, b: UnsafePointer<Float>, ldb: Int,
                          c: UnsafeMutablePointer<Float>, cRows: UnsafePointer<Int32>, cStride: Int)

    /// `c[m x n] += Σ_{p < k} (row aRows[p] of A)ᵀ · (row bRows[p] of B)`, rows of `m` and `n`
    /// floats at `a + aRows[p]·aStride` and `b + bRows[p]·bStride`: one tap's kernel gradient.
    func gemmGatheredInner(m: Int, n: Int, k: Int,
                           a: UnsafePointer<Float>, aRows: UnsafePointer<Int32>, aStride: Int,
                           b: UnsafePointer<Float>, bRows: UnsafePointer<Int32>, bStride: Int,
                           c: UnsafeMutablePointer<Float>, ldc: Int)

    /// `x[r, j] += bias[j]` for a `rows x columns` matrix.
    func addBias(_ bias: UnsafePointer<Float>, to x: UnsafeMutablePointer<Float>, rows: Int, columns: Int)

    /// `biasGradient[j] += Σ_r dy[r, j]` for a `rows x columns` matrix.
    func accumulateBiasGradient(_ dy: UnsafePointer<Float>, rows: Int, columns: Int,
                                into biasGradient: UnsafeMutablePointer<Float>)

    /// `y = x > 0 ? x : slope * x`, elementwise over `count` values (`y` may alias `x`).
    func leakyReLU(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, count: Int, slope: Float)

    /// `dx = dy * (x > 0 ? 1 : slope)`, where `x` is the forward input (`dx` may alias `dy`).
    func leakyReLUBackward(_ x: UnsafePointer<Float>, _ dy: UnsafePointer<Float>,
                           _ dx: UnsafeMutablePointer<Float>, count: Int, slope: Float)

    /// `y = tanh(x)` elementwise (`y` may alias `x`).
    func tanh(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, count: Int)

    /// `dx = dy * (1 - y²)`, where `y` is the forward output (`dx` may alias `dy`).
    func tanhBackward(_ y: UnsafePointer<Float>, _ dy: UnsafePointer<Float>,
                      _ dx: UnsafeMutablePointer<Float>, count: Int)

    /// `y = 1 / (1 + exp(-x))` elementwise.
    func sigmoid(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, count: Int)

    /// Binary cross-entropy of `count` logits against targets in [0, 1], computed stably as
    /// `max(l, 0) - l·t + log(1 + exp(-|l|))`. Returns the **sum** of the losses (in Double);
    /// writes `gradient[i] = scale * (sigmoid(l_i) - t_i)`, the derivative of `scale * sum`.
    /// Losses that average over a batch pass `scale = 1 / batch`.
    func binaryCrossEntropyWithLogits(_ logits: UnsafePointer<Float>, targets: UnsafePointer<Float>,
                                      count: Int, scale: Float,
                                      gradient: UnsafeMutablePointer<Float>) -> Double

    /// Σ x (accumulated in Double).
    func sum(_ x: UnsafePointer<Float>, count: Int) -> Double

    /// `y += alpha * x`.
    func axpy(_ alpha: Float, _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, count: Int)

    /// `x *= alpha`.
    func scale(_ x: UnsafeMutablePointer<Float>, by alpha: Float, count: Int)

    // Gradients sent as IEEE half precision: the largest magnitude of a bucket chooses its
    // scale (`HalfScale`), the bucket is rounded to Float16 for the all-reduce, then widened back.

    /// The largest `|x[i]|` of `count` values (0 for none), exactly; **+inf** if any value is
    /// NaN or infinite. A NaN is reported as +inf, not as NaN, so that the maximum over ranks
    /// still carries it: `MPI_MAX` compares with `>`, which a NaN loses to any number.
    func maxAbs(_ x: UnsafePointer<Float>, count: Int) -> Float

    /// `out[i] = Float16(x[i] * scale)`: the product rounded to Float, then to Float16 to
    /// nearest (ties to even), ±inf beyond Float16's largest finite value (65504), NaN to NaN.
    /// With a power-of-two scale the product is exact (barring Float underflow) and the
    /// conversion is the only rounding.
    func convertToHalf(_ x: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float16>, count: Int, scale: Float)

    /// `out[i] = Float(x[i]) * scale`: the widening is exact, the product one rounding.
    /// Undoes `convertToHalf`'s scale, and can fold in a mean's `1 / ranks` at no cost.
    func convertFromHalf(_ x: UnsafePointer<Float16>, _ out: UnsafeMutablePointer<Float>, count: Int, scale: Float)

    /// `out[i] = stream.normal(at: first + i)` for `i < count` (`RandomStream.fillNormal`).
    func fillNormal(_ out: UnsafeMutablePointer<Float>, count: Int, stream: RandomStream, first: UInt64)

    /// An inverted-dropout mask: `mask[i] = stream.unitFloat(at: first + i) < rate ? 0 : keep`.
    func dropoutMask(_ mask: UnsafeMutablePointer<Float>, count: Int, stream: RandomStream, first: UInt64,
                     rate: Float, keep: Float)

    /// One Adam update over `count` parameters (the arithmetic of `Optim.Adam`, which computes
    /// the step size): `m = β₁m + (1-β₁)g`, `v = β₂v + (1-β₂)g²`, `θ -= stepSize·m / (√v + ε)`,
    /// each in Float, multiplies and adds unfused.
    func adamUpdate(parameters: UnsafeMutablePointer<Float>, gradients: UnsafePointer<Float>,
                    m: UnsafeMutablePointer<Float>, v: UnsafeMutablePointer<Float>, count: Int,
                    beta1: Float, beta2: Float, stepSize: Float, epsilon: Float)

    /// `geometry.im2col` of `batch` images (see `ConvolutionGeometry`), through the backend
    /// so that it can split the examples over its threads.
    func im2col(_ geometry: ConvolutionGeometry, _ image: UnsafePointer<Float>, batch: Int,
                into columns: UnsafeMutablePointer<Float>)

    /// `geometry.col2im` of `batch` examples' columns (the images are overwritten).
    func col2im(_ geometry: ConvolutionGeometry, _ columns: UnsafePointer<Float>, batch: Int,
                into image: UnsafeMutablePointer<Float>)

    /// Calls `work` on contiguous ranges that together cover `0 ..< count` once: one range
    /// per thread of the backend when the loop is large enough, else `0 ..< count` on the
    /// caller. Ranges start at multiples of `granularity`. `cost` is what one iteration costs
    /// in values of an elementwise kernel (1 for a leakyReLU, tens for a normal draw); it
    /// only moves the size from which the loop is split.
    ///
    /// For the loops above the kernels whose iterations are independent (the optimizer's
    /// update, the latent noise), so that they use the threads too: a split must not change
    /// any result, which holds when each iteration writes its own outputs.
    func parallelFor<Work: RangeWork>(_ count: Int, granularity: Int, cost: Int, _ work: Work)
}

extension Backend {
    public func fillNormal(_ out: UnsafeMutablePointer<Float>, count: Int, stream: RandomStream, first: UInt64) {
        stream.fillNormal(out, count: count, first: first)
    }

    public func dropoutMask(_ mask: UnsafeMutablePointer<Float>, count: Int, stream: RandomStream, first: UInt64,
                            rate: Float, keep: Float) {
        for i in 0..<count { mask[i] = stream.unitFloat(at: first &+ UInt64(i)) < rate ? 0 : keep }
    }

    public func im2col(_ geometry: ConvolutionGeometry, _ image: UnsafePointer<Float>, batch: Int,
                       into columns: UnsafeMutablePointer<Float>) {
        geometry.im2col(image, batch: batch, into: columns)
    }

    public func col2im(_ geometry: ConvolutionGeometry, _ columns: UnsafePointer<Float>, batch: Int,
                       into image: UnsafeMutablePointer<Float>) {
        geometry.col2im(columns, batch: batch, into: image)
    }

    public func parallelFor<Work: RangeWork>(_ count: Int, granularity: Int, cost: Int, _ work: Work) {
        work(0 ..< count)
    }
}
