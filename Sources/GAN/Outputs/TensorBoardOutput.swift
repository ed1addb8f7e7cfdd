import FileFormats
import Foundation
import TensorBoard

/// TensorBoard's view of a run (rank 0): an event file in `OUT/tensorboard/` with the figures of
/// `metrics.jsonl` as scalars (same values, same steps), the eval figures, each sample grid as an
/// image (the PNG file itself), and the weight and gradient histograms of `TrainingEvent.parameters`.
/// `tensorboard --logdir OUT/tensorboard` shows it.
public final class TensorBoardOutput: TrainingOutput {
    public let directory: String
    private var writer: SummaryWriter?

    /// The event file is created when the run starts, so a run refused before it leaves none.
    public init(directory: String) {
        self.directory = directory
    }

    public func record(_ event: TrainingEvent) throws {
        switch event {
        case .started:
            try createDirectory(directory)
            writer = try SummaryWriter(directory: directory)
        case let .interval(s):
            try writer?.scalars(Self.scalars(s), step: s.step)
        case let .evaluated(r):
            try writer?.scalars(r.figures.map { ("eval/" + $0.name, Float($0.value)) }, step: r.step)
        case let .saved(file) where file.kind == .samples:
            let png = try [UInt8](Data(contentsOf: URL(fileURLWithPath: file.path)))
            let image = try PNG.decodeGrayscale(png, path: file.path)
            try writer?.image(tag: "samples", png: png, width: image.width, height: image.height, step: file.step)
        case let .parameters(snapshot):
            try writer?.histograms(snapshot.tensors.flatMap { t in
                [("weights/" + t.name, t.values), ("gradients/" + t.name, t.gradients)]
            }, step: snapshot.step)
        default:
            break
        }
    }

    /// An interval's figures under the names `metrics.jsonl` gives them, grouped as TensorBoard
    /// shows them: losses, D(x) and D(G(z)) (or the critic's figures), speed; with `--profile`, the
    /// share of the step (mean over ranks) spent in the all-reduce and waiting for other ranks.
    static func scalars(_ s: IntervalSummary) -> [(tag: String, value: Float)] {
        var values: [(String, Double)] = [("loss/d_loss", s.discriminatorLoss), ("loss/g_loss", s.generatorLoss)]
        if s.loss.isWasserstein {
            values += [("critic/wasserstein", s.realScore - s.fakeScore), ("critic/critic_real", s.realScore),
                       ("critic/critic_fake", s.fakeScore), ("critic/penalty", s.penalty)]
        } else {
            values += [("discriminator/d_real", s.realScore), ("discriminator/d_fake", s.fakeScore)]
        }
        values.append(("speed/images_per_s", s.imagesPerSecond))
        if let profile = s.profile, !profile.isEmpty {
            func share(_ part: (StepProfile) -> Double) -> Double {
                profile.map { $0.stepSeconds > 0 ? part($0) / $0.stepSeconds : 0 }.reduce(0, +) / Double(profile.count)
            }
            values += [("speed/all_reduce_share", share(\.allReduce)), ("speed/wait_share", share(\.wait))]
        }
        return values.map { ($0.0, Float($0.1)) }
    }
}
