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
#endif
