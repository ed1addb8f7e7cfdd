import CVectorMath
import Kernels

/// The AVX2 + FMA backend (this module builds with `-march=x86-64-v3`): `SIMD8<Float>`
/// elementwise kernels and a 6 x 16 GEMM tile.
public final class AVX2Backend: VectorBackend {
    public typealias Vector = SIMD8<Float>
    public let engine: GEMMEngine<Tile6x16>
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

extension AVX2Backend {
    /// `FMAPeak.loop` compiled for this module's instruction set. Not inlinable, and never
    /// inlined, so that callers (module Backends, built for x86-64-v3) run this module's code.
    @inline(never)
    public static func fmaPeakLoop(iterations: Int) -> Float { FMAPeak.loop(V8.self, iterations: iterations) }
}

/// 6 x 16 of C in twelve 8-wide accumulators: with 2 B vectors and 1 broadcast of A, 15 of
/// AVX2's 16 ymm registers; one FMA per accumulator per k.
public enum Tile6x16: MicroKernel {
    public static var mr: Int { 6 }
    public static var nr: Int { 16 }

    @inline(__always)
    public static func copyRow(_ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>) {
        let s = UnsafeRawPointer(src), d = UnsafeMutableRawPointer(dst)
        d.storeBytes(of: s.loadUnaligned(as: V8.self), as: V8.self)
        d.storeBytes(of: s.loadUnaligned(fromByteOffset: 32, as: V8.self), toByteOffset: 32, as: V8.self)
    }

    @inline(__always)
    public static func product(kc: Int, a: UnsafePointer<Float>, add: Bool, bRow: (Int) -> UnsafeRawPointer,
                        row: (Int) -> UnsafeMutablePointer<Float>) {
        var c00 = V8(), c01 = V8(), c10 = V8(), c11 = V8(), c20 = V8(), c21 = V8()
        var c30 = V8(), c31 = V8(), c40 = V8(), c41 = V8(), c50 = V8(), c51 = V8()
        var ap = a
        for p in 0..<kc {
            let bp = bRow(p)
            let b0 = bp.loadUnaligned(as: V8.self)
            let b1 = bp.loadUnaligned(fromByteOffset: 32, as: V8.self)
            var s = V8(repeating: ap[0]); c00.addProduct(s, b0); c01.addProduct(s, b1)
            s = V8(repeating: ap[1]); c10.addProduct(s, b0); c11.addProduct(s, b1)
            s = V8(repeating: ap[2]); c20.addProduct(s, b0); c21.addProduct(s, b1)
            s = V8(repeating: ap[3]); c30.addProduct(s, b0); c31.addProduct(s, b1)
            s = V8(repeating: ap[4]); c40.addProduct(s, b0); c41.addProduct(s, b1)
            s = V8(repeating: ap[5]); c50.addProduct(s, b0); c51.addProduct(s, b1)
            ap += 6
        }
        @inline(__always) func store(_ index: Int, _ lo: V8, _ hi: V8) {
            let p = UnsafeMutableRawPointer(row(index))
            if add {
                p.storeBytes(of: p.loadUnaligned(as: V8.self) + lo, as: V8.self)
                p.storeBytes(of: p.loadUnaligned(fromByteOffset: 32, as: V8.self) + hi, toByteOffset: 32, as: V8.self)
            } else {
                p.storeBytes(of: lo, as: V8.self)
                p.storeBytes(of: hi, toByteOffset: 32, as: V8.self)
            }
        }
        store(0, c00, c01); store(1, c10, c11); store(2, c20, c21)
        store(3, c30, c31); store(4, c40, c41); store(5, c50, c51)
    }
}

typealias V8 = SIMD8<Float>

/// The generic kernels' vector operations, bound to SIMD8<Float>'s concrete (vector) ones.
extension SIMD8: FloatVector where Scalar == Float {
    @inline(__always) public func replacing(with other: Self, where x: Self, isAtMost threshold: Self) -> Self {
        replacing(with: other, where: x .<= threshold)
    }
    @inline(__always) public func replacing(with other: Self, where x: Self, isBelow threshold: Self) -> Self {
        replacing(with: other, where: x .< threshold)
    }
    /// One vector square root (`SIMD`'s goes lane by lane, through libm).
    @inline(__always) public func squareRoot() -> Self { gantry_sqrt8(self) }
    /// One `vcvtps2ph` (F16C): Swift's conversion between SIMD8 of Float and of
    /// Float16 is vectorized here, unlike `squareRoot`.
    @inline(__always) public func roundedToHalves() -> SIMD8<Float16> { SIMD8<Float16>(self) }
    /// One `vcvtph2ps`.
    @inline(__always) public init(widening halves: SIMD8<Float16>) { self.init(halves) }
    /// As a compare and a select: the `SIMD` protocol's `clamped` goes lane by lane.
    @inline(__always) public func clamped(lowerBound: Self, upperBound: Self) -> Self {
        replacing(with: lowerBound, where: self .< lowerBound).replacing(with: upperBound, where: self .> upperBound)
    }
}
