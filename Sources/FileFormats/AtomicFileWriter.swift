#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Writes a file so that readers see either the old version or the complete new one.
///
/// Bytes go to a temporary file in the destination's directory (same file system, so the final
/// `rename` is atomic); `commit()` flushes it to disk with `fsync`, renames it over `path` and
/// syncs the directory so the rename itself survives a power loss. A writer dropped without
/// `commit()` (an error, a crash of the caller) deletes its temporary file and leaves `path`
/// untouched: a killed training run never leaves a half-written checkpoint behind.
///
/// Writes go straight to the file descriptor, unbuffered: hand it large pieces (a header, then
/// whole tensors), not single bytes. Errors are `FileError`s.
public final class AtomicFileWriter {
    /// The final path, written by `commit()`.
    public let path: String
    private let temporaryPath: String
    private let directory: String
    private var descriptor: Int32
    private var committed = false

    /// Creates the temporary file next to `path`. The final file gets mode 0644.
    public init(path: String) throws {
        self.path = path
        let slash = path.lastIndex(of: "/")
        let directory = slash.map { $0 == path.startIndex ? "/" : String(path[..<$0]) } ?? "."
        let name = slash.map { String(path[path.index(after: $0)...]) } ?? path
        self.directory = directory
        // A dot-name so that globs such as *.safetensors never pick up a partial file.
        var template = Array("\(directory)/.\(name).tmp-XXXXXX".utf8CString)
        let fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        guard fd >= 0 else { throw FileError.cannotCreate(path: path, directory: directory, code: errno) }
        descriptor = fd
        temporaryPath = template.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        // mkstemp creates 0600; outputs are meant to be shared like any other file.
        fchmod(fd, 0o644)
    }

    deinit {
        if !committed {
            if descriptor >= 0 { close(descriptor) }
            unlink(temporaryPath)
        }
    }

    /// Appends `bytes` to the temporary file.
    public func write(_ bytes: UnsafeRawBufferPointer) throws {
        guard descriptor >= 0, !committed else { throw FileError.writeFailed(path: path, code: EBADF) }
        guard var next = bytes.baseAddress else { return }
        var left = bytes.count
        while left > 0 {
            let written = posixWrite(descriptor, next, left)
            if written < 0 {
                if errno == EINTR { continue }
                throw FileError.writeFailed(path: path, code: errno)
            }
            next += written
            left -= written
        }
    }

    /// Appends the bytes of `array`.
    public func write(_ array: [UInt8]) throws {
        try array.withUnsafeBytes { try write($0) }
    }

    /// Makes the file durable and visible at `path`, replacing any previous file there.
    public func commit() throws {
        guard descriptor >= 0, !committed else { throw FileError.writeFailed(path: path, code: EBADF) }
        if fsync(descriptor) != 0 { throw FileError.writeFailed(path: path, code: errno) }
        let closed = close(descriptor)
        descriptor = -1
        // close can report a deferred write error (NFS); the data is then not safely on disk.
        if closed != 0 { throw FileError.writeFailed(path: path, code: errno) }
        if rename(temporaryPath, path) != 0 { throw FileError.writeFailed(path: path, code: errno) }
        committed = true
        // Persist the directory entry too. Failure here is not reported: the file is complete
        // and in place, only its survival of a power cut in the next seconds is less certain.
        let directoryDescriptor = open(directory, O_RDONLY)
        if directoryDescriptor >= 0 {
            fsync(directoryDescriptor)
            close(directoryDescriptor)
        }
    }

    /// Writes `bytes` to `path` atomically in one call.
    public static func write(_ bytes: [UInt8], to path: String) throws {
        let writer = try AtomicFileWriter(path: path)
        try writer.write(bytes)
        try writer.commit()
    }
}

/// write(2), named apart from `AtomicFileWriter.write` so that the method can call it.
private func posixWrite(_ descriptor: Int32, _ bytes: UnsafeRawPointer, _ count: Int) -> Int {
    #if canImport(Glibc)
    return Glibc.write(descriptor, bytes, count)
    #else
    return Darwin.write(descriptor, bytes, count)
    #endif
}
