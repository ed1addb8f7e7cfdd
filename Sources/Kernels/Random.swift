/// Counter-based random numbers: value `i` of a stream is a pure function of the stream's key
/// and `i`, with no hidden state.
///
/// Why counter-based: the noise of global sample `j` at step `s` is the same whether one rank
/// draws the whole batch or eight ranks draw their slices, a resumed run draws exactly what an
/// uninterrupted one would, and threads can fill disjoint ranges of one buffer with results
/// identical to one thread. The mixing function is SplitMix64's finalizer (Steele, Lea, Flood,
/// "Fast splittable pseudorandom number generators", 2014), applied to key + i * golden gamma.
public struct RandomStream: Sendable, Hashable {
    /// The stream's key; two streams with different keys are independent.
    public let key: UInt64

    /// A stream whose key is derived from a seed and a path of integers (for example
    /// `(seed, purpose, step, rank)`); different paths give independent streams.
    public init(seed: UInt64, _ path: UInt64...) {
        var k = RandomStream.mix(seed ^ 0x6A09_E667_F3BC_C909)
        for p in path { k = RandomStream.mix(k ^ RandomStream.mix(p &+ 0x9E37_79B9_7F4A_7C15)) }
        key = k
    }

    public init(key: UInt64) { self.key = key }

    @inlinable @inline(__always)
    static func mix(_ x: UInt64) -> UInt64 {
        var z = x
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// 64 random bits at position `index`.
    @inlinable @inline(__always)
    public func bits(at index: UInt64) -> UInt64 {
        RandomStream.mix(key &+ (index &+ 1) &* 0x9E37_79B9_7F4A_7C15)
    }

    /// Uniform in [0, 1) with 24 random bits, at position `index`.
    @inlinable @inline(__always)
    public func unitFloat(at index: UInt64) -> Float {
        Float(bits(at: index) >> 40) * (1.0 / 16_777_216.0)
    }

    /// A standard normal at position `index` (Box-Muller on the two 32-bit halves; the sine
    /// branch is dropped so that each value depends on its own index only).
    @inlinable @inline(__always)
    public func normal(at index: UInt64) -> Float {
        let b = bits(at: index)
        // u1 in (0, 1] so the log is finite.
        let u1 = (Double(b >> 32) + 1.0) * (1.0 / 4_294_967_296.0)
        let u2 = Double(b & 0xFFFF_FFFF) * (1.0 / 4_294_967_296.0)
        return Float((-2.0 * _log(u1)).squareRoot() * _cos(2.0 * Double.pi * u2))
    }

    /// Fills `count` standard normals: element `i` is `normal(at: first + i)`.
    @inlinable
    public func fillNormal(_ out: UnsafeMutablePointer<Float>, count: Int, first: UInt64 = 0) {
        for i in 0..<count { out[i] = normal(at: first &+ UInt64(i)) }
    }

    /// Fills `count` uniforms in [low, high): element `i` uses position `first + i`.
    @inlinable
    public func fillUniform(_ out: UnsafeMutablePointer<Float>, count: Int, low: Float, high: Float,
                            first: UInt64 = 0) {
        let width = high - low
        for i in 0..<count { out[i] = low + width * unitFloat(at: first &+ UInt64(i)) }
    }
}

/// A `RandomNumberGenerator` that walks a `RandomStream`; its whole state is (key, position),
/// so it can be saved and restored exactly.
public struct StreamGenerator: RandomNumberGenerator, Sendable {
    public let stream: RandomStream
    public var position: UInt64

    public init(_ stream: RandomStream, position: UInt64 = 0) {
        self.stream = stream
        self.position = position
    }

    public mutating func next() -> UInt64 {
        defer { position &+= 1 }
        return stream.bits(at: position)
    }
}

// Foundation-free transcendental functions for Double (Glibc/Darwin via the stdlib's builtins).
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
@usableFromInline @inline(__always) func _log(_ x: Double) -> Double { log(x) }
@usableFromInline @inline(__always) func _cos(_ x: Double) -> Double { cos(x) }
