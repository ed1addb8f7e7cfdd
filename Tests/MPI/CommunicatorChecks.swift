import Distributed
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The collectives of `Communicator`, each against a closed form of the ranks' values.
/// Lengths are odd (1, 7, 1000003) so that no chunking or vector width divides them.
func registerCommunicatorChecks(into harness: inout Harness) {
    harness.add("world has at least 2 ranks") { check in
        check.expect(check.comm.size >= 2, "size is \(check.comm.size); run under mpirun -np 2 or more")
    }

    harness.add("ranks are 0..<size, each once") { check in
        let comm = check.comm
        var values: [Double] = [Double(comm.rank), Double(comm.size), Double(comm.size)]
        try values.withUnsafeMutableBufferPointer { try comm.allReduce(UnsafeMutableBufferPointer(rebasing: $0[0..<2]), .sum) }
        try values.withUnsafeMutableBufferPointer { try comm.allReduce(UnsafeMutableBufferPointer(rebasing: $0[2...]), .min) }
        let n = Double(comm.size)
        check.expect(values[0] == n * (n - 1) / 2, "sum of ranks is \(values[0]), expected \(n * (n - 1) / 2)")
        check.expect(values[1] == n * n && values[2] == n, "ranks disagree on the size")
    }

    harness.add("gather of bytes of different lengths on each rank, to rank 0") { check in
        let comm = check.comm
        // Rank r sends r * 3 bytes of value r (rank 0 sends none).
        let parts = try comm.gather([UInt8](repeating: UInt8(comm.rank), count: comm.rank * 3), root: 0)
        if comm.rank == 0 {
            check.expect(parts == (0..<comm.size).map { [UInt8](repeating: UInt8($0), count: $0 * 3) }, "gathered \(parts)")
        } else {
            check.expect(parts.isEmpty, "rank \(comm.rank) received \(parts.count) parts")
        }
    }

    for count in [1, 7, 1_000_003] {
        // Rank r holds (r + 1) * k(i) / 2 with k(i) = i % 1021 + 1: halves of small integers,
        // so every partial sum is exact in Float whatever order MPI adds in.
        harness.add("all-reduce sum, Float, \(count) element\(count == 1 ? "" : "s")") { check in
            let comm = check.comm
            var buffer = (0..<count).map { Float(comm.rank + 1) * k($0) / 2 }
            try buffer.withUnsafeMutableBufferPointer { try comm.allReduce($0, .sum) }
            let ranks = Double(comm.size * (comm.size + 1) / 2)
            check.expectElements(buffer, tolerance: 0) { ranks * Double(k($0)) / 2 }
        }

        harness.add("all-reduce mean, Float, \(count) element\(count == 1 ? "" : "s")") { check in
            let comm = check.comm
            var buffer = (0..<count).map { Float(comm.rank + 1) * k($0) / 2 }
            try buffer.withUnsafeMutableBufferPointer { try comm.allReduce($0, .mean) }
            let meanRank = Double(comm.size + 1) / 2
            check.expectElements(buffer, tolerance: 1e-6) { meanRank * Double(k($0)) / 2 }
        }
    }

    for count in [7, 1_000_003] {
        // Rank r holds ±((r + i) % size) + 1/4: every residue occurs once per element, so the
        // maximum and minimum come from a different rank at each element.
        harness.add("all-reduce max, min and sum, Double, \(count) elements") { check in
            let comm = check.comm
            let n = Double(comm.size)
            let values = (0..<count).map { i in sign(i) * Double((comm.rank + i) % comm.size) + 0.25 }
            var maxima = values, minima = values, sums = values
            try maxima.withUnsafeMutableBufferPointer { try comm.allReduce($0, .max) }
            try minima.withUnsafeMutableBufferPointer { try comm.allReduce($0, .min) }
            try sums.withUnsafeMutableBufferPointer { try comm.allReduce($0, .sum) }
            check.expectElements(maxima, tolerance: 0) { i in i % 2 == 0 ? n - 0.75 : 0.25 }
            check.expectElements(minima, tolerance: 0) { i in i % 2 == 0 ? 0.25 : 1.25 - n }
            check.expectElements(sums, tolerance: 0) { i in sign(i) * n * (n - 1) / 2 + n / 4 }
        }
    }

    for count in [7, 1_000_003] {
        harness.add("broadcast Float from rank 0 and from the last rank, \(count) elements") { check in
            let comm = check.comm
            for root in [0, comm.size - 1] {
                let value = { (i: Int) in Float(root * 1000) + k(i) + 0.25 }
                var buffer = comm.rank == root ? (0..<count).map(value) : [Float](repeating: .nan, count: count)
                try buffer.withUnsafeMutableBufferPointer { try comm.broadcast($0, root: root) }
                check.expectElements(buffer, tolerance: 0, "from rank \(root)") { Double(value($0)) }
            }
        }
    }

    harness.add("broadcast bytes and strings") { check in
        let comm = check.comm
        for root in [0, comm.size - 1] {
            let sent = "gantry: rank \(root) of \(comm.size) ✓"
            let received = try comm.broadcast(comm.rank == root ? sent : "", root: root)
            check.expect(received == sent, "from rank \(root): got \"\(received)\"")
        }
        let empty = try comm.broadcast(comm.rank == 0 ? "" : "not empty")
        check.expect(empty.isEmpty, "empty string from rank 0 arrived as \"\(empty)\"")

        var raw: [UInt8] = comm.rank == 0 ? [1, 2, 3] : [0, 0, 0]
        try raw.withUnsafeMutableBytes { try comm.broadcast($0, root: 0) }
        check.expect(raw == [1, 2, 3], "raw bytes from rank 0 arrived as \(raw)")
    }

    harness.add("barrier waits for the slowest rank") { check in
        // The previous check ended in a collective, so the ranks start within milliseconds
        // of each other; the last rank arrives 300 ms late, and the others must wait for it
        // (the margin is for ranks that start late, oversubscribed or over TCP).
        let comm = check.comm
        let start = ContinuousClock.now
        if comm.rank == comm.size - 1 { usleep(300_000) }
        try comm.barrier()
        let waited = (ContinuousClock.now - start).seconds
        check.expect(waited >= 0.1, "left the barrier after \(waited) s, before the last rank arrived")
        for _ in 0..<100 { try comm.barrier() }
    }

    harness.add("non-blocking all-reduce, two in flight") { check in
        let comm = check.comm
        let count = 1_000_003
        var sums = (0..<count).map { Float(comm.rank + 1) * k($0) / 2 }
        var means = sums
        try sums.withUnsafeMutableBufferPointer { sums in
            try means.withUnsafeMutableBufferPointer { means in
                let first = try comm.startAllReduce(sums, .sum)
                let second = try comm.startAllReduce(means, .mean)
                try second.wait()
                try first.wait()
                try first.wait()
            }
        }
        let ranks = Double(comm.size * (comm.size + 1) / 2)
        check.expectElements(sums, tolerance: 0, "sum") { ranks * Double(k($0)) / 2 }
        check.expectElements(means, tolerance: 1e-6, "mean") { ranks / Double(comm.size) * Double(k($0)) / 2 }
    }

    harness.add("non-blocking all-reduce, tested until done: the mean divided once, then wait() at once") { check in
        let comm = check.comm
        let count = 1_000_003
        var means = (0..<count).map { Float(comm.rank + 1) * k($0) / 2 }
        var polls = 0
        var waited = 0.0
        var afterTest: [Float] = []
        try means.withUnsafeMutableBufferPointer { means in
            let pending = try comm.startAllReduce(means, .mean)
            while try !pending.test() { polls += 1 }
            afterTest = Array(means)
            let start = ContinuousClock.now
            try pending.wait()
            waited = (ContinuousClock.now - start).seconds
            check.expect(try pending.test(), "test() after completion returned false")
        }
        let meanRank = Double(comm.size + 1) / 2
        check.expectElements(afterTest, tolerance: 1e-6, "after test() returned true (\(polls) polls before)") {
            meanRank * Double(k($0)) / 2
        }
        check.expect(afterTest == means, "wait() or a second test() changed the buffer after test() returned true")
        check.expect(waited < 0.05, "wait() after test() returned true took \(waited) s")
    }

    for count in [7, 1_000_003] {
        // Ranks 0 and 1 hold unrelated halves of exponents a few apart (subnormals to 65504, so
        // that sums round, tie, and overflow); other ranks hold +0, which changes no sum, so the
        // result is one rounding of the two values' sum whatever order MPI adds in.
        let expected = { (i: Int) in Float16(Float(half(i, rank: 0)) + Float(half(i, rank: 1))) }
        harness.add("all-reduce sum, Float16, \(count) elements: each pair added in Float, rounded once") { check in
            let comm = check.comm
            var buffer = (0..<count).map { half($0, rank: comm.rank) }
            try buffer.withUnsafeMutableBufferPointer { try comm.allReduce($0, .sum) }
            check.expectBits(buffer, expected: expected)
        }

        harness.add("non-blocking all-reduce sum, Float16, \(count) elements, tested until done") { check in
            let comm = check.comm
            var buffer = (0..<count).map { half($0, rank: comm.rank) }
            try buffer.withUnsafeMutableBufferPointer { buffer in
                let pending = try comm.startAllReduce(buffer, .sum)
                while try !pending.test() {}
                try pending.wait()
            }
            check.expectBits(buffer, expected: expected)
        }
    }

    harness.add("all-reduce max, min, mean, Float16, and sum blocking and non-blocking in flight together") { check in
        // As the Double check: ±((r + i) % size) + 1/4, exact in Float16.
        let comm = check.comm, count = 1001, n = comm.size
        let values = (0..<count).map { i in Float16(sign(i) * Double((comm.rank + i) % n) + 0.25) }
        var maxima = values, minima = values, means = values, sums = values, started = values
        try started.withUnsafeMutableBufferPointer { started in
            let pending = try comm.startAllReduce(started, .sum)
            try maxima.withUnsafeMutableBufferPointer { try comm.allReduce($0, .max) }
            try minima.withUnsafeMutableBufferPointer { try comm.allReduce($0, .min) }
            try means.withUnsafeMutableBufferPointer { try comm.allReduce($0, .mean) }
            try sums.withUnsafeMutableBufferPointer { try comm.allReduce($0, .sum) }
            try pending.wait()
        }
        let sum = { (i: Int) in sign(i) * Double(n * (n - 1) / 2) + Double(n) / 4 }
        check.expectBits(maxima, "max") { i in Float16(i % 2 == 0 ? Double(n) - 0.75 : 0.25) }
        check.expectBits(minima, "min") { i in Float16(i % 2 == 0 ? 0.25 : 1.25 - Double(n)) }
        check.expectBits(sums, "sum") { Float16(sum($0)) }
        check.expectBits(started, "non-blocking sum") { Float16(sum($0)) }
        check.expectBits(means, "mean") { Float16(Float(Float16(sum($0))) / Float(n)) }
    }

    harness.add("processor names are set") { check in
        check.expect(!check.comm.processorName.isEmpty, "empty processor name")
    }
}

/// Small integers 1...1021, repeating along the buffer.
private func k(_ i: Int) -> Float { Float(i % 1021 + 1) }

/// +1 on even elements, -1 on odd ones.
private func sign(_ i: Int) -> Double { i % 2 == 0 ? 1 : -1 }

/// Element `i` of rank `rank`'s Float16 buffer: +0 beyond rank 1; on rank 0 a finite half of
/// any exponent and sign, on rank 1 one whose exponent is within 3 of rank 0's, so that their
/// sums cancel, round, tie and overflow. No -0, which +0 from a third rank would turn to +0.
private func half(_ i: Int, rank: Int) -> Float16 {
    guard rank <= 1 else { return 0 }
    let bits = mix(UInt64(i)), other = mix(bits)
    let exponent = UInt16(truncatingIfNeeded: bits >> 16) % 31  // 0 (subnormal) ... 30, not 31 (inf, NaN)
    var pattern = UInt16(truncatingIfNeeded: bits) & 0x83FF | exponent << 10
    if rank == 1 {
        let shifted = min(30, max(0, Int(exponent) + Int(other % 7) - 3))
        pattern = UInt16(truncatingIfNeeded: other >> 8) & 0x83FF | UInt16(shifted) << 10
    }
    return pattern == 0x8000 ? 0 : Float16(bitPattern: pattern)
}

/// SplitMix64's finalizer: a fixed, well-mixed function of `x`.
private func mix(_ x: UInt64) -> UInt64 {
    var z = x &+ 0x9E37_79B9_7F4A_7C15
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z >> 31)
}

extension CheckContext {
    /// Expects `actual[i]` to have the bits of `expected(i)` for every `i`; records only
    /// the first mismatch and how many there were.
    func expectBits(_ actual: [Float16], _ label: String = "", expected: (Int) -> Float16) {
        var mismatches = 0
        var first = ""
        for i in actual.indices where actual[i].bitPattern != expected(i).bitPattern {
            if mismatches == 0 { first = "element \(i) is \(actual[i]), expected \(expected(i))" }
            mismatches += 1
        }
        let prefix = label.isEmpty ? "" : "\(label): "
        expect(mismatches == 0, "\(prefix)\(mismatches) of \(actual.count) elements wrong; \(first)")
    }

    /// Expects `actual[i]` within `tolerance` (relative) of `expected(i)` for every `i`;
    /// records only the first mismatch and how many there were.
    func expectElements<T: BinaryFloatingPoint>(_ actual: [T], tolerance: Double, _ label: String = "",
                                               expected: (Int) -> Double) {
        var mismatches = 0
        var first = ""
        for i in actual.indices {
            let want = expected(i)
            let got = Double(actual[i])
            if !(abs(got - want) <= tolerance * abs(want)) {
                if mismatches == 0 { first = "element \(i) is \(got), expected \(want)" }
                mismatches += 1
            }
        }
        let prefix = label.isEmpty ? "" : "\(label): "
        expect(mismatches == 0, "\(prefix)\(mismatches) of \(actual.count) elements wrong; \(first)")
    }
}
