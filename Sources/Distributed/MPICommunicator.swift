internal import CMPI
import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The ranks of an `mpirun` job, over `MPI_COMM_WORLD`.
///
/// MPI is initialized once per process, by the first ``world()``, at the
/// `MPI_THREAD_FUNNELED` level: a rank may run threads of its own, but only the thread
/// that called ``world()`` calls MPI. Call ``finalize()`` on every rank at the end.
///
/// Nothing finalizes MPI at exit on its own: a rank that exits early (an error on one
/// host) must not block in `MPI_Finalize` waiting for ranks that wait for it in a
/// collective; without it, `mpirun` sees the exit and stops the job.
public final class MPICommunicator: Communicator {
    public let rank: Int
    public let size: Int
    public let processorName: String
    private let comm: MPI_Comm
    /// A duplicate of `comm` for the reports ranks exchange when a collective stalls, so that
    /// they cannot match any message of the job's own collectives.
    private let control: MPI_Comm
    private var finalized = false

    /// Seconds a collective may wait for the other ranks before the job stops with
    /// ``CommunicationError/stalled(operation:seconds:missing:)`` (Horovod warns after 60 s).
    public var stallTimeout: Double = 60
    /// Once a stop signal has arrived (``StopSignal``), seconds a collective may still wait
    /// before ``CommunicationError/abandoned(operation:signal:seconds:)``: the ranks finish
    /// their step within this unless one has stopped or died.
    public var stopGraceSeconds: Double = 5
    /// Float16's datatype and operations (see `CMPI/shim.h`), made by the first Float16
    /// all-reduce and freed by ``finalize()``.
    private var half: HalfPrecision?

    /// The one instance; MPI cannot be initialized twice in a process.
    nonisolated(unsafe) private static var shared: MPICommunicator?

    /// The communicator over all ranks of the job, initializing MPI on the first call.
    ///
    /// Throws ``MPIError`` if MPI was initialized by someone else, has been finalized,
    /// or cannot give the `MPI_THREAD_FUNNELED` thread level.
    public static func world() throws -> MPICommunicator {
        if let shared { return shared }
        var flag: Int32 = 0
        try check(MPI_Finalized(&flag), "MPI_Finalized")
        if flag != 0 {
            throw MPIError(code: cmpi_err_other(), function: "MPI_Init_thread", message: "MPI was already finalized")
        }
        try check(MPI_Initialized(&flag), "MPI_Initialized")
        if flag != 0 {
            throw MPIError(code: cmpi_err_other(), function: "MPI_Init_thread",
                           message: "MPI was initialized outside MPICommunicator")
        }
        applyNonBlockingAllReduceDefault()
        var provided: Int32 = 0
        try check(MPI_Init_thread(nil, nil, cmpi_thread_funneled(), &provided), "MPI_Init_thread")
        let world = cmpi_comm_world()
        guard provided >= cmpi_thread_funneled() else {
            MPI_Finalize()
            throw MPIError(code: cmpi_err_other(), function: "MPI_Init_thread",
                           message: "asked for thread level MPI_THREAD_FUNNELED, MPI provides level \(provided)")
        }
        try check(MPI_Comm_set_errhandler(world, cmpi_errors_return()), "MPI_Comm_set_errhandler")
        let communicator = try MPICommunicator(comm: world)
        shared = communicator
        return communicator
    }

    /// The environment variable of Open MPI's parameter that picks `MPI_Iallreduce`'s algorithm.
    public static let nonBlockingAllReduceParameter = "OMPI_MCA_coll_libnbc_iallreduce_algorithm"

    /// Every all-reduce of Gantry's is an in-place `MPI_Iallreduce` (see `complete`), which
    /// Open MPI 4.1's `coll/libnbc` runs on fewer than 4 ranks as a binomial reduce then
    /// broadcast: the whole buffer travels twice, one way after the other. Unless the user set
    /// the parameter, Gantry picks Rabenseifner's reduce-scatter + allgather (Open MPI's
    /// blocking choice for large buffers; the ring where a rank would get no element): on
    /// 2 ranks of one Zen 5 host it trains the MLP at 107-111k images/s against 101-103k by
    /// recursive doubling, with or without overlap. Read at `MPI_Init`.
    public static func nonBlockingAllReduceDefault(environment: [String: String]) -> String? {
        environment[nonBlockingAllReduceParameter] == nil ? "3" : nil  // rabenseifner
    }

    private static func applyNonBlockingAllReduceDefault() {
        if let value = nonBlockingAllReduceDefault(environment: ProcessInfo.processInfo.environment) {
            setenv(nonBlockingAllReduceParameter, value, 0)
        }
    }

    private init(comm: MPI_Comm) throws {
        var rank: Int32 = 0
        var size: Int32 = 0
        try check(MPI_Comm_rank(comm, &rank), "MPI_Comm_rank")
        try check(MPI_Comm_size(comm, &size), "MPI_Comm_size")
        var name = [CChar](repeating: 0, count: Int(cmpi_max_processor_name()) + 1)
        var length: Int32 = 0
        try check(MPI_Get_processor_name(&name, &length), "MPI_Get_processor_name")
        var control: MPI_Comm? = nil
        try check(MPI_Comm_dup(comm, &control), "MPI_Comm_dup")
        self.comm = comm
        self.control = control!
        self.rank = Int(rank)
        self.size = Int(size)
        self.processorName = String(decoding: name.prefix(Int(length)).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    public func allReduce(_ buffer: UnsafeMutableBufferPointer<Float>, _ op: Reduction) throws {
        try allReduce(UnsafeMutableRawPointer(buffer.baseAddress), buffer.count, cmpi_float(), op)
        if op == .mean { divide(buffer, by: size) }
    }

    public func allReduce(_ buffer: UnsafeMutableBufferPointer<Double>, _ op: Reduction) throws {
        try allReduce(UnsafeMutableRawPointer(buffer.baseAddress), buffer.count, cmpi_double(), op)
        if op == .mean { divide(buffer, by: size) }
    }

    public func startAllReduce(_ buffer: UnsafeMutableBufferPointer<Float>, _ op: Reduction) throws -> PendingAllReduce {
        let size = size
        return try startAllReduce(UnsafeMutableRawPointer(buffer.baseAddress), buffer.count, cmpi_float(), mpiOp(op)) {
            if op == .mean { divide(buffer, by: size) }
        }
    }

    public func allReduce(_ buffer: UnsafeMutableBufferPointer<Float16>, _ op: Reduction) throws {
        try checkOpen()
        guard !buffer.isEmpty else { return }
        let half = try halfPrecision()
        try allReduce(UnsafeMutableRawPointer(buffer.baseAddress), buffer.count, half.type, half.op(op))
        if op == .mean { divide(buffer, by: size) }
    }

    public func startAllReduce(_ buffer: UnsafeMutableBufferPointer<Float16>, _ op: Reduction) throws -> PendingAllReduce {
        try checkOpen()
        guard !buffer.isEmpty else { return PendingAllReduce(nil) }
        let half = try halfPrecision(), size = size
        return try startAllReduce(UnsafeMutableRawPointer(buffer.baseAddress), buffer.count, half.type, half.op(op)) {
            if op == .mean { divide(buffer, by: size) }
        }
    }

    public func broadcast(_ buffer: UnsafeMutableBufferPointer<Float>, root: Int) throws {
        try broadcast(UnsafeMutableRawPointer(buffer.baseAddress), buffer.count, cmpi_float(), root: root)
    }

    public func broadcast(_ bytes: UnsafeMutableRawBufferPointer, root: Int) throws {
        try broadcast(bytes.baseAddress, bytes.count, cmpi_byte(), root: root)
    }

    public func gather(_ bytes: [UInt8], root: Int) throws -> [[UInt8]] {
        try checkOpen()
        precondition((0..<size).contains(root), "gather root \(root) is not a rank of 0..<\(size)")
        // The lengths first, then the bytes at the offsets they give.
        var count = count(bytes.count)
        var counts = [Int32](repeating: 0, count: rank == root ? size : 0)
        try counts.withUnsafeMutableBufferPointer { counts in
            var request: MPI_Request? = cmpi_request_null()
            try check(MPI_Igather(&count, 1, cmpi_int(), counts.baseAddress, 1, cmpi_int(), Int32(root), comm, &request),
                      "MPI_Igather")
            try complete(&request, "a gather")
        }
        var offsets = [Int32](repeating: 0, count: counts.count)
        for i in counts.indices.dropFirst() {
            let (end, overflow) = offsets[i - 1].addingReportingOverflow(counts[i - 1])
            precondition(!overflow, "gathering more than 2 GiB; gather in parts")
            offsets[i] = end
        }
        var all = [UInt8](repeating: 0, count: Int(offsets.last ?? 0) + Int(counts.last ?? 0))
        try bytes.withUnsafeBytes { mine in
            try all.withUnsafeMutableBytes { all in
                var request: MPI_Request? = cmpi_request_null()
                try check(MPI_Igatherv(mine.baseAddress, count, cmpi_byte(), all.baseAddress, counts, offsets, cmpi_byte(),
                                       Int32(root), comm, &request), "MPI_Igatherv")
                try complete(&request, "a gather")
            }
        }
        return zip(offsets, counts).map { Array(all[Int($0) ..< Int($0 + $1)]) }
    }

    public func barrier() throws {
        try checkOpen()
        var request: MPI_Request? = cmpi_request_null()
        try check(MPI_Ibarrier(comm, &request), "MPI_Ibarrier")
        try complete(&request, "a barrier")
    }

    public func abort(message: String, exitCode: Int32) -> Never {
        writeErrorLine("[rank \(rank)] \(message)")
        StopSignal.uninstall()  // mpirun ends the other ranks with SIGTERM: not a stop request
        if !finalized { MPI_Abort(comm, exitCode) }
        exit(exitCode)
    }

    public func finalize() throws {
        guard !finalized else { return }
        finalized = true
        if let half {
            self.half = nil
            try half.free()
        }
        var control: MPI_Comm? = self.control
        try check(MPI_Comm_free(&control), "MPI_Comm_free")
        try check(MPI_Finalize(), "MPI_Finalize")
    }

    // MARK: - Helpers

    /// Waits for `request` (a collective) to complete, testing it in a loop, so that a wait
    /// can end: past ``stallTimeout`` (naming the ranks that did not arrive), or, once a stop
    /// signal has arrived, past ``stopGraceSeconds`` after it. A blocking MPI call could do
    /// neither: it spins until every rank arrives, however long that takes.
    private func complete(_ request: inout MPI_Request?, _ operation: String) throws {
        var done: Int32 = 0
        try check(MPI_Test(&request, &done, cmpi_status_ignore()), "MPI_Test")
        if done != 0 { return }
        let start = monotonicNow()
        var polls = 0
        while true {
            try check(MPI_Test(&request, &done, cmpi_status_ignore()), "MPI_Test")
            if done != 0 { return }
            polls &+= 1
            guard polls % 64 == 0 else { continue }  // reading the clock costs about as much as a test
            let waited = monotonicNow() - start
            if waited > stallTimeout {
                throw CommunicationError.stalled(operation: operation, seconds: waited, missing: try ranksNotWaiting())
            }
            if let signal = StopSignal.received, let since = StopSignal.secondsSinceReceived, since > stopGraceSeconds {
                throw CommunicationError.abandoned(operation: operation, signal: signal, seconds: since)
            }
        }
    }

    /// After a collective stalled here: tells every other rank so, and listens for the ranks
    /// that say the same (each times out in its own wait, within a few seconds of this one) for
    /// a tenth of the stall timeout, 2 to 10 s. Returns the ranks not heard from: those did not
    /// arrive.
    private func ranksNotWaiting() throws -> [Int] {
        let tag: Int32 = 1
        var me = Int32(rank)
        for peer in 0 ..< size where peer != rank {
            var request: MPI_Request? = cmpi_request_null()
            try check(MPI_Isend(&me, 1, cmpi_int(), Int32(peer), tag, control, &request), "MPI_Isend")
            // A stopped peer never receives it; the process ends soon after either way.
            try check(MPI_Request_free(&request), "MPI_Request_free")
        }
        var heard = Set([rank])
        let deadline = monotonicNow() + min(10, max(2, stallTimeout / 10))
        while heard.count < size, monotonicNow() < deadline {
            var found: Int32 = 0
            var status = MPI_Status()
            try check(MPI_Iprobe(cmpi_any_source(), tag, control, &found, &status), "MPI_Iprobe")
            guard found != 0 else {
                usleep(1000)
                continue
            }
            var peer: Int32 = 0
            try check(MPI_Recv(&peer, 1, cmpi_int(), status.MPI_SOURCE, tag, control, cmpi_status_ignore()), "MPI_Recv")
            heard.insert(Int(status.MPI_SOURCE))
        }
        return (0 ..< size).filter { !heard.contains($0) }
    }

    /// In-place all-reduce of `count` elements of `type`; a mean is a sum here.
    private func allReduce(_ base: UnsafeMutableRawPointer?, _ count: Int, _ type: MPI_Datatype, _ op: Reduction) throws {
        try allReduce(base, count, type, mpiOp(op))
    }

    private func allReduce(_ base: UnsafeMutableRawPointer?, _ count: Int, _ type: MPI_Datatype, _ op: MPI_Op) throws {
        try checkOpen()
        guard count > 0 else { return }
        var request: MPI_Request? = cmpi_request_null()
        try check(MPI_Iallreduce(cmpi_in_place(), base, self.count(count), type, op, comm, &request), "MPI_Iallreduce")
        try complete(&request, "an all-reduce")
    }

    /// Starts an in-place all-reduce of `count` elements of `type`; `finish` runs once it has completed.
    private func startAllReduce(_ base: UnsafeMutableRawPointer?, _ count: Int, _ type: MPI_Datatype, _ op: MPI_Op,
                                finish: @escaping () -> Void) throws -> PendingAllReduce {
        try checkOpen()
        guard count > 0 else { return PendingAllReduce(nil) }
        // Shared by the two closures; MPI sets it to MPI_REQUEST_NULL when the transfer completes.
        var request: MPI_Request? = cmpi_request_null()
        try check(MPI_Iallreduce(cmpi_in_place(), base, self.count(count), type, op, comm, &request), "MPI_Iallreduce")
        return PendingAllReduce(PendingAllReduce.Transfer(
            wait: { [unowned self] in try complete(&request, "an all-reduce") },
            test: {
                var done: Int32 = 0
                try check(MPI_Test(&request, &done, cmpi_status_ignore()), "MPI_Test")
                return done != 0
            },
            finish: finish))
    }

    /// Float16's datatype and operations, made on first use. Creating them is local to
    /// this rank (no collective), so ranks may do it at different times.
    private func halfPrecision() throws -> HalfPrecision {
        if let half { return half }
        var type: MPI_Datatype? = nil
        var sum: MPI_Op? = nil, max: MPI_Op? = nil, min: MPI_Op? = nil
        try check(cmpi_half_type_create(&type), "MPI_Type_contiguous")
        try check(cmpi_half_sum_create(&sum), "MPI_Op_create")
        try check(cmpi_half_max_create(&max), "MPI_Op_create")
        try check(cmpi_half_min_create(&min), "MPI_Op_create")
        let made = HalfPrecision(type: type!, sum: sum!, max: max!, min: min!)
        half = made
        return made
    }

    private func broadcast(_ base: UnsafeMutableRawPointer?, _ count: Int, _ type: MPI_Datatype, root: Int) throws {
        try checkOpen()
        precondition((0..<size).contains(root), "broadcast root \(root) is not a rank of 0..<\(size)")
        guard count > 0 else { return }
        var request: MPI_Request? = cmpi_request_null()
        try check(MPI_Ibcast(base, self.count(count), type, Int32(root), comm, &request), "MPI_Ibcast")
        try complete(&request, "a broadcast")
    }

    private func mpiOp(_ op: Reduction) -> MPI_Op {
        switch op {
        case .sum, .mean: cmpi_sum()
        case .max: cmpi_max()
        case .min: cmpi_min()
        }
    }

    /// MPI counts are `Int32`; Gantry's largest buffer (a model's gradients) is far below.
    private func count(_ n: Int) -> Int32 {
        precondition(n <= Int(Int32.max), "\(n) elements is more than one MPI call takes; split the buffer")
        return Int32(n)
    }

    private func checkOpen() throws {
        if finalized {
            throw MPIError(code: cmpi_err_other(), function: "MPICommunicator", message: "used after finalize()")
        }
    }
}

/// Float16 on the wire: a two-byte datatype and the user operations of `CMPI/shim.h`, which
/// combine each pair of values in Float and round once.
private struct HalfPrecision {
    let type: MPI_Datatype
    let sum: MPI_Op, max: MPI_Op, min: MPI_Op

    /// A mean is a sum here, as for Float.
    func op(_ op: Reduction) -> MPI_Op {
        switch op {
        case .sum, .mean: sum
        case .max: max
        case .min: min
        }
    }

    /// Frees the operations and the type; MPI is still running.
    func free() throws {
        for op in [sum, max, min] {
            var handle: MPI_Op? = op
            try check(MPI_Op_free(&handle), "MPI_Op_free")
        }
        var handle: MPI_Datatype? = type
        try check(MPI_Type_free(&handle), "MPI_Type_free")
    }
}
