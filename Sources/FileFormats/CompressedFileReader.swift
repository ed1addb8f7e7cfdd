import CZlib
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A sequential reader of a file that may be gzip-compressed or plain.
///
/// zlib's `gzread` recognises a gzip stream by its first bytes and otherwise passes the bytes
/// through, so callers never branch on the extension: `train-images-idx3-ubyte` and
/// `train-images-idx3-ubyte.gz` read identically. All offsets and counts are in bytes of the
/// decompressed stream.
///
/// Memory use is bounded by zlib's window and a 128 KiB input buffer, whatever the file size;
/// `skip(bytes:)` decompresses and discards, so it never holds the skipped part.
///
/// Not thread-safe: use one reader per thread. Errors are `FileError`s.
public final class CompressedFileReader {
    /// The path the reader was opened with; every error names it.
    public let path: String
    /// Bytes of the decompressed stream consumed so far by `read`, `skip` and `readAll`.
    public private(set) var offset: Int = 0

    private let file: gzFile
    /// Sink for `skip`, allocated on first use.
    private var scratch: UnsafeMutableRawBufferPointer?

    /// Opens `path` for reading.
    ///
    /// Throws `FileError.cannotOpen` (missing file, no permission) or `.isDirectory`.
    public init(path: String) throws {
        self.path = path
        // stat first: gzopen happily opens a directory and only fails at the first read, with a
        // less helpful error.
        var info = stat()
        guard stat(path, &info) == 0 else { throw FileError.cannotOpen(path: path, code: errno) }
        guard (info.st_mode & 0o170000) != 0o040000 else { throw FileError.isDirectory(path: path) }
        guard let file = gzopen(path, "rb") else {
            // gzopen leaves errno from open(2); 0 means zlib itself ran out of memory.
            throw FileError.cannotOpen(path: path, code: errno == 0 ? ENOMEM : errno)
        }
        self.file = file
        // The default 8 KiB buffer costs a syscall per 8 KiB; MNIST's 47 MB decompresses
        // noticeably faster with larger reads.
        gzbuffer(file, 1 << 17)
    }

    deinit {
        gzclose_r(file)
        scratch?.deallocate()
    }

    /// Fills `buffer` completely with the next `buffer.count` bytes.
    ///
    /// Throws `FileError.truncated` when fewer bytes are left (the reader is then at the end of
    /// the file), `.corrupt` for damaged gzip data, `.readFailed` for I/O errors.
    public func read(into buffer: UnsafeMutableRawBufferPointer) throws {
        let start = offset
        let got = try readAvailable(into: buffer)
        guard got == buffer.count else {
            throw FileError.truncated(path: path, offset: start, requested: buffer.count, available: got)
        }
    }

    /// Reads the next `count` bytes. Memory grows with the bytes actually read (doubling from
    /// 64 KiB, by at most 16 MiB at a time), so a corrupt size in a header cannot make a small
    /// file allocate gigabytes.
    ///
    /// Throws `FileError.truncated` when fewer bytes are left, as `read(into:)`.
    public func read(count: Int) throws -> [UInt8] {
        let start = offset
        var bytes: [UInt8] = []
        while bytes.count < count {
            let want = min(count - bytes.count, max(64 << 10, min(bytes.count, 16 << 20))), had = bytes.count
            bytes += [UInt8](repeating: 0, count: want)  // zero-filled at memset speed, also unoptimized
            let got = try bytes.withUnsafeMutableBytes { try readAvailable(into: UnsafeMutableRawBufferPointer(rebasing: $0[had...])) }
            if got < want {
                throw FileError.truncated(path: path, offset: start, requested: count, available: had + got)
            }
        }
        return bytes
    }

    /// Reads up to `buffer.count` bytes and returns how many were read; fewer than requested
    /// only at the end of the file.
    public func readAvailable(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        guard let base = buffer.baseAddress else { return 0 }
        var done = 0
        while done < buffer.count {
            // gzread takes an unsigned int and returns an int: stay well below 2^31 per call.
            let chunk = min(buffer.count - done, 1 << 30)
            let got = gzread(file, base + done, UInt32(chunk))
            if got < 0 { throw streamError() }
            if got == 0 {
                // A gzip stream that ends early is reported as Z_BUF_ERROR after the bytes it
                // did hold: that is truncation, which the caller reports with its own context.
                var code: Int32 = 0
                _ = gzerror(file, &code)
                if code != Z_OK && code != Z_BUF_ERROR { throw streamError() }
                break
            }
            done += Int(got)
            offset += Int(got)
        }
        return done
    }

    /// Discards the next `bytes` bytes.
    ///
    /// Throws `FileError.truncated` when the file ends first.
    public func skip(bytes: Int) throws {
        let start = offset
        let sink = scratchBuffer()
        var left = bytes
        while left > 0 {
            let want = min(left, sink.count)
            let got = try readAvailable(into: UnsafeMutableRawBufferPointer(rebasing: sink[0..<want]))
            left -= got
            if got < want {
                throw FileError.truncated(path: path, offset: start, requested: bytes, available: bytes - left)
            }
        }
    }

    /// Discards everything up to the end of the file and returns how many bytes that was.
    ///
    /// Reaching the end makes zlib check the gzip trailer (CRC-32 and length), so this also
    /// proves that the bytes already read were intact.
    public func skipToEnd() throws -> Int {
        let sink = scratchBuffer()
        var total = 0
        while true {
            let got = try readAvailable(into: sink)
            total += got
            if got < sink.count { return total }
        }
    }

    /// Reads everything from the current position to the end of the file.
    public func readAll() throws -> [UInt8] {
        let sink = scratchBuffer()
        var result: [UInt8] = []
        while true {
            let got = try readAvailable(into: sink)
            result.append(contentsOf: UnsafeRawBufferPointer(rebasing: sink[0..<got]).assumingMemoryBound(to: UInt8.self))
            if got < sink.count { return result }
        }
    }

    private func scratchBuffer() -> UnsafeMutableRawBufferPointer {
        if let scratch { return scratch }
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 16, alignment: 16)
        scratch = buffer
        return buffer
    }

    /// The error behind a failed gzread: zlib's own for bad data, errno's for I/O.
    private func streamError() -> FileError {
        var code: Int32 = 0
        var message = gzerror(file, &code).map { String(cString: $0) } ?? "unknown zlib error"
        // zlib prefixes its message with the path, which our description already names.
        if message.hasPrefix("\(path): ") { message.removeFirst(path.count + 2) }
        if code == Z_ERRNO { return .readFailed(path: path, reason: errorText(errno)) }
        return .corrupt(path: path, offset: offset, reason: message)
    }
}
