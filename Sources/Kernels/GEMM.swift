/// Register-blocked single-precision matrix multiply (the Goto/BLIS structure).
///
/// `op(A)` and `op(B)` are copied ("packed") block by block into contiguous panels so that the
/// micro-kernel streams both with unit stride whatever the transposition; the three transpose
/// variants a dense layer needs differ only in how they are packed. The micro-kernel keeps a
/// 6 x 16 tile of C in twelve 8-wide registers (AVX2: 16 ymm registers, 12 accumulators + 2 B
/// vectors + 1 broadcast A), and performs one FMA per register per k.
///
/// Blocking: a KC x NC panel of B (256 x 1024 floats, 1 MiB) stays in L2/L3, an MC x KC block
/// of A (96 x 256, 96 KiB) in L2, and one KC x 16 micro-panel of B (16 KiB) in L1.
@usableFromInline
struct GEMMWorkspace {
    static let mr = 6, nr = 16
    static let kc = 256, mc = 96, nc = 1024

    let packedA: UnsafeMutablePointer<Float>
    let packedB: UnsafeMutablePointer<Float>
    /// An MR x NR tile for the edges of C, where a full tile would write out of bounds.
    let edgeTile: UnsafeMutablePointer<Float>

    init() {
        packedA = .allocate(capacity: GEMMWorkspace.mc * GEMMWorkspace.kc)
        packedB = .allocate(capacity: GEMMWorkspace.kc * GEMMWorkspace.nc)
        edgeTile = .allocate(capacity: GEMMWorkspace.mr * GEMMWorkspace.nr)
    }

    func deallocate() {
        packedA.deallocate(); packedB.deallocate(); edgeTile.deallocate()
    }
}

typealias V8 = SIMD8<Float>

extension GEMMWorkspace {
    /// `c[m x n] (+)= op(a)[m x k] · op(b)[k x n]`; see `Backend.gemm`.
    func multiply(transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int,
                  a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
                  c: UnsafeMutablePointer<Float>, ldc: Int, accumulate: Bool) {
        let mr = GEMMWorkspace.mr, nr = GEMMWorkspace.nr
        guard m > 0, n > 0 else { return }
        if k == 0 {
            if !accumulate { for i in 0..<m { (c + i * ldc).update(repeating: 0, count: n) } }
            return
        }
        var jc = 0
        while jc < n {
            let nc = min(GEMMWorkspace.nc, n - jc)
            var pc = 0
            while pc < k {
                let kc = min(GEMMWorkspace.kc, k - pc)
                // The first K block overwrites C unless the caller accumulates; later blocks add.
                let add = accumulate || pc > 0
                packB(transposeB, b, ldb, row: pc, column: jc, kc: kc, nc: nc)
                var ic = 0
                while ic < m {
                    let mc = min(GEMMWorkspace.mc, m - ic)
                    packA(transposeA, a, lda, row: ic, column: pc, mc: mc, kc: kc)
                    var jr = 0
                    while jr < nc {
                        let cols = min(nr, nc - jr)
                        let bPanel = packedB + jr * kc
                        var ir = 0
                        while ir < mc {
                            let rows = min(mr, mc - ir)
                            let cTile = c + (ic + ir) * ldc + (jc + jr)
                            if rows == mr && cols == nr {
                                microKernel(kc: kc, a: packedA + ir * kc, b: bPanel, c: cTile, ldc: ldc, add: add)
                            } else {
                                microKernel(kc: kc, a: packedA + ir * kc, b: bPanel, c: edgeTile, ldc: nr, add: false)
                                for i in 0..<rows {
                                    for j in 0..<cols {
                                        let v = edgeTile[i * nr + j]
                                        cTile[i * ldc + j] = add ? cTile[i * ldc + j] + v : v
                                    }
                                }
                            }
                            ir += mr
                        }
                        jr += nr
                    }
                    ic += mc
                }
                pc += kc
            }
            jc += nc
        }
    }

    /// Packs `op(a)[row ..< row+mc, column ..< column+kc]` into panels of MR rows:
    /// element (i, p) of panel `q` lands at `q*MR*kc + p*MR + i`; rows past `mc` are zero.
    @inline(__always)
    private func packA(_ transposed: Bool, _ a: UnsafePointer<Float>, _ lda: Int,
                       row: Int, column: Int, mc: Int, kc: Int) {
        let mr = GEMMWorkspace.mr
        var q = 0
        while q * mr < mc {
            let panel = packedA + q * mr * kc
            let rows = min(mr, mc - q * mr)
            let r0 = row + q * mr
            if transposed {
                // op(a)(i, p) = a[p, i]: each p contributes MR contiguous values.
                for p in 0..<kc {
                    let src = a + (column + p) * lda + r0
                    let dst = panel + p * mr
                    for i in 0..<rows { dst[i] = src[i] }
                    for i in rows..<mr { dst[i] = 0 }
                }
            } else if rows == mr {
                // Six rows side by side, so each p stores MR contiguous values. Row by row, every
                // store strides by MR; with lda in the thousands (a convolution's im2col matrix)
                // that pack took a quarter of the multiply's time.
                let s0 = a + r0 * lda + column, s1 = s0 + lda, s2 = s1 + lda
                let s3 = s2 + lda, s4 = s3 + lda, s5 = s4 + lda
                for p in 0..<kc {
                    let dst = panel + p * mr
                    dst[0] = s0[p]; dst[1] = s1[p]; dst[2] = s2[p]
                    dst[3] = s3[p]; dst[4] = s4[p]; dst[5] = s5[p]
                }
            } else {
                for i in 0..<mr {
                    if i < rows {
                        let src = a + (r0 + i) * lda + column
                        for p in 0..<kc { panel[p * mr + i] = src[p] }
                    } else {
                        for p in 0..<kc { panel[p * mr + i] = 0 }
                    }
                }
            }
            q += 1
        }
    }

    /// Packs `op(b)[row ..< row+kc, column ..< column+nc]` into panels of NR columns:
    /// element (p, j) of panel `q` lands at `q*kc*NR + p*NR + j`; columns past `nc` are zero.
    @inline(__always)
    private func packB(_ transposed: Bool, _ b: UnsafePointer<Float>, _ ldb: Int,
                       row: Int, column: Int, kc: Int, nc: Int) {
        let nr = GEMMWorkspace.nr
        var q = 0
        while q * nr < nc {
            let panel = packedB + q * kc * nr
            let cols = min(nr, nc - q * nr)
            let c0 = column + q * nr
            if transposed {
                // op(b)(p, j) = b[j, p]: walk each source row once.
                for j in 0..<nr {
                    if j < cols {
                        let src = b + (c0 + j) * ldb + row
                        for p in 0..<kc { panel[p * nr + j] = src[p] }
                    } else {
                        for p in 0..<kc { panel[p * nr + j] = 0 }
                    }
                }
            } else if cols == nr {
                for p in 0..<kc {
                    let src = UnsafeRawPointer(b + (row + p) * ldb + c0)
                    let dst = UnsafeMutableRawPointer(panel + p * nr)
                    dst.storeBytes(of: src.loadUnaligned(as: V8.self), as: V8.self)
                    (dst + 32).storeBytes(of: src.loadUnaligned(fromByteOffset: 32, as: V8.self), as: V8.self)
                }
            } else {
                for p in 0..<kc {
                    let src = b + (row + p) * ldb + c0
                    let dst = panel + p * nr
                    for j in 0..<cols { dst[j] = src[j] }
                    for j in cols..<nr { dst[j] = 0 }
                }
            }
            q += 1
        }
    }

    /// `c[6 x 16] (+)= a[6 x kc] · b[kc x 16]` from packed panels.
    @inline(__always)
    private func microKernel(kc: Int, a: UnsafePointer<Float>, b: UnsafePointer<Float>,
                             c: UnsafeMutablePointer<Float>, ldc: Int, add: Bool) {
        var c00 = V8(), c01 = V8(), c10 = V8(), c11 = V8(), c20 = V8(), c21 = V8()
        var c30 = V8(), c31 = V8(), c40 = V8(), c41 = V8(), c50 = V8(), c51 = V8()
        var ap = a
        var bp = UnsafeRawPointer(b)
        for _ in 0..<kc {
            let b0 = bp.loadUnaligned(as: V8.self)
            let b1 = bp.loadUnaligned(fromByteOffset: 32, as: V8.self)
            var s = V8(repeating: ap[0]); c00.addProduct(s, b0); c01.addProduct(s, b1)
            s = V8(repeating: ap[1]); c10.addProduct(s, b0); c11.addProduct(s, b1)
            s = V8(repeating: ap[2]); c20.addProduct(s, b0); c21.addProduct(s, b1)
            s = V8(repeating: ap[3]); c30.addProduct(s, b0); c31.addProduct(s, b1)
            s = V8(repeating: ap[4]); c40.addProduct(s, b0); c41.addProduct(s, b1)
            s = V8(repeating: ap[5]); c50.addProduct(s, b0); c51.addProduct(s, b1)
            ap += 6
            bp += 64
        }
        @inline(__always) func store(_ row: Int, _ lo: V8, _ hi: V8) {
            let p = UnsafeMutableRawPointer(c + row * ldc)
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
