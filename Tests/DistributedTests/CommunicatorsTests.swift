import XCTest
@testable import Distributed

final class CommunicatorsTests: XCTestCase {
    func testLaunchedByMPIReadsLauncherVariables() {
        XCTAssertFalse(Communicators.launchedByMPI { _ in nil })
        for name in ["OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_SIZE"] {
            XCTAssertTrue(Communicators.launchedByMPI { $0 == name ? "2" : nil }, name)
        }
        XCTAssertFalse(Communicators.launchedByMPI { $0 == "OMPI_MCA_btl" ? "tcp,self" : nil })
    }

    func testDefaultOutsideMPIIsSingleProcess() throws {
        // `swift test` is not started by mpirun (the MPI run below is a child process).
        XCTAssertFalse(Communicators.launchedByMPI())
        XCTAssertTrue(try Communicators.makeDefault() is SingleProcessCommunicator)
    }

    func testMPIErrorBeforeMPIInit() {
        // Open MPI aborts on MPI_Error_string before MPI_Init; the error then has only the code.
        // (Under mpirun the text comes from MPI_Error_string.)
        let error = MPIError(code: 1, function: "MPI_Bcast")
        XCTAssertEqual(error.code, 1)
        XCTAssertEqual(error.message, "unknown error")
        XCTAssertEqual(error.description, "MPI_Bcast failed: unknown error (MPI error 1)")
    }

    /// Every all-reduce is an in-place MPI_Iallreduce: Rabenseifner's, unless the user chose.
    func testNonBlockingAllReduceAlgorithmDefault() {
        let parameter = MPICommunicator.nonBlockingAllReduceParameter
        XCTAssertEqual(parameter, "OMPI_MCA_coll_libnbc_iallreduce_algorithm")
        XCTAssertEqual(MPICommunicator.nonBlockingAllReduceDefault(environment: ["OMPI_COMM_WORLD_SIZE": "2"]), "3")
        XCTAssertEqual(MPICommunicator.nonBlockingAllReduceDefault(environment: [:]), "3")
        XCTAssertEqual(MPICommunicator.nonBlockingAllReduceDefault(environment: ["OMPI_COMM_WORLD_SIZE": "16"]), "3")
        XCTAssertNil(MPICommunicator.nonBlockingAllReduceDefault(environment: ["OMPI_COMM_WORLD_SIZE": "2", parameter: "2"]))
    }
}
