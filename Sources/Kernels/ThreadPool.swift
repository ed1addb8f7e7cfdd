#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Synchronization

/// A fixed team of threads that run one function together: `run { i in ... }` calls the body
/// once for each worker index `i` in `0 ..< count`, the calling thread as worker 0 and the
/// pool's threads as 1 ..< count, and returns when all have finished. Inside the body,
/// `barrier()` waits for the whole team (the GEMM's "pack B, barrier, multiply").
///
/// The threads are created once, with the pool, so a training step creates no thread and
/// allocates nothing: the body is a non-escaping closure on the caller's stack, and the pool
/// keeps only its address for the length of the call.
///
/// Between dispatches a worker spins for a few microseconds (the next kernel of a step
/// usually follows at once), then sleeps on a condition variable, so an idle pool (between
/// steps, during an all-reduce) does not burn a core that another rank or process could use.
/// Barriers inside a body spin and yield: the work between them is split evenly, so waits
/// are short unless the OS has taken a core away, and then yielding gives it back.
///
/// One caller at a time: like the backends that own it, a pool must not be used from two
/// threads at once, and a body must not call `run` again.
public final class ThreadPool: @unchecked Sendable {
    /// Threads in the team, the caller included (1: `run` calls the body on the caller alone).
    public let count: Int

    /// Bumped once per dispatch; a worker runs the body when it sees a value it has not run.
    private let generation = Atomic<Int>(0)
    /// Workers (not counting the caller) still running the current body.
    private let running = Atomic<Int>(0)
    /// Set once, by `deinit`, to end the workers.
    private let stopping = Atomic<Bool>(false)
    /// The team barrier: arrivals in the current phase, and the phase.
    private let arrived = Atomic<Int>(0)
    private let phase = Atomic<Int>(0)
    /// The body of the current dispatch: the address of a `(Int) -> Void` on the caller's
    /// stack, valid while `run` waits. Written before `generation` is bumped (release) and
    /// read after a worker sees the bump (acquire).
    private nonisolated(unsafe) var body: UnsafeRawPointer?

    /// Sleeping: `wake` is signalled (under `lock`) when `generation` changes and a worker
    /// sleeps; `done` when the last worker finishes and the caller sleeps.
    private let lock: UnsafeMutablePointer<pthread_mutex_t>
    private let wake: UnsafeMutablePointer<pthread_cond_t>
    private let done: UnsafeMutablePointer<pthread_cond_t>
    private nonisolated(unsafe) var sleepingWorkers = 0
    private nonisolated(unsafe) var callerSleeping = false
    private nonisolated(unsafe) var workers: [pthread_t] = []

    /// Spins before sleeping, in polls of an atomic: tens of microseconds, longer than the
    /// gap between two kernels of a step and much shorter than a scheduler tick.
    static let spinsBeforeSleeping = 20_000
    /// Spins at a barrier before each `sched_yield`.
    static let spinsBeforeYielding = 200

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

    /// Calls `body(i)` for every `i` in `0 ..< count`, each on its own thread (0 on the caller's),
    /// and returns when all calls have returned.
    public func run(_ body: (Int) -> Void) {
        guard count > 1 else { return body(0) }
        withoutActuallyEscaping(body) { body in
            withUnsafePointer(to: body) { address in
                self.body = UnsafeRawPointer(address)
                running.store(count - 1, ordering: .relaxed)
                // Under the lock, so a worker deciding to sleep cannot miss the bump.
                pthread_mutex_lock(lock)
                generation.add(1, ordering: .releasing)
                if sleepingWorkers > 0 { pthread_cond_broadcast(wake) }
                pthread_mutex_unlock(lock)

                address.pointee(0)
                waitForWorkers()
                self.body = nil
            }
        }
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
        var spins = 0
        while running.load(ordering: .acquiring) != 0 {
            spins += 1
            if spins == ThreadPool.spinsBeforeSleeping {
                pthread_mutex_lock(lock)
                callerSleeping = true
                while running.load(ordering: .acquiring) != 0 { pthread_cond_wait(done, lock) }
                callerSleeping = false
                pthread_mutex_unlock(lock)
                return
            }
        }
    }

    private func workerLoop(_ index: Int) {
        var seen = 0
        while true {
            var spins = 0
            var current = generation.load(ordering: .acquiring)
            while current == seen {
                spins += 1
                if spins >= ThreadPool.spinsBeforeSleeping {
                    pthread_mutex_lock(lock)
                    sleepingWorkers += 1
                    while generation.load(ordering: .acquiring) == seen { pthread_cond_wait(wake, lock) }
                    sleepingWorkers -= 1
                    pthread_mutex_unlock(lock)
                }
                current = generation.load(ordering: .acquiring)
            }
            seen = current
            if stopping.load(ordering: .acquiring) { return }
            invoke(body!, index)
            if running.subtract(1, ordering: .acquiringAndReleasing).newValue == 0 {
                pthread_mutex_lock(lock)
                if callerSleeping { pthread_cond_signal(done) }
                pthread_mutex_unlock(lock)
            }
        }
    }

    /// Not inlined, so that whatever the call retains is released before the worker reports
    /// itself done (the body's closure context lives on the caller's stack).
    @inline(never)
    private func invoke(_ body: UnsafeRawPointer, _ index: Int) {
        body.assumingMemoryBound(to: ((Int) -> Void).self).pointee(index)
    }
}

/// What a new worker thread needs: its pool and its index.
private struct WorkerStart {
    let pool: Unmanaged<ThreadPool>
    let index: Int
}
