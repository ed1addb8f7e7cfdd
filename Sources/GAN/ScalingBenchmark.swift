import Backends
import Distributed
import Kernels
import NN
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// What `ScalingBenchmark.run` measures: the inputs of `Projection`.
public struct ScalingOptions: Sendable {
    /// One per model: its configuration, steps, threads and instruction set.
    public var models: [BenchmarkOptions]
    /// Message sizes of the all-reduce sweep, in bytes: 4 B to 16 MiB by powers of 2, which
    /// crosses every size boundary of Open MPI's rules below 262,144 bytes and Gantry's gradients
    /// (0.4 to 9 MB).
    public var sweepBytes = (0...22).map { 4 << $0 }
    /// Each size repeats as often as fits in `secondsPerSize`, within `repetitions`.
    public var secondsPerSize = 0.25
    public var repetitions = 5...200
    /// Each model's compute run and its measured run alternate this many times, and each
    /// figure is the median over the rounds: on a shared machine the load changes from one
    /// run to the next, and runs taken apart would compare two loads.
    public var rounds = 3

    public init(models: [BenchmarkOptions]) { self.models = models }
}

/// One model's step as `Projection` needs it, and the runs it comes from.
public struct ModelScaling: Sendable {
    /// The profile of the round whose compute is the median.
    public var profile: StepCost
    /// The communication-free runs the profile comes from, one per round: every rank of the
    /// job at once, each on its own (a single-process communicator), so that the ranks contend
    /// for the host as in training but never wait for each other or the network.
    public var compute: [BenchmarkResult]
    /// Each round's compute seconds (the slowest rank's).
    public var computeSeconds: [Double]
    /// The job's own training step over all its ranks, one per round: what the projection at
    /// the job's ranks and network is checked against. Empty on one rank (the compute runs are that step).
    public var measured: [BenchmarkResult]
    /// The measured run whose step is the median; nil on one rank.
    public var medianMeasured: BenchmarkResult? {
        measured.isEmpty ? nil : measured.sorted { $0.stepSeconds < $1.stepSeconds }[measured.count / 2]
    }
    /// Each exchange's all-reduce (its elements as Float) timed alone, as the sweep times its
    /// sizes; empty on one rank.
    public var exchangeTimings: [AllReduceTiming]
}

/// What one job measured.
public struct ScalingMeasurement: Sendable {
    public var ranks: Int
    /// The distinct host names among the ranks.
    public var hosts: Int
    public var models: [ModelScaling]
    /// The all-reduce sweep on the job's network (empty on one rank: there is none).
    public var sweep: [AllReduceTiming]
    /// Measured on every rank at once, one thread each (Open MPI reduces on the calling
    /// thread), the mean over ranks.
    public var reduction: ReductionCosts
    /// The CPU seconds of the rounds over their wall seconds times the threads, on the rank
    /// where it is lowest: below 1 where other processes took the job's cores. Ranks then wait
    /// for descheduled ranks at every all-reduce, which no cost model of a quiet machine predicts.
    public var cpuShare: Double
}

/// Measures what decides data-parallel scaling: each model's compute per step, the
/// all-reduce's cost over message sizes, and the arithmetic of a reduction.
/// A collective: every rank calls it with the same options.
public enum ScalingBenchmark {
    public static func run(_ options: ScalingOptions, communicator: Communicator) throws -> ScalingMeasurement {
        var models: [ModelScaling] = []
        let (startCPU, startWall) = (processCPUSeconds(), monotonicSeconds())
        for modelOptions in options.models {
            var computeOptions = modelOptions
            computeOptions.perLayer = true  // the backward passes' seconds, per network
            var compute: [BenchmarkResult] = [], profiles: [StepCost] = [], measured: [BenchmarkResult] = []
            for _ in 0..<max(1, options.rounds) {
                try communicator.barrier()
                compute.append(try Benchmark.run(computeOptions, communicator: SingleProcessCommunicator()))
                profiles.append(try profile(compute.last!, options: modelOptions, communicator: communicator))
                if communicator.size > 1 { measured.append(try Benchmark.run(modelOptions, communicator: communicator)) }
            }
            let profile = profiles.sorted { $0.computeSeconds < $1.computeSeconds }[profiles.count / 2]
            let sizes = profile.exchanges.map { 4 * $0.elements }, networked = communicator.size > 1
            let timings = networked ? try timeAllReduces(sizes, options, communicator) : []
            models.append(ModelScaling(profile: profile, compute: compute, computeSeconds: profiles.map(\.computeSeconds),
                                       measured: measured, exchangeTimings: timings))
        }
        let threads = Double(options.models.map(\.threads).max() ?? 1)
        var cpuShare = [(processCPUSeconds() - startCPU) / ((monotonicSeconds() - startWall) * threads)]
        try cpuShare.withUnsafeMutableBufferPointer { try communicator.allReduce($0, .min) }
        let sweep = communicator.size > 1 ? try timeAllReduces(options.sweepBytes, options, communicator) : []
        try communicator.barrier()
        var reduction = [try measureReduction(options)].flatMap { [$0.secondsPerByte, $0.halfSecondsPerByte, $0.halfConversionSecondsPerElement] }
        try reduction.withUnsafeMutableBufferPointer { try communicator.allReduce($0, .mean) }
        return ScalingMeasurement(
            ranks: communicator.size, hosts: try hostCount(communicator), models: models, sweep: sweep,
            reduction: ReductionCosts(secondsPerByte: reduction[0], halfSecondsPerByte: reduction[1],
                                      halfConversionSecondsPerElement: reduction[2]),
            cpuShare: cpuShare[0])
    }

    /// The step's compute (the slowest rank's: the step waits for it), and per network the
    /// gradient elements and the backward seconds an overlapped all-reduce could run under
    /// (the mean over ranks).
    static func profile(_ run: BenchmarkResult, options: BenchmarkOptions, communicator: Communicator) throws -> StepCost {
        // A trainer of batch 1 for the passes and parameter counts (which the batch does not change).
        var small = options.configuration
        small.batchSize = 1
        let trainer = GANTrainer(configuration: small, communicator: SingleProcessCommunicator(), backend: ReferenceBackend())
        let models = trainer.models, passes = trainer.passesPerStep
        let roles: [NetworkRole] = [.discriminator, .generator]  // the order of the step's all-reduces
        var overlappable = roles.map { role in
            overlappableSeconds(run.layers.filter { $0.network == role }, network: models[role],
                                passes: passes.filter { $0.network == role }.compactMap(\.backward),
                                batch: options.configuration.batchSize)
        }
        try overlappable.withUnsafeMutableBufferPointer { try communicator.allReduce($0, .mean) }
        var compute = [run.stepSeconds - (run.phaseSeconds[.allReduce] ?? 0)]
        try compute.withUnsafeMutableBufferPointer { try communicator.allReduce($0, .max) }
        return StepCost(model: options.configuration.model, batchSize: options.configuration.batchSize,
                           computeSeconds: compute[0],
                           exchanges: zip(roles, overlappable).map {
                               ExchangeCost(network: $0, elements: models[$0].parameters.count, overlappableSeconds: $1)
                           })
    }

    /// The seconds of the backward pass that completes a network's gradients (the last of its
    /// `passes` that computes parameter gradients), from the layers' backward seconds summed
    /// over all of the network's backward passes: each layer's share is that pass's FLOPs
    /// over all its backward FLOPs (an equal share for a layer that counts none).
    static func overlappableSeconds(_ layers: [LayerFigure], network: Sequential, passes: [BackwardOptions],
                                    batch: Int) -> Double {
        guard let last = passes.lastIndex(where: \.parameterGradients) else { return 0 }
        let flops = passes.map { network.layerFLOPs(batch: batch, backward: $0) }
        return layers.reduce(0) { sum, layer in
            let all = flops.reduce(0) { $0 + $1[layer.index] }
            let share = all > 0 ? Double(flops[last][layer.index]) / Double(all) : 1 / Double(passes.count)
            return sum + layer.backwardSeconds * share
        }
    }

    /// The median seconds of an in-place Float sum all-reduce of each size (the slowest
    /// rank's), each timing after a barrier, after two untimed calls. Zeros: their sums
    /// stay finite, and adding them costs what adding gradients costs.
    static func timeAllReduces(_ sizes: [Int], _ options: ScalingOptions, _ communicator: Communicator) throws -> [AllReduceTiming] {
        let largest = (sizes.max() ?? 0) / 4
        let buffer = UnsafeMutableBufferPointer<Float>.allocate(capacity: max(1, largest))
        buffer.initialize(repeating: 0)
        defer { buffer.deallocate() }
        var timings: [AllReduceTiming] = []
        for bytes in sizes {
            let slice = UnsafeMutableBufferPointer(rebasing: buffer[0..<max(1, bytes / 4)])
            func allReduce() throws { try communicator.allReduce(slice, .sum) }
            try communicator.barrier()
            let start = monotonicSeconds()
            for _ in 0..<2 { try allReduce() }
            // Every rank must repeat as often: the count comes from the slowest rank's first calls.
            var first = [(monotonicSeconds() - start) / 2]
            try first.withUnsafeMutableBufferPointer { try communicator.allReduce($0, .max) }
            let count = min(options.repetitions.upperBound,
                            max(options.repetitions.lowerBound, Int(options.secondsPerSize / max(first[0], 1e-9))))
            var seconds: [Double] = []
            for _ in 0..<count {
                try communicator.barrier()
                let t = monotonicSeconds()
                try allReduce()
                seconds.append(monotonicSeconds() - t)
            }
            var median = [seconds.sorted()[count / 2]]
            try median.withUnsafeMutableBufferPointer { try communicator.allReduce($0, .max) }
            timings.append(AllReduceTiming(bytes: slice.count * 4, seconds: median[0]))
        }
        return timings
    }

    /// γ (adding Float arrays with the backend's axpy, one thread), γ for Float16 and the
    /// Float16 conversions, each the median of per-byte (per-element) times over arrays of
    /// 64 KiB to 16 MiB, the sizes of gradients.
    static func measureReduction(_ options: ScalingOptions) throws -> ReductionCosts {
        let backend = try Backends.make(options.models.first?.instructionSet ?? Backends.choose(), threads: 1)
        let counts = (14...22).map { 1 << $0 }  // elements: 64 KiB to 16 MiB of Float
        let x = UnsafeMutableBufferPointer<Float>.allocate(capacity: counts.last!)
        let y = UnsafeMutableBufferPointer<Float>.allocate(capacity: counts.last!)
        let h = UnsafeMutableBufferPointer<Float16>.allocate(capacity: counts.last!)
        let g = UnsafeMutableBufferPointer<Float16>.allocate(capacity: counts.last!)
        x.initialize(repeating: 0)
        y.initialize(repeating: 0)
        h.initialize(repeating: 0)
        g.initialize(repeating: 0)
        defer { for b in [x, y] { b.deallocate() }; for b in [h, g] { b.deallocate() } }
        func perUnit(_ units: (Int) -> Double, _ body: (Int) -> Void) -> Double {
            median(counts.map { n in
                body(n)
                var times: [Double] = []
                let deadline = monotonicSeconds() + 0.02
                repeat {
                    let t = monotonicSeconds()
                    body(n)
                    times.append(monotonicSeconds() - t)
                } while monotonicSeconds() < deadline || times.count < 3
                return median(times) / units(n)
            })
        }
        let float = perUnit({ Double(4 * $0) }) { backend.axpy(1, x.baseAddress!, y.baseAddress!, count: $0) }
        let half = perUnit({ Double(2 * $0) }) { addHalves(h.baseAddress!, into: g.baseAddress!, count: $0) }
        let conversion = perUnit({ Double($0) }) { n in
            toHalf(x.baseAddress!, h.baseAddress!, count: n)
            fromHalf(h.baseAddress!, y.baseAddress!, count: n)
        }
        return ReductionCosts(secondsPerByte: float, halfSecondsPerByte: half, halfConversionSecondsPerElement: conversion)
    }

    /// The number of distinct host names among the ranks: each rank's name broadcast in turn.
    static func hostCount(_ communicator: Communicator) throws -> Int {
        var names = Set<String>()
        for root in 0..<communicator.size { names.insert(try communicator.broadcast(communicator.processorName, root: root)) }
        return names.count
    }
}

// Float16 loops as a Float16 all-reduce would run them; with F16C (x86-64-v3) the compiler
// makes them vcvtps2ph / vcvtph2ps eight lanes at a time.

/// y[i] = Float16(x[i]).
@inline(never)
func toHalf(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float16>, count: Int) {
    for i in 0..<count { y[i] = Float16(x[i]) }
}

/// y[i] = Float(x[i]).
@inline(never)
func fromHalf(_ x: UnsafePointer<Float16>, _ y: UnsafeMutablePointer<Float>, count: Int) {
    for i in 0..<count { y[i] = Float(x[i]) }
}

/// y[i] += x[i], added in Float.
@inline(never)
func addHalves(_ x: UnsafePointer<Float16>, into y: UnsafeMutablePointer<Float16>, count: Int) {
    for i in 0..<count { y[i] = Float16(Float(y[i]) + Float(x[i])) }
}

/// User and system seconds of this process so far, all its threads.
func processCPUSeconds() -> Double {
    var usage = rusage()
    #if os(Linux)
    getrusage(RUSAGE_SELF.rawValue, &usage)
    #else
    getrusage(RUSAGE_SELF, &usage)
    #endif
    func seconds(_ t: timeval) -> Double { Double(t.tv_sec) + Double(t.tv_usec) * 1e-6 }
    return seconds(usage.ru_utime) + seconds(usage.ru_stime)
}

/// The middle value (the upper one of an even count); 0 for none.
func median(_ values: [Double]) -> Double {
    values.isEmpty ? 0 : values.sorted()[values.count / 2]
}
