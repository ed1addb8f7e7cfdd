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

    /// `bits(at:)` of eight positions at once (the same bits: wrapping 64-bit integer
    /// arithmetic, one vector multiply per step where the instruction set has it).
    @inlinable @inline(__always)
    public func bits(at index: SIMD8<UInt64>) -> SIMD8<UInt64> {
        var z = SIMD8(repeating: key) &+ (index &+ 1) &* SIMD8(repeating: 0x9E37_79B9_7F4A_7C15)
        z = (z ^ (z &>> 30)) &* SIMD8(repeating: 0xBF58_476D_1CE4_E5B9)
        z = (z ^ (z &>> 27)) &* SIMD8(repeating: 0x94D0_49BB_1331_11EB)
        return z ^ (z &>> 31)
    }

    /// Uniform in [0, 1) with 24 random bits, at position `index`.
    @inlinable @inline(__always)
    public func unitFloat(at index: UInt64) -> Float {
        Float(bits(at: index) >> 40) * (1.0 / 16_777_216.0)
    }

    /// A standard normal at position `index`: Box-Muller on the two 32-bit halves of
    /// `bits(at:)`, u1 = (high + 1) / 2³² in (0, 1], u2 = low / 2³²; the sine branch is dropped
    /// so that each value depends on its own index only. Computed as by `fillNormal`.
    @inlinable
    public func normal(at index: UInt64) -> Float {
        var value: Float = 0
        fillNormal(&value, count: 1, first: index)
        return value
    }

    /// Fills `count` standard normals: element `i` is `normal(at: first + i)`. Eight at a time:
    /// √(−2 ln u1) · cos(2π u2) in Double vectors (`vectorLog`, `vectorCosTurns`, fdlibm's
    /// polynomials, within an ulp of libm's), rounded to Float; libm's scalar log and cos took
    /// a sixth of the MLP's step. A vector's lanes past `count` are computed and dropped, so
    /// every value is the same whichever call or position in a call computes it.
    @inlinable
    public func fillNormal(_ out: UnsafeMutablePointer<Float>, count: Int, first: UInt64 = 0) {
        var i = 0
        while i < count {
            let b = bits(at: SIMD8(repeating: first &+ UInt64(i)) &+ SIMD8(0, 1, 2, 3, 4, 5, 6, 7))
            let scale = SIMD8<Double>(repeating: 1.0 / 4_294_967_296.0)
            let u1 = (exactDouble(b &>> 32) + SIMD8(repeating: 1)) * scale
            let u2 = exactDouble(b & 0xFFFF_FFFF) * scale
            let l = vectorLog(u1), c = vectorCosTurns(u2)
            for j in 0..<min(8, count - i) { out[i + j] = Float((-2.0 * l[j]).squareRoot() * c[j]) }
            i += 8
        }
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

// MARK: - Vector log and cosine for the normals (fdlibm's e_log.c, k_sin.c, k_cos.c)

/// Integers below 2⁵² as Doubles, exactly: their bits under the exponent of 2⁵², less 2⁵².
/// (AVX2 has no vector conversion from 64-bit integers; this is two vector operations.)
@inlinable @inline(__always)
func exactDouble(_ x: SIMD8<UInt64>) -> SIMD8<Double> {
    unsafeBitCast(x | 0x4330_0000_0000_0000, to: SIMD8<Double>.self) - SIMD8(repeating: 4_503_599_627_370_496.0)
}

/// `a·b + c` for the polynomials below (unfused, as fdlibm's C).
@inlinable @inline(__always)
func horner(_ a: SIMD8<Double>, _ b: SIMD8<Double>, _ c: Double) -> SIMD8<Double> { a * b + SIMD8(repeating: c) }

/// ln x for positive, finite, normal x: x = 2ᵉ·m with m in [√2/2, √2), ln m from fdlibm's
/// degree-14 polynomial in s = (m−1)/(m+1); error below one ulp.
@inlinable @inline(__always)
func vectorLog(_ x: SIMD8<Double>) -> SIMD8<Double> {
    typealias D = SIMD8<Double>
    let bits = unsafeBitCast(x, to: SIMD8<UInt64>.self)
    // m in [1, 2), then [√2/2, √2).
    var m = unsafeBitCast((bits & 0x000F_FFFF_FFFF_FFFF) | 0x3FF0_0000_0000_0000, to: D.self)
    let high = m .> D(repeating: 1.4142135623730951)
    m = m.replacing(with: m * D(repeating: 0.5), where: high)
    let e = exactDouble((bits &>> 52) & 0x7FF) - D(repeating: 1023) + D().replacing(with: 1, where: high)
    let f = m - D(repeating: 1)
    let s = f / (f + D(repeating: 2))
    let z = s * s, w = z * z
    let t1 = w * horner(w, horner(w, D(repeating: 0.1531383769920937332), 0.2222219843214978396), 0.3999999999940941908)
    let t2 = z * horner(w, horner(w, horner(w, D(repeating: 0.1479819860511658591), 0.1818357216161805012),
                                  0.2857142874366239149), 0.6666666666666735130)
    let r = t2 + t1
    let hfsq = D(repeating: 0.5) * f * f
    let lnLow = e * D(repeating: 1.90821492927058770002e-10), lnHigh = e * D(repeating: 6.93147180369123816490e-01)
    return lnHigh - ((hfsq - (s * (hfsq + r) + lnLow)) - f)
}

/// cos(2π·t) for t in [0, 1): reduced exactly in turns to |r| ≤ 1/8 around a multiple q of a
/// quarter turn, then fdlibm's sine or cosine kernel on θ = 2πr (|θ| ≤ π/4), signed by q.
@inlinable @inline(__always)
func vectorCosTurns(_ t: SIMD8<Double>) -> SIMD8<Double> {
    typealias D = SIMD8<Double>
    let shifter = D(repeating: 6_755_399_441_055_744.0)  // 1.5·2⁵²: x + it − it rounds x to an integer
    var a = t - ((t + shifter) - shifter)  // in [-1/2, 1/2]
    a = a.replacing(with: -a, where: a .< D())  // cos is even
    let q = ((a * D(repeating: 4)) + shifter) - shifter  // 0, 1 or 2 quarter turns
    let x = (a - q * D(repeating: 0.25)) * D(repeating: 6.283185307179586476925)
    let z = x * x
    var sineTail = horner(z, D(repeating: 1.58969099521155010221e-10), -2.50507602534068634195e-08)
    sineTail = horner(z, horner(z, sineTail, 2.75573137070700676789e-06), -1.98412698298579493134e-04)
    sineTail = horner(z, horner(z, sineTail, 8.33333333332248946124e-03), -1.66666666666666324348e-01)
    let sine = x + z * x * sineTail
    var cosineTail = horner(z, D(repeating: -1.13596475577881948265e-11), 2.08757232129817482790e-09)
    cosineTail = horner(z, horner(z, cosineTail, -2.75573143513906633035e-07), 2.48015872894767294178e-05)
    cosineTail = horner(z, horner(z, cosineTail, -1.38888888888741095749e-03), 4.16666666666666019037e-02)
    let r = z * cosineTail
    let hz = D(repeating: 0.5) * z, w = D(repeating: 1) - hz
    let cosine = w + (((D(repeating: 1) - w) - hz) + z * r)
    // q = 0: cos x; q = 1: cos(x + π/2) = −sin x; q = 2: cos(x + π) = −cos x.
    return cosine.replacing(with: -sine, where: q .== D(repeating: 1)).replacing(with: -cosine, where: q .== D(repeating: 2))
}
