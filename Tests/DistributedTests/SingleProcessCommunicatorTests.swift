import XCTest
import Distributed

/// One rank: every collective leaves the buffers as they are.
final class SingleProcessCommunicatorTests: XCTestCase {
    func testRankAndSize() {
        let comm = SingleProcessCommunicator()
        XCTAssertEqual(comm.rank, 0)
        XCTAssertEqual(comm.size, 1)
        XCTAssertTrue(comm.isRoot)
        XCTAssertFalse(comm.processorName.isEmpty)
    }

    func testAllReduceIsIdentity() throws {
        let comm = SingleProcessCommunicator()
        let floats: [Float] = [1.5, -2, 0, .greatestFiniteMagnitude, 3e-38, 7]
        let doubles: [Double] = [1.5, -2, 0, 1e300, -1e-300]
        for op in [Reduction.sum, .mean, .max, .min] {
            var f = floats
            try f.withUnsafeMutableBufferPointer { try comm.allReduce($0, op) }
            XCTAssertEqual(f, floats, "\(op)")
            var d = doubles
            try d.withUnsafeMutableBufferPointer { try comm.allReduce($0, op) }
            XCTAssertEqual(d, doubles, "\(op)")
        }
        var empty: [Float] = []
        try empty.withUnsafeMutableBufferPointer { try comm.allReduce($0, .mean) }
        XCTAssertEqual(empty, [])
    }

    func testFloat16AllReduceIsIdentity() throws {
        let comm = SingleProcessCommunicator()
        let halves: [Float16] = [1.5, -2, 0, 65504, 0x1p-24, -0.0, .infinity]
        for op in [Reduction.sum, .mean, .max, .min] {
            var h = halves
            try h.withUnsafeMutableBufferPointer { try comm.allReduce($0, op) }
            XCTAssertEqual(h.map(\.bitPattern), halves.map(\.bitPattern), "\(op)")
            try h.withUnsafeMutableBufferPointer { buffer in
                let pending = try comm.startAllReduce(buffer, op)
                XCTAssertTrue(try pending.test())
                try pending.wait()
            }
            XCTAssertEqual(h.map(\.bitPattern), halves.map(\.bitPattern), "\(op), started")
        }
    }

    func testStartAllReduceCompletes() throws {
        let comm = SingleProcessCommunicator()
        var values: [Float] = [1, 2, 3]
        try values.withUnsafeMutableBufferPointer { buffer in
            let pending = try comm.startAllReduce(buffer, .mean)
            XCTAssertTrue(try pending.test())
            try pending.wait()
            try pending.wait()
            XCTAssertTrue(try pending.test())
        }
        XCTAssertEqual(values, [1, 2, 3])
    }

    func testBroadcastKeepsRootValues() throws {
        let comm = SingleProcessCommunicator()
        var values: [Float] = [4, 5, 6]
        try values.withUnsafeMutableBufferPointer { try comm.broadcast($0) }
        XCTAssertEqual(values, [4, 5, 6])
        var bytes: [UInt8] = [9, 8]
        try bytes.withUnsafeMutableBytes { try comm.broadcast($0, root: 0) }
        XCTAssertEqual(bytes, [9, 8])
        XCTAssertEqual(try comm.broadcast("config ✓"), "config ✓")
        XCTAssertEqual(try comm.broadcast([UInt8]()), [])
    }

    func testBarrierAndFinalize() throws {
        let comm = SingleProcessCommunicator()
        try comm.barrier()
        try comm.finalize()
        try comm.finalize()
    }
}
