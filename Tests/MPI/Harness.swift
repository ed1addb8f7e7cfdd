import Distributed
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Named checks run in order on every rank of an `mpirun` job. After each, the ranks
/// agree on which of them failed; rank 0 prints one line per check and then
/// `N passed, M failed`. Other ranks print only their failure messages, on standard error.
///
/// A check must make the same collective calls on every rank whatever it finds: record
/// failures with ``CheckContext/expect(_:_:)`` and go on, rather than return early on one
/// rank while the others wait in a collective. (A thrown error fails the check too.)
struct Harness {
    typealias Body = (CheckContext) throws -> Void

    private(set) var checks: [(name: String, body: Body)] = []

    /// Adds a check; names are unique, and are what the filters on the command line match.
    mutating func add(_ name: String, _ body: @escaping Body) {
        precondition(!checks.contains { $0.name == name }, "two checks named '\(name)'")
        checks.append((name, body))
    }

    /// Runs the checks whose name contains one of `filters` (all when empty) and returns
    /// the exit status, the same on every rank: 0 when every check passed on every rank.
    func run(on comm: any Communicator, filters: [String] = []) -> Int32 {
        let selected = checks.filter { check in filters.isEmpty || filters.contains { check.name.contains($0) } }
        if selected.isEmpty {
            if comm.isRoot { printLine("no check matches \(filters)") }
            return 1
        }
        let hosts = gatherProcessorNames(comm)
        if comm.isRoot {
            let perHost = hosts.reduce(into: [String]()) { if !$0.contains($1) { $0.append($1) } }
                .map { host in "\(host) x\(hosts.filter { $0 == host }.count)" }
            printLine("gantry-mpi-tests: \(selected.count) check\(selected.count == 1 ? "" : "s")"
                      + " on \(comm.size) rank\(comm.size == 1 ? "" : "s") (\(perHost.joined(separator: ", ")))")
        }
        var failedCount = 0
        for check in selected {
            let context = CheckContext(comm: comm)
            let start = ContinuousClock.now
            do { try check.body(context) } catch { context.fail("threw \(error)") }
            let seconds = (ContinuousClock.now - start).seconds
            for message in context.failures.prefix(5) {
                writeStandardError("[rank \(comm.rank)] FAIL \(check.name): \(message)")
            }

            // One slot per rank: after the sum, slot r is 1 if rank r failed.
            var failedOnRank = [Double](repeating: 0, count: comm.size)
            failedOnRank[comm.rank] = context.failures.isEmpty ? 0 : 1
            do {
                try failedOnRank.withUnsafeMutableBufferPointer { try comm.allReduce($0, .sum) }
            } catch {
                comm.abort(message: "gathering the result of '\(check.name)': \(error)")
            }
            let failedRanks = failedOnRank.indices.filter { failedOnRank[$0] != 0 }
            if !failedRanks.isEmpty { failedCount += 1 }
            if comm.isRoot {
                if failedRanks.isEmpty {
                    printLine("PASS \(check.name) (\(format(seconds)) s)")
                } else {
                    printLine("FAIL \(check.name) (on ranks \(failedRanks.map(String.init).joined(separator: ", ")))")
                }
            }
        }
        if comm.isRoot { printLine("\(selected.count - failedCount) passed, \(failedCount) failed") }
        return failedCount == 0 ? 0 : 1
    }

    /// Every rank's processor name, in rank order, by one string broadcast per rank.
    private func gatherProcessorNames(_ comm: any Communicator) -> [String] {
        do {
            return try (0..<comm.size).map { try comm.broadcast(comm.processorName, root: $0) }
        } catch {
            comm.abort(message: "gathering processor names: \(error)")
        }
    }
}

/// What a check sees: the communicator, and where its failures go.
final class CheckContext {
    let comm: any Communicator
    private(set) var failures: [String] = []

    init(comm: any Communicator) { self.comm = comm }

    /// Records `message` as a failure of the check unless `condition` holds.
    func expect(_ condition: Bool, _ message: @autoclosure () -> String) {
        if !condition { failures.append(message()) }
    }

    /// Records a failure.
    func fail(_ message: String) { failures.append(message) }
}

/// Prints a line on standard output at once, so that lines are not lost if the job aborts.
func printLine(_ line: String) {
    print(line)
    fflush(nil)
}

/// Writes a line on standard error (Swift 6 will not let code name the `stderr` global).
func writeStandardError(_ line: String) {
    fflush(nil)
    let bytes = Array((line + "\n").utf8)
    _ = bytes.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
}

private func format(_ seconds: Double) -> String {
    let hundredths = Int((seconds * 100).rounded())
    let fraction = hundredths % 100
    return "\(hundredths / 100).\(fraction < 10 ? "0" : "")\(fraction)"
}

extension Duration {
    /// The duration in seconds.
    var seconds: Double {
        Double(components.seconds) + Double(components.attoseconds) * 1e-18
    }
}
