import ArgumentParser
import Backends
import Foundation
import Kernels

extension InstructionSet: ExpressibleByArgument {}

/// The help of `--isa`, the same on every command that takes it.
let instructionSetHelp = ArgumentHelp(
    "Kernels: \(InstructionSet.allCases.map(\.rawValue).joined(separator: " or ")) "
        + "(default: $GANTRY_ISA if set, else the best this CPU supports).")

/// The instruction set from `--isa`, else from `GANTRY_ISA`, else the best this CPU has.
/// One the CPU lacks (or an unknown `GANTRY_ISA`) ends the command with one line naming
/// what the CPU supports, and exit status 2 (a usage error, found before MPI starts).
func chooseInstructionSet(flag: InstructionSet?,
                          environment: [String: String] = ProcessInfo.processInfo.environment) throws -> InstructionSet {
    var requested = flag
    // How to name the request and its fix: "--isa X" / "pass --isa Y, or leave --isa out".
    var source = flag.map { "--isa \($0.rawValue)" } ?? ""
    var fix: (String) -> String = { "pass --isa \($0), or leave --isa out" }
    if flag == nil, let value = environment["GANTRY_ISA"], !value.isEmpty {
        guard let isa = InstructionSet(rawValue: value) else {
            throw usageError("GANTRY_ISA=\(value) is not an instruction set gantry has kernels for; "
                + "use \(InstructionSet.allCases.map(\.rawValue).joined(separator: " or ")), or unset it")
        }
        requested = isa
        source = "GANTRY_ISA=\(value)"
        fix = { "set GANTRY_ISA=\($0), or unset it" }
    }
    do {
        return try Backends.choose(requested)
    } catch BackendError.unsupported(let isa, let supported) {
        let names = supported.map(\.rawValue)
        throw usageError("\(source): this CPU does not support \(isa.rawValue); it supports "
            + "\(names.joined(separator: " and ")) (\(fix(names.joined(separator: " or "))) for the best of them)")
    } catch {
        throw usageError("this CPU lacks AVX2/FMA, which gantry's kernels are built for")
    }
}

/// Writes `gantry: message` to standard error and returns the exit status 2 to throw.
func usageError(_ message: String) -> ExitCode {
    FileHandle.standardError.write(Data("gantry: \(message)\n".utf8))
    return ExitCode(2)
}
