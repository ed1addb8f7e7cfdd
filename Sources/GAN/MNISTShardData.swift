import Datasets

/// This rank's shard of an MNIST-format training set, served in the epoch order of
/// `EpochBatcher` (a pure function of seed, epoch and rank).
public final class MNISTShardData: TrainingData {
    private var batcher: EpochBatcher
    public var batchesPerEpoch: Int { batcher.stepsPerEpoch }
    /// Images in the whole training set (all shards).
    public var totalExamples: Int { batcher.shard.totalCount }

    /// Loads rank `rank`'s shard of `directory`'s training split; the images must have the
    /// size `configuration` expects.
    public init(directory: String, configuration: GANConfiguration, rank: Int, ranks: Int) throws {
        let shard = try ImageShard(directory: directory, split: .train, rank: rank, ranks: ranks)
        guard shard.rows == configuration.imageHeight, shard.columns == configuration.imageWidth else {
            throw TrainingError.imageSizeMismatch(path: shard.imagesPath, rows: shard.rows, columns: shard.columns,
                                                  expectedRows: configuration.imageHeight,
                                                  expectedColumns: configuration.imageWidth)
        }
        batcher = try EpochBatcher(shard: shard, batchSize: configuration.batchSize, seed: configuration.seed)
    }

    public func copyBatch(epoch: Int, index: Int, into destination: UnsafeMutablePointer<Float>) {
        if batcher.epoch != epoch { batcher.beginEpoch(epoch) }
        do {
            try batcher.copyBatch(index, into: destination)
        } catch {
            preconditionFailure("batch \(index) of \(batchesPerEpoch): the training loop asked past the epoch")
        }
    }
}
