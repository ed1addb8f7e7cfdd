import Backends
import Distributed
import Foundation
import Kernels
import NN

/// The GEMM's rate on one shape.
public struct GEMMFigure: Sendable {
    public var shape: GEMMShape
    /// Where it first comes from: "mlp D.0 Dense 784 -> 128 backward", or the anchor's name.
    public var label: String
    /// The other layer passes that run this shape: "D.3 backward" (a convolution's input
    /// gradient has the shape of a transposed convolution's forward product, and so on).
    public var alsoIn: [String] = []
    /// Calls of this shape in one training step (1 for an anchor shape).
    public var callsPerStep: Int
    public var gflops: Double
}

/// One core's measured FMA peak with one instruction set.
public struct PeakFigure: Sendable {
    public var instructionSet: InstructionSet
    public var gflops: Double
}

/// The kernels alone: the GEMM on every shape the models' steps use and on the anchors'
/// shapes, and the FMA peak of every instruction set the CPU has.
public struct KernelReport: Sendable {
    public var instructionSet: InstructionSet
    public var threads: Int
    public var batchSize: Int
    /// One per instruction set of `Backends.supported`.
    public var peaks: [PeakFigure]
    /// Per model, the shapes of one training step at `batchSize`, in the order they first run.
    public var models: [(model: ModelKind, shapes: [GEMMFigure])]
    /// The 8 shapes of /work/shared/anchors/gemm_openblas.c.
    public var anchors: [GEMMFigure]

    /// The peak of the chosen instruction set, times the threads.
    public var peakGFLOPS: Double {
        (peaks.first { $0.instructionSet == instructionSet }?.gflops ?? 0) * Double(threads)
    }

    /// Geometric mean over the anchor shapes: the figure to set beside OpenBLAS's on the same shapes.
    public var anchorGeometricMean: Double { geometricMean(anchors.map(\.gflops)) }

    /// The GEMM's rate over one step of `model`: all its calls' FLOPs over all their times.
    public func stepRate(_ model: ModelKind) -> Double {
        guard let shapes = models.first(where: { $0.model == model })?.shapes else { return 0 }
        let flops = shapes.reduce(0.0) { $0 + Double($1.callsPerStep * $1.shape.flops) }
        let seconds = shapes.reduce(0.0) { $0 + Double($1.callsPerStep * $1.shape.flops) / ($1.gflops * 1e9) }
        return flops / seconds / 1e9
    }
}

func geometricMean(_ values: [Double]) -> Double {
    values.isEmpty ? 0 : exp(values.reduce(0) { $0 + log($1) } / Double(values.count))
}

/// Measures `KernelReport`'s figures in this process (no collectives).
public enum KernelBenchmark {
    /// The shapes of /work/shared/anchors/gemm_openblas.c: `C = A·B`, neither transposed.
    public static let anchorShapes: [(label: String, shape: GEMMShape)] = [
        ("mlp G dense2 fwd", GEMMShape(m: 128, n: 784, k: 128)),
        ("mlp D dense1 fwd", GEMMShape(m: 256, n: 128, k: 784)),
        ("mlp D dense1 dW", GEMMShape(m: 784, n: 128, k: 256)),
        ("dcgan G dense fwd", GEMMShape(m: 64, n: 12544, k: 100)),
        ("dcgan G convT1", GEMMShape(m: 3136, n: 3200, k: 256)),
        ("dcgan G convT2", GEMMShape(m: 3136, n: 1600, k: 128)),
        ("dcgan D conv2", GEMMShape(m: 3136, n: 128, k: 1600)),
        ("dcgan D conv1", GEMMShape(m: 12544, n: 64, k: 25)),
    ]

    /// `seconds`: about what each shape's timing takes.
    public static func run(instructionSet: InstructionSet, threads: Int, batchSize: Int,
                           seconds: Double = 0.1) throws -> KernelReport {
        let backend = try Backends.make(instructionSet, threads: threads)
        let peaks = try Backends.supported.map { PeakFigure(instructionSet: $0, gflops: try Backends.measurePeakGFLOPS($0)) }
        var models: [(ModelKind, [GEMMFigure])] = []
        for model in ModelKind.benchmarked {
            let shapes = try stepShapes(model, batchSize: batchSize, backend: backend).map {
                GEMMFigure(shape: $0.shape, label: "\(model.rawValue) \($0.label)", alsoIn: $0.alsoIn,
                           callsPerStep: $0.calls, gflops: measure($0.shape, backend: backend, seconds: seconds))
            }
            models.append((model, shapes))
        }
        let anchors = anchorShapes.map {
            GEMMFigure(shape: $0.shape, label: $0.label, callsPerStep: 1, gflops: measure($0.shape, backend: backend, seconds: seconds))
        }
        return KernelReport(instructionSet: instructionSet, threads: threads, batchSize: batchSize, peaks: peaks,
                            models: models, anchors: anchors)
    }

    /// The multiplies of one training step of `model` (its default configuration at
    /// `batchSize`), recorded from a real step: each with the first layer and pass that runs
    /// it, named in full, and the other layer passes that run it ("D.3 backward").
    public static func stepShapes(_ model: ModelKind, batchSize: Int, backend: Backend)
        throws -> [(shape: GEMMShape, label: String, alsoIn: [String], calls: Int)] {
        var c = GANConfiguration.defaults(for: model)
        c.batchSize = batchSize
        let recorder = GEMMRecorder(backend)
        let trainer = GANTrainer(configuration: c, communicator: SingleProcessCommunicator(), backend: recorder)
        try trainer.initializeParameters()
        let labellers = NetworkRole.allCases.map { ShapeLabeller(recorder, $0, trainer.models[$0]) }
        for labeller in labellers { labeller.network.observer = labeller }
        let images = SyntheticImages(configuration: c, rank: 0, batches: 1)
        let real = UnsafeMutablePointer<Float>.allocate(capacity: c.batchSize * c.pixelCount)
        defer { real.deallocate() }
        images.copyBatch(epoch: 0, index: 0, into: real)
        recorder.reset()
        _ = try trainer.step(real: real, step: 0)
        for labeller in labellers { labeller.network.observer = nil }
        let names = labellers.reduce(into: [String: String]()) { $0.merge($1.names) { a, _ in a } }
        return recorder.shapes.map { ($0.shape, names[$0.labels[0]] ?? $0.labels[0], Array($0.labels.dropFirst()), $0.calls) }
    }

    /// GFLOP/s of the backend's GEMM on `shape`: the best of 5 rounds of back-to-back calls on
    /// operands in [-0.5, 0.5), each round about `seconds / 5` long (one call at least).
    public static func measure(_ shape: GEMMShape, backend: Backend, seconds: Double) -> Double {
        let a = operand(shape.m * shape.k, seed: 1), b = operand(shape.k * shape.n, seed: 2)
        let c = UnsafeMutablePointer<Float>.allocate(capacity: shape.m * shape.n)
        c.initialize(repeating: 0, count: shape.m * shape.n)
        // Gathered shapes read and write rows in order (a convolution tap's rows are nearly so).
        let rows = UnsafeMutablePointer<Int32>.allocate(capacity: max(shape.m, shape.k))
        for i in 0..<max(shape.m, shape.k) { rows[i] = Int32(i) }
        defer { a.deallocate(); b.deallocate(); c.deallocate(); rows.deallocate() }
        func call() {
            switch shape.gather {
            case .none:
                backend.gemm(transposeA: shape.transposeA, transposeB: shape.transposeB, m: shape.m, n: shape.n,
                             k: shape.k, a: a, lda: shape.lda, b: b, ldb: shape.ldb, c: c, ldc: shape.n,
                             accumulate: shape.accumulate)
            case .rows:
                backend.gemmGatheredRows(m: shape.m, n: shape.n, k: shape.k, a: a, aRows: rows, aStride: shape.k,
                                         transposeB: shape.transposeB, b: b, ldb: shape.ldb, c: c, cRows: rows,
                                         cStride: shape.n)
            case .inner:
                backend.gemmGatheredInner(m: shape.m, n: shape.n, k: shape.k, a: a, aRows: rows, aStride: shape.m,
                                          b: b, bRows: rows, bStride: shape.n, c: c, ldc: shape.n)
            }
        }
        call()  // first touch of C and of the packing buffers
        var calls = 1
        while time({ for _ in 0..<calls { call() } }) < seconds / 10 { calls *= 2 }
        var best = Double.infinity
        for _ in 0..<5 { best = min(best, time { for _ in 0..<calls { call() } } / Double(calls)) }
        return Double(shape.flops) / best / 1e9
    }

    private static func operand(_ count: Int, seed: UInt64) -> UnsafeMutablePointer<Float> {
        let p = UnsafeMutablePointer<Float>.allocate(capacity: count)
        RandomStream(seed: seed).fillUniform(p, count: count, low: -0.5, high: 0.5)
        return p
    }

    private static func time(_ body: () -> Void) -> Double {
        let start = monotonicSeconds()
        body()
        return monotonicSeconds() - start
    }
}

/// Tags the recorder's next multiplies with the layer and pass about to run them ("G.4
/// forward"), and keeps each tag's full name ("G.4 ConvTranspose2D 5x5/1 ... forward").
private final class ShapeLabeller: LayerObserver {
    let recorder: GEMMRecorder
    let role: NetworkRole
    let network: Sequential
    private(set) var names: [String: String] = [:]

    init(_ recorder: GEMMRecorder, _ role: NetworkRole, _ network: Sequential) {
        self.recorder = recorder
        self.role = role
        self.network = network
    }

    func begin(layer: Int, _ pass: LayerPass) {
        let direction = pass == .forward ? "forward" : "backward"
        let tag = "\(role.letter).\(layer) \(direction)"
        names[tag] = "\(role.letter).\(layer) \(Benchmark.describe(network.layers[layer])) \(direction)"
        recorder.label = tag
    }

    func end(layer: Int, _ pass: LayerPass) { recorder.label = "" }
}
