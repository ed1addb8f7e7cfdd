/// Register-blocked single-precision matrix multiply (the Goto/BLIS structure), written once
/// for every instruction set: the register tile (`MicroKernel`) is the only part that differs.
///
/// `op(A)` and `op(B)` are copied ("packed") block by block into contiguous panels so that the
/// micro-kernel streams both with unit stride whatever the transposition; the three transpose
/// variants a dense layer needs differ only in how they are packed. The micro-kernel keeps an
/// MR x NR tile of C in registers and performs one FMA per register per k.
///
/// Blocking: a KC x NC panel of B (256 x 1024 floats, 1 MiB) stays in L2/L3, an MC x KC block
/// of A (96 x 256, 96 KiB) in L2, and one KC x NR micro-panel of B in L1.
///
/// Every element of C is the sum over k in ascending order, FMA by FMA, restarted at each
/// KC block and added to C between blocks. KC is the same for every tile, so every
/// instruction set, tile shape and split of the work gives bit-identical results.
///
/// The engine is generic and `@inlinable`: each instruction-set module specializes it for its
/// own tile, so the packing loops are compiled for that module's `-march` too.
public protocol MicroKernel {
    /// Rows and columns of the register tile.
    static var mr: Int { get }
    static var nr: Int { get }
    /// `c[mr x nr] (+)= a[mr x kc] · b[kc x nr]` from packed panels: a(i, p) at `a[p*mr + i]`,
    /// b(p, j) at `b[p*nr + j]`.
    static func multiply(kc: Int, a: UnsafePointer<Float>, b: UnsafePointer<Float>,
                         c: UnsafeMutablePointer<Float>, ldc: Int, add: Bool)
    /// `dst[0 ..< nr] = src[0 ..< nr]` (one row of a B panel), with the tile's vectors.
    static func copyRow(_ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>)
    /// `dst[p*count + i] = rows[i][p]` for `i < count`, `p < kc`: rows side by side. An A panel
    /// (`count` = MR) or a panel of a transposed B (`count` = NR).
    static func packRows(_ rows: UnsafePointer<UnsafePointer<Float>>, count: Int, kc: Int,
                         into dst: UnsafeMutablePointer<Float>)
}

extension MicroKernel {
    /// Scalar by scalar; a tile may do better with its vectors.
    @inlinable @inline(__always)
    public static func packRows(_ rows: UnsafePointer<UnsafePointer<Float>>, count: Int, kc: Int,
                                into dst: UnsafeMutablePointer<Float>) {
        for p in 0..<kc {
            let d = dst + p * count
            for i in 0..<count { d[i] = rows[i][p] }
        }
    }
}

/// The blocking of the multiply. KC is fixed (see above); MC is a multiple of every tile's MR.
public enum GEMMBlocking {
    public static let kc = 256, mc = 96, nc = 1024
}

/// The packing buffers and loops of the multiply for one tile shape. One engine must not be
/// used from two threads at once.
public struct GEMMEngine<Tile: MicroKernel> {
    @usableFromInline let packedA: UnsafeMutablePointer<Float>
    @usableFromInline let packedB: UnsafeMutablePointer<Float>
    /// An MR x NR tile for the edges of C, where a full tile would write out of bounds.
    @usableFromInline let edgeTile: UnsafeMutablePointer<Float>
    /// The source rows of a panel packed side by side (MR of A, or NR of a transposed B).
    @usableFromInline let rowPointers: UnsafeMutablePointer<UnsafePointer<Float>>

    public init() {
        precondition(GEMMBlocking.mc % Tile.mr == 0 && GEMMBlocking.nc % Tile.nr == 0, "blocks must hold whole tiles")
        packedA = .allocate(capacity: GEMMBlocking.mc * GEMMBlocking.kc)
        packedB = .allocate(capacity: GEMMBlocking.kc * GEMMBlocking.nc)
        edgeTile = .allocate(capacity: Tile.mr * Tile.nr)
        rowPointers = .allocate(capacity: max(Tile.mr, Tile.nr))
    }

    public func deallocate() {
        packedA.deallocate(); packedB.deallocate(); edgeTile.deallocate(); rowPointers.deallocate()
    }

    /// `c[m x n] (+)= op(a)[m x k] · op(b)[k x n]`; see `Backend.gemm`.
    @inlinable
    public func multiply(transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int,
                         a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
                         c: UnsafeMutablePointer<Float>, ldc: Int, accumulate: Bool) {
        guard m > 0, n > 0 else { return }
        if k == 0 {
            if !accumulate { for i in 0..<m { (c + i * ldc).update(repeating: 0, count: n) } }
            return
        }
        var jc = 0
        while jc < n {
            let nc = min(GEMMBlocking.nc, n - jc)
            var pc = 0
            while pc < k {
                let kc = min(GEMMBlocking.kc, k - pc)
                // The first K block overwrites C unless the caller accumulates; later blocks add.
                let add = accumulate || pc > 0
                packB(transposeB, b, ldb, row: pc, column: jc, kc: kc, nc: nc)
                var ic = 0
                while ic < m {
                    let mc = min(GEMMBlocking.mc, m - ic)
                    packA(transposeA, a, lda, row: ic, column: pc, mc: mc, kc: kc)
                    macroKernel(mc: mc, nc: nc, kc: kc, c: c + ic * ldc + jc, ldc: ldc, add: add)
                    ic += mc
                }
                pc += kc
            }
            jc += nc
        }
    }

    /// `c[mc x nc] (+)= packedA · packedB`, tile by tile.
    @inlinable @inline(__always)
    func macroKernel(mc: Int, nc: Int, kc: Int, c: UnsafeMutablePointer<Float>, ldc: Int, add: Bool) {
        let mr = Tile.mr, nr = Tile.nr
        var jr = 0
        while jr < nc {
            let cols = min(nr, nc - jr)
            let bPanel = packedB + jr * kc
            var ir = 0
            while ir < mc {
                let rows = min(mr, mc - ir)
                let cTile = c + ir * ldc + jr
                if rows == mr && cols == nr {
                    Tile.multiply(kc: kc, a: packedA + ir * kc, b: bPanel, c: cTile, ldc: ldc, add: add)
                } else {
                    Tile.multiply(kc: kc, a: packedA + ir * kc, b: bPanel, c: edgeTile, ldc: nr, add: false)
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
    }

    /// Packs `op(a)[row ..< row+mc, column ..< column+kc]` into panels of MR rows:
    /// element (i, p) of panel `q` lands at `q*MR*kc + p*MR + i`; rows past `mc` are zero.
    @inlinable @inline(__always)
    func packA(_ transposed: Bool, _ a: UnsafePointer<Float>, _ lda: Int,
               row: Int, column: Int, mc: Int, kc: Int) {
        let mr = Tile.mr
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
                // MR rows side by side, so each p stores MR contiguous values. Row by row, every
                // store strides by MR; with lda in the thousands (a convolution's im2col matrix)
                // that pack took a quarter of the multiply's time.
                for i in 0..<mr { rowPointers[i] = a + (r0 + i) * lda + column }
                Tile.packRows(rowPointers, count: mr, kc: kc, into: panel)
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
    @inlinable @inline(__always)
    func packB(_ transposed: Bool, _ b: UnsafePointer<Float>, _ ldb: Int,
               row: Int, column: Int, kc: Int, nc: Int) {
        let nr = Tile.nr
        var q = 0
        while q * nr < nc {
            let panel = packedB + q * kc * nr
            let cols = min(nr, nc - q * nr)
            let c0 = column + q * nr
            if transposed && cols == nr {
                // op(b)(p, j) = b[j, p]: NR source rows side by side.
                for j in 0..<nr { rowPointers[j] = b + (c0 + j) * ldb + row }
                Tile.packRows(rowPointers, count: nr, kc: kc, into: panel)
            } else if transposed {
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
                for p in 0..<kc { Tile.copyRow(b + (row + p) * ldb + c0, panel + p * nr) }
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
}

// MARK: - Gathered multiplies: convolutions tap by tap

extension GEMMEngine {
    /// `c[cRows[i]] += a[aRows[i]] · op(b)` for `i` in `0 ..< m`: row `i` of A is the `k`
    /// contiguous floats at `a + aRows[i]·aStride`, row `i` of C the `n` floats at
    /// `c + cRows[i]·cStride`; `op(b)` is `k x n` as in `multiply`. Always accumulates.
    ///
    /// A convolution is a sum over kernel taps of these: for one tap, the output pixels whose
    /// receptive field has that tap inside the image, times that tap's `C_in x F` block of the
    /// kernel. Unlike im2col, no product lands in the padding. The rows of C must be distinct.
    @inlinable
    public func multiplyGatheredRows(m: Int, n: Int, k: Int,
                                     a: UnsafePointer<Float>, aRows: UnsafePointer<Int32>, aStride: Int,
                                     transposeB: Bool, b: UnsafePointer<Float>, ldb: Int,
                                     c: UnsafeMutablePointer<Float>, cRows: UnsafePointer<Int32>, cStride: Int) {
        guard m > 0, n > 0, k > 0 else { return }
        let mr = Tile.mr, nr = Tile.nr
        var jc = 0
        while jc < n {
            let nc = min(GEMMBlocking.nc, n - jc)
            var pc = 0
            while pc < k {
                let kc = min(GEMMBlocking.kc, k - pc)
                packB(transposeB, b, ldb, row: pc, column: jc, kc: kc, nc: nc)
                var ic = 0
                while ic < m {
                    let mc = min(GEMMBlocking.mc, m - ic)
                    // Pack MR gathered rows side by side: each p stores MR contiguous values
                    // (missing rows of the last panel repeat its first row; their results are dropped).
                    var q = 0
                    while q * mr < mc {
                        let panel = packedA + q * mr * kc
                        let rows = min(mr, mc - q * mr)
                        for i in 0..<mr {
                            rowPointers[i] = a + Int(aRows[ic + q * mr + (i < rows ? i : 0)]) * aStride + pc
                        }
                        Tile.packRows(rowPointers, count: mr, kc: kc, into: panel)
                        q += 1
                    }
                    // Each tile goes through the edge tile and is added into its scattered rows.
                    var jr = 0
                    while jr < nc {
                        let cols = min(nr, nc - jr)
                        var ir = 0
                        while ir < mc {
                            let rows = min(mr, mc - ir)
                            Tile.multiply(kc: kc, a: packedA + ir * kc, b: packedB + jr * kc, c: edgeTile, ldc: nr, add: false)
                            for i in 0..<rows {
                                let dst = c + Int(cRows[ic + ir + i]) * cStride + jc + jr
                                let src = edgeTile + i * nr
                                for j in 0..<cols { dst[j] += src[j] }
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

    /// `c[m x n] += Σ_p a[aRows[p]]ᵀ · b[bRows[p]]` over `p` in `0 ..< k`: the inner dimension
    /// is gathered. Row `p` of A is the `m` floats at `a + aRows[p]·aStride`, row `p` of B the
    /// `n` floats at `b + bRows[p]·bStride`. The kernel gradient of one convolution tap:
    /// (input pixels under the tap)ᵀ · (output gradients of those pixels).
    @inlinable
    public func multiplyGatheredInner(m: Int, n: Int, k: Int,
                                      a: UnsafePointer<Float>, aRows: UnsafePointer<Int32>, aStride: Int,
                                      b: UnsafePointer<Float>, bRows: UnsafePointer<Int32>, bStride: Int,
                                      c: UnsafeMutablePointer<Float>, ldc: Int) {
        guard m > 0, n > 0, k > 0 else { return }
        let mr = Tile.mr, nr = Tile.nr
        var jc = 0
        while jc < n {
            let nc = min(GEMMBlocking.nc, n - jc)
            var pc = 0
            while pc < k {
                let kc = min(GEMMBlocking.kc, k - pc)
                // Pack B's gathered rows into panels of NR columns, one source row at a time.
                for p in 0..<kc {
                    let row = b + Int(bRows[pc + p]) * bStride + jc
                    var qb = 0
                    while qb * nr < nc {
                        let src = row + qb * nr, dst = packedB + qb * kc * nr + p * nr
                        let cols = min(nr, nc - qb * nr)
                        if cols == nr {
                            Tile.copyRow(src, dst)
                        } else {
                            for j in 0..<cols { dst[j] = src[j] }
                            for j in cols..<nr { dst[j] = 0 }
                        }
                        qb += 1
                    }
                }
                var ic = 0
                while ic < m {
                    let mc = min(GEMMBlocking.mc, m - ic)
                    // Pack Aᵀ: each gathered row contributes MR contiguous values to every panel;
                    // one source row at a time.
                    for p in 0..<kc {
                        let row = a + Int(aRows[pc + p]) * aStride + ic
                        var q = 0
                        while q * mr < mc {
                            let src = row + q * mr, dst = packedA + q * mr * kc + p * mr
                            let rows = min(mr, mc - q * mr)
                            for i in 0..<rows { dst[i] = src[i] }
                            for i in rows..<mr { dst[i] = 0 }
                            q += 1
                        }
                    }
                    macroKernel(mc: mc, nc: nc, kc: kc, c: c + ic * ldc + jc, ldc: ldc, add: true)
                    ic += mc
                }
                pc += kc
            }
            jc += nc
        }
    }
}
