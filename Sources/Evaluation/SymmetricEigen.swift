import CLapack

/// The eigendecomposition of a real symmetric matrix, A = V·diag(λ)·Vᵀ, by LAPACK's `dsyev`
/// (Householder tridiagonalization, then implicit QL/QR), in Double.
///
/// Shapes: the matrix is `n x n`, row-major; a symmetric matrix reads the same column-major,
/// which is what LAPACK expects, so it is passed as is. `values` ascend; `vectors` (when asked
/// for) holds eigenvector k, of unit length, contiguous at `vectors[k·n ..< (k+1)·n]`.
public struct SymmetricEigen: Sendable {
    public let dimension: Int
    public let values: [Double]
    /// Empty unless the vectors were asked for.
    public let vectors: [Double]

    /// Decomposes `matrix` (`dimension²` values; only its upper triangle, in row-major
    /// terms, is read). Throws `EvaluationError.eigensolverFailed` if LAPACK does not converge.
    public init(_ matrix: [Double], dimension: Int, vectors wanted: Bool) throws {
        precondition(dimension > 0 && matrix.count == dimension * dimension,
                     "\(matrix.count) values are not a \(dimension)x\(dimension) matrix")
        var a = matrix, w = [Double](repeating: 0, count: dimension)
        var n = Int32(dimension), info: Int32 = 0
        // 'L' in column-major terms is the upper triangle in row-major ones.
        var job = CChar(UInt8(ascii: wanted ? "V" : "N")), uplo = CChar(UInt8(ascii: "L"))
        // A workspace query first (lwork = -1), then the decomposition.
        var size = 0.0, query: Int32 = -1
        dsyev_(&job, &uplo, &n, &a, &n, &w, &size, &query, &info, 1, 1)
        var lwork = Int32(max(size, Double(max(1, 3 * dimension - 1))))
        var work = [Double](repeating: 0, count: Int(lwork))
        if info == 0 { dsyev_(&job, &uplo, &n, &a, &n, &w, &work, &lwork, &info, 1, 1) }
        guard info == 0 else { throw EvaluationError.eigensolverFailed(dimension: dimension, info: Int(info)) }
        self.dimension = dimension
        values = w
        self.vectors = wanted ? a : []
    }
}
