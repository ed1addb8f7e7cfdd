/// A collective that did not complete: another rank stopped arriving. The ranks' state no
/// longer agrees, so the job stops (``Communicator/abort(message:exitCode:)``).
public enum CommunicationError: Error, Equatable, CustomStringConvertible {
    /// `operation` waited `seconds` (past the stall timeout) and the ranks in `missing` did
    /// not arrive: they are stopped, hung, or waiting somewhere else. `missing` is empty when
    /// every rank reported itself waiting (a collective called in another order on some rank).
    case stalled(operation: String, seconds: Double, missing: [Int])
    /// A stop signal arrived and the collective then waited `seconds` more without completing:
    /// another rank stopped or died, so the step cannot finish and no checkpoint is written.
    case abandoned(operation: String, signal: Int32, seconds: Double)

    public var description: String {
        switch self {
        case let .stalled(operation, seconds, missing):
            let who = missing.isEmpty
                ? "every rank reports waiting, in collectives that do not match"
                : "rank\(missing.count == 1 ? "" : "s") \(missing.map(String.init).joined(separator: ", ")) did not arrive"
            return "\(operation) waited \(Int(seconds.rounded())) s (--stall-timeout): \(who); "
                + "the job stops (a stopped, hung or overloaded host: check it, then --resume from the last checkpoint)"
        case let .abandoned(operation, signal, seconds):
            return "stopping on \(StopSignal.name(signal)): \(operation) still waited for another rank \(Int(seconds.rounded())) s "
                + "after the signal (a rank stopped or died), so this step cannot finish and no checkpoint is written; "
                + "--resume continues from the last one"
        }
    }
}
