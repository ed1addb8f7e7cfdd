internal import CSignals
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Stop requests by signal: SIGINT (Ctrl-C) and SIGTERM (`kill`, Slurm's preemption, `mpirun`
/// passing either on to its ranks). Once installed, the first one is recorded and nothing else
/// happens: the run loop asks at the end of each step, the ranks agree on the step to stop
/// after, and rank 0 writes a checkpoint. A second signal a second or more after the first ends
/// the process at once (exit status 128 + the signal), without a checkpoint.
///
/// While a stop is pending, a collective that cannot complete within
/// ``MPICommunicator/stopGraceSeconds`` (a rank stopped or died) ends the wait with
/// ``CommunicationError/abandoned(operation:signal:seconds:)``.
public enum StopSignal {
    /// Installs the handlers for SIGINT and SIGTERM (once per process).
    public static func install() { gantry_signals_install() }

    /// Puts the signals' default actions back (a process that is ending anyway).
    public static func uninstall() { gantry_signals_uninstall() }

    /// The first stop signal received, or nil.
    public static var received: Int32? {
        let signal = gantry_signal_received()
        return signal == 0 ? nil : signal
    }

    /// Seconds since the first stop signal arrived, or nil if none has.
    public static var secondsSinceReceived: Double? {
        guard received != nil else { return nil }
        let time = gantry_signal_time()
        return time == 0 ? 0 : max(0, monotonicNow() - time)
    }

    /// Records `signal` as if it had arrived (tests, which cannot send one to themselves
    /// without also stopping the test runner).
    public static func simulate(_ signal: Int32) { gantry_signal_raise_for_testing(signal) }

    /// The conventional name, "SIGINT" or "SIGTERM".
    public static func name(_ signal: Int32) -> String {
        switch signal {
        case SIGINT: "SIGINT"
        case SIGTERM: "SIGTERM"
        default: "signal \(signal)"
        }
    }
}

/// Seconds on the monotonic clock (the one the signal handler reads).
func monotonicNow() -> Double {
    var t = timespec()
    clock_gettime(CLOCK_MONOTONIC, &t)
    return Double(t.tv_sec) + 1e-9 * Double(t.tv_nsec)
}
