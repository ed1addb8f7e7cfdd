#define _GNU_SOURCE
#include "CCPUFeatures.h"
#include <unistd.h>
#if defined(__linux__)
#include <sched.h>
#endif

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>

/// XCR0: which register states the OS saves on a context switch. CPUID alone says what the
/// core can execute; an OS that does not save zmm state would corrupt those registers.
static unsigned long long xcr0(void) {
    unsigned int eax, edx;
    __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
    return ((unsigned long long)edx << 32) | eax;
}

static int os_saves(unsigned long long mask) {
    unsigned int eax, ebx, ecx, edx;
    if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx)) return 0;
    if (!(ecx & bit_OSXSAVE)) return 0;
    return (xcr0() & mask) == mask;
}

int gantry_cpu_supports_avx2_fma(void) {
    unsigned int eax, ebx, ecx, edx;
    if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx)) return 0;
    int fma = (ecx & bit_FMA) != 0, avx = (ecx & bit_AVX) != 0;
    if (!__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx)) return 0;
    int avx2 = (ebx & bit_AVX2) != 0;
    return fma && avx && avx2 && os_saves(0x6);  /* xmm, ymm */
}

int gantry_cpu_supports_avx512(void) {
    if (!gantry_cpu_supports_avx2_fma()) return 0;
    unsigned int eax, ebx, ecx, edx;
    if (!__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx)) return 0;
    unsigned int need = bit_AVX512F | bit_AVX512CD | bit_AVX512BW | bit_AVX512DQ | bit_AVX512VL;
    return (ebx & need) == need && os_saves(0xE6);  /* xmm, ymm, opmask, zmm 0-15 high, zmm 16-31 */
}
#else
int gantry_cpu_supports_avx2_fma(void) { return 0; }
int gantry_cpu_supports_avx512(void) { return 0; }
#endif

#include <stdio.h>
#include <stdlib.h>

void gantry_exit_unless_avx2_fma(void) {
    if (gantry_cpu_supports_avx2_fma()) return;
    fputs("gantry: this CPU lacks AVX2/FMA, which gantry's kernels are built for "
          "(x86-64-v3, Intel Haswell / AMD Zen or newer); run it on such a machine\n", stderr);
    exit(1);
}

int gantry_available_cpus(void) {
#if defined(__linux__)
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0) {
        int count = CPU_COUNT(&set);
        if (count > 0) return count;
    }
#endif
    long online = sysconf(_SC_NPROCESSORS_ONLN);
    return online > 0 ? (int)online : 1;
}

int gantry_online_cpus(void) {
    long online = sysconf(_SC_NPROCESSORS_ONLN);
    return online > 0 ? (int)online : 1;
}
