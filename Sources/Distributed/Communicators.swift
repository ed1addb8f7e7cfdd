#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Chooses the communicator for how the process was started.
public enum Communicators {
    /// ``MPICommunicator/world()`` when launched by `mpirun` (or `srun`), else a
    /// ``SingleProcessCommunicator``, so `gantry train` runs the same with or without MPI.
    /// `stallTimeout`: see ``MPICommunicator/stallTimeout``.
    public static func makeDefault(stallTimeout: Double = 60) throws -> any Communicator {
        if launchedByMPI() {
            let world = try MPICommunicator.world()
            world.stallTimeout = stallTimeout
            return world
        }
        return SingleProcessCommunicator()
    }

    /// Variables that the launchers set in every rank's environment: Open MPI's `mpirun`,
    /// PMIx launchers (`prterun`, Slurm with PMIx) and PMI-1/2 launchers (Slurm, Hydra).
    public static let launcherVariables = ["OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_SIZE"]

    /// Whether any of ``launcherVariables`` is set; `environment` looks one up.
    public static func launchedByMPI(environment: (String) -> String? = { getenv($0).map { String(cString: $0) } }) -> Bool {
        launcherVariables.contains { environment($0) != nil }
    }
}

/// Writes `line` to standard error after flushing what the process printed before it,
/// so that a fatal message comes last (`stderr` itself is not concurrency-safe to name in Swift 6).
func writeErrorLine(_ line: String) {
    fflush(nil)
    var bytes = Array((line + "\n").utf8)[...]
    while !bytes.isEmpty {
        let written = bytes.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
        if written <= 0 { break }
        bytes = bytes.dropFirst(written)
    }
}
