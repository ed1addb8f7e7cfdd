import Distributed
import Foundation
import NN

/// `--timeline FILE`: a Chrome trace (the Trace Event Format Horovod's timeline uses; it opens
/// in Perfetto and chrome://tracing) of every rank's steps: each layer's forward and backward,
/// each phase (loading the batch, waiting for the slowest rank, the all-reduce, the update,
/// checkpoint writes) on one track per rank, and each bucket's all-reduce, from its start to its
/// completion, with its bytes, on a second track.
///
/// Every rank records its spans in memory; at each log interval and at the end, rank 0 gathers
/// them and appends them to the file, so memory stays bounded and a run that stops early still
/// leaves a trace that loads (the format allows the closing `]` to be missing). Times are
/// microseconds from a barrier at the start, on each rank's monotonic clock: exact between the
/// ranks of one host, off by the clocks' offset between hosts.
public final class Timeline: TrainingOutput, StepObserver {
    private let path: String
    private let communicator: Communicator
    private var file: FileHandle?
    private var origin = 0.0
    /// Spans since the last flush, and the names they point at.
    private var spans: [Span] = []
    private var names: [String] = []
    private var phaseNames: [StepPhase: Int] = [:]
    private var layerNames: [NetworkRole: [[Int]]] = [:]
    private var layerObservers: [NetworkRole: TimelineLayers] = [:]
    /// Start of the open phase, and of each transfer in flight.
    private var phaseStart = 0.0
    private var transferStarts: [NetworkRole: [Int: Double]] = [:]
    private var transferName: [NetworkRole: Int] = [:]

    private struct Span {
        var name: Int
        var track: Int
        var start: Double
        var duration: Double
        /// Bytes of a transfer, -1 for other spans.
        var bytes: Int
    }

    /// Rank 0 writes `path` (created or replaced at the start of the run).
    public init(path: String, communicator: Communicator) {
        self.path = path
        self.communicator = communicator
        spans.reserveCapacity(1 << 14)
    }

    public var stepObserver: StepObserver? { self }

    public func record(_ event: TrainingEvent) throws {
        switch event {
        case let .started(run):
            name(run)
            try communicator.barrier()
            origin = monotonicSeconds()
            if communicator.rank == 0 {
                guard FileManager.default.createFile(atPath: path, contents: nil),
                      let handle = FileHandle(forWritingAtPath: path) else { throw OutputError.cannotWrite(path: path) }
                file = handle
                handle.write(Data("[\n".utf8))
            }
            try flush(header: true)
        case .interval:
            try flush(header: false)
        case .finished, .stopped:
            try flush(header: false)
            let end = "{\"name\":\"end of run\",\"ph\":\"i\",\"s\":\"g\",\"pid\":0,\"tid\":0,\"ts\":\(microseconds(monotonicSeconds() - origin))}\n]\n"
            file?.write(Data(end.utf8))
            try file?.close()
            file = nil
        case .resumed, .saved, .evaluated, .parameters:
            break
        }
    }

    /// Interns the names of the phases, the layers' passes and the transfers.
    private func name(_ run: RunDescription) {
        func intern(_ text: String) -> Int { names.append(text); return names.count - 1 }
        for phase in StepPhase.allCases { phaseNames[phase] = intern(phase == .allReduce ? "all-reduce (waiting)" : phase.rawValue) }
        for role in NetworkRole.allCases {
            let letter = role == .generator ? "G" : "D"
            layerNames[role] = run.layers[role, default: []].enumerated().map { i, layer in
                [intern("\(letter).\(i) \(layer) forward"), intern("\(letter).\(i) \(layer) backward")]
            }
            layerObservers[role] = TimelineLayers(timeline: self, role: role)
            transferName[role] = intern("all-reduce \(letter) gradients")
        }
    }

    // MARK: StepObserver

    public func begin(_ phase: StepPhase) { phaseStart = monotonicSeconds() }

    public func end(_ phase: StepPhase) {
        // Backward's own span would hide its layers; the layers' spans cover it.
        guard phase != .backward && phase != .forward else { return }
        let now = monotonicSeconds()
        spans.append(Span(name: phaseNames[phase]!, track: 0, start: phaseStart, duration: now - phaseStart, bytes: -1))
    }

    public func layerObserver(for network: NetworkRole) -> LayerObserver? { layerObservers[network] }

    public func transfer(_ t: Transfer) {
        let now = monotonicSeconds()
        if !t.completed {
            transferStarts[t.network, default: [:]][t.bucket] = now
        } else if let start = transferStarts[t.network]?[t.bucket] {
            spans.append(Span(name: transferName[t.network]!, track: 1, start: start, duration: now - start, bytes: t.bytes))
        }
    }

    fileprivate func layer(_ role: NetworkRole, _ i: Int, backward: Bool, start: Double) {
        let now = monotonicSeconds()
        spans.append(Span(name: layerNames[role]![i][backward ? 1 : 0], track: 0, start: start, duration: now - start, bytes: -1))
    }

    // MARK: Writing

    /// Rank 0 gathers every rank's spans since the last flush (with `header`, the names of the
    /// processes and tracks first) and appends them to the file. A collective.
    private func flush(header: Bool) throws {
        let rank = communicator.rank
        var text = ""
        if header {
            text += "{\"name\":\"process_name\",\"ph\":\"M\",\"pid\":\(rank),\"args\":{\"name\":\"rank \(rank) (\(escaped(communicator.processorName)))\"}},\n"
                + "{\"name\":\"process_sort_index\",\"ph\":\"M\",\"pid\":\(rank),\"args\":{\"sort_index\":\(rank)}},\n"
                + "{\"name\":\"thread_name\",\"ph\":\"M\",\"pid\":\(rank),\"tid\":0,\"args\":{\"name\":\"step\"}},\n"
                + "{\"name\":\"thread_name\",\"ph\":\"M\",\"pid\":\(rank),\"tid\":1,\"args\":{\"name\":\"gradient all-reduces\"}},\n"
        }
        for span in spans {
            text += "{\"name\":\"\(escaped(names[span.name]))\",\"cat\":\"\(span.track == 1 ? "communication" : "compute")\","
                + "\"ph\":\"X\",\"pid\":\(rank),\"tid\":\(span.track),\"ts\":\(microseconds(span.start - origin)),"
                + "\"dur\":\(microseconds(span.duration))"
                + (span.bytes >= 0 ? ",\"args\":{\"bytes\":\(span.bytes)}" : "") + "},\n"
        }
        spans.removeAll(keepingCapacity: true)
        let all = try communicator.gather(Array(text.utf8), root: 0)
        if let file { for part in all where !part.isEmpty { file.write(Data(part)) } }
    }

    private func microseconds(_ seconds: Double) -> String { String(format: "%.3f", seconds * 1e6) }

    private func escaped(_ text: String) -> String {
        text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
    }
}

/// A network's layer passes, for the timeline.
private final class TimelineLayers: LayerObserver {
    private unowned let timeline: Timeline
    private let role: NetworkRole
    private var start = 0.0

    init(timeline: Timeline, role: NetworkRole) {
        self.timeline = timeline
        self.role = role
    }

    func begin(layer: Int, _ pass: LayerPass) { start = monotonicSeconds() }
    func end(layer: Int, _ pass: LayerPass) { timeline.layer(role, layer, backward: pass != .forward, start: start) }
}
