import Foundation

/// A safetensors checkpoint read into memory and validated (format: see `Safetensors`).
///
/// Everything that can be checked without knowing the model is checked on open: the header
/// length against the file size, the JSON schema, the dtype (F32 only), that each tensor's
/// offsets lie inside the data section and span exactly 4 bytes per value of its shape, and
/// that no two tensors overlap. What the model expects (names, sizes) is checked per tensor by
/// `copyTensor(named:into:)`. Every failure is a `SafetensorsError` naming the file.
///
/// The whole file is held in memory: Gantry's checkpoints are a few megabytes.
public struct SafetensorsFile: Sendable {
    /// One tensor's entry in the header.
    public struct TensorInfo: Sendable, Equatable {
        public let name: String
        /// Dimensions, outermost first; empty for a scalar.
        public let shape: [Int]
        /// Byte range within the data section (which starts after the header).
        public let byteRange: Range<Int>
        /// Number of F32 values.
        public var count: Int { byteRange.count / MemoryLayout<Float>.size }
    }

    /// The path the file was read from; every error names it.
    public let path: String
    /// The `__metadata__` map, empty when the file has none.
    public let metadata: [String: String]
    /// All tensors, in the order of their data.
    public let tensors: [TensorInfo]

    private let bytes: [UInt8]
    private let dataStart: Int
    private let index: [String: Int]

    /// Reads and validates the checkpoint at `path`.
    public init(path: String) throws {
        try self.init(bytes: CompressedFileReader(path: path).readAll(), path: path)
    }

    /// Validates a checkpoint already in memory; `path` is used in error messages.
    public init(bytes: [UInt8], path: String) throws {
        self.path = path
        self.bytes = bytes
        guard bytes.count >= 8 else { throw SafetensorsError.tooShort(path: path, size: bytes.count) }
        let declared = bytes[0..<8].reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        guard declared <= UInt64(bytes.count - 8) else {
            throw SafetensorsError.headerBeyondFile(path: path, headerLength: declared, fileSize: bytes.count)
        }
        let headerLength = Int(declared)
        dataStart = 8 + headerLength
        let dataSize = bytes.count - dataStart

        let json: Any
        do {
            json = try JSONSerialization.jsonObject(with: Foundation.Data(bytes[8..<dataStart]))
        } catch {
            throw SafetensorsError.invalidJSON(path: path, headerLength: headerLength)
        }
        func malformed(_ detail: String) -> SafetensorsError { .malformedHeader(path: path, detail: detail) }
        guard let header = json as? [String: Any] else { throw malformed("the header is not a JSON object") }

        var metadata: [String: String] = [:]
        if let raw = header["__metadata__"] {
            guard let map = raw as? [String: Any] else { throw malformed("__metadata__ is not an object") }
            for (key, value) in map {
                guard let text = value as? String else { throw malformed("__metadata__ value \(key) is not a string") }
                metadata[key] = text
            }
        }
        self.metadata = metadata

        var tensors: [TensorInfo] = []
        for (name, raw) in header where name != "__metadata__" {
            guard let entry = raw as? [String: Any] else { throw malformed("entry \(name) is not an object") }
            guard let dtype = entry["dtype"] as? String else { throw malformed("tensor \(name) has no dtype string") }
            guard dtype == "F32" else {
                throw SafetensorsError.unsupportedDtype(path: path, tensor: name, dtype: dtype)
            }
            guard let shape = SafetensorsFile.integers(entry["shape"]), shape.allSatisfy({ $0 >= 0 }) else {
                throw malformed("tensor \(name) has no shape list of non-negative integers")
            }
            guard let offsets = SafetensorsFile.integers(entry["data_offsets"]), offsets.count == 2 else {
                throw malformed("tensor \(name) has no data_offsets pair of integers")
            }
            let (begin, end) = (offsets[0], offsets[1])
            guard begin >= 0, begin <= end, end <= dataSize else {
                throw SafetensorsError.offsetsOutOfRange(path: path, tensor: name, begin: begin, end: end,
                                                         dataSize: dataSize)
            }
            var values = 1
            for dimension in shape {
                let (product, overflow) = values.multipliedReportingOverflow(by: dimension)
                guard !overflow else {
                    throw SafetensorsError.shapeMismatch(path: path, tensor: name, shape: shape, byteCount: end - begin)
                }
                values = product
            }
            // Compared by division first so that a huge shape cannot overflow the product.
            guard values <= (end - begin) / MemoryLayout<Float>.size,
                  values * MemoryLayout<Float>.size == end - begin else {
                throw SafetensorsError.shapeMismatch(path: path, tensor: name, shape: shape, byteCount: end - begin)
            }
            tensors.append(TensorInfo(name: name, shape: shape, byteRange: begin..<end))
        }
        // Sorted by data position (names break ties between empty tensors) so the overlap check
        // is one pass and the order is stable whatever order JSONSerialization returns.
        tensors.sort { ($0.byteRange.lowerBound, $0.name) < ($1.byteRange.lowerBound, $1.name) }
        for (previous, next) in zip(tensors, tensors.dropFirst()) where next.byteRange.overlaps(previous.byteRange) {
            throw SafetensorsError.overlappingTensors(path: path, first: previous.name, second: next.name)
        }
        self.tensors = tensors
        index = Dictionary(uniqueKeysWithValues: tensors.enumerated().map { ($1.name, $0) })
    }

    /// The header entry of tensor `name`; throws `SafetensorsError.missingTensor`.
    public func info(named name: String) throws -> TensorInfo {
        guard let position = index[name] else {
            throw SafetensorsError.missingTensor(path: path, tensor: name, available: tensors.map(\.name))
        }
        return tensors[position]
    }

    /// Tensor `name`'s shape and values (row-major, as stored).
    public func tensor(named name: String) throws -> (shape: [Int], values: [Float]) {
        let info = try info(named: name)
        let values = [Float](unsafeUninitializedCapacity: info.count) { buffer, initialized in
            copy(info, into: UnsafeMutableRawBufferPointer(buffer))
            initialized = info.count
        }
        return (info.shape, values)
    }

    /// Copies tensor `name` into `destination`, which must hold exactly as many values: a size
    /// mismatch means the checkpoint belongs to another model configuration and throws
    /// `SafetensorsError.countMismatch` without touching `destination`.
    public func copyTensor(named name: String, into destination: UnsafeMutableBufferPointer<Float>) throws {
        let info = try info(named: name)
        guard info.count == destination.count else {
            throw SafetensorsError.countMismatch(path: path, tensor: name, stored: info.count,
                                                 expected: destination.count)
        }
        copy(info, into: UnsafeMutableRawBufferPointer(destination))
    }

    private func copy(_ info: TensorInfo, into destination: UnsafeMutableRawBufferPointer) {
        // memcpy, not a typed load: tensor data need not be 4-byte aligned within the file.
        bytes.withUnsafeBytes { source in
            let start = dataStart + info.byteRange.lowerBound
            destination.copyMemory(from: UnsafeRawBufferPointer(rebasing: source[start..<(start + info.byteRange.count)]))
        }
    }

    /// A JSON array of integers, or nil. NSNumber bridging yields an Int only for integral
    /// values, so 1.5 and "3" are rejected.
    private static func integers(_ value: Any?) -> [Int]? {
        guard let list = value as? [Any] else { return nil }
        var result: [Int] = []
        for item in list {
            guard let integer = item as? Int else { return nil }
            result.append(integer)
        }
        return result
    }
}
