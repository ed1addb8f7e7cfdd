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
}
