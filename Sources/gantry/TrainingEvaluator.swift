import Backends
import Evaluation
import Foundation
import GAN
import Kernels

/// `gantry train --eval-every`: gantry eval's measurement of the generator's images, against the
/// test split of the training data's folder (MNIST or Fashion-MNIST, told apart by the folder
/// as gantry eval's --data is).
///
/// Every rank makes sure the cached classifier exists (training it once if none is cached, so
/// no rank waits on another for minutes); rank 0 alone measures.
final class TrainingEvaluator {
    let evaluator: SampleEvaluator?

    init(count: Int, directory: String, isRoot: Bool, environment: [String: String], backend: Backend) throws {
        let dataSet: EvaluationDataSet = directory.lowercased().contains("fashion") ? .fashionMNIST : .mnist
        let (classifier, _) = try ClassifierCache.classifier(for: dataSet, directory: directory, environment: environment,
                                                             backend: backend) { event in
            if isRoot, case let .training(path, _, _, _, _) = event {
                FileHandle.standardError.write(Data(
                    "gantry: --eval-every: no \(dataSet.rawValue) classifier in \(path) yet: training it once (a minute or two)\n".utf8))
            }
        }
        evaluator = isRoot ? Judge(try Evaluator(classifier: classifier, testSet: dataSet.load(.test, from: directory)),
                                   count: count) : nil
    }

    /// The SampleEvaluator a run calls: FID, score and coverage.
    private final class Judge: SampleEvaluator {
        let evaluator: Evaluator
        let sampleCount: Int

        init(_ evaluator: Evaluator, count: Int) {
            self.evaluator = evaluator
            sampleCount = count
        }

        func evaluate(_ images: UnsafeBufferPointer<Float>) throws -> [EvaluationRecord.Figure] {
            let r = try evaluator.evaluate(images: images, count: sampleCount)
            return [.init(name: "fid", value: r.frechetDistance), .init(name: "score", value: r.classifierScore),
                    .init(name: "coverage", value: r.classCoverage)]
        }
    }
}
