import Kernels

/// One network's parameters and gradients, each in a single contiguous allocation.
///
/// Layers hold views (an offset and a count) into these two buffers, so zeroing gradients,
/// the all-reduce, the optimizer step, a checkpoint and the cross-rank checksum each touch one
/// buffer in one call. The layout is fixed when the network is built and recorded in `entries`
/// (name, shape, offset), in the order the layers declared them.
public final class ParameterStore {
    /// One named tensor inside the flat buffers.
    public struct Entry: Sendable, Equatable {
        public let name: String
        public let shape: [Int]
        public let offset: Int
        public var count: Int { shape.reduce(1, *) }
    }

    public let entries: [Entry]
    /// All parameters, in `entries` order.
    public let values: UnsafeMutableBufferPointer<Float>
    /// ∂loss/∂parameter for every value, same layout as `values`.
    public let gradients: UnsafeMutableBufferPointer<Float>
    public var count: Int { values.count }

    init(entries: [Entry]) {
        self.entries = entries
        let total = entries.last.map { $0.offset + $0.count } ?? 0
        values = .allocate(capacity: total)
        values.initialize(repeating: 0)
        gradients = .allocate(capacity: total)
        gradients.initialize(repeating: 0)
    }

    deinit {
        values.deallocate()
        gradients.deallocate()
    }

    public func zeroGradients() {
        gradients.update(repeating: 0)
    }

    /// A 64-bit FNV-1a hash of the parameters' bit patterns: equal on two ranks exactly when
    /// their parameters are bit-identical.
    public func checksum() -> UInt64 {
        var hash: UInt64 = 0xCBF2_9CE4_8422_2325
        for v in values { hash = (hash ^ UInt64(v.bitPattern)) &* 0x0000_0100_0000_01B3 }
        return hash
    }

    public func entry(named name: String) -> Entry? { entries.first { $0.name == name } }
}

/// Collects the parameter tensors that layers declare while a network is being built.
public struct ParameterLayout {
    private(set) var entries: [ParameterStore.Entry] = []
    private var next = 0

    /// Reserves a tensor and returns its offset into the flat buffers.
    public mutating func declare(_ name: String, shape: [Int]) -> Int {
        let offset = next
        entries.append(.init(name: name, shape: shape, offset: offset))
        next += shape.reduce(1, *)
        return offset
    }
}
