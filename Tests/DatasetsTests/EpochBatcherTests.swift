import TestSupport
import XCTest
@testable import Datasets

final class EpochBatcherTests: XCTestCase {
    func testStepsPerEpoch() throws {
        XCTAssertEqual(try stepsPerEpoch(totalExamples: 60_000, ranks: 1, batchSize: 64), 937)
        XCTAssertEqual(try stepsPerEpoch(totalExamples: 60_000, ranks: 2, batchSize: 64), 468)
        // floor(60000 / 7) = 8571 on the smallest shard; 8571 / 64 = 133.
        XCTAssertEqual(try stepsPerEpoch(totalExamples: 60_000, ranks: 7, batchSize: 64), 133)
        XCTAssertEqual(try stepsPerEpoch(totalExamples: 64, ranks: 1, batchSize: 64), 1)
        assertThrows("the smallest of 8 shards of the 100 examples holds 12, fewer than the per-rank batch size 64; "
                     + "use --batch-size 12 or less, or fewer ranks") {
            _ = try stepsPerEpoch(totalExamples: 100, ranks: 8, batchSize: 64)
        }
        assertThrows("more ranks (4) than training images (3): every rank needs a batch of its own; "
                     + "run at most 3 ranks, or train on a larger data set") {
            _ = try stepsPerEpoch(totalExamples: 3, ranks: 4, batchSize: 1)
        }
        assertThrows("batch size 0 is invalid; use a --batch-size of at least 1") {
            _ = try stepsPerEpoch(totalExamples: 100, ranks: 1, batchSize: 0)
        }
    }

    func testPermutationIsAPureFunctionOfSeedEpochRank() {
        let base = EpochBatcher.permutation(count: 1000, seed: 42, epoch: 3, rank: 1)
        XCTAssertEqual(base.sorted(), Array(0..<1000), "not a permutation")
        XCTAssertEqual(EpochBatcher.permutation(count: 1000, seed: 42, epoch: 3, rank: 1), base)
        XCTAssertNotEqual(EpochBatcher.permutation(count: 1000, seed: 42, epoch: 4, rank: 1), base)
        XCTAssertNotEqual(EpochBatcher.permutation(count: 1000, seed: 42, epoch: 3, rank: 0), base)
        XCTAssertNotEqual(EpochBatcher.permutation(count: 1000, seed: 43, epoch: 3, rank: 1), base)
        XCTAssertNotEqual(base, Array(0..<1000))
        // Pinned, as computed by an independent Python transcription of RandomStream, Lemire's
        // bounded draw and the shuffle: a change here breaks resuming runs checkpointed by an
        // earlier build.
        XCTAssertEqual(EpochBatcher.permutation(count: 10, seed: 1, epoch: 0, rank: 0), [5, 2, 8, 0, 3, 7, 6, 1, 4, 9])
        XCTAssertEqual(EpochBatcher.permutation(count: 0, seed: 1, epoch: 0, rank: 0), [])
        XCTAssertEqual(EpochBatcher.permutation(count: 1, seed: 1, epoch: 0, rank: 0), [0])
    }

    func testShuffleIsUniform() {
        // All 6 orders of 3 elements, over 6000 epochs: each should appear about 1000 times
        // (binomial standard deviation ~29; 150 is over 5 of them).
        var counts: [[Int]: Int] = [:]
        for epoch in 0..<6000 { counts[EpochBatcher.permutation(count: 3, seed: 7, epoch: epoch, rank: 0), default: 0] += 1 }
        XCTAssertEqual(counts.count, 6)
        for (order, seen) in counts { XCTAssertEqual(Double(seen), 1000, accuracy: 150, "order \(order)") }
    }

    func testBatchesFollowTheEpochOrder() throws {
        let directory = makeTemporaryDirectory(self)
        let (count, rows, columns) = (23, 2, 3)
        let pixels = fixturePixels(count: count * rows * columns)
        let labels = (0..<count).map { UInt8($0) }
        writeRaw(idxBytes(dimensions: [count, rows, columns], data: pixels), to: "\(directory)/images")
        writeRaw(idxBytes(dimensions: [count], data: labels), to: "\(directory)/labels")
        let shard = try ImageShard(imagesPath: "\(directory)/images", labelsPath: "\(directory)/labels", rank: 1, ranks: 2)
        XCTAssertEqual(shard.globalRange, 11..<23)

        var batcher = try EpochBatcher(shard: shard, batchSize: 4, seed: 9)
        // floor(23 / 2) = 11 examples on the smaller shard: 2 batches of 4, also on this 12-example shard.
        XCTAssertEqual(batcher.stepsPerEpoch, 2)
        XCTAssertEqual(batcher.order, EpochBatcher.permutation(count: 12, seed: 9, epoch: 0, rank: 1))

        var batch = [Float](repeating: .nan, count: 4 * 6)
        var batchLabels = [UInt8](repeating: 255, count: 4)
        func copy(_ index: Int) throws {
            try batch.withUnsafeMutableBufferPointer { out in
                try batchLabels.withUnsafeMutableBufferPointer { try batcher.copyBatch(index, into: out.baseAddress!, labels: $0.baseAddress) }
            }
        }
        var seenInEpoch0: [Int] = []
        for index in 0..<2 {
            try copy(index)
            let examples = Array(try batcher.indices(ofBatch: index))
            XCTAssertEqual(examples, Array(batcher.order[(index * 4)..<(index * 4 + 4)]))
            for (slot, example) in examples.enumerated() {
                XCTAssertEqual(Array(batch[(slot * 6)..<(slot * 6 + 6)]),
                               shard.pixels[(example * 6)..<(example * 6 + 6)].map { Float($0) / 127.5 - 1 })
                XCTAssertEqual(batchLabels[slot], UInt8(11 + example), "label of global example \(11 + example)")
            }
            seenInEpoch0 += examples
        }
        XCTAssertEqual(Set(seenInEpoch0).count, 8, "an example was repeated within the epoch")

        batcher.beginEpoch(1)
        XCTAssertEqual(batcher.epoch, 1)
        XCTAssertNotEqual(batcher.order, EpochBatcher.permutation(count: 12, seed: 9, epoch: 0, rank: 1))
        // A run resumed at epoch 1 sees the same order as one that got there epoch by epoch.
        let resumed = try EpochBatcher(shard: shard, batchSize: 4, seed: 9, epoch: 1)
        XCTAssertEqual(resumed.order, batcher.order)
        batcher.beginEpoch(0)
        XCTAssertEqual(batcher.order, EpochBatcher.permutation(count: 12, seed: 9, epoch: 0, rank: 1))

        assertThrows("batch 2 is out of range: an epoch has 2 batches (0..<2); this is a bug in the caller") { try copy(2) }
        assertThrows("the smallest of 2 shards of the 23 examples holds 11, fewer than the per-rank batch size 12; "
                     + "use --batch-size 11 or less, or fewer ranks") {
            _ = try EpochBatcher(shard: shard, batchSize: 12, seed: 9)
        }
    }
}
