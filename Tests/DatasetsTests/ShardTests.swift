import TestSupport
import XCTest
@testable import Datasets

final class ShardTests: XCTestCase {
    func testShardsAreDisjointAndCoverEverything() throws {
        for total in [0, 1, 2, 7, 100, 59_999, 60_000] {
            for ranks in 1...9 {
                let ranges = try (0..<ranks).map { try shardRange(count: total, rank: $0, ranks: ranks) }
                XCTAssertEqual(ranges.first?.lowerBound, 0)
                XCTAssertEqual(ranges.last?.upperBound, total)
                for (left, right) in zip(ranges, ranges.dropFirst()) {
                    XCTAssertEqual(left.upperBound, right.lowerBound, "gap or overlap, N=\(total) s=\(ranks)")
                }
                let sizes = ranges.map(\.count)
                XCTAssertLessThanOrEqual(sizes.max()! - sizes.min()!, 1, "unbalanced, N=\(total) s=\(ranks)")
                XCTAssertEqual(sizes.min(), total / ranks, "the smallest shard is floor(N/s)")
            }
        }
        XCTAssertEqual(try shardRange(count: 10, rank: 1, ranks: 3), 3..<6)
        // No overflow for counts whose product with the rank exceeds Int.max.
        XCTAssertEqual(try shardRange(count: Int.max, rank: 3, ranks: 4).upperBound, Int.max)
    }

    func testInvalidPartitions() {
        assertThrows("cannot take the shard of rank -1 of 4 ranks; the rank must be in 0..<4") {
            _ = try shardRange(count: 10, rank: -1, ranks: 4)
        }
        assertThrows("cannot split a data set over 0 ranks (rank 0); the number of ranks must be at least 1") {
            _ = try shardRange(count: 10, rank: 0, ranks: 0)
        }
    }

    func testShardsOfAFileConcatenateToTheWholeFile() throws {
        let directory = makeTemporaryDirectory(self)
        let (count, rows, columns) = (7, 2, 5)
        let pixels = fixturePixels(count: count * rows * columns)
        let labels: [UInt8] = [0, 1, 2, 3, 4, 5, 6]
        writeGzip(idxBytes(dimensions: [count, rows, columns], data: pixels), to: "\(directory)/images.gz")
        writeRaw(idxBytes(dimensions: [count], data: labels), to: "\(directory)/labels")
        let whole = try ImageShard(imagesPath: "\(directory)/images.gz", labelsPath: "\(directory)/labels", rank: 0, ranks: 1)
        for ranks in [2, 3, 7, 9] {
            let shards = try (0..<ranks).map {
                try ImageShard(imagesPath: "\(directory)/images.gz", labelsPath: "\(directory)/labels", rank: $0, ranks: ranks)
            }
            XCTAssertEqual(shards.flatMap(\.pixels), whole.pixels, "ranks \(ranks)")
            XCTAssertEqual(shards.flatMap(\.labels), whole.labels, "ranks \(ranks)")
            XCTAssertEqual(shards.map(\.globalRange), try (0..<ranks).map { try shardRange(count: count, rank: $0, ranks: ranks) })
            XCTAssertTrue(shards.allSatisfy { $0.totalCount == count && $0.ranks == ranks })
        }
    }

    /// The shard keeps the file's bytes and a batch becomes Floats only when it is copied out.
    /// Those Floats must be exactly what the Float shard held before: x / 127.5 - 1 computed in
    /// Float from the file's byte, bit for bit, for every byte value, on every rank; and each
    /// rank must hold only its own examples' bytes.
    func testBatchesAreTheFileBytesScaledToSignedUnit() throws {
        let directory = makeTemporaryDirectory(self)
        let (count, rows, columns) = (13, 4, 7)
        let width = rows * columns
        // 167 is odd, so any 256 consecutive indices give every byte value once.
        let file = (0..<(count * width)).map { UInt8(truncatingIfNeeded: $0 &* 167) }
        XCTAssertEqual(Set(file).count, 256, "the fixture should hold every byte value")
        writeGzip(idxBytes(dimensions: [count, rows, columns], data: file), to: "\(directory)/images.gz")
        writeRaw(idxBytes(dimensions: [count], data: (0..<count).map { UInt8($0) }), to: "\(directory)/labels")

        for ranks in [1, 2, 3] {
            for rank in 0..<ranks {
                let shard = try ImageShard(imagesPath: "\(directory)/images.gz", labelsPath: "\(directory)/labels",
                                           rank: rank, ranks: ranks)
                let range = shard.globalRange
                XCTAssertEqual(shard.pixels, Array(file[(range.lowerBound * width)..<(range.upperBound * width)]),
                               "rank \(rank) of \(ranks) should hold exactly its own examples' bytes")
                var batcher = try EpochBatcher(shard: shard, batchSize: 2, seed: 5)
                var batch = [Float](repeating: .nan, count: 2 * width)
                for epoch in 0..<2 {
                    batcher.beginEpoch(epoch)
                    for index in 0..<batcher.stepsPerEpoch {
                        try batch.withUnsafeMutableBufferPointer { try batcher.copyBatch(index, into: $0.baseAddress!) }
                        for (slot, example) in try batcher.indices(ofBatch: index).enumerated() {
                            let global = range.lowerBound + example
                            let expected = file[(global * width)..<((global + 1) * width)].map { (Float($0) / 127.5 - 1).bitPattern }
                            XCTAssertEqual(batch[(slot * width)..<((slot + 1) * width)].map(\.bitPattern), expected,
                                           "example \(global), rank \(rank) of \(ranks), epoch \(epoch)")
                        }
                    }
                }
            }
        }

        // Every byte value through the vector loop and the scalar tail (261 = 16 · 16 + 5).
        let all = (0..<261).map { UInt8(truncatingIfNeeded: $0 &* 167) }
        var converted = [Float](repeating: .nan, count: all.count)
        converted.withUnsafeMutableBufferPointer { out in
            all.withUnsafeBufferPointer { ImageShard.signedUnit($0, into: out.baseAddress!) }
        }
        XCTAssertEqual(converted.map(\.bitPattern), all.map { (Float($0) / 127.5 - 1).bitPattern })
        XCTAssertEqual(converted[0], -1, "background is -1")
        XCTAssertEqual(converted[all.firstIndex(of: 255)!], 1, "full intensity is exactly 1")
    }
}
