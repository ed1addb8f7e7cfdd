/// The power of two a bucket of Float gradients is multiplied by before it is rounded to
/// Float16 for an all-reduce (`Backend.convertToHalf`), and divided by after it
/// (`Backend.convertFromHalf`, with `1 / scale`, or `1 / (ranks · scale)` for a mean). As
/// the loss scale of mixed-precision training, but chosen for each bucket from its own largest
/// value, known before the all-reduce, instead of found by overflowing and trying again.
///
/// The bound: an all-reduce adds the ranks' values in whatever order MPI picks, rounding each
/// partial sum to Float16. Over `n` ranks whose largest magnitude is `m`, no partial sum
/// exceeds `n · m · scale` (bar the roundings, each at most 2⁻¹¹ relative); keeping that at
/// or below ``largestSum``, half of Float16's largest finite value, leaves every partial sum
/// finite with a factor of two to spare. Within the bound the scale is as large as it can be,
/// so that a bucket's small values sit as far as possible above Float16's subnormals (below
/// 6.1e-5, with fewer significant bits) and its zero (below 3e-8).
///
/// Powers of two, so that scaling and unscaling round nothing.
public enum HalfScale {
    /// `n · m · scale` stays at or below this: 32752, half of 65504 rounded down to a value
    /// Float16 holds, so that a partial sum at the bound rounds to the bound.
    public static let largestSum: Float = 32752

    /// The exponents `k` of the scales 2ᵏ chosen. Wide enough that only a diverged bucket
    /// (`n · m` above 32752 · 2⁶⁴, about 6e23) is refused, and a tiny one is lifted by up to
    /// 2⁶⁴; narrow enough that the scale and the unscaling `1 / (n · scale)` stay normal
    /// Floats for any number of ranks below 2⁶⁰.
    public static let exponents: ClosedRange<Int> = -64...64

    /// The scale 2ᵏ for a bucket whose largest magnitude over all ranks is `m`
    /// (`Backend.maxAbs`, then a `.max` all-reduce), summed over `ranks` ranks: the largest
    /// `k` in ``exponents`` with `ranks · m · 2ᵏ ≤ largestSum`; 2⁶⁴ when even that `k` leaves
    /// room (tiny gradients), and 1 for `m = 0` (nothing to keep away from zero).
    ///
    /// Returns nil when the bucket cannot go as Float16 without overflow: `m` is NaN or
    /// infinite (`maxAbs` reports a NaN gradient as +inf), or so large that 2⁻⁶⁴ is not small
    /// enough. The caller sends that bucket as Float, or skips the step.
    public static func choose(largestMagnitude m: Float, ranks: Int) -> Float? {
        precondition(ranks >= 1, "a bucket is summed over at least one rank, got \(ranks)")
        precondition(!(m < 0), "the largest magnitude cannot be negative, got \(m)")
        guard m.isFinite else { return nil }
        guard m > 0 else { return 1 }
        // Exact for fewer than 2²⁹ ranks: a Float significand (24 bits) times the rank count.
        let total = Double(m) * Double(ranks)
        // total = f · 2ᵉ with f in [1, 2), and 32752 = 1.999… · 2¹⁴: 2¹⁴⁻ᵉ fits unless f is
        // above 1.999…, and 2¹⁵⁻ᵉ never does.
        let bound = Double(largestSum)
        var k = bound.exponent - total.exponent
        if total.significand > bound.significand { k -= 1 }
        guard k >= exponents.lowerBound else { return nil }
        return Float(sign: .plus, exponent: min(k, exponents.upperBound), significand: 1)
    }
}
