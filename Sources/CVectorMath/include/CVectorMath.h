#ifndef GANTRY_VECTOR_MATH_H
#define GANTRY_VECTOR_MATH_H
/// Vector operations Swift's SIMD types only offer lane by lane. Swift's `squareRoot()` on
/// SIMD8/SIMD16<Float> becomes sixteen scalar square roots, each with a call to libm's sqrtf
/// for errno; clang's elementwise builtin is one IEEE `vsqrtps` of the calling module's width.
/// These `static inline` functions are compiled into the module that calls them, with its
/// `-march`, so no instruction set leaks between modules.
typedef float gantry_float8 __attribute__((ext_vector_type(8)));
typedef float gantry_float16 __attribute__((ext_vector_type(16)));

static inline __attribute__((always_inline)) gantry_float8 gantry_sqrt8(gantry_float8 x) {
    return __builtin_elementwise_sqrt(x);
}
static inline __attribute__((always_inline)) gantry_float16 gantry_sqrt16(gantry_float16 x) {
    return __builtin_elementwise_sqrt(x);
}

typedef float gantry_float4 __attribute__((ext_vector_type(4)));

/// Transposes an 8 x 8 block: rows `r[i]` in, columns out (`r[c]` becomes column c), with the
/// classic unpack / 64-bit shuffle / 128-bit permute sequence.
static inline __attribute__((always_inline)) void gantry_transpose8(gantry_float8 r[8]) {
    gantry_float8 t[8], u[8];
    for (int i = 0; i < 4; i++) {
        t[2 * i] = __builtin_shufflevector(r[2 * i], r[2 * i + 1], 0, 8, 1, 9, 4, 12, 5, 13);
        t[2 * i + 1] = __builtin_shufflevector(r[2 * i], r[2 * i + 1], 2, 10, 3, 11, 6, 14, 7, 15);
    }
    for (int h = 0; h < 2; h++) {  /* rows 0-3 (h = 0) and 4-7 (h = 1) */
        gantry_float8 *q = t + 4 * h, *v = u + 4 * h;
        v[0] = __builtin_shufflevector(q[0], q[2], 0, 1, 8, 9, 4, 5, 12, 13);   /* columns 0, 4 */
        v[1] = __builtin_shufflevector(q[0], q[2], 2, 3, 10, 11, 6, 7, 14, 15); /* columns 1, 5 */
        v[2] = __builtin_shufflevector(q[1], q[3], 0, 1, 8, 9, 4, 5, 12, 13);   /* columns 2, 6 */
        v[3] = __builtin_shufflevector(q[1], q[3], 2, 3, 10, 11, 6, 7, 14, 15); /* columns 3, 7 */
    }
    for (int c = 0; c < 4; c++) {
        r[c] = __builtin_shufflevector(u[c], u[4 + c], 0, 1, 2, 3, 8, 9, 10, 11);
        r[c + 4] = __builtin_shufflevector(u[c], u[4 + c], 4, 5, 6, 7, 12, 13, 14, 15);
    }
}

/// Transposes a 4 x 4 block in place (rows in, columns out).
static inline __attribute__((always_inline)) void gantry_transpose4(gantry_float4 r[4]) {
    gantry_float4 x0 = __builtin_shufflevector(r[0], r[1], 0, 4, 1, 5);
    gantry_float4 x1 = __builtin_shufflevector(r[0], r[1], 2, 6, 3, 7);
    gantry_float4 x2 = __builtin_shufflevector(r[2], r[3], 0, 4, 1, 5);
    gantry_float4 x3 = __builtin_shufflevector(r[2], r[3], 2, 6, 3, 7);
    r[0] = __builtin_shufflevector(x0, x2, 0, 1, 4, 5);
    r[1] = __builtin_shufflevector(x0, x2, 2, 3, 6, 7);
    r[2] = __builtin_shufflevector(x1, x3, 0, 1, 4, 5);
    r[3] = __builtin_shufflevector(x1, x3, 2, 3, 6, 7);
}

/// Packs `count` rows of `kc` floats side by side, `dst[p * count + i] = rows[i][p]`: a GEMM
/// panel (12 rows of A for the 12 x 32 tile, 6 for the 6 x 16 one; 32 or 16 columns of a
/// transposed B). Eight values of a row at a time, transposed in registers in blocks of 8 x 8
/// (and 4 x 4 for a group of four rows, scalar for the last one to three), where storing scalar by scalar took a quarter
/// of a thin multiply's time.
static inline __attribute__((always_inline))
void gantry_pack_rows(const float *const *rows, long count, long kc, float *dst) {
    long p = 0;
    for (; p + 8 <= kc; p += 8) {
        long g = 0;
        for (; g + 8 <= count; g += 8) {
            gantry_float8 r[8];
            for (int i = 0; i < 8; i++) __builtin_memcpy(&r[i], rows[g + i] + p, sizeof(gantry_float8));
            gantry_transpose8(r);
            for (int c = 0; c < 8; c++) __builtin_memcpy(dst + (p + c) * count + g, &r[c], sizeof r[c]);
        }
        for (; g + 4 <= count; g += 4) {
            for (int half = 0; half < 2; half++) {
                gantry_float4 r[4];
                for (int i = 0; i < 4; i++) __builtin_memcpy(&r[i], rows[g + i] + p + 4 * half, sizeof(gantry_float4));
                gantry_transpose4(r);
                for (int c = 0; c < 4; c++) __builtin_memcpy(dst + (p + 4 * half + c) * count + g, &r[c], sizeof r[c]);
            }
        }
        for (; g < count; g++)  /* the last rows of a count that is not a multiple of 4 (6: AVX2's A panels) */
            for (int c = 0; c < 8; c++) dst[(p + c) * count + g] = rows[g][p + c];
    }
    for (; p < kc; p++)
        for (long i = 0; i < count; i++) dst[p * count + i] = rows[i][p];
}
#endif
