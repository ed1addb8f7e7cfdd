#ifndef GANTRY_CPU_FEATURES_H
#define GANTRY_CPU_FEATURES_H
/// 1 when the CPU executes AVX2 and FMA3 (x86-64-v3, what the AVX2 kernels are compiled for)
/// and the OS saves the ymm registers, else 0.
int gantry_cpu_supports_avx2_fma(void);
/// 1 when the CPU executes the AVX-512 subsets of x86-64-v4 (F, CD, BW, DQ, VL) and the OS
/// saves the zmm and mask registers (XCR0 bits 1, 2, 5, 6, 7, read with XGETBV), else 0.
int gantry_cpu_supports_avx512(void);
/// Returns when the CPU has AVX2 + FMA; otherwise says so on stderr and exits with status 1.
/// In C on purpose: Swift code, even code that looks plain, may call generic specializations
/// the linker took from a module built for x86-64-v3, so no Swift may run before this check.
void gantry_exit_unless_avx2_fma(void);
/// The CPUs this process may run on: its affinity mask (sched_getaffinity, which
/// `mpirun --bind-to` narrows), or the online CPUs where there is none; at least 1.
int gantry_available_cpus(void);
/// The CPUs online on this host, whatever this process's affinity; at least 1.
int gantry_online_cpus(void);
#endif
