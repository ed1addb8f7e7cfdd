import Kernels

/// Optimizer steps per epoch: floor(floor(N / ranks) / batchSize).
///
/// The smallest shard (floor(N / ranks) examples, see `shardRange`) decides, so every rank
/// computes the same number from N alone, with no communication, and no rank runs out of
/// data before the others. Each epoch therefore drops up to `batchSize - 1` examples per rank
/// (plus one on the larger shards); the shuffle makes them different examples every epoch.
/// Throws `DatasetError.shardSmallerThanBatch` when the result would be zero
/// (`moreRanksThanExamples` when some rank would have no example at all).
public func stepsPerEpoch(totalExamples: Int, ranks: Int, batchSize: Int) throws -> Int {
    guard ranks >= 1 else { throw DatasetError.invalidPartition(rank: 0, ranks: ranks) }
    guard batchSize >= 1 else { throw DatasetError.invalidBatchSize(batchSize) }
    let smallestShard = max(totalExamples, 0) / ranks
    if smallestShard == 0, totalExamples > 0 { throw DatasetError.moreRanksThanExamples(examples: totalExamples, ranks: ranks) }
    let steps = smallestShard / batchSize
    guard steps > 0 else {
        throw DatasetError.shardSmallerThanBatch(examples: totalExamples, ranks: ranks, smallestShard: smallestShard,
                                                 batchSize: batchSize)
    }
    return steps
}

/// Cuts a shard into shuffled batches, epoch by epoch.
///
/// The order of epoch `e` on rank `r` is a Fisher-Yates shuffle of the shard's local indices
/// driven by `RandomStream(seed: seed, EpochBatcher.streamPurpose, e, r)`: a pure function of
/// (seed, epoch, rank), so a run resumed at epoch `e` sees exactly the batches an uninterrupted
/// run would (with the same number of ranks; another rank count gives other shards). Batch `i`
/// is the examples at positions i*batchSize ..< (i+1)*batchSize of that order.
public struct EpochBatcher: Sendable {
    /// The key path element that separates data-order streams from other uses of the seed
    /// (noise, initialization): ASCII "dataordr".
    public static let streamPurpose: UInt64 = 0x6461_7461_6F72_6472

    public let shard: ImageShard
    /// Examples per batch on this rank.
    public let batchSize: Int
    public let seed: UInt64
    /// Batches per epoch, the same on every rank (see `stepsPerEpoch(totalExamples:ranks:batchSize:)`).
    public let stepsPerEpoch: Int
    /// The epoch whose order is current.
    public private(set) var epoch: Int
    /// Local indices in this epoch's order.
    public private(set) var order: [Int]

    /// A batcher positioned at `epoch`. Throws when the smallest shard cannot fill a batch.
    public init(shard: ImageShard, batchSize: Int, seed: UInt64, epoch: Int = 0) throws {
        self.shard = shard
        self.batchSize = batchSize
        self.seed = seed
        stepsPerEpoch = try Datasets.stepsPerEpoch(totalExamples: shard.totalCount, ranks: shard.ranks,
                                                   batchSize: batchSize)
        self.epoch = epoch
        order = Array(0..<shard.count)
        EpochBatcher.shuffle(&order, seed: seed, epoch: epoch, rank: shard.rank)
    }

    /// Switches to `epoch`'s order; reuses the order's storage, so it does not allocate.
    public mutating func beginEpoch(_ epoch: Int) {
        self.epoch = epoch
        for index in order.indices { order[index] = index }
        EpochBatcher.shuffle(&order, seed: seed, epoch: epoch, rank: shard.rank)
    }

    /// Local indices of the examples in batch `index` of the current epoch.
    public func indices(ofBatch index: Int) throws -> ArraySlice<Int> {
        guard (0..<stepsPerEpoch).contains(index) else {
            throw DatasetError.batchOutOfRange(index: index, stepsPerEpoch: stepsPerEpoch)
        }
        return order[(index * batchSize)..<((index + 1) * batchSize)]
    }

    /// Copies batch `index` of the current epoch into `pixels`, shape [batchSize, rows * columns]
    /// (values in [-1, 1], converted from the shard's bytes here: see `ImageShard.signedUnit`),
    /// and optionally its labels into `labels`, shape [batchSize]. Allocates nothing.
    public func copyBatch(_ index: Int, into pixels: UnsafeMutablePointer<Float>,
                          labels: UnsafeMutablePointer<UInt8>? = nil) throws {
        let examples = try indices(ofBatch: index)
        let width = shard.pixelsPerImage
        for (slot, example) in examples.enumerated() {
            shard.copyImage(example, into: pixels + slot * width)
            labels?[slot] = shard.labels[example]
        }
    }

    /// The order of `count` local examples for (seed, epoch, rank), as `EpochBatcher` uses it.
    public static func permutation(count: Int, seed: UInt64, epoch: Int, rank: Int) -> [Int] {
        var order = Array(0..<max(count, 0))
        shuffle(&order, seed: seed, epoch: epoch, rank: rank)
        return order
    }

    /// Fisher-Yates, last position first.
    private static func shuffle(_ order: inout [Int], seed: UInt64, epoch: Int, rank: Int) {
        var generator = StreamGenerator(RandomStream(seed: seed, streamPurpose, UInt64(truncatingIfNeeded: epoch),
                                                     UInt64(truncatingIfNeeded: rank)))
        var last = order.count - 1
        while last > 0 {
            order.swapAt(last, Int(uniform(below: UInt64(last + 1), using: &generator)))
            last -= 1
        }
    }

    /// Uniform in 0..<bound, by Lemire's multiply-and-reject ("Fast random integer generation
    /// in an interval", 2019). Spelled out instead of `Int.random(in:using:)` because the
    /// standard library does not promise to keep its algorithm across releases, and a resumed
    /// run must draw the same permutation as the original one.
    private static func uniform(below bound: UInt64, using generator: inout StreamGenerator) -> UInt64 {
        var (high, low) = generator.next().multipliedFullWidth(by: bound)
        if low < bound {
            let threshold = (0 &- bound) % bound
            while low < threshold { (high, low) = generator.next().multipliedFullWidth(by: bound) }
        }
        return high
    }
}
