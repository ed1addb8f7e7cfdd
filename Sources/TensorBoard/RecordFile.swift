import Foundation

/// A TFRecord file opened for appending: each record is
/// `uint64 length, uint32 masked_crc32c(length), bytes data, uint32 masked_crc32c(data)`, little
/// endian. Each record goes to the file in one `write` and is flushed to the kernel before
/// `append` returns, so a crash (of this process) leaves every earlier record whole and readable;
/// a reader stops at a torn last record.
public final class RecordFile {
    public let path: String
    private let descriptor: Int32

    /// Creates `path` (or appends to it).
    public init(path: String) throws {
        self.path = path
        descriptor = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else { throw TensorBoardError.cannotWrite(path: path, reason: String(cString: strerror(errno))) }
    }

    deinit { close(descriptor) }

    /// Appends one record holding `data`.
    public func append(_ data: [UInt8]) throws {
        var record = [UInt8]()
        record.reserveCapacity(data.count + 16)
        var length = UInt64(data.count).littleEndian
        let header = withUnsafeBytes(of: &length) { Array($0) }
        record += header
        appendLittleEndian(header.withUnsafeBytes { CRC32C.masked($0) }, to: &record)
        record += data
        appendLittleEndian(data.withUnsafeBytes { CRC32C.masked($0) }, to: &record)
        try record.withUnsafeBytes { bytes in
            var done = 0
            while done < bytes.count {
                let n = write(descriptor, bytes.baseAddress! + done, bytes.count - done)
                if n < 0 && errno == EINTR { continue }
                guard n > 0 else { throw TensorBoardError.cannotWrite(path: path, reason: String(cString: strerror(errno))) }
                done += n
            }
        }
    }

    private func appendLittleEndian(_ value: UInt32, to bytes: inout [UInt8]) {
        var v = value.littleEndian
        withUnsafeBytes(of: &v) { bytes += $0 }
    }
}

/// Why TensorBoard's files could not be written; `description` is one line with the fix.
public enum TensorBoardError: Error, CustomStringConvertible, Equatable {
    case cannotWrite(path: String, reason: String)

    public var description: String {
        switch self {
        case let .cannotWrite(path, reason):
            return "cannot write TensorBoard's event file \(path) (\(reason)): make --out writable, or pass --no-tensorboard"
        }
    }
}
