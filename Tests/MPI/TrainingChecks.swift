import Distributed
import GAN
import Kernels

/// Data-parallel training across the ranks of the job: replicas stay identical, and N ranks
/// with batch b compute what one process computes with batch N·b on the same examples.
func registerTrainingChecks(into harness: inout Harness) {
    for scheme in UpdateScheme.allCases {
        harness.add("parameters identical on every rank after 5 steps (\(scheme.rawValue))") { check in
            let comm = check.comm
            var c = GANConfiguration.defaults(for: .mlp)
            c.batchSize = 16
            c.updateScheme = scheme
            let trainer = GANTrainer(configuration: c, communicator: comm)
            try trainer.initializeParameters()
            // Each rank trains on its own examples: only the all-reduce keeps them together.
            let real = syntheticImages(count: 16, pixels: c.pixelCount, seed: UInt64(100 + comm.rank))
            for step in 0..<5 { _ = try trainer.step(real: real, step: step) }
            check.expect(try trainer.parameterChecksumsAgree(), "parameter checksums differ between ranks")
            for network in [trainer.models.generator, trainer.models.discriminator] {
                let mine = Array(network.parameters.values)
                var high = mine, low = mine
                try high.withUnsafeMutableBufferPointer { try comm.allReduce($0, .max) }
                try low.withUnsafeMutableBufferPointer { try comm.allReduce($0, .min) }
                check.expect(high == low, "parameters differ between ranks")
            }
        }

        harness.add("N ranks x batch 128/N == 1 rank x batch 128 after 5 steps (\(scheme.rawValue))") { check in
            let comm = check.comm
            let globalBatch = 128
            guard globalBatch % comm.size == 0 else {
                check.fail("the global batch \(globalBatch) does not split over \(comm.size) ranks; use 2, 4 or 8")
                return
            }
            var c = GANConfiguration.defaults(for: .mlp)
            c.updateScheme = scheme
            c.labelSmoothing = 0.1
            c.seed = 7
            var whole = c
            whole.batchSize = globalBatch
            c.batchSize = globalBatch / comm.size

            let distributed = GANTrainer(configuration: c, communicator: comm)
            let single = GANTrainer(configuration: whole, communicator: SingleProcessCommunicator())
            try distributed.initializeParameters()
            try single.initializeParameters()
            let pixels = c.pixelCount
            for step in 0..<5 {
                let global = syntheticImages(count: globalBatch, pixels: pixels, seed: UInt64(step))
                _ = try global.withUnsafeBufferPointer {
                    try distributed.step(real: $0.baseAddress! + comm.rank * c.batchSize * pixels, step: step)
                }
                _ = try single.step(real: global, step: step)
            }
            for (a, b) in [(distributed.models.generator, single.models.generator),
                           (distributed.models.discriminator, single.models.discriminator)] {
                let x = Array(a.parameters.values), y = Array(b.parameters.values)
                let scale = y.map(abs).max()!
                let worst = zip(x, y).map { abs($0 - $1) }.max()!
                check.expect(worst <= 1e-4 * scale,
                             "largest difference \(worst) exceeds 1e-4 of the largest parameter \(scale)")
            }
        }
    }
}

/// `count` images of uniform noise in [-1, 1], a pure function of `seed`.
func syntheticImages(count: Int, pixels: Int, seed: UInt64) -> [Float] {
    var x = [Float](repeating: 0, count: count * pixels)
    RandomStream(seed: seed, 0xDA7A).fillUniform(&x, count: x.count, low: -1, high: 1)
    return x
}
