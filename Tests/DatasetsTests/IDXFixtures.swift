import TestSupport

/// IDX bytes built by hand (independently of `IDX`'s writer): magic, big-endian sizes, data.
func idxBytes(type: UInt8 = 0x08, dimensions: [Int], data: [UInt8]) -> [UInt8] {
    var bytes: [UInt8] = [0, 0, type, UInt8(dimensions.count)]
    for dimension in dimensions { bytes += [24, 16, 8, 0].map { UInt8(truncatingIfNeeded: dimension >> $0) } }
    return bytes + data
}

/// Deterministic pixel bytes covering 0...255.
func fixturePixels(count: Int) -> [UInt8] {
    (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 37 &+ $0 / 7) }
}
