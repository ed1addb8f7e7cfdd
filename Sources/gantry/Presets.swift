import ArgumentParser
import GAN
import Optim

/// `gantry presets [NAME]`: what each preset sets, and where it departs from its seed.
struct Presets: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List the presets (gantry train --preset NAME): each seed's training procedure.",
        discussion: """
              gantry presets
              gantry presets seed-004
              gantry train --preset seed-001 --help
            """)

    @Argument(help: "One preset to describe (default: all).")
    var name: String?

    func validate() throws {
        if let name, Preset.named(name) == nil {
            throw ValidationError("no preset \(name); choose one of \(Preset.all.map(\.name).joined(separator: ", "))")
        }
    }

    func run() {
        let chosen = name.flatMap(Preset.named).map { [$0] } ?? Preset.all
        print(chosen.map(Presets.describe).joined(separator: "\n"), terminator: "")
    }

    /// The preset's settings, one per line, and its differences from the seed's code.
    static func describe(_ p: Preset) -> String {
        var r = p.request
        r.batchSize = p.globalBatch
        let c = r.fresh, o = c.generatorOptimizer
        func length(_ l: TrainingLength) -> String {
            switch l {
            case let .steps(n): return "\(n) steps"
            case let .epochs(n): return "\(n) epochs"
            }
        }
        func interval(_ i: Interval) -> String {
            switch i {
            case let .steps(n): return "every \(n) steps"
            case let .epochs(n): return n == 1 ? "every epoch" : "every \(n) epochs"
            }
        }
        let d = c.discriminatorOptimizer.learningRate
        let rate = d == o.learningRate ? "lr \(o.learningRate)" : "G lr \(o.learningRate), D lr \(d)"
        let optimizer = o.kind == .adam
            ? "adam, \(rate), beta1 \(o.beta1), beta2 \(o.beta2), epsilon \(o.epsilon)"
            : "rmsprop, \(rate), rho \(o.rho), epsilon \(o.epsilon)"
        var lossLine = c.loss.rawValue
        if let clip = c.clipValue { lossLine += ", clip \(clip)" }
        if c.loss == .wganGP { lossLine += ", gp-weight \(c.penaltyWeight)" }
        var lines = [
            "\(p.name): \(p.origin)",
            "  procedure       \(p.procedure)",
            "  --model         \(c.model.rawValue)",
            "  --loss          \(lossLine)",
            "  --update-scheme \(c.updateScheme.rawValue)" + (c.updateScheme == .alternating
                ? ", --d-update \(c.discriminatorUpdate.rawValue), --critic-steps \(c.criticSteps), --g-noise \(c.generatorNoise.rawValue)"
                : ""),
            "  --optimizer     \(optimizer)",
            "  batch           \(p.globalBatch) global (split over the ranks when it divides)",
            "  --noise         \(c.noise.rawValue)" + (c.labelSmoothing > 0 ? ", --label-smoothing \(c.labelSmoothing)" : ""),
        ]
        if c.model.isConvolutional { lines.append("  --dropout       \(c.dropoutRate)") }
        if c.averagesGenerator { lines.append("  --ema           \(c.generatorAverageDecay) (samples from the generator's moving average)") }
        lines += [
            "  length          " + (p.maxSeconds.map { "\(Int($0)) seconds (--max-seconds)" } ?? length(p.length)),
            "  samples         a \(p.sampleCount)-image grid \(interval(p.sampleEvery)); checkpoints \(interval(p.checkpointEvery))",
        ]
        lines += p.differences.map { "  differs: \($0)" }
        return lines.joined(separator: "\n") + "\n"
    }
}
