#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// One process on its own: rank 0 of 1. Every reduction and broadcast leaves the buffer
/// as it is (the sum, mean, max and min over one rank are its own values).
public final class SingleProcessCommunicator: Communicator {
    public let rank = 0
    public let size = 1
    public let processorName: String

    public init() {
        var name = [CChar](repeating: 0, count: 256)
        processorName = gethostname(&name, name.count - 1) == 0
            ? String(decoding: name.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            : "localhost"
    }

    public func allReduce(_ buffer: UnsafeMutableBufferPointer<Float>, _ op: Reduction) throws {}
    public func allReduce(_ buffer: UnsafeMutableBufferPointer<Double>, _ op: Reduction) throws {}

    public func startAllReduce(_ buffer: UnsafeMutableBufferPointer<Float>, _ op: Reduction) throws -> PendingAllReduce {
        PendingAllReduce(nil)
    }

    public func allReduce(_ buffer: UnsafeMutableBufferPointer<Float16>, _ op: Reduction) throws {}

    public func startAllReduce(_ buffer: UnsafeMutableBufferPointer<Float16>, _ op: Reduction) throws -> PendingAllReduce {
        PendingAllReduce(nil)
    }

    public func broadcast(_ buffer: UnsafeMutableBufferPointer<Float>, root: Int) throws {
        precondition(root == 0, "broadcast root \(root) is not a rank of 0..<1")
    }

    public func broadcast(_ bytes: UnsafeMutableRawBufferPointer, root: Int) throws {
        precondition(root == 0, "broadcast root \(root) is not a rank of 0..<1")
    }

    public func gather(_ bytes: [UInt8], root: Int) throws -> [[UInt8]] {
        precondition(root == 0, "gather root \(root) is not a rank of 0..<1")
        return [bytes]
    }

    public func barrier() throws {}

    public func abort(message: String, exitCode: Int32) -> Never {
        writeErrorLine(message)
        exit(exitCode)
    }

    public func finalize() throws {}
}
