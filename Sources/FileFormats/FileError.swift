#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A failure to open, read or write a file, below any format's own checks.
///
/// `description` is one line that names the file, says what went wrong and what to do; the CLI
/// prints it as is. Offsets and byte counts refer to the decompressed stream when the file is
/// gzip-compressed.
public enum FileError: Error, CustomStringConvertible, Equatable, Sendable {
    /// `open` or `stat` failed; `code` is the `errno` value.
    case cannotOpen(path: String, code: Int32)
    /// The path names a directory where a file was expected.
    case isDirectory(path: String)
    /// Fewer bytes were left than a read or skip needed: `requested` bytes starting at byte
    /// `offset`, of which only `available` existed.
    case truncated(path: String, offset: Int, requested: Int, available: Int)
    /// zlib rejected the compressed stream (bad deflate data or a CRC mismatch).
    case corrupt(path: String, offset: Int, reason: String)
    /// A read failed below zlib (an I/O error, or a file that vanished).
    case readFailed(path: String, reason: String)
    /// The temporary file next to `path` could not be created; `code` is the `errno` value.
    case cannotCreate(path: String, directory: String, code: Int32)
    /// Writing, syncing or renaming failed; `code` is the `errno` value.
    case writeFailed(path: String, code: Int32)

    public var description: String {
        switch self {
        case let .cannotOpen(path, code) where code == ENOENT:
            return "cannot open \(path): no such file (check the path; relative paths start at the current directory)"
        case let .cannotOpen(path, code) where code == EACCES:
            return "cannot open \(path): permission denied (make the file readable, e.g. chmod u+r \(path))"
        case let .cannotOpen(path, code):
            return "cannot open \(path): \(errorText(code)) (check the path and the file system)"
        case let .isDirectory(path):
            return "cannot open \(path): it is a directory (give the path of a file inside it)"
        case let .truncated(path, offset, requested, available):
            return "\(path) is truncated: \(requested) bytes were needed at byte \(offset) but only \(available) "
                + "remain (the file is incomplete; copy or download it again)"
        case let .corrupt(path, offset, reason):
            return "\(path) is corrupt: zlib reports \"\(reason)\" near byte \(offset) of the decompressed data "
                + "(the file is damaged; copy or download it again)"
        case let .readFailed(path, reason):
            return "cannot read \(path): \(reason) (check the disk and that the file was not replaced while being read)"
        case let .cannotCreate(path, directory, code):
            return "cannot write \(path): cannot create a temporary file in \(directory) (\(errorText(code))); "
                + "create the directory or choose a writable location"
        case let .writeFailed(path, code):
            return "cannot write \(path): \(errorText(code)) (check free disk space, quotas and permissions; "
                + "any previous version of the file is left untouched)"
        }
    }
}

/// `strerror` as a Swift string.
@usableFromInline
func errorText(_ code: Int32) -> String {
    guard let text = strerror(code) else { return "error \(code)" }
    return String(cString: text)
}
