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
    private var finalized = false
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

    /// Open MPI 4.1 runs an in-place `MPI_Iallreduce` on fewer than 4 ranks as a binomial
    /// reduce then broadcast: the whole buffer travels twice, one way after the other, where the
    /// blocking `MPI_Allreduce` exchanges it once (recursive doubling). The overlapped gradient
    /// buckets are in-place `MPI_Iallreduce`s, so unless the user set the parameter, Gantry
    /// picks recursive doubling for 2 ranks and Rabenseifner's reduce-scatter + allgather
    /// (Open MPI's blocking choice for large buffers) beyond. Read at `MPI_Init`.
    public static func nonBlockingAllReduceDefault(environment: [String: String]) -> String? {
        guard environment[nonBlockingAllReduceParameter] == nil else { return nil }
        let ranks = environment["OMPI_COMM_WORLD_SIZE"].flatMap { Int($0) } ?? 1
        return ranks <= 2 ? "4" : "3"  // recursive_doubling, rabenseifner
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
        self.comm = comm
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
            try check(MPI_Gather(&count, 1, cmpi_int(), counts.baseAddress, 1, cmpi_int(), Int32(root), comm), "MPI_Gather")
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
                try check(MPI_Gatherv(mine.baseAddress, count, cmpi_byte(), all.baseAddress, counts, offsets, cmpi_byte(),
                                      Int32(root), comm), "MPI_Gatherv")
            }
        }
        return zip(offsets, counts).map { Array(all[Int($0) ..< Int($0 + $1)]) }
    }

    public func barrier() throws {
        try checkOpen()
        try check(MPI_Barrier(comm), "MPI_Barrier")
    }

    public func abort(message: String, exitCode: Int32) -> Never {
        writeErrorLine("[rank \(rank)] \(message)")
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
        try check(MPI_Finalize(), "MPI_Finalize")
    }

    // MARK: - Helpers

    /// In-place all-reduce of `count` elements of `type`; a mean is a sum here.
    private func allReduce(_ base: UnsafeMutableRawPointer?, _ count: Int, _ type: MPI_Datatype, _ op: Reduction) throws {
        try allReduce(base, count, type, mpiOp(op))
    }

    private func allReduce(_ base: UnsafeMutableRawPointer?, _ count: Int, _ type: MPI_Datatype, _ op: MPI_Op) throws {
        try checkOpen()
        guard count > 0 else { return }
        try check(MPI_Allreduce(cmpi_in_place(), base, self.count(count), type, op, comm), "MPI_Allreduce")
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
            wait: { try check(MPI_Wait(&request, cmpi_status_ignore()), "MPI_Wait") },
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
        try check(MPI_Bcast(base, self.count(count), type, Int32(root), comm), "MPI_Bcast")
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
