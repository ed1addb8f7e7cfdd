import ArgumentParser
import Distributed
import Foundation

/// The job's communicator (MPI under mpirun, else one process); if MPI cannot start, one line
/// saying why and exit status 1. `stallTimeout`: see `MPICommunicator.stallTimeout`.
func startMPI(stallTimeout: Double = 60) throws -> Communicator {
    do {
        return try Communicators.makeDefault(stallTimeout: stallTimeout)
    } catch {
        FileHandle.standardError.write(Data("gantry: cannot start MPI: \(error)\n".utf8))
        throw ExitCode.failure
    }
}
