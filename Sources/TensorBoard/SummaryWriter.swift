import Foundation

/// One event file of TensorBoard's: `DIR/events.out.tfevents.SECONDS.HOST.PID.0`, a TFRecord file
/// whose records are `Event` messages (protocol buffers, encoded by swift-protobuf from
/// `Protos/events.proto`). The first event names the format ("brain.Event:2"); each later one
/// holds a `Summary` of one step: scalars, a PNG image, or a histogram. TensorBoard reads a
/// folder's event files as one run, so a resumed run writes a file of its own beside the first.
public final class SummaryWriter {
    public var path: String { file.path }
    private let file: RecordFile

    /// Buckets of a histogram: TensorBoard's default.
    public static let histogramBuckets = 30

    /// Creates the folder's event file (the folder must exist) and writes its first event.
    public init(directory: String, wallTime: Double = Date().timeIntervalSince1970) throws {
        let host = ProcessInfo.processInfo.hostName.split(separator: ".").first.map(String.init) ?? "localhost"
        let name = "events.out.tfevents.\(Int(wallTime)).\(host).\(getpid()).0"
        file = try RecordFile(path: directory + "/" + name)
        var event = TBEvent()
        event.wallTime = wallTime
        event.fileVersion = "brain.Event:2"
        try append(event)
    }

    /// Scalars of one step, in one event: `(tag, value)` pairs, as TensorBoard's Scalars tab plots them.
    public func scalars(_ values: [(tag: String, value: Float)], step: Int, wallTime: Double = Date().timeIntervalSince1970) throws {
        try summary(step: step, wallTime: wallTime, values: values.map { tag, value in
            var v = TBSummary.Value()
            v.tag = tag
            v.simpleValue = value
            return v
        })
    }

    /// An image of one step: `png` is a PNG file of `width x height` pixels (grayscale unless
    /// `channels` says 3 or 4), shown in TensorBoard's Images tab.
    public func image(tag: String, png: [UInt8], width: Int, height: Int, channels: Int = 1, step: Int,
                      wallTime: Double = Date().timeIntervalSince1970) throws {
        var image = TBSummary.Image()
        image.width = Int32(width)
        image.height = Int32(height)
        image.colorspace = Int32(channels)
        image.encodedImageString = Data(png)
        var v = TBSummary.Value()
        v.tag = tag
        v.image = image
        try summary(step: step, wallTime: wallTime, values: [v])
    }

    /// Histograms of one step, in one event: each `(tag, values)` in `histogramBuckets` equal
    /// buckets from its least to its greatest finite value.
    public func histograms(_ tensors: [(tag: String, values: [Float])], step: Int,
                           wallTime: Double = Date().timeIntervalSince1970) throws {
        try summary(step: step, wallTime: wallTime, values: tensors.map { tag, values in
            var v = TBSummary.Value()
            v.tag = tag
            v.histo = Self.histogram(values, buckets: Self.histogramBuckets)
            return v
        })
    }

    /// The histogram of the finite `values`: `buckets` equal buckets from min to max (one bucket
    /// when they are all equal); bucket i holds the values in (limit[i-1], limit[i]], bucket 0
    /// also min itself.
    static func histogram(_ values: [Float], buckets: Int) -> TBHistogramProto {
        var h = TBHistogramProto()
        var low = Double.infinity, high = -Double.infinity, sum = 0.0, squares = 0.0, count = 0
        for x in values where x.isFinite {
            let v = Double(x)
            low = min(low, v); high = max(high, v); sum += v; squares += v * v; count += 1
        }
        guard count > 0 else { return h }
        h.min = low; h.max = high; h.num = Double(count); h.sum = sum; h.sumSquares = squares
        let n = high > low ? buckets : 1
        let width = (high - low) / Double(n)
        h.bucketLimit = (1...n).map { $0 == n ? high : low + Double($0) * width }
        var counts = [Double](repeating: 0, count: n)
        for x in values where x.isFinite {
            let i = width > 0 ? min(n - 1, max(0, Int(((Double(x) - low) / width).rounded(.up)) - 1)) : 0
            counts[i] += 1
        }
        h.bucket = counts
        return h
    }

    private func summary(step: Int, wallTime: Double, values: [TBSummary.Value]) throws {
        var event = TBEvent()
        event.wallTime = wallTime
        event.step = Int64(step)
        var summary = TBSummary()
        summary.value = values
        event.summary = summary
        try append(event)
    }

    private func append(_ event: TBEvent) throws {
        let bytes: Data
        do { bytes = try event.serializedBytes() } catch {
            throw TensorBoardError.cannotWrite(path: file.path, reason: "\(error)")
        }
        try file.append([UInt8](bytes))
    }
}
