#ifndef GANTRY_CPU_FEATURES_H
#define GANTRY_CPU_FEATURES_H
/// 1 when the CPU executes AVX2 and FMA3 (what the SIMD kernels are compiled for), else 0.
int gantry_cpu_supports_avx2_fma(void);
#endif
