import Foundation

/// Means of the step metrics over one log interval, across all ranks.
public struct IntervalSummary: Sendable {
    public var step: Int
    public var totalSteps: Int
    public var epoch: Int
    public var discriminatorLoss: Double
    public var generatorLoss: Double
    public var realScore: Double
    public var fakeScore: Double
    /// Images per second over the interval, all ranks together (global batch x steps / time).
    public var imagesPerSecond: Double
    /// Wall-clock seconds since training started (this invocation).
    public var seconds: Double
    /// Estimated seconds to `totalSteps` at the interval's rate.
    public var secondsRemaining: Double
}

/// Rank 0's view of training for people and tools: a progress line (redrawn in place on a
/// terminal), the same line appended to `OUT/train.log`, and one JSON object per interval in
/// `OUT/metrics.jsonl`.
public final class ProgressReporter {
    private let log: FileHandle?
    private let metrics: FileHandle?
    private let live: Bool
    /// A live progress line is on screen without its newline.
    private var lineOpen = false

    /// `directory` nil: print only (used by tests). `live`: redraw one terminal line.
    public init(directory: String?, live: Bool) throws {
        self.live = live
        if let directory {
            log = try ProgressReporter.append(to: directory + "/train.log")
            metrics = try ProgressReporter.append(to: directory + "/metrics.jsonl")
        } else {
            log = nil
            metrics = nil
        }
    }

    deinit { try? log?.close(); try? metrics?.close() }

    /// A message that is not a progress line (start, checkpoint, end): printed and logged.
    public func note(_ message: String) {
        finish()
        emit(message + "\n")
        log?.write(Data((message + "\n").utf8))
    }

    public func report(_ s: IntervalSummary) {
        let line = ProgressReporter.line(s)
        emit(live ? "\r\u{1B}[K" + line : line + "\n")
        lineOpen = live
        log?.write(Data((line + "\n").utf8))
        metrics?.write(Data((ProgressReporter.json(s) + "\n").utf8))
    }

    /// Ends a live line so that what follows starts on its own line.
    public func finish() {
        if lineOpen { emit("\n") }
        lineOpen = false
    }

    /// Unbuffered, so lines appear at once under mpirun's output forwarding too.
    private func emit(_ text: String) {
        FileHandle.standardOutput.write(Data(text.utf8))
    }

    static func line(_ s: IntervalSummary) -> String {
        let width = String(s.totalSteps).count
        let step = String(repeating: " ", count: max(0, width - String(s.step).count)) + String(s.step)
        return "step \(step)/\(s.totalSteps)  epoch \(s.epoch)  D \(fixed(s.discriminatorLoss, 3))  "
            + "G \(fixed(s.generatorLoss, 3))  D(x) \(fixed(s.realScore, 3))  D(G(z)) \(fixed(s.fakeScore, 3))  "
            + "\(Int(s.imagesPerSecond.rounded())) img/s  ETA \(duration(s.secondsRemaining))"
    }

    static func json(_ s: IntervalSummary) -> String {
        "{\"step\":\(s.step),\"epoch\":\(s.epoch),\"d_loss\":\(number(s.discriminatorLoss)),"
            + "\"g_loss\":\(number(s.generatorLoss)),\"d_real\":\(number(s.realScore)),\"d_fake\":\(number(s.fakeScore)),"
            + "\"images_per_s\":\(number(s.imagesPerSecond)),\"seconds\":\(number(s.seconds))}"
    }

    /// JSON has no NaN or infinity: such values are written as null.
    static func number(_ x: Double) -> String { x.isFinite ? String(format: "%.6g", x) : "null" }
    static func fixed(_ x: Double, _ digits: Int) -> String { String(format: "%.\(digits)f", x) }

    static func duration(_ seconds: Double) -> String {
        guard seconds.isFinite, seconds >= 0 else { return "--" }
        let s = Int(seconds.rounded())
        if s >= 3600 { return "\(s / 3600)h\(String(format: "%02d", s % 3600 / 60))m" }
        if s >= 60 { return "\(s / 60)m\(String(format: "%02d", s % 60))s" }
        return "\(s)s"
    }

    static func append(to path: String) throws -> FileHandle {
        if !FileManager.default.fileExists(atPath: path) {
            guard FileManager.default.createFile(atPath: path, contents: nil) else {
                throw OutputError.cannotWrite(path: path)
            }
        }
        guard let handle = FileHandle(forWritingAtPath: path) else { throw OutputError.cannotWrite(path: path) }
        handle.seekToEndOfFile()
        return handle
    }
}

/// Why an output could not be written; `description` is one line with the fix.
public enum OutputError: Error, CustomStringConvertible, Equatable {
    case cannotWrite(path: String)
    case cannotCreateDirectory(path: String, reason: String)

    public var description: String {
        switch self {
        case let .cannotWrite(path):
            return "cannot write \(path): check that its folder exists and is writable, or pass another --out"
        case let .cannotCreateDirectory(path, reason):
            return "cannot create folder \(path) (\(reason)): pass an --out folder you can write to"
        }
    }
}

/// Creates `path` and its parents if missing.
public func createDirectory(_ path: String) throws {
    do {
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    } catch {
        throw OutputError.cannotCreateDirectory(path: path, reason: (error as NSError).localizedDescription)
    }
}
