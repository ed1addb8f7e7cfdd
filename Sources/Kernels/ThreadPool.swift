#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Synchronization

/// Work for a `ThreadPool`: `run(worker:pool:)` does the share of worker `worker` (of
/// `pool.count`). A value (a struct of pointers and sizes), not a closure, so that a dispatch
/// allocates nothing: the workers reach it through its address on the caller's stack and a
/// plain function, where a closure handed to other threads must go through
/// `withoutActuallyEscaping`, which boxes it on the heap (measured: two allocations per
/// dispatch, 150 per DCGAN step, which otherwise allocates nothing).
public protocol PoolWork {
    func run(worker: Int, pool: ThreadPool)
}

extension PoolWork {
    /// A worker's way in when the work's type is only known at run time (`runUnspecialized`).
    static func run(at address: UnsafeRawPointer, worker: Int, pool: ThreadPool) {
        address.assumingMemoryBound(to: Self.self).pointee.run(worker: worker, pool: pool)
    }
}

/// A loop body over a range of indices, for `ThreadPool.split` and `Backend.parallelFor`: a
/// struct of pointers and constants, for the reason `PoolWork` gives.
public protocol RangeWork {
    func callAsFunction(_ range: Range<Int>)
}

/// A fixed team of threads that run one piece of work together: `run(work)` calls
/// `work.run(worker: i, pool:)` once for each worker index `i` in `0 ..< count`, the calling
/// thread as worker 0 and the pool's threads as 1 ..< count, and returns when all have
/// finished. Inside, `barrier()` waits for the whole team (the GEMM's "pack B, barrier,
/// multiply"). `split` runs a loop body over contiguous pieces of a range.
///
/// The threads are created once, with the pool, and a dispatch allocates nothing (see
/// `PoolWork`), so a training step creates no thread and allocates nothing.
///
/// Between dispatches a worker polls for 100 µs (the next kernel of a step usually follows at
/// once), then sleeps on a condition variable, so an idle pool (between steps, during an
/// all-reduce) does not burn a core that another rank or process could use. The caller
/// waits for the workers the same way. Barriers spin and yield: the work between them is
/// split evenly, so waits are short unless the OS has taken a core away, and then yielding
/// gives it back.
///
/// One caller at a time: like the backends that own it, a pool must not be used from two
/// threads at once, and work must not call `run` again.
public final class ThreadPool: @unchecked Sendable {
    /// Threads in the team, the caller included (1: `run` runs the work on the caller alone).
    public let count: Int

    /// Bumped once per dispatch; a worker runs the work when it sees a value it has not run.
    private let generation = Atomic<Int>(0)
    /// Workers (not counting the caller) still running the current work.
    private let running = Atomic<Int>(0)
    /// Set once, by `deinit`, to end the workers.
    private let stopping = Atomic<Bool>(false)
    /// The team barrier: arrivals in the current phase, and the phase.
    private let arrived = Atomic<Int>(0)
    private let phase = Atomic<Int>(0)
    /// The work of the current dispatch: its address on the caller's stack (valid while
    /// `run` waits), and the plain function that runs it for a worker index (or, for
    /// `runUnspecialized`, its type). Written before `generation` is bumped (release) and
    /// read after a worker sees the bump (acquire).
    private nonisolated(unsafe) var work: UnsafeRawPointer?
    private nonisolated(unsafe) var entry: ((UnsafeRawPointer, Int, ThreadPool) -> Void)?
    private nonisolated(unsafe) var workType: (any PoolWork.Type)?

    /// Sleeping: `wake` is signalled (under `lock`) when `generation` changes and a worker
    /// sleeps; `done` when the last worker finishes and the caller sleeps.
    private let lock: UnsafeMutablePointer<pthread_mutex_t>
    private let wake: UnsafeMutablePointer<pthread_cond_t>
    private let done: UnsafeMutablePointer<pthread_cond_t>
    private nonisolated(unsafe) var sleepingWorkers = 0
    private nonisolated(unsafe) var callerSleeping = false
    private nonisolated(unsafe) var workers: [pthread_t] = []

    /// How long a waiting thread polls before it sleeps: longer than it takes to wake a
    /// sleeping thread (50-100 µs here), or a caller and a worker that keep missing each
    /// other sleep and wake on every kernel (measured: a 2-thread 64 x 64 x 64 multiply took
    /// 12 µs instead of 3 with 20 µs of polling); short enough that the serial parts of a
    /// step (Adam, batch norm) leave the worker's core to others.
    static let spinNanoseconds = 100_000
    /// Polls between `sched_yield`s once a wait is no longer short.
    static let spinsBeforeYielding = 256

    /// A team of `threads` (at least 1); starts `threads - 1` threads.
    public init(threads: Int) {
        precondition(threads >= 1, "a thread pool needs at least one thread, got \(threads)")
        count = threads
        lock = .allocate(capacity: 1)
        wake = .allocate(capacity: 1)
        done = .allocate(capacity: 1)
        pthread_mutex_init(lock, nil)
        pthread_cond_init(wake, nil)
        pthread_cond_init(done, nil)
        for index in 1 ..< threads {
            // The worker holds the pool unretained: `deinit` joins every worker before the
            // pool's memory goes, and a retained pool would never reach `deinit`.
            let start = UnsafeMutablePointer<WorkerStart>.allocate(capacity: 1)
            start.initialize(to: WorkerStart(pool: Unmanaged.passUnretained(self), index: index))
            var thread = pthread_t()
            let status = pthread_create(&thread, nil, { argument in
                let start = argument!.assumingMemoryBound(to: WorkerStart.self)
                let (pool, index) = (start.pointee.pool, start.pointee.index)
                start.deinitialize(count: 1)
                start.deallocate()
                pool._withUnsafeGuaranteedRef { $0.workerLoop(index) }
                return nil
            }, start)
            precondition(status == 0, "cannot start a kernel thread: pthread_create returned \(status)")
            workers.append(thread)
        }
    }

    deinit {
        pthread_mutex_lock(lock)
        stopping.store(true, ordering: .releasing)
        generation.add(1, ordering: .releasing)
        pthread_cond_broadcast(wake)
        pthread_mutex_unlock(lock)
        for thread in workers { pthread_join(thread, nil) }
        pthread_cond_destroy(wake); pthread_cond_destroy(done); pthread_mutex_destroy(lock)
        lock.deallocate(); wake.deallocate(); done.deallocate()
    }

    /// Calls `work.run(worker: i, pool: self)` for every `i` in `0 ..< count`, each on its own
    /// thread (0 on the caller's), and returns when all calls have returned.
    ///
    /// Inlinable so that it is compiled where `Work` is known (the kernels of an instruction
    /// set): there the workers' entry below is a plain function of that type, which costs no
    /// allocation, and runs code specialized for it. Where `Work` is itself generic, use
    /// `runUnspecialized`.
    @inlinable
    public func run<Work: PoolWork>(_ work: Work) {
        guard count > 1 else { return work.run(worker: 0, pool: self) }
        withUnsafePointer(to: work) { address in
            dispatch(UnsafeRawPointer(address)) { address, worker, pool in
                address.assumingMemoryBound(to: Work.self).pointee.run(worker: worker, pool: pool)
            }
        }
    }

    /// `run` for work whose type is not known where the call is compiled (a generic
    /// `Backend.parallelFor`, reached through an existential): the workers find `run`
    /// through the type's witness table, which builds nothing at run time. The work's `run`
    /// is then the generic, unspecialized one, fine for a body that is concrete code.
    public func runUnspecialized<Work: PoolWork>(_ work: Work) {
        guard count > 1 else { return work.run(worker: 0, pool: self) }
        workType = Work.self
        withUnsafePointer(to: work) { address in
            dispatch(UnsafeRawPointer(address)) { address, worker, pool in
                pool.workType!.run(at: address, worker: worker, pool: pool)
            }
        }
        workType = nil
    }

    /// Runs `entry(work, i, self)` on every worker `i` and waits for all.
    @usableFromInline
    func dispatch(_ work: UnsafeRawPointer, _ entry: @escaping (UnsafeRawPointer, Int, ThreadPool) -> Void) {
        self.work = work
        self.entry = entry
        running.store(count - 1, ordering: .relaxed)
        // Under the lock, so a worker deciding to sleep cannot miss the bump.
        pthread_mutex_lock(lock)
        generation.add(1, ordering: .releasing)
        if sleepingWorkers > 0 { pthread_cond_broadcast(wake) }
        pthread_mutex_unlock(lock)

        entry(work, 0, self)
        waitForWorkers()
        self.work = nil
        self.entry = nil
    }

    /// Runs `body` on contiguous pieces that together cover `0 ..< count`, one per thread.
    /// Pieces are whole multiples of `granularity` but for the first and last; with an
    /// `output` (the floats written are `output[0 ..< count]`), pieces start on its cache
    /// lines, so no two threads write one line. Inlinable for the reason `run` is.
    @inlinable
    public func split<Body: RangeWork>(_ count: Int, granularity: Int, output: UnsafeMutablePointer<Float>? = nil,
                                       _ body: Body) {
        run(Pieces(body, count: count, granularity: granularity, output: output))
    }

    /// `split` where `Body` is not known where the call is compiled (see `runUnspecialized`).
    public func splitUnspecialized<Body: RangeWork>(_ count: Int, granularity: Int, _ body: Body) {
        runUnspecialized(Pieces(body, count: count, granularity: granularity, output: nil))
    }

    /// Waits until every thread of the team has reached this barrier in the current `run`.
    /// Every worker index must call it the same number of times.
    public func barrier() {
        guard count > 1 else { return }
        let current = phase.load(ordering: .acquiring)
        if arrived.add(1, ordering: .acquiringAndReleasing).newValue == count {
            arrived.store(0, ordering: .relaxed)
            phase.store(current &+ 1, ordering: .releasing)
            return
        }
        var spins = 0
        while phase.load(ordering: .acquiring) == current {
            spins += 1
            if spins == ThreadPool.spinsBeforeYielding { spins = 0; sched_yield() }
        }
    }

    private func waitForWorkers() {
        if ThreadPool.spin(until: { running.load(ordering: .acquiring) == 0 }) { return }
        pthread_mutex_lock(lock)
        callerSleeping = true
        while running.load(ordering: .acquiring) != 0 { pthread_cond_wait(done, lock) }
        callerSleeping = false
        pthread_mutex_unlock(lock)
    }

    /// Polls `ready` until it holds (true) or `spinNanoseconds` have passed (false): a few
    /// microseconds without a system call, then yielding the core between polls, so a thread
    /// of this team that the OS has parked on this core gets to run.
    @inline(__always)
    static func spin(until ready: () -> Bool) -> Bool {
        var polls = 0, deadline = 0
        while !ready() {
            polls += 1
            if polls % spinsBeforeYielding == 0 {
                let now = monotonicNanoseconds()
                if deadline == 0 { deadline = now + spinNanoseconds } else if now >= deadline { return false }
                if polls >= 16 * spinsBeforeYielding { sched_yield() }
            }
        }
        return true
    }

    @inline(__always)
    static func monotonicNanoseconds() -> Int {
        var t = timespec()
        clock_gettime(CLOCK_MONOTONIC, &t)
        return t.tv_sec * 1_000_000_000 + t.tv_nsec
    }

    private func workerLoop(_ index: Int) {
        var seen = 0
        while true {
            if !ThreadPool.spin(until: { generation.load(ordering: .acquiring) != seen }) {
                pthread_mutex_lock(lock)
                sleepingWorkers += 1
                while generation.load(ordering: .acquiring) == seen { pthread_cond_wait(wake, lock) }
                sleepingWorkers -= 1
                pthread_mutex_unlock(lock)
            }
            seen = generation.load(ordering: .acquiring)
            if stopping.load(ordering: .acquiring) { return }
            entry!(work!, index, self)
            if running.subtract(1, ordering: .acquiringAndReleasing).newValue == 0 {
                pthread_mutex_lock(lock)
                if callerSleeping { pthread_cond_signal(done) }
                pthread_mutex_unlock(lock)
            }
        }
    }

}

/// `body` over `0 ..< count` in one piece per worker: the values before `output`'s first
/// cache-line boundary, then whole multiples of `granularity` shared as evenly as they go.
@usableFromInline
struct Pieces<Body: RangeWork>: PoolWork {
    @usableFromInline let body: Body
    @usableFromInline let count: Int, head: Int, granularity: Int

    @inlinable
    init(_ body: Body, count: Int, granularity: Int, output: UnsafeMutablePointer<Float>?) {
        self.body = body
        self.count = count
        self.granularity = granularity
        head = output.map { min(count, (64 - Int(bitPattern: $0) % 64) % 64 / MemoryLayout<Float>.size) } ?? 0
    }

    @inlinable
    func run(worker t: Int, pool: ThreadPool) {
        let team = pool.count
        let units = (count - head + granularity - 1) / granularity
        let start = t == 0 ? 0 : min(count, head + units * t / team * granularity)
        let end = min(count, head + units * (t + 1) / team * granularity)
        if end > start { body(start ..< end) }
    }
}

/// What a new worker thread needs: its pool and its index.
private struct WorkerStart {
    let pool: Unmanaged<ThreadPool>
    let index: Int
}
