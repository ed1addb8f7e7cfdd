// Checks that need several ranks, run as `mpirun -np 2 gantry-mpi-tests [NAME-FILTER...]`
// (by DistributedTests and CI). Each Checks file registers its own; add a line per file here.
import Distributed
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

var harness = Harness()
registerCommunicatorChecks(into: &harness)
registerTrainingChecks(into: &harness)
registerExchangeChecks(into: &harness)

do {
    let comm = try Communicators.makeDefault()
    let status = harness.run(on: comm, filters: Array(CommandLine.arguments.dropFirst()))
    try comm.finalize()
    exit(status)
} catch {
    writeStandardError("gantry-mpi-tests: \(error)")
    exit(2)
}
