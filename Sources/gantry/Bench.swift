import ArgumentParser
import Distributed
import Foundation
import GAN
import Kernels

/// `gantry bench`: times training steps (GAN's `Benchmark`) or the kernels alone
/// (`KernelBenchmark`) and formats their figures: lines for people, then one line of
/// key=value pairs for scripts, on rank 0.
struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Time training steps: images/s, each phase, GFLOP/s against the measured FMA peak, memory.",
        discussion: """
            Runs alone or on every rank of an mpirun job (--batch-size is per rank, as in
            gantry train), on synthetic images unless --data is given. It times the step
            gantry train runs, phase by phase where the trainer marks them. FLOPs are counted
            analytically: matrix products only, 2 per multiply-add, a convolution's padded
            taps included. The last line on rank 0 is key=value pairs for scripts.
              gantry bench --model dcgan --batch-size 64 --steps 20
              mpirun -np 2 gantry bench --model mlp --batch-size 128 --layers
              gantry bench --kernels
              mpirun -np 2 gantry bench --project --threads 1   (scaling to 1,024 ranks: see --project)
            """)

    @Option(name: .customLong("model"), help: """
        Model: \(ModelKind.allCases.map(\.rawValue).joined(separator: ", ")) (default: mlp; with --project, mlp and dcgan).
        """)
    var modelOption: ModelKind?

    var model: ModelKind { modelOption ?? .mlp }

    @Option(name: .customLong("batch-size"), help: "Examples per rank per step (default: the model's, 64).")
    var batchSize: Int?

    @Option(help: "Timed steps (default: 500 for mlp, 20 for dcgan).")
    var steps: Int?

    @Option(help: "Untimed steps before them (default: 50 for mlp, 3 for dcgan).")
    var warmup: Int?

    @Option(name: .customLong("threads"), help: """
        Kernel threads per rank (default: as gantry train, the cores this process may use shared \
        among the ranks on its host; with --kernels, 1); the peak counts one core per thread.
        """)
    var threadsOption: Int?

    /// `--threads`, or the default `gantry train` takes.
    var threads: Int { threadsOption ?? Train.defaultThreads(environment: ProcessInfo.processInfo.environment) }

    @Option(help: instructionSetHelp)
    var isa: InstructionSet?

    @Option(name: .customLong("update-scheme"), help: "alternating or simultaneous (default: the model's).")
    var updateScheme: UpdateScheme?

    @Flag(help: "Also time every layer, and give its FLOPs and GFLOP/s.")
    var layers = false

    @Option(help: "Train on this MNIST folder's images instead of synthetic ones.")
    var data: String?

    @OptionGroup var exchange: ExchangeFlags

    @OptionGroup(title: "Projection")
    var projection: ProjectionOptions

    @Flag(help: "Time the kernels alone, in this process: the GEMM on every shape of both models' steps at --batch-size and on the 8 shapes of shared/anchors/gemm_openblas.c, and the FMA peak of one core per instruction set.")
    var kernels = false

    func validate() throws {
        for (name, value) in [("--steps", steps), ("--batch-size", batchSize), ("--threads", threadsOption)] {
            if let value, value <= 0 { throw ValidationError("\(name) must be a positive integer, got \(value)") }
        }
        if let warmup, warmup < 0 { throw ValidationError("--warmup must be 0 or more, got \(warmup)") }
        if kernels, layers || data != nil || steps != nil || warmup != nil || updateScheme != nil {
            throw ValidationError("--kernels times the kernels alone: it takes --batch-size, --isa and --threads only")
        }
        if data?.isEmpty == true { throw ValidationError("--data must name a folder") }
        if projection.project, kernels || layers || data != nil {
            throw ValidationError("--project times its own runs on synthetic images: it takes no --kernels, --layers or --data")
        }
        _ = try chooseInstructionSet(flag: isa)
    }

    func run() throws {
        let instructionSet = try chooseInstructionSet(flag: isa)
        if kernels { return try runKernels(instructionSet) }
        if projection.project { return try runProjection(instructionSet) }
        let communicator = try startMPI()
        do {
            var options = benchmarkOptions(model, instructionSet)
            options.perLayer = layers
            let images = try data.map {
                try MNISTShardData(directory: $0, configuration: options.configuration, rank: communicator.rank,
                                   ranks: communicator.size)
            }
            let result = try Benchmark.run(options, data: images, communicator: communicator)
            if communicator.rank == 0 { print(BenchReport(result, data: data).lines.joined(separator: "\n")) }
            try communicator.finalize()
        } catch {
            communicator.abort(message: "gantry: \(error)", exitCode: exitStatus(for: error))
        }
    }

    /// The benchmark of `model` the flags ask for.
    func benchmarkOptions(_ model: ModelKind, _ instructionSet: InstructionSet) -> BenchmarkOptions {
        var configuration = GANConfiguration.defaults(for: model)
        if let batchSize { configuration.batchSize = batchSize }
        if let updateScheme { configuration.updateScheme = updateScheme }
        var options = BenchmarkOptions(configuration: configuration, instructionSet: instructionSet)
        options.steps = steps ?? (model == .mlp ? 500 : 20)
        options.warmup = warmup ?? (model == .mlp ? 50 : 3)
        options.threads = threads
        options.exchange.overlap = exchange.options.overlap
        options.exchange.bucketBytes = exchange.options.bucketBytes
        options.exchange.halfPrecision = exchange.options.halfPrecision
        return options
    }

    func runKernels(_ instructionSet: InstructionSet) throws {
        let batch = batchSize ?? GANConfiguration.defaults(for: model).batchSize
        do {
            let report = try KernelBenchmark.run(instructionSet: instructionSet, threads: threadsOption ?? 1, batchSize: batch)
            print(KernelsReport(report).lines.joined(separator: "\n"))
        } catch {
            FileHandle.standardError.write(Data("gantry: \(error)\n".utf8))
            throw ExitCode.failure
        }
    }
}

/// A `BenchmarkResult` in words and in key=value pairs.
struct BenchReport {
    let result: BenchmarkResult
    /// The MNIST folder, nil for synthetic images.
    let data: String?

    init(_ result: BenchmarkResult, data: String?) {
        self.result = result
        self.data = data
    }

    var lines: [String] { header + phases + compute + layerTable + [keyValues] }

    private var header: [String] {
        let r = result, c = r.configuration
        return ["gantry bench: \(c.model.rawValue), \(r.ranks) rank(s) x \(r.threads) thread(s), batch \(c.batchSize) per rank, "
                + "\(c.updateScheme.rawValue) updates, \(data.map { "MNIST from \($0)" } ?? "synthetic images"), isa=\(r.instructionSet.rawValue)",
                "timed \(r.steps) steps after \(r.warmup) warm-up steps"]
    }

    /// The step's phases (means over the ranks), then each rank's compute, wait and all-reduce.
    private var phases: [String] {
        let r = result, step = r.stepSeconds
        func line(_ name: String, _ seconds: Double) -> String {
            "    " + pad(name, 11) + fixed(seconds * 1e3, 2, width: 9) + " ms " + fixed(100 * seconds / step, 1, width: 6) + " %"
        }
        func ms(_ seconds: Double) -> String { fixed(seconds * 1e3, 3) + " ms" }
        let e = r.exchange
        let gradients = r.ranks == 1 ? "" : ", gradients " + (e.halfPrecision ? "fp16 " : "fp32 ")
            + (e.overlap ? "overlapped in \(e.bucketBytes >> 10) KiB buckets" : "after backward")
        return ["  step" + fixed(step * 1e3, 2, width: 18) + " ms  " + fixed(r.imagesPerSecond, 1) + " images/s (all ranks)" + gradients]
            + Self.stepPhases.map { line(Self.name($0), r.phaseSeconds[$0] ?? 0) }
            + [line("other", r.otherSeconds)]
            + (r.ranks == 1 ? [] : ["  per rank: compute / waiting for the slowest rank / all-reduce not hidden by backward"]
                + r.profiles.map { "    rank \($0.rank)  " + ms($0.compute) + " / " + ms($0.wait) + " / " + ms($0.allReduce) })
    }

    /// The phases of a step (checkpoints and samples are not).
    static let stepPhases = StepPhase.allCases.filter(\.inStep)

    private var compute: [String] {
        let r = result, f = r.flops
        return [
            "  compute  " + fixed(Double(f.total) / 1e9, 3) + " GFLOP per step per rank (forward " + fixed(Double(f.forward) / 1e9, 3)
                + ", backward " + fixed(Double(f.backward) / 1e9, 3) + "): " + fixed(r.gflops, 1) + " GFLOP/s",
            "  peak     " + fixed(r.peakGFLOPS, 1) + " GFLOP/s measured (\(r.instructionSet.rawValue) FMA, \(r.ranks) rank(s) x "
                + "\(r.threads) thread(s)): " + fixed(100 * r.peakShare, 1) + " % of it",
            "  memory   " + fixed(Double(r.peakResidentBytes) / 1e6, 1) + " MB peak resident set (the largest rank)",
        ]
    }

    /// One row per layer: time per step, FLOPs per step and rate, on one rank.
    private var layerTable: [String] {
        guard !result.layers.isEmpty else { return [] }
        let width = result.layers.map { $0.name.count }.max()! + 5
        var lines = ["  " + pad("layer (per rank)", width) + "   fwd ms    bwd ms  GFLOP/step   GFLOP/s"]
        for l in result.layers {
            let name = pad("\(l.network.letter).\(l.index) \(l.name)", width)
            let flops = l.flops.total > 0 ? fixed(Double(l.flops.total) / 1e9, 3, width: 12) + fixed(l.gflops, 1, width: 10)
                                           : pad("", 12 - 1) + "-" + pad("", 9) + "-"
            lines.append("  " + name + fixed(l.forwardSeconds * 1e3, 2, width: 9) + fixed(l.backwardSeconds * 1e3, 2, width: 10) + flops)
        }
        return lines
    }

    private var keyValues: String {
        let r = result, c = r.configuration
        let pairs: [(String, String)] = [
            ("model", c.model.rawValue), ("ranks", "\(r.ranks)"), ("threads", "\(r.threads)"), ("batch", "\(c.batchSize)"),
            ("isa", r.instructionSet.rawValue), ("images_per_s", fixed(r.imagesPerSecond, 1)),
            ("step_ms", fixed(r.stepSeconds * 1e3, 3)),
        ] + Self.stepPhases.map { (Self.key($0) + "_ms", fixed((r.phaseSeconds[$0] ?? 0) * 1e3, 3)) } + [
            ("other_ms", fixed(r.otherSeconds * 1e3, 3)), ("compute_ms", fixed(r.computeSeconds * 1e3, 3)),
            ("overlap", r.exchange.overlap ? "yes" : "no"), ("bucket_kb", "\(r.exchange.bucketBytes >> 10)"),
            ("fp16", r.exchange.halfPrecision ? "yes" : "no"),
            ("gflops", fixed(r.gflops, 2)), ("peak_gflops", fixed(r.peakGFLOPS, 2)), ("peak_share", fixed(r.peakShare, 4)),
            ("rss_mb", fixed(Double(r.peakResidentBytes) / 1e6, 1)),
            ("gflop_per_step", fixed(Double(r.flops.total) / 1e9, 4)), ("scheme", c.updateScheme.rawValue),
            ("data", data == nil ? "synthetic" : "mnist"), ("steps", "\(r.steps)"), ("warmup", "\(r.warmup)"),
        ]
        return pairs.map { "\($0.0)=\($0.1)" }.joined(separator: " ")
    }

    static func name(_ phase: StepPhase) -> String { phase == .allReduce ? "all-reduce" : phase.rawValue }
    static func key(_ phase: StepPhase) -> String { phase.rawValue.lowercased() }
}

/// A `KernelReport` in words and in key=value pairs.
struct KernelsReport {
    let report: KernelReport

    init(_ report: KernelReport) { self.report = report }

    var lines: [String] {
        let r = report
        var lines = ["gantry bench --kernels: isa=\(r.instructionSet.rawValue), \(r.threads) thread(s), the models' shapes at batch \(r.batchSize)",
                     "FMA peak of one core: " + r.peaks.map { "\($0.instructionSet.rawValue) " + fixed($0.gflops, 1) + " GFLOP/s" }
                        .joined(separator: ", ")]
        let all = r.models.flatMap(\.shapes) + r.anchors
        let labelWidth = all.map { $0.label.count }.max()! + 2, shapeWidth = all.map { $0.shape.description.count }.max()! + 2
        lines.append(pad("GEMM (first user)", labelWidth) + pad("m x n x k", shapeWidth)
            + "calls/step   GFLOP/s  of peak  (also run by)")
        func row(_ f: GEMMFigure) -> String {
            pad(f.label, labelWidth) + pad(f.shape.description, shapeWidth) + fixed(Double(f.callsPerStep), 0, width: 10)
                + fixed(f.gflops, 1, width: 10) + fixed(100 * f.gflops / r.peakGFLOPS, 1, width: 8) + " %"
                + (f.alsoIn.isEmpty ? "" : "  " + f.alsoIn.joined(separator: ", "))
        }
        for (_, shapes) in r.models { lines += shapes.map(row) }
        lines.append("shared/anchors/gemm_openblas.c's shapes:")
        lines += r.anchors.map(row)
        lines.append("GEMM over one step: " + r.models.map { "\($0.model.rawValue) " + fixed(r.stepRate($0.model), 1) + " GFLOP/s" }
            .joined(separator: ", ") + "; anchors' geometric mean " + fixed(r.anchorGeometricMean, 1) + " GFLOP/s")
        lines.append(keyValues)
        return lines
    }

    private var keyValues: String {
        let r = report
        let pairs: [(String, String)] = [
            ("isa", r.instructionSet.rawValue), ("threads", "\(r.threads)"), ("batch", "\(r.batchSize)"),
            ("peak_gflops", fixed(r.peakGFLOPS, 2)),
        ] + r.peaks.map { ("peak_\($0.instructionSet.rawValue)_gflops", fixed($0.gflops, 2)) } + [
            ("gemm_geomean_gflops", fixed(r.anchorGeometricMean, 2)),
        ] + r.models.map { ("\($0.model.rawValue)_step_gemm_gflops", fixed(r.stepRate($0.model), 2)) }
        return "kernels " + pairs.map { "\($0.0)=\($0.1)" }.joined(separator: " ")
    }
}

/// `value` with `digits` decimals, right-aligned in `width` characters.
func fixed(_ value: Double, _ digits: Int, width: Int = 0) -> String {
    let text = String(format: "%.\(digits)f", value)
    return String(repeating: " ", count: max(0, width - text.count)) + text
}

/// `text` padded with spaces on the right to `width` characters.
func pad(_ text: String, _ width: Int) -> String {
    text + String(repeating: " ", count: max(0, width - text.count))
}
