/// The physical limit every figure of `gantry bench` is a share of: one core's sustained FP32
/// fused multiply-add throughput, written once over `FloatVector` and compiled by each
/// instruction-set module for its own `-march` (KernelsAVX2: `vfmadd...ps ymm`,
/// KernelsAVX512: `vfmadd...ps zmm`), like /work/shared/anchors/peak_fma512.c.
///
/// Why 12 chains: each FMA depends on the previous one of its chain, so a core keeps at most
/// (chains) FMAs in flight; covering the FMA latency on every FMA pipe needs latency x pipes
/// of them (Zen 4/5 and recent Intel: 4 cycles x 2 pipes = 8). Twelve leave slack and, with
/// the two constant operands, fit AVX2's 16 registers as well as AVX-512's 32, so the loop
/// never spills.
public enum FMAPeak {
    /// Independent dependency chains in `loop`.
    public static let chains = 12

    /// FLOPs of one iteration of `loop` for vector type `V` (an FMA counts 2 per lane).
    public static func flopsPerIteration<V: FloatVector>(_: V.Type) -> Int { chains * 2 * V.scalarCount }

    /// Runs `iterations` x `chains` FMAs on registers and returns a checksum of the chains,
    /// so that the optimizer cannot drop them. Each chain computes `a = a + b·c` with
    /// `b·c` tiny, so the values stay finite for any practical count.
    @inlinable
    public static func loop<V: FloatVector>(_: V.Type, iterations: Int) -> Float {
        let b = V(repeating: 1e-7), c = V(repeating: 0.999_999_9)
        var a0 = V(repeating: 0), a1 = V(repeating: 1), a2 = V(repeating: 2), a3 = V(repeating: 3)
        var a4 = V(repeating: 4), a5 = V(repeating: 5), a6 = V(repeating: 6), a7 = V(repeating: 7)
        var a8 = V(repeating: 8), a9 = V(repeating: 9), a10 = V(repeating: 10), a11 = V(repeating: 11)
        for _ in 0..<iterations {
            a0 = a0.addingProduct(b, c); a1 = a1.addingProduct(b, c); a2 = a2.addingProduct(b, c)
            a3 = a3.addingProduct(b, c); a4 = a4.addingProduct(b, c); a5 = a5.addingProduct(b, c)
            a6 = a6.addingProduct(b, c); a7 = a7.addingProduct(b, c); a8 = a8.addingProduct(b, c)
            a9 = a9.addingProduct(b, c); a10 = a10.addingProduct(b, c); a11 = a11.addingProduct(b, c)
        }
        let sum = ((a0 + a1) + (a2 + a3)) + ((a4 + a5) + (a6 + a7)) + ((a8 + a9) + (a10 + a11))
        return sum[0]
    }
}
