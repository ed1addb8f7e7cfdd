import ArgumentParser
import CCPUFeatures
import Foundation
import GAN

/// The `gantry` command: trains GANs on MNIST data-parallel under mpirun, samples them, measures their
/// images' quality, and measures training speed.
struct Gantry: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gantry",
        abstract: "Train the classic MNIST GANs data-parallel across MPI processes, on CPUs.",
        discussion: """
            Run one process directly, or many under mpirun (launch/train does that for you):
              gantry train --model mlp --steps 2000
              launch/train -np 2 --model mlp --steps 20000 --batch-size 64
              gantry eval --checkpoint runs/a/checkpoints/step-00020000.safetensors
              gantry bench --model dcgan --steps 20
            """,
        // The version alone: ArgumentParser reads it whenever it parses, on every rank, and the
        // commit costs a git process (Entry answers --version with both, see printVersion).
        version: BuildInfo.version,
        subcommands: [Train.self, Sample.self, Eval.self, Bench.self, Presets.self])
}

@main
enum Entry {
    static func main() {
        // The kernels are compiled for x86-64-v3 (and AVX-512 for x86-64-v4): without AVX2/FMA
        // the first such instruction would kill the process with SIGILL, so say so first, in
        // words, before any Swift code that might contain one runs.
        gantry_exit_unless_avx2_fma()
        printPresetBeforeHelp(CommandLine.arguments.dropFirst())
        printVersion(CommandLine.arguments.dropFirst())
        do {
            var command = try Gantry.parseAsRoot(resumeArgumentsWithDefault(CommandLine.arguments.dropFirst()))
            try command.run()
        } catch {
            // A bad flag: one line, and exit status 2 as every other bad input (ArgumentParser
            // adds the usage and exits 64).
            if Gantry.exitCode(for: error) == .validationFailure {
                FileHandle.standardError.write(Data("gantry: \(Gantry.message(for: error)) (see gantry --help)\n".utf8))
                exit(2)
            }
            Gantry.exit(withError: error)
        }
    }

    /// `gantry --version`: the version and the commit it was built from, asked of git only here
    /// (and by rank 0 for run.json), not at every start.
    static func printVersion(_ arguments: ArraySlice<String>) {
        guard Array(arguments) == ["--version"] else { return }
        print(BuildInfo.description)
        exit(0)
    }

    /// `gantry train --preset NAME --help`: what the preset sets, before the flags' help.
    static func printPresetBeforeHelp(_ arguments: ArraySlice<String>) {
        let list = Array(arguments)
        guard list.contains(where: { $0 == "--help" || $0 == "-h" }),
              let i = list.firstIndex(of: "--preset"), i + 1 < list.count, let preset = Preset.named(list[i + 1])
        else { return }
        print(Presets.describe(preset))
    }

    /// `--resume` may stand alone ("the latest checkpoint in --out"): give it the explicit
    /// value `latest` when no file follows, since an option takes a value in swift-argument-parser.
    static func resumeArgumentsWithDefault(_ arguments: ArraySlice<String>) -> [String] {
        var result: [String] = []
        var pending = arguments
        while let argument = pending.popFirst() {
            result.append(argument)
            if argument == "--resume", pending.first.map({ $0.hasPrefix("-") }) ?? true {
                result.append(Train.latestCheckpoint)
            }
        }
        return result
    }
}
