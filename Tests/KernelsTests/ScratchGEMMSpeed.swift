import XCTest
import Backends
import Kernels
import Foundation

final class ScratchGEMMSpeed: XCTestCase {
    func testScratchSpeed() throws {
        guard ProcessInfo.processInfo.environment["SCRATCH"] != nil else { return }
        let isa = InstructionSet(rawValue: ProcessInfo.processInfo.environment["SCRATCH"]!)!
        let be = try Backends.make(isa)
        let shapes: [(String, Bool, Bool, Int, Int, Int)] = [
            ("mlp G dense2 fwd", false, false, 128, 784, 128),
            ("mlp D dense1 fwd", false, false, 256, 128, 784),
            ("mlp D dense1 dW", false, false, 784, 128, 256),
            ("dcgan G dense fwd", false, false, 64, 12544, 100),
            ("dcgan G convT1", false, false, 3136, 3200, 256),
            ("dcgan G convT2", false, false, 3136, 1600, 128),
            ("dcgan D conv2", false, false, 3136, 128, 1600),
            ("dcgan D conv1", false, false, 12544, 64, 25),
            ("convT1 fwd tB", false, true, 3136, 3200, 256),
            ("convT1 dK tA", true, false, 3200, 256, 3136),
            ("convT1 dx", false, false, 3136, 256, 3200),
            ("convT2 dK tA", true, false, 1600, 128, 3136),
            ("convT2 dx", false, false, 3136, 128, 1600),
            ("conv2 dK tA", true, false, 1600, 128, 3136),
            ("conv2 dx tB", false, true, 3136, 1600, 128),
        ]
        var line = ""
        for (name, ta, tb, m, n, k) in shapes {
            let a = [Float](repeating: 0.5, count: m * k), b = [Float](repeating: 0.25, count: k * n)
            var c = [Float](repeating: 0, count: m * n)
            let flop = 2.0 * Double(m * n * k)
            let reps = Int(3e9 / flop) + 2
            var best = 1e9
            for _ in 0..<5 {
                let t = cpuNow()
                for _ in 0..<reps {
                    be.gemm(transposeA: ta, transposeB: tb, m: m, n: n, k: k, a: a, lda: ta ? m : k, b: b, ldb: tb ? k : n, c: &c, ldc: n, accumulate: false)
                }
                best = min(best, (cpuNow() - t) / Double(reps))
            }
            line += String(format: "%-22@ %7.1f GFLOP/s\n", name as NSString, flop / best / 1e9)
        }
        print(line)
    }
}

func cpuNow() -> Double { var t = timespec(); clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t); return Double(t.tv_sec) + Double(t.tv_nsec) * 1e-9 }
