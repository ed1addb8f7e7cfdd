import CZlib

/// The CRC-32 of gzip and PNG (zlib's `crc32`), over any bytes: what checkpoints keep per
/// tensor so that a damaged file is refused by name instead of loaded.
public enum CRC32 {
    public static func checksum(_ bytes: UnsafeRawBufferPointer) -> UInt32 {
        var crc = crc32(0, nil, 0)
        var rest = bytes
        // zlib takes a 32-bit length: large buffers go in parts.
        while !rest.isEmpty {
            let part = UnsafeRawBufferPointer(rebasing: rest.prefix(1 << 30))
            crc = crc32(crc, part.baseAddress!.assumingMemoryBound(to: Bytef.self), uInt(part.count))
            rest = UnsafeRawBufferPointer(rebasing: rest.dropFirst(part.count))
        }
        return UInt32(crc)
    }

    /// The checksum as 8 lowercase hexadecimal digits.
    public static func hex(_ bytes: UnsafeRawBufferPointer) -> String {
        let text = String(checksum(bytes), radix: 16)
        return String(repeating: "0", count: 8 - text.count) + text
    }
}
