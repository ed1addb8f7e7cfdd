// LAPACK's Fortran entry points that Gantry calls, declared here rather than through
// lapacke.h: `liblapack-dev` (reference LAPACK) and OpenBLAS both export them, with the same
// calling convention (every argument by reference, and gfortran's hidden lengths of the
// CHARACTER arguments appended as size_t, as LAPACK's own lapack.h declares them with
// LAPACK_FORTRAN_STRLEN_END). Matrices are column-major; Gantry passes symmetric ones only.
#ifndef GANTRY_CLAPACK_SHIM_H
#define GANTRY_CLAPACK_SHIM_H

#include <stddef.h>

/// Eigenvalues (ascending, in `w`) and, when *jobz == 'V', orthonormal eigenvectors (the
/// columns of `a`, overwritten) of the n x n symmetric matrix `a`, of which the triangle
/// *uplo ('U' or 'L') is read. *lwork == -1 asks for the best workspace size in work[0].
/// *info: 0 on success, -i if argument i was illegal, > 0 if the QR iteration failed to converge.
void dsyev_(const char *jobz, const char *uplo, const int *n, double *a, const int *lda, double *w,
            double *work, const int *lwork, int *info, size_t jobz_length, size_t uplo_length);

#endif
