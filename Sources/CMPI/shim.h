// Open MPI's handles and constants are macros over the addresses of predefined globals
// (`#define MPI_COMM_WORLD ((MPI_Comm) &ompi_mpi_comm_world)`), which Swift cannot import.
// Each accessor below returns one of them, marked _Nonnull where it is a handle so that Swift
// sees a plain value, not an optional. The Distributed module is their only user.
#ifndef GANTRY_CMPI_SHIM_H
#define GANTRY_CMPI_SHIM_H

#include <mpi.h>

// Communicators and error handlers.
static inline MPI_Comm _Nonnull cmpi_comm_world(void) { return MPI_COMM_WORLD; }
static inline MPI_Errhandler _Nonnull cmpi_errors_return(void) { return MPI_ERRORS_RETURN; }

// Datatypes.
static inline MPI_Datatype _Nonnull cmpi_float(void) { return MPI_FLOAT; }
static inline MPI_Datatype _Nonnull cmpi_double(void) { return MPI_DOUBLE; }
static inline MPI_Datatype _Nonnull cmpi_int(void) { return MPI_INT; }
static inline MPI_Datatype _Nonnull cmpi_uint64(void) { return MPI_UINT64_T; }
static inline MPI_Datatype _Nonnull cmpi_byte(void) { return MPI_BYTE; }

// Reduction operations.
static inline MPI_Op _Nonnull cmpi_sum(void) { return MPI_SUM; }
static inline MPI_Op _Nonnull cmpi_max(void) { return MPI_MAX; }
static inline MPI_Op _Nonnull cmpi_min(void) { return MPI_MIN; }

// Sentinels.
static inline void *_Nonnull cmpi_in_place(void) { return MPI_IN_PLACE; }
static inline MPI_Request _Nonnull cmpi_request_null(void) { return MPI_REQUEST_NULL; }
static inline MPI_Status *_Nullable cmpi_status_ignore(void) { return MPI_STATUS_IGNORE; }

// Integer constants (some are enumerators Swift could import; kept here so all come from one place).
static inline int cmpi_success(void) { return MPI_SUCCESS; }
static inline int cmpi_any_source(void) { return MPI_ANY_SOURCE; }
static inline int cmpi_err_other(void) { return MPI_ERR_OTHER; }
static inline int cmpi_thread_single(void) { return MPI_THREAD_SINGLE; }
static inline int cmpi_thread_funneled(void) { return MPI_THREAD_FUNNELED; }
static inline int cmpi_thread_serialized(void) { return MPI_THREAD_SERIALIZED; }
static inline int cmpi_thread_multiple(void) { return MPI_THREAD_MULTIPLE; }
static inline int cmpi_max_processor_name(void) { return MPI_MAX_PROCESSOR_NAME; }
static inline int cmpi_max_error_string(void) { return MPI_MAX_ERROR_STRING; }

// Float16 reductions. Open MPI 4.1 has no half-precision datatype, so Float16 buffers travel as
// a type of two bytes (`cmpi_half_type_create`) with these user operations, each combining a
// pair of values in float and rounding once to half (Horovod's float16 sum does the same).
// Float's 24 significant bits are at least 2 x 11 + 2 (half's), so rounding the pair's sum to
// float and then to half gives the correctly rounded half sum.
//
// Eight values at a time, with the conversions as explicit vectors: compiled into the Swift
// module that imports this header with its -march=x86-64-v3 (F16C), they are vcvtph2ps and
// vcvtps2ph even at -O0 (a debug build), where a scalar loop would not be vectorized.
typedef _Float16 cmpi_half8 __attribute__((ext_vector_type(8), aligned(2), __may_alias__));
typedef float cmpi_float8 __attribute__((ext_vector_type(8)));

enum cmpi_half_operation { CMPI_HALF_SUM, CMPI_HALF_MAX, CMPI_HALF_MIN };

static inline __attribute__((always_inline))
cmpi_float8 cmpi_half_combine(cmpi_float8 a, cmpi_float8 b, enum cmpi_half_operation operation) {
    switch (operation) {
    case CMPI_HALF_SUM: return a + b;
    case CMPI_HALF_MAX: return __builtin_elementwise_max(a, b);  // fmax: a NaN loses to a number
    case CMPI_HALF_MIN: return __builtin_elementwise_min(a, b);
    }
    return a;
}

// inout[i] = half(float(in[i]) op float(inout[i])) for i < count; the last count % 8 values
// go through the same vector arithmetic, padded with zeros.
static inline __attribute__((always_inline))
void cmpi_half_reduce(const void *in, void *inout, int count, enum cmpi_half_operation operation) {
    const cmpi_half8 *a = (const cmpi_half8 *)in;
    cmpi_half8 *b = (cmpi_half8 *)inout;
    int i = 0;
    for (; i + 8 <= count; i += 8, a++, b++) {
        cmpi_float8 sum = cmpi_half_combine(__builtin_convertvector(*a, cmpi_float8),
                                            __builtin_convertvector(*b, cmpi_float8), operation);
        *b = __builtin_convertvector(sum, cmpi_half8);
    }
    if (i < count) {
        _Float16 x[8] = {0}, y[8] = {0};
        __builtin_memcpy(x, a, (count - i) * sizeof(_Float16));
        __builtin_memcpy(y, b, (count - i) * sizeof(_Float16));
        cmpi_half8 r = __builtin_convertvector(
            cmpi_half_combine(__builtin_convertvector(*(cmpi_half8 *)x, cmpi_float8),
                              __builtin_convertvector(*(cmpi_half8 *)y, cmpi_float8), operation),
            cmpi_half8);
        __builtin_memcpy(b, &r, (count - i) * sizeof(_Float16));
    }
}

static inline void cmpi_half_sum(void *in, void *inout, int *count, MPI_Datatype *type) {
    (void)type;
    cmpi_half_reduce(in, inout, *count, CMPI_HALF_SUM);
}
static inline void cmpi_half_max(void *in, void *inout, int *count, MPI_Datatype *type) {
    (void)type;
    cmpi_half_reduce(in, inout, *count, CMPI_HALF_MAX);
}
static inline void cmpi_half_min(void *in, void *inout, int *count, MPI_Datatype *type) {
    (void)type;
    cmpi_half_reduce(in, inout, *count, CMPI_HALF_MIN);
}

// The operations, declared commutative, which they are: a rounded sum, fmax and fmin do not
// depend on which value is `in` and which `inout`. (A sum over more than two ranks still
// depends on how MPI groups it, as any floating-point sum.)
static inline int cmpi_half_sum_create(MPI_Op *_Nonnull op) { return MPI_Op_create(cmpi_half_sum, 1, op); }
static inline int cmpi_half_max_create(MPI_Op *_Nonnull op) { return MPI_Op_create(cmpi_half_max, 1, op); }
static inline int cmpi_half_min_create(MPI_Op *_Nonnull op) { return MPI_Op_create(cmpi_half_min, 1, op); }

// Two bytes, contiguous, committed: a half on the wire.
static inline int cmpi_half_type_create(MPI_Datatype *_Nonnull type) {
    int status = MPI_Type_contiguous(2, MPI_BYTE, type);
    return status == MPI_SUCCESS ? MPI_Type_commit(type) : status;
}

#endif
