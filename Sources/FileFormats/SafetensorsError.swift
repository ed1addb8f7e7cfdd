/// Why a safetensors checkpoint could not be written or read.
///
/// `description` is one line naming the file, the problem and the fix. The names and details
/// in it come from the file's header, which may hold any characters: control characters and
/// line breaks are printed escaped (`a\nb`), so that a corrupt header cannot break the line.
public enum SafetensorsError: Error, CustomStringConvertible, Equatable, Sendable {
    // Reading.
    /// Fewer than the 8 bytes of the header length.
    case tooShort(path: String, size: Int)
    /// The declared header length runs past the end of the file.
    case headerBeyondFile(path: String, headerLength: UInt64, fileSize: Int)
    /// The header is not parseable JSON.
    case invalidJSON(path: String, headerLength: Int)
    /// The header is JSON but not the safetensors schema; `detail` says which part.
    case malformedHeader(path: String, detail: String)
    /// A tensor has a dtype other than F32.
    case unsupportedDtype(path: String, tensor: String, dtype: String)
    /// A tensor's data offsets fall outside the data section or are reversed.
    case offsetsOutOfRange(path: String, tensor: String, begin: Int, end: Int, dataSize: Int)
    /// A tensor's byte span does not match its shape.
    case shapeMismatch(path: String, tensor: String, shape: [Int], byteCount: Int)
    /// Two tensors claim the same bytes.
    case overlappingTensors(path: String, first: String, second: String)
    /// The model asked for a tensor the file does not have.
    case missingTensor(path: String, tensor: String, available: [String])
    /// The model's buffer for a tensor has another size than the stored tensor.
    case countMismatch(path: String, tensor: String, stored: Int, expected: Int)

    // Writing.
    /// A tensor handed to the writer is inconsistent (caller bug); nothing was written.
    case invalidTensor(path: String, tensor: String, problem: String)

    public var description: String {
        switch self {
        case let .tooShort(path, size):
            return "checkpoint \(path) is too short to be a safetensors file (\(size) bytes; the 8-byte header "
                + "length alone is missing); it was cut off or is not a checkpoint, use another one"
        case let .headerBeyondFile(path, headerLength, fileSize):
            return "checkpoint \(path) declares a \(headerLength)-byte header but the file has only \(fileSize) bytes; "
                + "it is truncated or not a safetensors file, use another checkpoint"
        case let .invalidJSON(path, headerLength):
            return "checkpoint \(path): the \(headerLength)-byte header is not valid JSON; "
                + "the file is corrupt or not a safetensors file, use another checkpoint"
        case let .malformedHeader(path, detail):
            return "checkpoint \(path): malformed safetensors header: \(escapingLineBreaks(detail)); "
                + "the file is corrupt or was not written by a safetensors writer"
        case let .unsupportedDtype(path, tensor, dtype):
            return "checkpoint \(path): tensor \(escapingLineBreaks(tensor)) has dtype \(escapingLineBreaks(dtype)) but Gantry reads "
                + "only F32; convert the checkpoint to float32 (e.g. tensor.float() before saving)"
        case let .offsetsOutOfRange(path, tensor, begin, end, dataSize):
            return "checkpoint \(path): tensor \(escapingLineBreaks(tensor)) has data offsets [\(begin), \(end)] outside the "
                + "\(dataSize)-byte data section; the file is truncated or corrupt, use another checkpoint"
        case let .shapeMismatch(path, tensor, shape, byteCount):
            return "checkpoint \(path): tensor \(escapingLineBreaks(tensor)) has shape \(shape) but its data offsets span "
                + "\(byteCount) bytes, not 4 per value; the file is corrupt, use another checkpoint"
        case let .overlappingTensors(path, first, second):
            return "checkpoint \(path): tensors \(escapingLineBreaks(first)) and \(escapingLineBreaks(second)) overlap in the data "
                + "section; the file is corrupt, use another checkpoint"
        case let .missingTensor(path, tensor, available):
            let names = available.isEmpty ? "none" : available.map(escapingLineBreaks).joined(separator: ", ")
            return "checkpoint \(path) has no tensor \(escapingLineBreaks(tensor)) (it has: \(names)); "
                + "the checkpoint was written for another model configuration"
        case let .countMismatch(path, tensor, stored, expected):
            return "checkpoint \(path): tensor \(escapingLineBreaks(tensor)) has \(stored) values, the model expects "
                + "\(expected); the checkpoint was written for another model configuration"
        case let .invalidTensor(path, tensor, problem):
            return "cannot write checkpoint \(path): tensor \(tensor) \(problem); nothing was written "
                + "(this is a bug in the caller)"
        }
    }
}
