/// The instruction sets Gantry has kernels for, best last. Which ones the CPU supports is
/// decided at start (module Backends, CPUID and XGETBV); `--isa` / `GANTRY_ISA` force one.
public enum InstructionSet: String, CaseIterable, Sendable, Comparable {
    /// AVX2 + FMA3 (x86-64-v3): 8-wide vectors, 16 registers, a 6 x 16 GEMM tile.
    case avx2
    /// AVX-512 F/CD/BW/DQ/VL (x86-64-v4): 16-wide vectors, 32 registers, a 12 x 32 GEMM tile.
    case avx512

    /// Floats per vector register.
    public var vectorWidth: Int { self == .avx512 ? 16 : 8 }

    public static func < (a: InstructionSet, b: InstructionSet) -> Bool {
        allCases.firstIndex(of: a)! < allCases.firstIndex(of: b)!
    }
}
