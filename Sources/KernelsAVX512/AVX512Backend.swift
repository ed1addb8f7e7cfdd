import CVectorMath
import Kernels

/// The AVX-512 backend (this module builds with `-march=x86-64-v4`): `SIMD16<Float>`
/// elementwise kernels and a 12 x 32 GEMM tile. Only module Backends creates it, and only
/// after CPUID and XGETBV say the CPU and the OS support AVX-512.
public final class AVX512Backend: VectorBackend {
    public typealias Vector = SIMD16<Float>
    public let engine: GEMMEngine<Tile12x32>
    public let pool: ThreadPool
    public let thresholds: ParallelThresholds

    /// Kernels split over `threads` threads (the caller and `threads - 1` started here, once)
    /// where the work is at least `thresholds`.
    public init(threads: Int = 1, thresholds: ParallelThresholds = .measured) {
        engine = GEMMEngine(threads: threads)
        pool = ThreadPool(threads: threads)
        self.thresholds = thresholds
    }
    deinit { engine.deallocate() }
}

extension AVX512Backend {
    /// `FMAPeak.loop` compiled for this module's instruction set. Not inlinable, and never
    /// inlined, so that callers (module Backends, built for x86-64-v3) run this module's code.
    @inline(never)
    public static func fmaPeakLoop(iterations: Int) -> Float { FMAPeak.loop(V16.self, iterations: iterations) }
}

/// 12 x 32 of C in twenty-four 16-wide accumulators: with 2 B vectors and 1 broadcast of A,
/// 27 of AVX-512's 32 zmm registers; 24 FMAs per 14 loads per k.
public enum Tile12x32: MicroKernel {
    public static var mr: Int { 12 }
    public static var nr: Int { 32 }

    @inline(__always)
    public static func copyRow(_ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>) {
        let s = UnsafeRawPointer(src), d = UnsafeMutableRawPointer(dst)
        d.storeBytes(of: s.loadUnaligned(as: V16.self), as: V16.self)
        d.storeBytes(of: s.loadUnaligned(fromByteOffset: 64, as: V16.self), toByteOffset: 64, as: V16.self)
    }

    @inline(__always)
    public static func product(kc: Int, a: UnsafePointer<Float>, add: Bool, bRow: (Int) -> UnsafeRawPointer,
                        row: (Int) -> UnsafeMutablePointer<Float>) {
        var c00 = V16(), c01 = V16(), c10 = V16(), c11 = V16(), c20 = V16(), c21 = V16()
        var c30 = V16(), c31 = V16(), c40 = V16(), c41 = V16(), c50 = V16(), c51 = V16()
        var c60 = V16(), c61 = V16(), c70 = V16(), c71 = V16(), c80 = V16(), c81 = V16()
        var c90 = V16(), c91 = V16(), ca0 = V16(), ca1 = V16(), cb0 = V16(), cb1 = V16()
        var ap = a
        for p in 0..<kc {
            let bp = bRow(p)
            let b0 = bp.loadUnaligned(as: V16.self)
            let b1 = bp.loadUnaligned(fromByteOffset: 64, as: V16.self)
            var s = V16(repeating: ap[0]); c00.addProduct(s, b0); c01.addProduct(s, b1)
            s = V16(repeating: ap[1]); c10.addProduct(s, b0); c11.addProduct(s, b1)
            s = V16(repeating: ap[2]); c20.addProduct(s, b0); c21.addProduct(s, b1)
            s = V16(repeating: ap[3]); c30.addProduct(s, b0); c31.addProduct(s, b1)
            s = V16(repeating: ap[4]); c40.addProduct(s, b0); c41.addProduct(s, b1)
            s = V16(repeating: ap[5]); c50.addProduct(s, b0); c51.addProduct(s, b1)
            s = V16(repeating: ap[6]); c60.addProduct(s, b0); c61.addProduct(s, b1)
            s = V16(repeating: ap[7]); c70.addProduct(s, b0); c71.addProduct(s, b1)
            s = V16(repeating: ap[8]); c80.addProduct(s, b0); c81.addProduct(s, b1)
            s = V16(repeating: ap[9]); c90.addProduct(s, b0); c91.addProduct(s, b1)
            s = V16(repeating: ap[10]); ca0.addProduct(s, b0); ca1.addProduct(s, b1)
            s = V16(repeating: ap[11]); cb0.addProduct(s, b0); cb1.addProduct(s, b1)
            ap += 12
        }
        @inline(__always) func store(_ index: Int, _ lo: V16, _ hi: V16) {
            let p = UnsafeMutableRawPointer(row(index))
            if add {
                p.storeBytes(of: p.loadUnaligned(as: V16.self) + lo, as: V16.self)
                p.storeBytes(of: p.loadUnaligned(fromByteOffset: 64, as: V16.self) + hi, toByteOffset: 64, as: V16.self)
            } else {
                p.storeBytes(of: lo, as: V16.self)
                p.storeBytes(of: hi, toByteOffset: 64, as: V16.self)
            }
        }
        store(0, c00, c01); store(1, c10, c11); store(2, c20, c21)
        store(3, c30, c31); store(4, c40, c41); store(5, c50, c51)
        store(6, c60, c61); store(7, c70, c71); store(8, c80, c81)
        store(9, c90, c91); store(10, ca0, ca1); store(11, cb0, cb1)
    }
}

typealias V16 = SIMD16<Float>

/// The generic kernels' vector operations, bound to SIMD16<Float>'s concrete (vector) ones.
extension SIMD16: FloatVector where Scalar == Float {
    @inline(__always) public func replacing(with other: Self, where x: Self, isAtMost threshold: Self) -> Self {
        replacing(with: other, where: x .<= threshold)
    }
    @inline(__always) public func replacing(with other: Self, where x: Self, isBelow threshold: Self) -> Self {
        replacing(with: other, where: x .< threshold)
    }
    /// One vector square root (`SIMD`'s goes lane by lane, through libm).
    @inline(__always) public func squareRoot() -> Self { gantry_sqrt16(self) }
    /// One `vcvtps2ph` (F16C, AVX-512F): Swift's conversion between SIMD16 of Float and of
    /// Float16 is vectorized here, unlike `squareRoot`.
    @inline(__always) public func roundedToHalves() -> SIMD16<Float16> { SIMD16<Float16>(self) }
    /// One `vcvtph2ps`.
    @inline(__always) public init(widening halves: SIMD16<Float16>) { self.init(halves) }
    /// As a compare and a select: the `SIMD` protocol's `clamped` goes lane by lane.
    @inline(__always) public func clamped(lowerBound: Self, upperBound: Self) -> Self {
        replacing(with: lowerBound, where: self .< lowerBound).replacing(with: upperBound, where: self .> upperBound)
    }
}
