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
    /// Step time in no phase: noise, the batch copy, bookkeeping (and the ranks' imbalance).
    public var otherSeconds: Double { stepSeconds - phaseSeconds.values.reduce(0, +) }
}

/// Times the training step under a `StepObserver` (and with `perLayer`, every layer under a
/// `LayerObserver`): the same code a training run executes, on synthetic images or real ones.
/// A collective: every rank calls it with the same options.
public enum Benchmark {
    public static func run(_ options: BenchmarkOptions, data: TrainingData? = nil,
                           communicator: Communicator) throws -> BenchmarkResult {
        let c = options.configuration
        let backend = try Backends.make(options.instructionSet, threads: options.threads)
        let trainer = GANTrainer(configuration: c, communicator: communicator, backend: backend)
        try trainer.initializeParameters()
        let images = data ?? SyntheticImages(configuration: c, rank: communicator.rank)
        let peak = try measurePeak(options, communicator)

        let real = UnsafeMutablePointer<Float>.allocate(capacity: c.batchSize * c.pixelCount)
        defer { real.deallocate() }
        var step = 0
        func trainingStep() throws {
            images.copyBatch(epoch: step / images.stepsPerEpoch, index: step % images.stepsPerEpoch, into: real)
            _ = try trainer.step(real: real, step: step)
            step += 1
        }
        for _ in 0..<options.warmup { try trainingStep() }

        let phases = PhaseTimer()
        let layerTimers = options.perLayer ? NetworkRole.allCases.map { LayerTimer($0, trainer.models[$0]) } : []
        trainer.observer = phases
        for timer in layerTimers { timer.network.observer = timer }
        defer {
            trainer.observer = nil
            for timer in layerTimers { timer.network.observer = nil }
        }
        try communicator.barrier()
        let start = monotonicSeconds()
        for _ in 0..<options.steps { try trainingStep() }
        let elapsed = monotonicSeconds() - start

        // Over the ranks: the slowest rank's time and the largest memory; the phases' and layers' means.
        var maxima = [elapsed, Double(peakResidentBytes())]
        try maxima.withUnsafeMutableBufferPointer { try communicator.allReduce($0, .max) }
        var means = StepPhase.allCases.map { phases.seconds[$0, default: 0] }
            + layerTimers.flatMap { $0.forwardSeconds + $0.backwardSeconds }
        try means.withUnsafeMutableBufferPointer { try communicator.allReduce($0, .mean) }
        let perStep = means.map { $0 / Double(options.steps) }

        let flops = trainer.flopsPerStep
        return BenchmarkResult(
            configuration: c, ranks: communicator.size, threads: options.threads,
            instructionSet: options.instructionSet, steps: options.steps, warmup: options.warmup,
            stepSeconds: maxima[0] / Double(options.steps),
            phaseSeconds: Dictionary(uniqueKeysWithValues: zip(StepPhase.allCases, perStep)),
            flops: flops, peakGFLOPS: peak, peakResidentBytes: Int(maxima[1]),
            layers: layerFigures(layerTimers, flops: flops, seconds: Array(perStep.dropFirst(StepPhase.allCases.count))))
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
    public let stepsPerEpoch: Int
    private let batchValues: Int
    private let values: UnsafeMutableBufferPointer<Float>

    public init(configuration: GANConfiguration, rank: Int, batches: Int = 4) {
        stepsPerEpoch = batches
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

/// Adds up the seconds of each phase of the steps it hears.
final class PhaseTimer: StepObserver {
    private(set) var seconds: [StepPhase: Double] = [:]
    private var started = 0.0

    func begin(_ phase: StepPhase) { started = monotonicSeconds() }
    func end(_ phase: StepPhase) { seconds[phase, default: 0] += monotonicSeconds() - started }
}

/// Adds up the seconds of each layer's forward and backward passes in one network.
final class LayerTimer: LayerObserver {
    let role: NetworkRole
    let network: Sequential
    private(set) var forwardSeconds: [Double], backwardSeconds: [Double]
    private var started = 0.0

    init(_ role: NetworkRole, _ network: Sequential) {
        self.role = role
        self.network = network
        forwardSeconds = Array(repeating: 0, count: network.layers.count)
        backwardSeconds = forwardSeconds
    }

    func begin(layer: Int, _ pass: LayerPass) { started = monotonicSeconds() }
    func end(layer: Int, _ pass: LayerPass) {
        let elapsed = monotonicSeconds() - started
        if pass == .forward { forwardSeconds[layer] += elapsed } else { backwardSeconds[layer] += elapsed }
    }
}

/// Seconds on the monotonic clock (a vDSO call, tens of nanoseconds).
func monotonicSeconds() -> Double {
    var t = timespec()
    clock_gettime(CLOCK_MONOTONIC, &t)
    return Double(t.tv_sec) + Double(t.tv_nsec) * 1e-9
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
