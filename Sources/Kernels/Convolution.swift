/// The index arithmetic of a 2-D convolution over NHWC images, and the two data movements
/// that turn a convolution into one call of `Backend.gemm`: `im2col` gathers every receptive
/// field into a row of a matrix, `col2im` is its adjoint and scatter-adds rows back into an image.
///
/// Why NHWC (batch, height, width, channels) everywhere in Gantry: it is the Keras/TensorFlow
/// default, so `Dense(7*7*256)` followed by a reshape to (7, 7, 256) is a reinterpretation of
/// the same buffer, and convolution kernels map 1:1 to Keras's `[k, k, in, out]` arrays in
/// checkpoints. And with channels innermost, the `k` horizontal taps of one kernel row cover
/// one contiguous run of `k * channels` input values, so `im2col` is a copy of `k` runs per
/// output pixel, and the multiply's N dimension is the output channels.
///
/// The column matrix has one row per output pixel, `batch * outputHeight * outputWidth` rows in
/// NHWC order, and `columnCount = k * k * channels` columns in (kh, kw, c) order, which is the
/// row order of a Keras kernel `[k, k, channels, filters]` flattened to a
/// `columnCount x filters` matrix. So a convolution is `output = im2col(input) · kernel`.
///
/// Input pixel (ih, iw) = (oh * stride - padTop + kh, ow * stride - padLeft + kw); taps that
/// fall outside the image read zeros (forward) or are dropped (adjoint).
public struct ConvolutionGeometry: Sendable, Equatable {
    public let inputHeight: Int, inputWidth: Int, channels: Int
    public let kernelSize: Int, stride: Int
    public let padTop: Int, padLeft: Int
    public let outputHeight: Int, outputWidth: Int

    public init(inputHeight: Int, inputWidth: Int, channels: Int, kernelSize: Int, stride: Int,
                padTop: Int, padLeft: Int, outputHeight: Int, outputWidth: Int) {
        precondition(inputHeight > 0 && inputWidth > 0 && channels > 0, "empty convolution input")
        precondition(kernelSize > 0 && stride > 0, "kernel size and stride must be positive")
        precondition(padTop >= 0 && padLeft >= 0 && outputHeight > 0 && outputWidth > 0,
                     "negative padding or empty output")
        self.inputHeight = inputHeight
        self.inputWidth = inputWidth
        self.channels = channels
        self.kernelSize = kernelSize
        self.stride = stride
        self.padTop = padTop
        self.padLeft = padLeft
        self.outputHeight = outputHeight
        self.outputWidth = outputWidth
    }

    /// Keras/TensorFlow `padding="same"`: `out = ceil(in / stride)`, and the
    /// `max((out - 1) * stride + k - in, 0)` padding split with the odd one at the bottom/right.
    public static func same(inputHeight: Int, inputWidth: Int, channels: Int,
                            kernelSize: Int, stride: Int) -> ConvolutionGeometry {
        func sizes(_ input: Int) -> (output: Int, before: Int) {
            let output = (input + stride - 1) / stride
            let total = max((output - 1) * stride + kernelSize - input, 0)
            return (output, total / 2)
        }
        let (h, w) = (sizes(inputHeight), sizes(inputWidth))
        return ConvolutionGeometry(inputHeight: inputHeight, inputWidth: inputWidth, channels: channels,
                                   kernelSize: kernelSize, stride: stride, padTop: h.before, padLeft: w.before,
                                   outputHeight: h.output, outputWidth: w.output)
    }

    /// Values in one example's image.
    public var inputCount: Int { inputHeight * inputWidth * channels }
    /// Output pixels of one example: rows of the column matrix per example.
    public var outputPixels: Int { outputHeight * outputWidth }
    /// Columns of the column matrix: `k * k * channels`.
    public var columnCount: Int { kernelSize * kernelSize * channels }

    /// (output pixel, kernel tap) pairs of one example whose tap lands inside the image: the
    /// products a convolution needs, per input channel and filter (im2col also multiplies the
    /// `outputPixels · k² − validTapPairs` in the padding).
    public var validTapPairs: Int {
        func valid(_ outputs: Int, _ inputs: Int, _ pad: Int) -> Int {
            (0..<outputs).reduce(0) { sum, o in
                let first = o * stride - pad
                return sum + max(0, min(kernelSize, inputs - first) - max(0, -first))
            }
        }
        return valid(outputHeight, inputHeight, padTop) * valid(outputWidth, inputWidth, padLeft)
    }

    /// `columns[batch * outputPixels x columnCount] = im2col(image[batch, H, W, C])`.
    public func im2col(_ image: UnsafePointer<Float>, batch: Int, into columns: UnsafeMutablePointer<Float>) {
        let c = channels, run = kernelSize * channels
        var row = columns
        for b in 0..<batch {
            let example = image + b * inputCount
            for oh in 0..<outputHeight {
                let top = oh * stride - padTop
                for ow in 0..<outputWidth {
                    let left = ow * stride - padLeft
                    let (first, end) = validTaps(left)
                    for kh in 0..<kernelSize {
                        let ih = top + kh
                        let dst = row + kh * run
                        guard ih >= 0 && ih < inputHeight && first < end else {
                            dst.update(repeating: 0, count: run)
                            continue
                        }
                        if first > 0 { dst.update(repeating: 0, count: first * c) }
                        copyRun(example + (ih * inputWidth + left + first) * c, dst + first * c, count: (end - first) * c)
                        if end < kernelSize { (dst + end * c).update(repeating: 0, count: (kernelSize - end) * c) }
                    }
                    row += columnCount
                }
            }
        }
    }

    /// `image[batch, H, W, C] = col2im(columns)`: the adjoint of `im2col`. Each row's taps are
    /// added into the pixels they were gathered from (overlapping taps sum); the image is
    /// overwritten, taps in the padding are dropped.
    public func col2im(_ columns: UnsafePointer<Float>, batch: Int, into image: UnsafeMutablePointer<Float>) {
        image.update(repeating: 0, count: batch * inputCount)
        let c = channels, run = kernelSize * channels
        var row = columns
        for b in 0..<batch {
            let example = image + b * inputCount
            for oh in 0..<outputHeight {
                let top = oh * stride - padTop
                for ow in 0..<outputWidth {
                    let left = ow * stride - padLeft
                    let (first, end) = validTaps(left)
                    if first < end {
                        for kh in 0..<kernelSize {
                            let ih = top + kh
                            guard ih >= 0 && ih < inputHeight else { continue }
                            addRun(row + kh * run + first * c, example + (ih * inputWidth + left + first) * c,
                                   count: (end - first) * c)
                        }
                    }
                    row += columnCount
                }
            }
        }
    }

    /// The horizontal taps `first ..< end` of a kernel row whose leftmost tap is at column
    /// `left` that land inside the image.
    @inline(__always)
    private func validTaps(_ left: Int) -> (first: Int, end: Int) {
        (max(0, -left), min(kernelSize, inputWidth - left))
    }
}

/// `dst[0..<count] = src[0..<count]`, eight lanes at a time (runs are short: k * channels).
@inline(__always)
private func copyRun(_ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>, count: Int) {
    var i = 0
    while i + 8 <= count {
        UnsafeMutableRawPointer(dst + i).storeBytes(of: UnsafeRawPointer(src + i).loadUnaligned(as: V8.self), as: V8.self)
        i += 8
    }
    while i < count { dst[i] = src[i]; i += 1 }
}

/// `dst[0..<count] += src[0..<count]`, eight lanes at a time.
@inline(__always)
private func addRun(_ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>, count: Int) {
    var i = 0
    while i + 8 <= count {
        let d = UnsafeMutableRawPointer(dst + i)
        d.storeBytes(of: d.loadUnaligned(as: V8.self) + UnsafeRawPointer(src + i).loadUnaligned(as: V8.self), as: V8.self)
        i += 8
    }
    while i < count { dst[i] += src[i]; i += 1 }
}
