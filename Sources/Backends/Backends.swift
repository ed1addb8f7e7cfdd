import CCPUFeatures
#if canImport(Glibc)
import Glibc
#endif
import Kernels
import KernelsAVX2
import KernelsAVX512

/// Chooses the kernels for the CPU at hand. This module is the only one that names the
/// instruction-set modules, and it creates a backend only for an instruction set that CPUID
/// and XGETBV say the CPU and the OS support, so no unsupported instruction can run.
public enum Backends {
    /// The instruction sets this CPU supports, best last (empty without AVX2 + FMA).
    public static let supported: [InstructionSet] = {
        var sets: [InstructionSet] = []
        if gantry_cpu_supports_avx2_fma() != 0 { sets.append(.avx2) }
        if gantry_cpu_supports_avx512() != 0 { sets.append(.avx512) }
        return sets
    }()

    /// The instruction set to use: `requested` if the CPU supports it, else the best one.
    public static func choose(_ requested: InstructionSet? = nil) throws -> InstructionSet {
        guard let best = supported.last else { throw BackendError.noSupportedInstructionSet }
        guard let requested else { return best }
        guard supported.contains(requested) else { throw BackendError.unsupported(requested, supported: supported) }
        return requested
    }

    /// A new backend for `isa` (which must be in `supported`), splitting its work over
    /// `threads` threads (results are bit-identical for every count) where it is at least
    /// `thresholds` (tests pass `.always` to split even the smallest kernels).
    public static func make(_ isa: InstructionSet, threads: Int = 1,
                            thresholds: ParallelThresholds = .measured) throws -> Backend {
        guard supported.contains(isa) else { throw BackendError.unsupported(isa, supported: supported) }
        precondition(threads >= 1, "a backend needs at least one thread, got \(threads)")
        switch isa {
        case .avx2: return AVX2Backend(threads: threads, thresholds: thresholds)
        case .avx512: return AVX512Backend(threads: threads, thresholds: thresholds)
        }
    }

    /// The CPUs this process may run on: its affinity mask (which `mpirun --bind-to` narrows),
    /// else the CPUs online; at least 1.
    public static var availableCores: Int { Int(gantry_available_cpus()) }

    /// The CPUs online on this host, whatever this process's affinity; at least 1.
    public static var onlineCores: Int { Int(gantry_online_cpus()) }

    /// Threads for one of `localRanks` processes on this host: its fair share of the host's
    /// CPUs, and no more than its affinity mask allows (so ranks bound to one core each get
    /// 1, and one unbound process gets every core); at least 1.
    public static func defaultThreads(localRanks: Int) -> Int {
        max(1, min(availableCores, onlineCores / max(1, localRanks)))
    }

    /// A new backend for the best instruction set of this CPU, or `GANTRY_ISA`'s if set.
    /// For library code and tests; the CLI checks for AVX2 and words errors before it gets here.
    public static func automatic() -> Backend {
        let forced = getenv("GANTRY_ISA").flatMap { InstructionSet(rawValue: String(cString: $0)) }
        guard let isa = try? choose(forced), let backend = try? make(isa) else {
            preconditionFailure("no usable instruction set: supported \(supported), GANTRY_ISA \(forced.map(\.rawValue) ?? "unset")")
        }
        return backend
    }

    /// One core's sustained FP32 FMA throughput with `isa`'s vectors, in GFLOP/s: the best of
    /// five timings of `FMAPeak.loop` of about `seconds / 5` each, on the calling thread. The
    /// ceiling a kernel of this instruction set can reach on one core (clocks permitting).
    public static func measurePeakGFLOPS(_ isa: InstructionSet, seconds: Double = 0.25) throws -> Double {
        guard supported.contains(isa) else { throw BackendError.unsupported(isa, supported: supported) }
        let loop: (Int) -> Float
        switch isa {
        case .avx2: loop = AVX2Backend.fmaPeakLoop
        case .avx512: loop = AVX512Backend.fmaPeakLoop
        }
        let flopsPerIteration = Double(FMAPeak.chains * 2 * isa.vectorWidth)
        // The checksums are used (checked), so no run can be optimized away.
        var checksum: Float = 0
        // Size a round from a short first run, so that every machine spends about `seconds`.
        var iterations = 1 << 16
        var elapsed = time { checksum += loop(iterations) }
        while elapsed < 2e-3 { iterations *= 4; elapsed = time { checksum += loop(iterations) } }
        iterations = max(1, Int(Double(iterations) * seconds / 5 / elapsed))
        var best = Double.infinity
        for _ in 0..<5 { best = min(best, time { checksum += loop(iterations) }) }
        precondition(checksum.isFinite, "the FMA chains overflowed")
        return Double(iterations) * flopsPerIteration / best / 1e9
    }

    /// Seconds `body` takes, on the monotonic clock.
    private static func time(_ body: () -> Void) -> Double {
        var start = timespec(), end = timespec()
        clock_gettime(CLOCK_MONOTONIC, &start)
        body()
        clock_gettime(CLOCK_MONOTONIC, &end)
        return Double(end.tv_sec - start.tv_sec) + Double(end.tv_nsec - start.tv_nsec) * 1e-9
    }
}

/// Why no backend could be made for this CPU; the CLI words it (see `Backends.choose`).
public enum BackendError: Error, Equatable {
    /// The CPU lacks AVX2 + FMA, the least the kernels are built for.
    case noSupportedInstructionSet
    /// A forced instruction set this CPU (or OS) does not support.
    case unsupported(InstructionSet, supported: [InstructionSet])
}
