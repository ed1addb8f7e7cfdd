import Backends
import Distributed
import Kernels
import NN
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// What `Benchmark.run` measures: training steps of one model on one instruction set.
public struct BenchmarkOptions: Sendable {
    /// The model, batch per rank and update scheme (the rest of the arithmetic too).
    public var configuration: GANConfiguration
    /// Timed steps, after `warmup` untimed ones (first-touch page faults, caches, clocks).
    public var steps = 20
    public var warmup = 3
    public var instructionSet: InstructionSet
    public var threads = 1
    /// Also time every layer's passes (two clock reads per layer and pass).
    public var perLayer = false
    /// Seconds each rank spends measuring its core's FMA peak.
    public var peakSeconds = 0.25
    /// How gradients travel; the benchmark always splits waiting from the all-reduce
    /// (`timeWaits`: one timed barrier per network per step, as `gantry train --profile`).
    public var exchange: ExchangeOptions = {
        var e = ExchangeOptions()
        e.timeWaits = true
        return e
    }()

    public init(configuration: GANConfiguration, instructionSet: InstructionSet) {
        self.configuration = configuration
        self.instructionSet = instructionSet
    }
}

/// One layer's share of a step: its FLOPs and its time, per step.
public struct LayerFigure: Sendable {
    public var network: NetworkRole
    public var index: Int
    /// The layer's kind and shape, e.g. "ConvTranspose2D 5x5/2 7x7x128 -> 14x14x64".
    public var name: String
    public var flops: LayerFLOPs
    /// Mean seconds per step in the layer's forward and backward passes (mean over ranks).
    public var forwardSeconds: Double
    public var backwardSeconds: Double

    /// Achieved rate of the layer's passes, 0 where it counts no FLOPs.
    public var gflops: Double {
        let seconds = forwardSeconds + backwardSeconds
        return seconds > 0 ? Double(flops.total) / seconds / 1e9 : 0
    }
}

/// The figures of one benchmark, the same on every rank (reduced over the ranks).
public struct BenchmarkResult: Sendable {
    public var configuration: GANConfiguration
    public var ranks: Int
    public var threads: Int
    public var instructionSet: InstructionSet
    public var steps: Int
    public var warmup: Int
    /// Mean wall-clock seconds per timed step on the slowest rank: getting a batch and the
    /// whole `GANTrainer.step`, as in a training run (whose logging and checks it leaves out).
    public var stepSeconds: Double
    /// Mean seconds per step in each phase, averaged over the ranks.
    public var phaseSeconds: [StepPhase: Double]
    /// Each rank's split of its steps (mean seconds per step per phase).
    public var profiles: [StepProfile]
    public var exchange: ExchangeOptions
    /// The analytic FLOPs of one step on one rank.
    public var flops: StepFLOPs
    /// The measured FMA peak of the cores the job runs on: one core's, measured on every rank
    /// at once and summed, times the threads per rank.
    public var peakGFLOPS: Double
    /// Peak resident set size (getrusage's ru_maxrss), the largest over the ranks, in bytes.
    public var peakResidentBytes: Int
    /// Per layer, when asked for; else empty.
    public var layers: [LayerFigure]

    public var batchSize: Int { configuration.batchSize }
    /// Images per second, all ranks together.
    public var imagesPerSecond: Double { Double(ranks * batchSize) / stepSeconds }
    /// Achieved GFLOP/s, all ranks together.
    public var gflops: Double { Double(ranks * flops.total) / stepSeconds / 1e9 }
    /// Achieved over measured peak.
    public var peakShare: Double { gflops / peakGFLOPS }
    /// Step time in no phase: the noise, bookkeeping (and the ranks' imbalance).
    public var otherSeconds: Double { stepSeconds - phaseSeconds.values.reduce(0, +) }
    /// Mean over the ranks of the step's compute: its phases but waiting and the all-reduce, and `other`.
    public var computeSeconds: Double { stepSeconds - (phaseSeconds[.wait] ?? 0) - (phaseSeconds[.allReduce] ?? 0) }
}

/// Times the training step under a `StepObserver` (and with `perLayer`, every layer under a
/// `LayerObserver`): the same code a training run executes, on synthetic images or real ones.
/// A collective: every rank calls it with the same options.
public enum Benchmark {
    public static func run(_ options: BenchmarkOptions, data: TrainingData? = nil,
                           communicator: Communicator) throws -> BenchmarkResult {
        let c = options.configuration
        let backend = try Backends.make(options.instructionSet, threads: options.threads)
        let trainer = GANTrainer(configuration: c, communicator: communicator, backend: backend, exchange: options.exchange)
        try trainer.initializeParameters()
        let images = data ?? SyntheticImages(configuration: c, rank: communicator.rank)
        let peak = try measurePeak(options, communicator)

        var step = 0
        func trainingSteps(_ count: Int) throws {
            for _ in 0..<count {
                _ = try trainer.step(data: images, step: step)
                step += 1
            }
        }
        try trainingSteps(options.warmup)

        let timer = PhaseTimer(layersOf: options.perLayer ? trainer.models : nil)
        trainer.observer = timer
        defer { trainer.observer = nil }
        try communicator.barrier()
        let start = monotonicSeconds()
        try trainingSteps(options.steps)
        let elapsed = monotonicSeconds() - start

        // Over the ranks: the slowest rank's time and the largest memory; each rank's phases;
        // the layers' means.
        var maxima = [elapsed, Double(peakResidentBytes())]
        try maxima.withUnsafeMutableBufferPointer { try communicator.allReduce($0, .max) }
        let steps = Double(options.steps)
        let profiles = try StepProfile.gather(timer.seconds, elapsed: elapsed, steps: options.steps, communicator: communicator)
        let meanPhases = Dictionary(uniqueKeysWithValues: StepPhase.allCases.filter(\.inStep).map { phase in
            (phase, profiles.map { $0.phases[phase, default: 0] }.reduce(0, +) / Double(communicator.size))
        })
        var layerMeans = timer.layers.flatMap { $0.forwardSeconds + $0.backwardSeconds }
        try layerMeans.withUnsafeMutableBufferPointer { try communicator.allReduce($0, .mean) }

        let flops = trainer.flopsPerStep
        return BenchmarkResult(
            configuration: c, ranks: communicator.size, threads: options.threads,
            instructionSet: options.instructionSet, steps: options.steps, warmup: options.warmup,
            stepSeconds: maxima[0] / Double(options.steps),
            phaseSeconds: meanPhases, profiles: profiles, exchange: trainer.exchangeOptions,
            flops: flops, peakGFLOPS: peak, peakResidentBytes: Int(maxima[1]),
            layers: layerFigures(timer.layers, flops: flops, seconds: layerMeans.map { $0 / steps }))
    }

    /// Every rank measures its core's peak at the same time (so that cores shared by ranks
    /// count once); the job's peak is their sum times the threads per rank.
    static func measurePeak(_ options: BenchmarkOptions, _ communicator: Communicator) throws -> Double {
        try communicator.barrier()
        var peak = [try Backends.measurePeakGFLOPS(options.instructionSet, seconds: options.peakSeconds)]
        try peak.withUnsafeMutableBufferPointer { try communicator.allReduce($0, .sum) }
        return peak[0] * Double(options.threads)
    }

    /// Pairs each timer's per-step seconds (forward then backward, network by network, as
    /// `run` laid them out) with the layers' FLOPs.
    static func layerFigures(_ timers: [LayerTimer], flops: StepFLOPs, seconds: [Double]) -> [LayerFigure] {
        var figures: [LayerFigure] = [], offset = 0
        for timer in timers {
            let layers = timer.network.layers
            for (i, layer) in layers.enumerated() {
                figures.append(LayerFigure(network: timer.role, index: i, name: describe(layer), flops: flops[timer.role][i],
                                           forwardSeconds: seconds[offset + i],
                                           backwardSeconds: seconds[offset + layers.count + i]))
            }
            offset += 2 * layers.count
        }
        return figures
    }

    /// The layer's kind and, for the layers that multiply, its shape.
    public static func describe(_ layer: Layer) -> String {
        switch layer {
        case let dense as Dense:
            return "Dense \(dense.inputCount) -> \(dense.outputCount)"
        case let conv as Conv2D:
            let g = conv.geometry
            return "Conv2D \(g.kernelSize)x\(g.kernelSize)/\(g.stride) \(g.inputHeight)x\(g.inputWidth)x\(g.channels)"
                + " -> \(g.outputHeight)x\(g.outputWidth)x\(conv.filters)"
        case let convT as ConvTranspose2D:
            let g = convT.geometry
            return "ConvTranspose2D \(g.kernelSize)x\(g.kernelSize)/\(g.stride) \(g.outputHeight)x\(g.outputWidth)x"
                + "\(convT.inputChannels) -> \(g.inputHeight)x\(g.inputWidth)x\(convT.filters)"
        default:
            return "\(type(of: layer))"
        }
    }
}

/// Stand-in training images for benchmarks without a dataset: a few batches of uniform
/// values in [-1, 1], drawn once from (seed, rank), served in turn, so that getting a batch
/// costs the copy a real batch costs and no more.
public final class SyntheticImages: TrainingData {
    public let batchesPerEpoch: Int
    private let batchValues: Int
    private let values: UnsafeMutableBufferPointer<Float>

    public init(configuration: GANConfiguration, rank: Int, batches: Int = 4) {
        batchesPerEpoch = batches
        batchValues = configuration.batchSize * configuration.pixelCount
        values = .allocate(capacity: batches * batchValues)
        RandomStream(seed: configuration.seed, 0x5359_4E54, UInt64(rank))
            .fillUniform(values.baseAddress!, count: values.count, low: -1, high: 1)
    }

    deinit { values.deallocate() }

    public func copyBatch(epoch: Int, index: Int, into destination: UnsafeMutablePointer<Float>) {
        destination.update(from: values.baseAddress! + index * batchValues, count: batchValues)
    }
}

/// This process's peak resident set size so far, in bytes.
func peakResidentBytes() -> Int {
    var usage = rusage()
    #if os(Linux)
    getrusage(RUSAGE_SELF.rawValue, &usage)
    return usage.ru_maxrss * 1024  // kilobytes on Linux
    #else
    getrusage(RUSAGE_SELF, &usage)
    return usage.ru_maxrss  // bytes on macOS
    #endif
}
