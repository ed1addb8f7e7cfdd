// tiny-gan: a small GAN written on Gantry's public API, trained data-parallel under mpirun.
//
//     swift build -c release --product tiny-gan
//     mpirun -np 2 .build/release/tiny-gan --steps 50 [--data DIR] [--out tiny-gan.png]
//
// Each rank loads its shard of MNIST, runs both networks forward and backward on its own batch,
// averages each network's gradients over the ranks with one all-reduce, and applies the same
// Adam update, so the replicas stay identical. Rank 0 prints the losses and writes a grid of
// samples. The DocC article "Writing a custom GAN on Gantry's layers" walks through this file.
//
// The networks are not gantry's `--model mlp`: G is 64 -> 256 -> 256 -> 784 (two hidden
// layers), D is 784 -> 256 -> 1, both with LeakyReLU(0.2), trained with DCGAN's Adam settings.
import ArgumentParser
import Backends
import Datasets
import Distributed
import FileFormats
import Foundation
import GAN
import Kernels
import NN
import Optim

@main
struct TinyGAN: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tiny-gan",
        abstract: "A small MLP GAN on Gantry's layers, data-parallel under mpirun (an example of the library).")

    @Option(help: "Training steps (2,000: about 20 s on 2 ranks).") var steps = 2000
    @Option(help: "Examples per rank in each step.") var batchSize = 64
    @Option(help: "The MNIST folder (default: $MNIST_DIR, else ./data/mnist).") var data: String?
    @Option(help: "The PNG grid of 64 samples rank 0 writes at the end.") var out = "tiny-gan.png"
    @Option(help: "Print the losses every N steps.") var logEvery = 10

    func validate() throws {
        guard steps >= 1, batchSize >= 1, logEvery >= 1 else {
            throw ValidationError("--steps, --batch-size and --log-every must be at least 1")
        }
    }

    func run() throws {
        let communicator = try Communicators.makeDefault()
        do {
            try train(communicator)
        } catch {
            // Every rank reads the same files, so a data error stops all of them alike; abort
            // ends the job instead of leaving a rank waiting in a collective.
            communicator.abort(message: "tiny-gan: \(error)")
        }
        try communicator.finalize()
    }

    func train(_ communicator: any Communicator) throws {
        let latent = 64, hidden = 256, pixels = 28 * 28, samples = 64, seed: UInt64 = 1
        let rank = communicator.rank, batch = batchSize
        let backend = try Backends.make(try Backends.choose())  // AVX2 or AVX-512, one thread per rank

        // This rank's shard of the training set, and its shuffled batches epoch by epoch.
        let directory = resolveDataDirectory(explicit: data, environment: ProcessInfo.processInfo.environment)
        let shard = try ImageShard(directory: directory, rank: rank, ranks: communicator.size)
        var batcher = try EpochBatcher(shard: shard, batchSize: batch, seed: seed)

        // The two networks. They share one workspace: only one layer call runs at a time.
        let workspace = Workspace()
        let generator = Sequential([
            Dense(latent, hidden, backend: backend), LeakyReLU(hidden, slope: 0.2, backend: backend),
            Dense(hidden, hidden, backend: backend), LeakyReLU(hidden, slope: 0.2, backend: backend),
            Dense(hidden, pixels, backend: backend), Tanh(pixels, backend: backend),
        ], maxBatch: max(batch, samples), workspace: workspace)
        let discriminator = Sequential([
            Dense(pixels, hidden, backend: backend), LeakyReLU(hidden, slope: 0.2, backend: backend),
            Dense(hidden, 1, backend: backend),  // a logit
        ], maxBatch: batch, workspace: workspace)
        // Every replica starts from rank 0's parameters.
        generator.initializeParameters(seed: seed)
        discriminator.initializeParameters(seed: seed + 1)
        for network in [generator, discriminator] { try communicator.broadcast(network.parameters.values) }

        let adam = OptimizerConfig.adam(learningRate: 2e-4, beta1: 0.5)
        let generatorAdam = Adam(count: generator.parameters.count, config: adam, backend: backend)
        let discriminatorAdam = Adam(count: discriminator.parameters.count, config: adam, backend: backend)
        let loss = BinaryCrossEntropyLoss(maxBatch: batch, backend: backend)

        // The step's buffers, allocated once: real images, noise, ∂loss/∂(D's output).
        let real = UnsafeMutableBufferPointer<Float>.allocate(capacity: batch * pixels)
        let noise = UnsafeMutableBufferPointer<Float>.allocate(capacity: max(batch, samples) * latent)
        let outputGradient = UnsafeMutableBufferPointer<Float>.allocate(capacity: batch)
        defer { for b in [real, noise, outputGradient] { b.deallocate() } }
        let training = ForwardContext(training: true)

        if communicator.isRoot {
            print("tiny-gan: \(communicator.size) rank(s), batch \(batch) per rank (\(batch * communicator.size) global), "
                  + "G \(generator.parameters.count) parameters, D \(discriminator.parameters.count)")
        }
        for step in 0 ..< steps {
            // This rank's real batch, and its slice of the step's noise: example e of the global
            // batch draws normals e·latent ..< (e + 1)·latent of the step's stream.
            let epoch = step / batcher.stepsPerEpoch
            if epoch != batcher.epoch { batcher.beginEpoch(epoch) }
            try batcher.copyBatch(step % batcher.stepsPerEpoch, into: real.baseAddress!)
            RandomStream(seed: seed, UInt64(step)).fillNormal(noise.baseAddress!, count: batch * latent,
                                                              first: UInt64(rank * batch * latent))

            // D: real images toward 1, G's images toward 0; gradients averaged, then Adam.
            discriminator.parameters.zeroGradients()
            var output = discriminator.forward(real.baseAddress!, batch: batch, context: training)
            var discriminatorLoss = loss.discriminator(output, on: .real, count: batch,
                                                       gradient: outputGradient.baseAddress!)
            let realScore = loss.score(output, count: batch)
            discriminator.backward(outputGradient.baseAddress!, batch: batch)
            let fake = generator.forward(noise.baseAddress!, batch: batch, context: training)
            output = discriminator.forward(fake, batch: batch, context: training)
            discriminatorLoss += loss.discriminator(output, on: .fake, count: batch, gradient: outputGradient.baseAddress!)
            let fakeScore = loss.score(output, count: batch)
            discriminator.backward(outputGradient.baseAddress!, batch: batch)
            try communicator.allReduce(discriminator.parameters.gradients, .mean)
            discriminatorAdam.step(parameters: discriminator.parameters.values.baseAddress!,
                                   gradients: discriminator.parameters.gradients.baseAddress!)

            // G: the same images through the updated D, toward D calling them real. D's backward
            // gives ∂loss/∂image (D's own gradients untouched), G's backward takes it from there.
            generator.parameters.zeroGradients()
            output = discriminator.forward(fake, batch: batch, context: training)
            let generatorLoss = loss.generator(output, count: batch, gradient: outputGradient.baseAddress!)
            let imageGradient = discriminator.backward(outputGradient.baseAddress!, batch: batch,
                                                       options: .init(parameterGradients: false, inputGradient: true))!
            generator.backward(imageGradient, batch: batch)
            try communicator.allReduce(generator.parameters.gradients, .mean)
            generatorAdam.step(parameters: generator.parameters.values.baseAddress!,
                               gradients: generator.parameters.gradients.baseAddress!)

            if (step + 1) % logEvery == 0 || step + 1 == steps {
                // Every rank joins the all-reduce; rank 0 prints the means over the global batch.
                var figures = [discriminatorLoss, generatorLoss, realScore, fakeScore]
                try figures.withUnsafeMutableBufferPointer { try communicator.allReduce($0, .mean) }
                if communicator.isRoot {
                    print(String(format: "step %d/%d: D loss %.4f, G loss %.4f, D(x) %.3f, D(G(z)) %.3f",
                                 step + 1, steps, figures[0], figures[1], figures[2], figures[3]))
                }
            }
        }

        // Rank 0 draws 64 images from fixed noise (inference mode) and writes them as one grid.
        if communicator.isRoot {
            RandomStream(seed: seed, .max).fillNormal(noise.baseAddress!, count: samples * latent)
            let images = generator.forward(noise.baseAddress!, batch: samples, context: ForwardContext(training: false))
            try PNG.writeGrid(path: out, images: UnsafeBufferPointer(start: images, count: samples * pixels),
                              count: samples, height: 28, width: 28, columns: 8)
            print("tiny-gan: wrote \(out)")
        }
    }
}
