/// Which operand rows a multiply gathers (`Backend.gemmGatheredRows`, `gemmGatheredInner`).
public enum GEMMGather: Hashable, Sendable {
    /// A plain `gemm`.
    case none
    /// Rows of A and C gathered: one convolution tap's forward or input gradient.
    case rows
    /// The inner dimension gathered: one convolution tap's kernel gradient.
    case inner
}

/// The dimensions of one multiply: `c[m x n] (+)= op(a)[m x k] · op(b)[k x n]`.
public struct GEMMShape: Hashable, Sendable, CustomStringConvertible {
    public var transposeA: Bool, transposeB: Bool
    public var m: Int, n: Int, k: Int
    /// `c +=` rather than `c =` (weight gradients).
    public var accumulate: Bool
    public var gather: GEMMGather

    public init(transposeA: Bool = false, transposeB: Bool = false, m: Int, n: Int, k: Int, accumulate: Bool = false,
                gather: GEMMGather = .none) {
        self.transposeA = transposeA
        self.transposeB = transposeB
        self.m = m
        self.n = n
        self.k = k
        self.accumulate = accumulate
        self.gather = gather
    }

    /// One multiply and one add per (i, j, p).
    public var flops: Int { 2 * m * n * k }

    /// `m x n x k`, then `Aᵀ` / `Bᵀ` / `+=` where they apply: "3136x3200x256 Bᵀ".
    public var description: String {
        let marks = [transposeA ? "Aᵀ" : nil, transposeB ? "Bᵀ" : nil, accumulate ? "+=" : nil,
                     gather == .rows ? "rows gathered" : gather == .inner ? "k gathered" : nil].compactMap { $0 }
        return "\(m)x\(n)x\(k)" + (marks.isEmpty ? "" : " " + marks.joined(separator: " "))
    }

    /// Leading dimensions of row-major `a` and `b` as stored (`a` is `k x m` when transposed).
    public var lda: Int { transposeA ? m : k }
    public var ldb: Int { transposeB ? k : n }
}

/// A backend that passes every call to `base` and records the shape of every multiply, in
/// the order of first appearance, with how often each came and the `label`s set when it
/// came: what `gantry bench --kernels` learns about the shapes a training step uses by
/// running one, instead of a second list of them to keep in step with the layers.
public final class GEMMRecorder: Backend {
    /// One shape, the calls of it, and the distinct labels they came under, in order.
    public struct Record: Sendable {
        public var shape: GEMMShape
        public var calls: Int
        public var labels: [String]
    }

    public let base: Backend
    public var threads: Int { base.threads }
    /// A name for the calls that follow (the layer and pass that run them).
    public var label = ""
    /// Distinct shapes in order of first appearance.
    public private(set) var shapes: [Record] = []
    private var index: [GEMMShape: Int] = [:]

    public init(_ base: Backend) { self.base = base }

    /// Forgets what was recorded.
    public func reset() { shapes = []; index = [:] }

    private func record(_ shape: GEMMShape) {
        if let i = index[shape] {
            shapes[i].calls += 1
            if !shapes[i].labels.contains(label) { shapes[i].labels.append(label) }
        } else {
            index[shape] = shapes.count
            shapes.append(Record(shape: shape, calls: 1, labels: [label]))
        }
    }

    public func gemmGatheredRows(m: Int, n: Int, k: Int,
                                 a: UnsafePointer<Float>, aRows: UnsafePointer<Int32>, aStride: Int,
                                 transposeB: Bool, b: UnsafePointer<Float>, ldb: Int,
                                 c: UnsafeMutablePointer<Float>, cRows: UnsafePointer<Int32>, cStride: Int) {
        record(GEMMShape(transposeB: transposeB, m: m, n: n, k: k, accumulate: true, gather: .rows))
        base.gemmGatheredRows(m: m, n: n, k: k, a: a, aRows: aRows, aStride: aStride, transposeB: transposeB,
                              b: b, ldb: ldb, c: c, cRows: cRows, cStride: cStride)
    }

    public func gemmGatheredInner(m: Int, n: Int, k: Int,
                                  a: UnsafePointer<Float>, aRows: UnsafePointer<Int32>, aStride: Int,
                                  b: UnsafePointer<Float>, bRows: UnsafePointer<Int32>, bStride: Int,
                                  c: UnsafeMutablePointer<Float>, ldc: Int) {
        record(GEMMShape(transposeA: true, m: m, n: n, k: k, accumulate: true, gather: .inner))
        base.gemmGatheredInner(m: m, n: n, k: k, a: a, aRows: aRows, aStride: aStride,
                               b: b, bRows: bRows, bStride: bStride, c: c, ldc: ldc)
    }

    public func adamUpdate(parameters: UnsafeMutablePointer<Float>, gradients: UnsafePointer<Float>,
                           m: UnsafeMutablePointer<Float>, v: UnsafeMutablePointer<Float>, count: Int,
                           beta1: Float, beta2: Float, stepSize: Float, epsilon: Float) {
        base.adamUpdate(parameters: parameters, gradients: gradients, m: m, v: v, count: count,
                        beta1: beta1, beta2: beta2, stepSize: stepSize, epsilon: epsilon)
    }

    public func gemm(transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int,
                     a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
                     c: UnsafeMutablePointer<Float>, ldc: Int, accumulate: Bool) {
        record(GEMMShape(transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k, accumulate: accumulate))
        base.gemm(transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k, a: a, lda: lda, b: b, ldb: ldb,
                  c: c, ldc: ldc, accumulate: accumulate)
    }

    // Everything else goes straight through.

    public func addBias(_ bias: UnsafePointer<Float>, to x: UnsafeMutablePointer<Float>, rows: Int, columns: Int) {
        base.addBias(bias, to: x, rows: rows, columns: columns)
    }

    public func accumulateBiasGradient(_ dy: UnsafePointer<Float>, rows: Int, columns: Int,
                                       into biasGradient: UnsafeMutablePointer<Float>) {
        base.accumulateBiasGradient(dy, rows: rows, columns: columns, into: biasGradient)
    }

    public func leakyReLU(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, count: Int, slope: Float) {
        base.leakyReLU(x, y, count: count, slope: slope)
    }

    public func leakyReLUBackward(_ x: UnsafePointer<Float>, _ dy: UnsafePointer<Float>,
                                  _ dx: UnsafeMutablePointer<Float>, count: Int, slope: Float) {
        base.leakyReLUBackward(x, dy, dx, count: count, slope: slope)
    }

    public func tanh(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, count: Int) {
        base.tanh(x, y, count: count)
    }

    public func tanhBackward(_ y: UnsafePointer<Float>, _ dy: UnsafePointer<Float>,
                             _ dx: UnsafeMutablePointer<Float>, count: Int) {
        base.tanhBackward(y, dy, dx, count: count)
    }

    public func sigmoid(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, count: Int) {
        base.sigmoid(x, y, count: count)
    }

    public func binaryCrossEntropyWithLogits(_ logits: UnsafePointer<Float>, targets: UnsafePointer<Float>,
                                             count: Int, scale: Float,
                                             gradient: UnsafeMutablePointer<Float>) -> Double {
        base.binaryCrossEntropyWithLogits(logits, targets: targets, count: count, scale: scale, gradient: gradient)
    }

    public func sum(_ x: UnsafePointer<Float>, count: Int) -> Double { base.sum(x, count: count) }

    public func axpy(_ alpha: Float, _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, count: Int) {
        base.axpy(alpha, x, y, count: count)
    }

    public func scale(_ x: UnsafeMutablePointer<Float>, by alpha: Float, count: Int) {
        base.scale(x, by: alpha, count: count)
    }

    public func maxAbs(_ x: UnsafePointer<Float>, count: Int) -> Float { base.maxAbs(x, count: count) }

    public func convertToHalf(_ x: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float16>, count: Int, scale: Float) {
        base.convertToHalf(x, out, count: count, scale: scale)
    }

    public func convertFromHalf(_ x: UnsafePointer<Float16>, _ out: UnsafeMutablePointer<Float>, count: Int, scale: Float) {
        base.convertFromHalf(x, out, count: count, scale: scale)
    }
}
