import CVectorMath

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
    /// The tile's product of a packed A panel (a(i, p) at `a[p*mr + i]`) and the B rows
    /// `bRow(p)` (NR floats each: a packed panel's, or rows anywhere), stored at `row(i)` or,
    /// with `add`, added there. The multiplies below are this with their addressing.
    static func product(kc: Int, a: UnsafePointer<Float>, add: Bool, bRow: (Int) -> UnsafeRawPointer,
                        row: (Int) -> UnsafeMutablePointer<Float>)
    /// `dst[0 ..< nr] = src[0 ..< nr]` (one row of a B panel), with the tile's vectors.
    static func copyRow(_ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>)
    /// `dst[p*count + i] = rows[i][p]` for `i < count`, `p < kc`: rows side by side. An A panel
    /// (`count` = MR) or a panel of a transposed B (`count` = NR).
    static func packRows(_ rows: UnsafePointer<UnsafePointer<Float>>, count: Int, kc: Int,
                         into dst: UnsafeMutablePointer<Float>)
}

extension MicroKernel {
    /// `c[mr x nr] (+)= a[mr x kc] · b[kc x nr]` from packed panels: a(i, p) at `a[p*mr + i]`,
    /// b(p, j) at `b[p*nr + j]`.
    @inlinable @inline(__always)
    public static func multiply(kc: Int, a: UnsafePointer<Float>, b: UnsafePointer<Float>,
                                c: UnsafeMutablePointer<Float>, ldc: Int, add: Bool) {
        product(kc: kc, a: a, add: add, bRow: { UnsafeRawPointer(b + $0 * nr) }) { c + $0 * ldc }
    }

    /// `rows[i][0 ..< nr] += (a · b)[i]` for each row `i < mr` of the tile (distinct rows of C):
    /// `multiply(add: true)` with the rows of C anywhere (a convolution tap's scattered pixels).
    @inlinable @inline(__always)
    public static func multiplyAdd(kc: Int, a: UnsafePointer<Float>, b: UnsafePointer<Float>,
                                   rows: UnsafePointer<UnsafePointer<Float>>) {
        product(kc: kc, a: a, add: true, bRow: { UnsafeRawPointer(b + $0 * nr) }) { UnsafeMutablePointer(mutating: rows[$0]) }
    }

    /// `c[mr x nr] (+)= a[mr x kc] · B` where row `p` of B is the NR floats at `bRows[p] + bOffset`:
    /// `multiply` with B's rows read where they are (a convolution tap's gathered pixels).
    @inlinable @inline(__always)
    public static func multiplyGatheredB(kc: Int, a: UnsafePointer<Float>, bRows: UnsafePointer<UnsafePointer<Float>>,
                                         bOffset: Int, c: UnsafeMutablePointer<Float>, ldc: Int, add: Bool) {
        product(kc: kc, a: a, add: add, bRow: { UnsafeRawPointer(bRows[$0] + bOffset) }) { c + $0 * ldc }
    }

    /// Through register transposes (`CVectorMath.gantry_pack_rows`, 8 x 8 and 4 x 4 blocks),
    /// not scalar stores. The C function is `static inline`: each instruction-set module that
    /// specializes this compiles its own copy for its own `-march`.
    @inlinable @inline(__always)
    public static func packRows(_ rows: UnsafePointer<UnsafePointer<Float>>, count: Int, kc: Int,
                                into dst: UnsafeMutablePointer<Float>) {
        rows.withMemoryRebound(to: UnsafePointer<Float>?.self, capacity: count) {
            gantry_pack_rows($0, count, kc, dst)
        }
    }
}

/// The blocking of the multiply. KC is fixed (see above); MC is a multiple of every tile's MR.
public enum GEMMBlocking {
    public static let kc = 256, mc = 96, nc = 1024
}

/// The packing buffers and loops of the multiply for one tile shape. One engine must not be
/// used from two threads at once (a multiply on a pool uses the pool's threads itself).
public struct GEMMEngine<Tile: MicroKernel> {
    @usableFromInline let packedA: UnsafeMutablePointer<Float>
    @usableFromInline let packedB: UnsafeMutablePointer<Float>
    /// An MR x NR tile for the edges of C, where a full tile would write out of bounds.
    @usableFromInline let edgeTile: UnsafeMutablePointer<Float>
    /// The source rows of a panel packed side by side (MR of A, or NR of a transposed B).
    @usableFromInline let rowPointers: UnsafeMutablePointer<UnsafePointer<Float>>
    /// Threads this engine has buffers for: `packedA`, `edgeTile` and `rowPointers` are the
    /// first of `threads` blocks, one per thread; `packedB` is shared.
    @usableFromInline let threads: Int

    /// Buffers for multiplies split over up to `threads` threads.
    public init(threads: Int = 1) {
        precondition(GEMMBlocking.mc % Tile.mr == 0 && GEMMBlocking.nc % Tile.nr == 0, "blocks must hold whole tiles")
        precondition(threads >= 1, "an engine needs at least one thread")
        packedA = .allocate(capacity: threads * GEMMBlocking.mc * GEMMBlocking.kc)
        packedB = .allocate(capacity: threads * GEMMEngine.panelsPerThread(threads) * GEMMBlocking.kc * Tile.nr)
        edgeTile = .allocate(capacity: threads * Tile.mr * Tile.nr)
        rowPointers = .allocate(capacity: threads * GEMMEngine.rowPointersPerThread)
        self.threads = threads
    }

    /// A view on other buffers (one thread's share of a parallel multiply); owns nothing.
    @usableFromInline
    init(packedA: UnsafeMutablePointer<Float>, packedB: UnsafeMutablePointer<Float>,
         edgeTile: UnsafeMutablePointer<Float>, rowPointers: UnsafeMutablePointer<UnsafePointer<Float>>) {
        self.packedA = packedA
        self.packedB = packedB
        self.edgeTile = edgeTile
        self.rowPointers = rowPointers
        threads = 1
    }

    public func deallocate() {
        packedA.deallocate(); packedB.deallocate(); edgeTile.deallocate(); rowPointers.deallocate()
    }

    /// Room for the rows of a panel packed side by side, or a KC block's gathered B rows.
    @usableFromInline static var rowPointersPerThread: Int { max(Tile.mr, Tile.nr, GEMMBlocking.kc) }

    /// Thread `t`'s own packing buffers, with B at `packedB` (shared, or the thread's region).
    @inlinable
    func view(thread t: Int, packedB: UnsafeMutablePointer<Float>) -> GEMMEngine {
        GEMMEngine(packedA: packedA + t * GEMMBlocking.mc * GEMMBlocking.kc, packedB: packedB,
                   edgeTile: edgeTile + t * Tile.mr * Tile.nr, rowPointers: rowPointers + t * GEMMEngine.rowPointersPerThread)
    }

    /// Thread `t`'s region of B for a multiply that splits NR panels over `team` threads
    /// without a barrier: its own whatever the block.
    @inlinable
    func privateB(thread t: Int, team: Int) -> UnsafeMutablePointer<Float> {
        packedB + t * GEMMEngine.panelsPerThread(team) * GEMMBlocking.kc * Tile.nr
    }

    /// The most NR panels of one NC block a thread packs when a multiply splits them over
    /// `threads`: B has room for `threads` such runs (one NC block when `threads` is 1).
    @inlinable
    static func panelsPerThread(_ threads: Int) -> Int {
        (GEMMBlocking.nc / Tile.nr + threads - 1) / threads
    }

    /// `c[m x n] (+)= op(a)[m x k] · op(b)[k x n]`; see `Backend.gemm`. With a `pool` of more
    /// than one thread (at most `threads`), the work is split over it (see `multiplyInParallel`).
    @inlinable
    public func multiply(transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int,
                         a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
                         c: UnsafeMutablePointer<Float>, ldc: Int, accumulate: Bool, pool: ThreadPool? = nil) {
        guard m > 0, n > 0 else { return }
        if k == 0 {
            if !accumulate { for i in 0..<m { (c + i * ldc).update(repeating: 0, count: n) } }
            return
        }
        if k == 1 && (!transposeB || ldb == 1) {
            return multiplyOuter(transposeA: transposeA, m: m, n: n, a: a, lda: lda, b: b, c: c, ldc: ldc,
                                 accumulate: accumulate)
        }
        if n == 1 && (transposeB || ldb == 1) {
            return multiplyVector(transposeA: transposeA, m: m, k: k, a: a, lda: lda, b: b, c: c, ldc: ldc,
                                  accumulate: accumulate)
        }
        if let pool, pool.count > 1 {
            precondition(pool.count <= threads, "a pool of \(pool.count) threads on an engine for \(threads)")
            return multiplyInParallel(transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k,
                                      a: a, lda: lda, b: b, ldb: ldb, c: c, ldc: ldc, accumulate: accumulate, pool: pool)
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

    /// `c[m x 1] (+)= op(a) · b` with `b` contiguous: a matrix times a vector (a layer with one
    /// output, as D's last), where the register tile would waste 31 of its 32 columns and
    /// packing B would write 32 floats per value. Eight lanes, explicitly, on every instruction
    /// set, so all give the same bits:
    /// - `a` as stored (rows contiguous): each row's products in eight interleaved partial sums
    ///   (FMA), added lane 0 to 7, then the tail in order;
    /// - `a` transposed (columns contiguous): eight rows at a time, each an FMA chain over k.
    @inlinable
    func multiplyVector(transposeA: Bool, m: Int, k: Int, a: UnsafePointer<Float>, lda: Int,
                        b: UnsafePointer<Float>, c: UnsafeMutablePointer<Float>, ldc: Int, accumulate: Bool) {
        typealias F8 = SIMD8<Float>
        @inline(__always) func load(_ p: UnsafePointer<Float>) -> F8 { UnsafeRawPointer(p).loadUnaligned(as: F8.self) }
        @inline(__always) func put(_ i: Int, _ value: Float) { c[i * ldc] = accumulate ? c[i * ldc] + value : value }
        if !transposeA {
            for i in 0..<m {
                let row = a + i * lda
                var partial = F8(), p = 0
                while p + 8 <= k { partial = partial.addingProduct(load(row + p), load(b + p)); p += 8 }
                var total = partial[0]
                for lane in 1..<8 { total += partial[lane] }
                while p < k { total = total.addingProduct(row[p], b[p]); p += 1 }
                put(i, total)
            }
        } else {
            var i = 0
            while i + 8 <= m {
                var sums = F8()
                for p in 0..<k { sums = sums.addingProduct(load(a + p * lda + i), F8(repeating: b[p])) }
                for lane in 0..<8 { put(i + lane, sums[lane]) }
                i += 8
            }
            while i < m {
                var total: Float = 0
                for p in 0..<k { total = total.addingProduct(a[p * lda + i], b[p]) }
                put(i, total)
                i += 1
            }
        }
    }

    /// `c[m x n] (+)= op(a)[m x 1] · b[1 x n]` with `b` contiguous: an outer product (the input
    /// gradient of a layer with one output). Each element is one rounded product, added to C
    /// when accumulating: the value the tiled multiply gives (up to the sign of a zero),
    /// without packing, on every instruction set and thread count alike.
    @inlinable
    func multiplyOuter(transposeA: Bool, m: Int, n: Int, a: UnsafePointer<Float>, lda: Int,
                       b: UnsafePointer<Float>, c: UnsafeMutablePointer<Float>, ldc: Int, accumulate: Bool) {
        typealias F8 = SIMD8<Float>
        for i in 0..<m {
            let x = transposeA ? a[i] : a[i * lda], xs = F8(repeating: x), row = c + i * ldc
            var j = 0
            while j + 8 <= n {
                let product = xs * UnsafeRawPointer(b + j).loadUnaligned(as: F8.self)
                let out = UnsafeMutableRawPointer(row + j)
                out.storeBytes(of: accumulate ? out.loadUnaligned(as: F8.self) + product : product, as: F8.self)
                j += 8
            }
            while j < n { row[j] = accumulate ? row[j] + x * b[j] : x * b[j]; j += 1 }
        }
    }

    /// The same multiply on `pool.count` threads: the driver loops (NC and KC blocks) run on
    /// every thread; what is split is the work inside one (NC, KC) block, in one of two ways.
    ///
    /// - By rows of C, when each thread gets at least an MC block (or the block has fewer NR
    ///   panels than threads): the threads pack disjoint NR panels of the shared B block,
    ///   meet at a barrier, multiply their own rows (packing A into their own buffers), and
    ///   meet again before B is repacked.
    /// - Else by NR panels of C's columns (small M, the MLP's batch): each thread packs its own
    ///   panels of B, into a region of B's buffer that is its own whatever the block (threads
    ///   run through the NC and KC blocks at their own pace), and the whole of A into its own
    ///   buffer; no barrier at all.
    ///
    /// Either way each element of C is computed by one thread with the single-threaded
    /// multiply's operations in its order (the same KC blocks, the same FMA sequence; an edge
    /// tile adds to C as a full tile does), so the result is bit-identical to one thread's.
    @inlinable
    func multiplyInParallel(transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int,
                            a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
                            c: UnsafeMutablePointer<Float>, ldc: Int, accumulate: Bool, pool: ThreadPool) {
        let team = pool.count
        let rowTiles = (m + Tile.mr - 1) / Tile.mr
        let panelsPerBlock = (min(n, GEMMBlocking.nc) + Tile.nr - 1) / Tile.nr
        let byRows = m >= team * GEMMBlocking.mc || (panelsPerBlock < team && rowTiles > panelsPerBlock)
        pool.run(ParallelMultiply(engine: self, transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k,
                                  a: a, lda: lda, b: b, ldb: ldb, c: c, ldc: ldc, accumulate: accumulate, byRows: byRows))
    }

    /// Worker `t`'s share of `multiplyInParallel`.
    @inlinable
    func multiplyShare(_ w: ParallelMultiply<Tile>, worker t: Int, pool: ThreadPool) {
        let mr = Tile.mr, nr = Tile.nr, team = pool.count
        let (m, n, k, c, ldc) = (w.m, w.n, w.k, w.c, w.ldc)
        // Rows per thread: whole MR tiles, as even as they go.
        let rowsPerThread = ((m + mr - 1) / mr + team - 1) / team * mr
        let own = view(thread: t, packedB: packedB)
        var jc = 0
        while jc < n {
            let nc = min(GEMMBlocking.nc, n - jc)
            let panels = (nc + nr - 1) / nr
            // This thread's NR panels of the block: p0 ..< p1.
            let p0 = panels * t / team, p1 = panels * (t + 1) / team
            let columns = min(nc, p1 * nr) - p0 * nr
            var pc = 0
            while pc < k {
                let kc = min(GEMMBlocking.kc, k - pc)
                let add = w.accumulate || pc > 0
                if w.byRows {
                    if columns > 0 {
                        view(thread: t, packedB: packedB + p0 * kc * nr)
                            .packB(w.transposeB, w.b, w.ldb, row: pc, column: jc + p0 * nr, kc: kc, nc: columns)
                    }
                    pool.barrier()
                    var ic = min(m, t * rowsPerThread)
                    let end = min(m, ic + rowsPerThread)
                    while ic < end {
                        let mc = min(GEMMBlocking.mc, end - ic)
                        own.packA(w.transposeA, w.a, w.lda, row: ic, column: pc, mc: mc, kc: kc)
                        own.macroKernel(mc: mc, nc: nc, kc: kc, c: c + ic * ldc + jc, ldc: ldc, add: add)
                        ic += mc
                    }
                    // B is repacked next: wait until every thread is done with it.
                    if pc + kc < k || jc + nc < n { pool.barrier() }
                } else if columns > 0 {
                    let mine = view(thread: t, packedB: privateB(thread: t, team: team))
                    mine.packB(w.transposeB, w.b, w.ldb, row: pc, column: jc + p0 * nr, kc: kc, nc: columns)
                    var ic = 0
                    while ic < m {
                        let mc = min(GEMMBlocking.mc, m - ic)
                        mine.packA(w.transposeA, w.a, w.lda, row: ic, column: pc, mc: mc, kc: kc)
                        mine.macroKernel(mc: mc, nc: columns, kc: kc, c: c + ic * ldc + jc + p0 * nr, ldc: ldc, add: add)
                        ic += mc
                    }
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
    ///
    /// With a `pool`, each thread takes a contiguous share of the rows and packs B itself (a
    /// tap's block of the kernel, small) into its own region: no barrier. Each row of C gets
    /// the same FMA sequence whoever computes it, so results are bit-identical for any split.
    @inlinable
    public func multiplyGatheredRows(m: Int, n: Int, k: Int,
                                     a: UnsafePointer<Float>, aRows: UnsafePointer<Int32>, aStride: Int,
                                     transposeB: Bool, b: UnsafePointer<Float>, ldb: Int,
                                     c: UnsafeMutablePointer<Float>, cRows: UnsafePointer<Int32>, cStride: Int,
                                     pool: ThreadPool? = nil) {
        guard m > 0, n > 0, k > 0 else { return }
        run(GatheredMultiply(engine: self, inner: false, m: m, n: n, k: k, a: a, aRows: aRows, aStride: aStride,
                             transposeB: transposeB, b: b, ldb: ldb, bRows: aRows, bStride: 0,
                             c: c, cRows: cRows, ldc: cStride), pool: pool)
    }

    /// `c[m x n] += Σ_p a[aRows[p]]ᵀ · b[bRows[p]]` over `p` in `0 ..< k`: the inner dimension
    /// is gathered. Row `p` of A is the `m` floats at `a + aRows[p]·aStride`, row `p` of B the
    /// `n` floats at `b + bRows[p]·bStride`. The kernel gradient of one convolution tap:
    /// (input pixels under the tap)ᵀ · (output gradients of those pixels).
    ///
    /// With a `pool`, each thread takes a contiguous share of the NR panels of C's columns and
    /// packs their part of B and the whole of A itself: no barrier, and every element of C the
    /// same FMA sequence as on one thread.
    @inlinable
    public func multiplyGatheredInner(m: Int, n: Int, k: Int,
                                      a: UnsafePointer<Float>, aRows: UnsafePointer<Int32>, aStride: Int,
                                      b: UnsafePointer<Float>, bRows: UnsafePointer<Int32>, bStride: Int,
                                      c: UnsafeMutablePointer<Float>, ldc: Int, pool: ThreadPool? = nil) {
        guard m > 0, n > 0, k > 0 else { return }
        run(GatheredMultiply(engine: self, inner: true, m: m, n: n, k: k, a: a, aRows: aRows, aStride: aStride,
                             transposeB: false, b: b, ldb: 0, bRows: bRows, bStride: bStride,
                             c: c, cRows: aRows, ldc: ldc), pool: pool)
    }

    /// A gathered multiply on the pool's threads, or all of it on this one.
    @inlinable
    func run(_ work: GatheredMultiply<Tile>, pool: ThreadPool?) {
        if let pool, pool.count > 1 {
            precondition(pool.count <= threads, "a pool of \(pool.count) threads on an engine for \(threads)")
            pool.run(work)
        } else if work.inner {
            gatheredInner(work, columns: 0 ..< work.n)
        } else {
            gatheredRows(work, rows: 0 ..< work.m, columnsPerBlock: GEMMBlocking.nc)
        }
    }

    /// Rows `rows` of a gathered-rows multiply with this engine's buffers, B packed
    /// `columnsPerBlock` columns at a time.
    @inlinable
    func gatheredRows(_ w: GatheredMultiply<Tile>, rows: Range<Int>, columnsPerBlock: Int) {
        let mr = Tile.mr, nr = Tile.nr
        var jc = 0
        while jc < w.n {
            let nc = min(columnsPerBlock, w.n - jc)
            var pc = 0
            while pc < w.k {
                let kc = min(GEMMBlocking.kc, w.k - pc)
                packB(w.transposeB, w.b, w.ldb, row: pc, column: jc, kc: kc, nc: nc)
                var ic = rows.lowerBound
                while ic < rows.upperBound {
                    let mc = min(GEMMBlocking.mc, rows.upperBound - ic)
                    // Pack MR gathered rows side by side (missing rows of the last panel repeat
                    // its first row; their results are dropped).
                    var q = 0
                    while q * mr < mc {
                        let available = min(mr, mc - q * mr)
                        for i in 0..<mr {
                            rowPointers[i] = w.a + Int(w.aRows[ic + q * mr + (i < available ? i : 0)]) * w.aStride + pc
                        }
                        Tile.packRows(rowPointers, count: mr, kc: kc, into: packedA + q * mr * kc)
                        q += 1
                    }
                    // Each tile is added into its scattered rows of C.
                    var jr = 0
                    while jr < nc {
                        let cols = min(nr, nc - jr)
                        var ir = 0
                        while ir < mc {
                            let tileRows = min(mr, mc - ir)
                            if cols == nr {
                                // Straight into C's rows; a short tile's missing rows go to the edge tile.
                                for i in 0..<mr {
                                    rowPointers[i] = i < tileRows
                                        ? UnsafePointer(w.c + Int(w.cRows[ic + ir + i]) * w.ldc + jc + jr)
                                        : UnsafePointer(edgeTile + i * nr)
                                }
                                Tile.multiplyAdd(kc: kc, a: packedA + ir * kc, b: packedB + jr * kc, rows: rowPointers)
                            } else {
                                Tile.multiply(kc: kc, a: packedA + ir * kc, b: packedB + jr * kc, c: edgeTile, ldc: nr,
                                              add: false)
                                for i in 0..<tileRows {
                                    let dst = w.c + Int(w.cRows[ic + ir + i]) * w.ldc + jc + jr
                                    let src = edgeTile + i * nr
                                    for j in 0..<cols { dst[j] += src[j] }
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

    /// Columns `columns` (whole NR panels but for the last) of a gathered-inner multiply with
    /// this engine's buffers. A is packed; B's gathered rows are read where they are by the
    /// whole NR panels (`MicroKernel.multiplyGatheredB`): a tap's kernel gradient has small M
    /// and N, so packing B cost as much as the multiply. A last, narrower panel is packed.
    @inlinable
    func gatheredInner(_ w: GatheredMultiply<Tile>, columns: Range<Int>) {
        let mr = Tile.mr, nr = Tile.nr
        let fullEnd = columns.lowerBound + (columns.count / nr) * nr
        var pc = 0
        while pc < w.k {
            let kc = min(GEMMBlocking.kc, w.k - pc)
            for p in 0..<kc { rowPointers[p] = w.b + Int(w.bRows[pc + p]) * w.bStride }
            if fullEnd < columns.upperBound {
                // The last panel's columns, packed (zeros past them).
                let cols = columns.upperBound - fullEnd
                for p in 0..<kc {
                    let src = rowPointers[p] + fullEnd, dst = packedB + p * nr
                    for j in 0..<cols { dst[j] = src[j] }
                    for j in cols..<nr { dst[j] = 0 }
                }
            }
            var ic = 0
            while ic < w.m {
                let mc = min(GEMMBlocking.mc, w.m - ic)
                // Pack Aᵀ: each gathered row contributes MR contiguous values to every panel;
                // one source row at a time.
                for p in 0..<kc {
                    let row = w.a + Int(w.aRows[pc + p]) * w.aStride + ic
                    var q = 0
                    while q * mr < mc {
                        let src = row + q * mr, dst = packedA + q * mr * kc + p * mr
                        let rows = min(mr, mc - q * mr)
                        for i in 0..<rows { dst[i] = src[i] }
                        for i in rows..<mr { dst[i] = 0 }
                        q += 1
                    }
                }
                var ir = 0
                while ir < mc {
                    let rows = min(mr, mc - ir)
                    let cRow = w.c + (ic + ir) * w.ldc
                    var jr = columns.lowerBound
                    while jr < columns.upperBound {
                        if jr < fullEnd {
                            if rows == mr {
                                Tile.multiplyGatheredB(kc: kc, a: packedA + ir * kc, bRows: rowPointers, bOffset: jr,
                                                       c: cRow + jr, ldc: w.ldc, add: true)
                            } else {
                                Tile.multiplyGatheredB(kc: kc, a: packedA + ir * kc, bRows: rowPointers, bOffset: jr,
                                                       c: edgeTile, ldc: nr, add: false)
                                addEdge(rows: rows, cols: nr, into: cRow + jr, ldc: w.ldc)
                            }
                        } else {
                            Tile.multiply(kc: kc, a: packedA + ir * kc, b: packedB, c: edgeTile, ldc: nr, add: false)
                            addEdge(rows: rows, cols: columns.upperBound - jr, into: cRow + jr, ldc: w.ldc)
                        }
                        jr += nr
                    }
                    ir += mr
                }
                ic += mc
            }
            pc += kc
        }
    }

    /// `c[i, j] += edgeTile[i, j]` for the tile's first `rows` x `cols`.
    @inlinable @inline(__always)
    func addEdge(rows: Int, cols: Int, into c: UnsafeMutablePointer<Float>, ldc: Int) {
        for i in 0..<rows {
            let dst = c + i * ldc, src = edgeTile + i * Tile.nr
            for j in 0..<cols { dst[j] += src[j] }
        }
    }
}

/// A gathered multiply's operands, handed to the pool's threads as a value (see `PoolWork`).
/// `inner`: `multiplyGatheredInner` (C is `m x n` with leading dimension `ldc`); else
/// `multiplyGatheredRows` (C's rows at `cRows`, `ldc` apart).
@usableFromInline
struct GatheredMultiply<Tile: MicroKernel>: PoolWork {
    @usableFromInline let engine: GEMMEngine<Tile>
    @usableFromInline let inner: Bool
    @usableFromInline let m: Int, n: Int, k: Int
    @usableFromInline let a: UnsafePointer<Float>, aRows: UnsafePointer<Int32>, aStride: Int
    @usableFromInline let transposeB: Bool
    @usableFromInline let b: UnsafePointer<Float>, ldb: Int, bRows: UnsafePointer<Int32>, bStride: Int
    @usableFromInline let c: UnsafeMutablePointer<Float>, cRows: UnsafePointer<Int32>, ldc: Int

    @inlinable
    init(engine: GEMMEngine<Tile>, inner: Bool, m: Int, n: Int, k: Int,
         a: UnsafePointer<Float>, aRows: UnsafePointer<Int32>, aStride: Int, transposeB: Bool,
         b: UnsafePointer<Float>, ldb: Int, bRows: UnsafePointer<Int32>, bStride: Int,
         c: UnsafeMutablePointer<Float>, cRows: UnsafePointer<Int32>, ldc: Int) {
        self.engine = engine
        self.inner = inner
        self.m = m
        self.n = n
        self.k = k
        self.a = a
        self.aRows = aRows
        self.aStride = aStride
        self.transposeB = transposeB
        self.b = b
        self.ldb = ldb
        self.bRows = bRows
        self.bStride = bStride
        self.c = c
        self.cRows = cRows
        self.ldc = ldc
    }

    /// Thread `worker`'s share: rows of C for the gathered-rows multiply, NR panels of its
    /// columns for the gathered-inner one; B goes into the thread's own region.
    @inlinable
    func run(worker t: Int, pool: ThreadPool) {
        let team = pool.count, nr = Tile.nr
        let own = engine.view(thread: t, packedB: engine.privateB(thread: t, team: team))
        let columnsPerBlock = GEMMEngine<Tile>.panelsPerThread(team) * nr
        if inner {
            let panels = (n + nr - 1) / nr
            let first = min(n, panels * t / team * nr), end = min(n, panels * (t + 1) / team * nr)
            if first < end { own.gatheredInner(self, columns: first ..< end) }
        } else {
            let first = m * t / team, end = m * (t + 1) / team
            if first < end { own.gatheredRows(self, rows: first ..< end, columnsPerBlock: columnsPerBlock) }
        }
    }
}

/// One multiply's operands, handed to the pool's threads as a value (see `PoolWork`).
@usableFromInline
struct ParallelMultiply<Tile: MicroKernel>: PoolWork {
    @usableFromInline let engine: GEMMEngine<Tile>
    @usableFromInline let transposeA: Bool, transposeB: Bool
    @usableFromInline let m: Int, n: Int, k: Int
    @usableFromInline let a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int
    @usableFromInline let c: UnsafeMutablePointer<Float>, ldc: Int
    @usableFromInline let accumulate: Bool
    /// Split by rows of C (else by NR panels of its columns).
    @usableFromInline let byRows: Bool

    @inlinable
    init(engine: GEMMEngine<Tile>, transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int,
         a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
         c: UnsafeMutablePointer<Float>, ldc: Int, accumulate: Bool, byRows: Bool) {
        self.engine = engine
        self.transposeA = transposeA
        self.transposeB = transposeB
        self.m = m
        self.n = n
        self.k = k
        self.a = a
        self.lda = lda
        self.b = b
        self.ldb = ldb
        self.c = c
        self.ldc = ldc
        self.accumulate = accumulate
        self.byRows = byRows
    }

    @inlinable
    func run(worker: Int, pool: ThreadPool) { engine.multiplyShare(self, worker: worker, pool: pool) }
}
