#if _endian(big)
#error("safetensors stores little-endian values and Gantry writes host memory as is")
#endif

/// The safetensors checkpoint format (https://huggingface.co/docs/safetensors): an 8-byte
/// little-endian header length N, N bytes of JSON describing each tensor (dtype, shape, byte
/// offsets into the data section) plus an optional `__metadata__` map of strings, then the
/// raw little-endian tensor bytes. Gantry stores F32 tensors only.
///
/// Writing is atomic (see `AtomicFileWriter`). Tensors are laid out in the order given and the
/// metadata keys sorted, so identical inputs give byte-identical files.
public enum Safetensors {
    /// A tensor to write, borrowing its values: `shape`'s product must equal `values.count`
    /// (an empty shape is a scalar with one value).
    public struct Tensor {
        public var name: String
        public var shape: [Int]
        public var values: UnsafeBufferPointer<Float>

        public init(name: String, shape: [Int], values: UnsafeBufferPointer<Float>) {
            self.name = name
            self.shape = shape
            self.values = values
        }
    }

    /// Writes `tensors` and `metadata` to `path` atomically.
    public static func write(path: String, tensors: [Tensor], metadata: [String: String] = [:]) throws {
        try write(path: path, layout: tensors.map { ($0.name, $0.shape, $0.values.count) }, metadata: metadata) {
            index, writer in try writer.write(UnsafeRawBufferPointer(tensors[index].values))
        }
    }

    /// Writes tensors held in arrays to `path` atomically.
    public static func write(path: String, tensors: [(name: String, shape: [Int], values: [Float])],
                             metadata: [String: String] = [:]) throws {
        try write(path: path, layout: tensors.map { ($0.name, $0.shape, $0.values.count) }, metadata: metadata) {
            index, writer in try tensors[index].values.withUnsafeBytes { try writer.write($0) }
        }
    }

    /// The JSON header, padded with spaces so that the data section starts 8-byte aligned
    /// (readers may then map F32 data in place).
    static func header(layout: [(name: String, shape: [Int], count: Int)], metadata: [String: String]) -> [UInt8] {
        var json = "{"
        if !metadata.isEmpty {
            json += "\"__metadata__\":{"
            json += metadata.keys.sorted().map { "\(quoted($0)):\(quoted(metadata[$0]!))" }.joined(separator: ",")
            json += "},"
        }
        var offset = 0
        json += layout.map { entry in
            let end = offset + entry.count * MemoryLayout<Float>.size
            defer { offset = end }
            let shape = entry.shape.map(String.init).joined(separator: ",")
            return "\(quoted(entry.name)):{\"dtype\":\"F32\",\"shape\":[\(shape)],\"data_offsets\":[\(offset),\(end)]}"
        }.joined(separator: ",")
        json += "}"
        var bytes = Array(json.utf8)
        bytes += repeatElement(UInt8(ascii: " "), count: (8 - bytes.count % 8) % 8)
        return bytes
    }

    private static func write(path: String, layout: [(name: String, shape: [Int], count: Int)],
                              metadata: [String: String],
                              payload: (Int, AtomicFileWriter) throws -> Void) throws {
        var seen = Set<String>()
        for (name, shape, count) in layout {
            func invalid(_ problem: String) -> SafetensorsError {
                .invalidTensor(path: path, tensor: name.isEmpty ? "\"\"" : name, problem: problem)
            }
            guard !name.isEmpty else { throw invalid("has an empty name") }
            guard name != "__metadata__" else { throw invalid("uses the reserved name __metadata__") }
            guard seen.insert(name).inserted else { throw invalid("appears twice") }
            guard shape.allSatisfy({ $0 >= 0 }) else { throw invalid("has a negative dimension in shape \(shape)") }
            let product = shape.reduce((value: 1, overflow: false)) { partial, dimension in
                let (value, overflow) = partial.value.multipliedReportingOverflow(by: dimension)
                return (value, partial.overflow || overflow)
            }
            guard !product.overflow, product.value == count else {
                throw invalid("has shape \(shape) but \(count) values were given")
            }
        }
        let header = header(layout: layout, metadata: metadata)
        let writer = try AtomicFileWriter(path: path)
        var length = UInt64(header.count).littleEndian
        try withUnsafeBytes(of: &length) { try writer.write($0) }
        try writer.write(header)
        for index in layout.indices { try payload(index, writer) }
        try writer.commit()
    }

    /// A JSON string literal.
    private static func quoted(_ text: String) -> String {
        var result = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": result += "\\\""
            case "\\": result += "\\\\"
            case "\n": result += "\\n"
            case "\r": result += "\\r"
            case "\t": result += "\\t"
            case _ where scalar.value < 0x20:
                let hex = String(scalar.value, radix: 16)
                result += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: result.unicodeScalars.append(scalar)
            }
        }
        return result + "\""
    }
}
