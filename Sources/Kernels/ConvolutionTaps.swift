/// A convolution computed kernel tap by kernel tap, with no product in the padding.
///
/// im2col (`ConvolutionGeometry.im2col`) turns a convolution into one large multiply, but it
/// multiplies the zeros of the padding too: for the DCGAN's 5 x 5 kernels on 7 x 7 images a
/// third of all products. Here the convolution is the sum over taps (kh, kw) of one multiply
/// each: the output pixels whose receptive field has that tap inside the image, times the
/// tap's `channels x filters` block of the kernel. Each tap's (output pixel, input pixel) row
/// pairs are listed once (`outputRows`, `inputRows`), and the backend's gathered multiplies
/// read and write those rows in place: no column matrix, and only the products that count.
///
/// The taps run in a fixed order, so results are deterministic; they differ from im2col's in
/// rounding only (the sums skip exact zeros and split into other K blocks).
///
/// Shapes as in `ConvolutionGeometry`: x is `batch x H x W x channels` (conv input), y is
/// `batch x outH x outW x filters`, the kernel a `k·k·channels x filters` matrix.
public final class ConvolutionTaps {
    public let geometry: ConvolutionGeometry
    public let filters: Int
    public let maxBatch: Int
    /// Per tap: the first pair in `outputRows` / `inputRows`, and the number of pairs per example.
    private var tapStart: [Int] = [], pairsPerExample: [Int] = []
    /// Row indices (pixel + example · pixels) of each tap's pairs, example-major, so that the
    /// pairs of the first `batch` examples are a prefix of the tap's list.
    private let outputRows: UnsafeMutablePointer<Int32>
    private let inputRows: UnsafeMutablePointer<Int32>

    public init(geometry g: ConvolutionGeometry, filters: Int, maxBatch: Int) {
        geometry = g
        self.filters = filters
        self.maxBatch = maxBatch
        precondition(maxBatch * max(g.inputHeight * g.inputWidth, g.outputPixels) < Int(Int32.max), "batch too large")
        var pairs: [[(Int32, Int32)]] = []
        for kh in 0..<g.kernelSize {
            for kw in 0..<g.kernelSize {
                var tap: [(Int32, Int32)] = []
                for oh in 0..<g.outputHeight {
                    let ih = oh * g.stride - g.padTop + kh
                    guard ih >= 0 && ih < g.inputHeight else { continue }
                    for ow in 0..<g.outputWidth {
                        let iw = ow * g.stride - g.padLeft + kw
                        guard iw >= 0 && iw < g.inputWidth else { continue }
                        tap.append((Int32(oh * g.outputWidth + ow), Int32(ih * g.inputWidth + iw)))
                    }
                }
                pairs.append(tap)
            }
        }
        let total = pairs.reduce(0) { $0 + $1.count } * maxBatch
        outputRows = .allocate(capacity: max(total, 1))
        inputRows = .allocate(capacity: max(total, 1))
        var next = 0
        let inputPixels = Int32(g.inputHeight * g.inputWidth), outputPixels = Int32(g.outputPixels)
        for tap in pairs {
            tapStart.append(next)
            pairsPerExample.append(tap.count)
            for b in 0..<Int32(maxBatch) {
                for (o, i) in tap {
                    outputRows[next] = o + b * outputPixels
                    inputRows[next] = i + b * inputPixels
                    next += 1
                }
            }
        }
    }

    deinit { outputRows.deallocate(); inputRows.deallocate() }

    /// `y = conv(x)`: y is overwritten.
    public func forward(_ x: UnsafePointer<Float>, kernel: UnsafePointer<Float>, batch: Int,
                        into y: UnsafeMutablePointer<Float>, backend: Backend) {
        let c = geometry.channels, f = filters
        y.update(repeating: 0, count: batch * geometry.outputPixels * f)
        for tap in 0..<tapStart.count {
            let start = tapStart[tap], count = batch * pairsPerExample[tap]
            backend.gemmGatheredRows(m: count, n: f, k: c, a: x, aRows: inputRows + start, aStride: c,
                                     transposeB: false, b: kernel + tap * c * f, ldb: f,
                                     c: y, cRows: outputRows + start, cStride: f)
        }
    }

    /// `dx = ∂/∂x` of `Σ dy · conv(x)`: the adjoint of `forward`; dx is overwritten.
    public func inputGradient(_ dy: UnsafePointer<Float>, kernel: UnsafePointer<Float>, batch: Int,
                              into dx: UnsafeMutablePointer<Float>, backend: Backend) {
        let c = geometry.channels, f = filters
        dx.update(repeating: 0, count: batch * geometry.inputCount)
        for tap in 0..<tapStart.count {
            let start = tapStart[tap], count = batch * pairsPerExample[tap]
            backend.gemmGatheredRows(m: count, n: c, k: f, a: dy, aRows: outputRows + start, aStride: f,
                                     transposeB: true, b: kernel + tap * c * f, ldb: f,
                                     c: dx, cRows: inputRows + start, cStride: c)
        }
    }

    /// `dK += ∂/∂K` of `Σ dy · conv(x)` (a `k·k·channels x filters` matrix).
    public func kernelGradient(_ x: UnsafePointer<Float>, _ dy: UnsafePointer<Float>, batch: Int,
                               into dK: UnsafeMutablePointer<Float>, backend: Backend) {
        let c = geometry.channels, f = filters
        for tap in 0..<tapStart.count {
            let start = tapStart[tap], count = batch * pairsPerExample[tap]
            backend.gemmGatheredInner(m: c, n: f, k: count, a: x, aRows: inputRows + start, aStride: c,
                                      b: dy, bRows: outputRows + start, bStride: f,
                                      c: dK + tap * c * f, ldc: f)
        }
    }
}
