/// The processes that train one model together, as data-parallel replicas.
///
/// Every rank calls the collective operations (all-reduce, broadcast, barrier) in the same
/// order with buffers of the same length; a rank that skips one leaves the others waiting.
/// Buffers are reduced in place. Only the thread that created the communicator calls it.
///
/// Implementations: ``MPICommunicator`` under `mpirun`, ``SingleProcessCommunicator``
/// otherwise; ``Communicators/makeDefault(stallTimeout:)`` picks one.
public protocol Communicator: AnyObject {
    /// This process's index, `0..<size`.
    var rank: Int { get }
    /// The number of processes.
    var size: Int { get }
    /// The host this rank runs on, as MPI names it.
    var processorName: String { get }

    /// Replaces every element with its reduction over all ranks.
    func allReduce(_ buffer: UnsafeMutableBufferPointer<Float>, _ op: Reduction) throws
    /// Replaces every element with its reduction over all ranks (metrics, checksums).
    func allReduce(_ buffer: UnsafeMutableBufferPointer<Double>, _ op: Reduction) throws
    /// Starts an all-reduce and returns at once; the buffer belongs to the communicator
    /// until ``PendingAllReduce/wait()`` returns or ``PendingAllReduce/test()`` returns true.
    /// Every rank starts its all-reduces in the same order.
    func startAllReduce(_ buffer: UnsafeMutableBufferPointer<Float>, _ op: Reduction) throws -> PendingAllReduce

    /// Replaces every element with its reduction over all ranks, for gradients sent as IEEE
    /// half precision (see `Kernels.HalfScale`). Each combination of two ranks' values is
    /// computed in Float and rounded once to Float16, so that with two ranks a sum is exactly
    /// `Float16(Float(a) + Float(b))`; with more, each partial sum is rounded so, in an order
    /// MPI picks. `.max` and `.min` ignore a NaN against a number (as C's `fmax`). `.mean`
    /// rounds twice, the sum and then its quotient: a gradient bucket rather sums and folds
    /// `1 / size` into the unscaling (`Backend.convertFromHalf`), one rounding.
    func allReduce(_ buffer: UnsafeMutableBufferPointer<Float16>, _ op: Reduction) throws
    /// Starts the Float16 all-reduce above and returns at once (as the Float one).
    func startAllReduce(_ buffer: UnsafeMutableBufferPointer<Float16>, _ op: Reduction) throws -> PendingAllReduce

    /// Copies `root`'s buffer into every other rank's buffer.
    func broadcast(_ buffer: UnsafeMutableBufferPointer<Float>, root: Int) throws
    /// Copies `root`'s bytes into every other rank's bytes (small configuration, strings).
    func broadcast(_ bytes: UnsafeMutableRawBufferPointer, root: Int) throws

    /// Returns every rank's bytes, in rank order, on `root`, and `[]` on the other ranks.
    /// Lengths may differ between ranks (per-rank trace events, profiles).
    func gather(_ bytes: [UInt8], root: Int) throws -> [[UInt8]]

    /// Returns once every rank has called it.
    func barrier() throws

    /// Prints `message` on one line of standard error, prefixed with the rank, and ends
    /// every process of the job with `exitCode`. For errors one rank cannot recover from:
    /// exiting alone would leave the other ranks waiting in their next collective.
    func abort(message: String, exitCode: Int32) -> Never

    /// Ends communication; call once every rank is done, before the process exits.
    /// Later calls do nothing; no collective may follow.
    func finalize() throws
}

/// How an all-reduce combines the ranks' elements.
public enum Reduction: Sendable {
    /// The sum over ranks.
    case sum
    /// The sum over ranks divided by the number of ranks (gradient averaging).
    case mean
    /// The largest value over ranks.
    case max
    /// The smallest value over ranks.
    case min
}

/// An all-reduce started by `Communicator.startAllReduce(_:_:)` (Float or Float16), to be tested or waited on.
///
/// Open MPI moves a non-blocking collective along only inside MPI calls (it has no progress
/// thread): started and then left alone, the all-reduce mostly happens in `wait()`. Calling
/// `test()` now and then (between layers of a backward pass) lets it progress meanwhile.
public final class PendingAllReduce {
    /// The transfer, until it has completed and its finishing work is done; nil after.
    private var transfer: Transfer?

    /// What a communicator hands over: how to wait for the transfer, how to test whether it
    /// has completed, and what is left to do once it has (the division of a mean), run once.
    struct Transfer {
        let wait: () throws -> Void
        let test: () throws -> Bool
        let finish: () -> Void
    }

    /// `nil`: nothing to wait for (one rank, an empty buffer).
    init(_ transfer: Transfer?) { self.transfer = transfer }

    /// Blocks until the reduced values are in the buffer. Later calls return at once.
    public func wait() throws {
        guard let transfer else { return }
        self.transfer = nil
        try transfer.wait()
        transfer.finish()
    }

    /// Whether the reduced values are in the buffer, making progress on the transfer
    /// (`MPI_Test`) and returning at once either way. Once it returns true the finishing work
    /// has been done, once, the buffer is the caller's again, later calls return true and
    /// `wait()` returns at once.
    ///
    /// After either throws, the handle is spent: later calls return at once (`test()`: true)
    /// and the buffer's contents are undefined, as after a failed blocking all-reduce.
    public func test() throws -> Bool {
        guard let transfer else { return true }
        self.transfer = nil
        guard try transfer.test() else {
            self.transfer = transfer
            return false
        }
        transfer.finish()
        return true
    }

    /// A handle dropped without `wait()` still waits: MPI may be writing the caller's buffer.
    deinit { try? wait() }
}

extension Communicator {
    /// Whether this is rank 0, the one that logs and writes files.
    public var isRoot: Bool { rank == 0 }

    /// Copies rank 0's buffer into every other rank's buffer.
    public func broadcast(_ buffer: UnsafeMutableBufferPointer<Float>) throws {
        try broadcast(buffer, root: 0)
    }

    /// Ends the job with exit code 1; see ``abort(message:exitCode:)``.
    public func abort(message: String) -> Never {
        abort(message: message, exitCode: 1)
    }

    /// Returns `root`'s bytes on every rank; other ranks' `bytes` are ignored (their length too).
    public func broadcast(_ bytes: [UInt8], root: Int = 0) throws -> [UInt8] {
        var count = UInt64(rank == root ? bytes.count : 0)
        try withUnsafeMutableBytes(of: &count) { try broadcast($0, root: root) }
        var result = rank == root ? bytes : [UInt8](repeating: 0, count: Int(count))
        try result.withUnsafeMutableBytes { try broadcast($0, root: root) }
        return result
    }

    /// Returns `root`'s string on every rank; other ranks' `string` is ignored.
    public func broadcast(_ string: String, root: Int = 0) throws -> String {
        String(decoding: try broadcast(Array(string.utf8), root: root), as: UTF8.self)
    }
}

/// Finishes a mean once the sum is in: divides by the number of ranks.
func divide<T: FloatingPoint>(_ buffer: UnsafeMutableBufferPointer<T>, by size: Int) {
    let divisor = T(size)
    for i in buffer.indices { buffer[i] /= divisor }
}
