import Distributed
import Kernels
import NN

/// How each network's gradients travel between the ranks.
public struct ExchangeOptions: Sendable, Equatable {
    /// Start each bucket's all-reduce during backward, as soon as the layers it holds are done,
    /// and test the transfers in flight between layers so that MPI moves them on (Open MPI
    /// progresses non-blocking collectives only inside MPI calls). Off: one all-reduce of the
    /// whole gradient buffer after backward.
    public var overlap = true
    /// Gradient bytes (fp32) per bucket: a bucket closes at the first layer boundary at or
    /// past it, in the order backward finishes the layers (the last layers first).
    public var bucketBytes = 256 << 10
    /// Send gradients as IEEE half precision: scaled by a power of two chosen from the largest
    /// |gradient| over the ranks, summed in fp32 pairwise, rounded to half between ranks. Half
    /// the bytes; about 3 significant decimal digits per rank's contribution.
    public var halfPrecision = false
    /// Time a barrier before waiting for the transfers, to tell waiting for the slowest rank
    /// (`StepPhase.wait`) from the all-reduce itself (`.allReduce`); costs one barrier per
    /// network per step, so only profiles take it.
    public var timeWaits = false

    public init() {}
}

/// The data-parallel half of a step: averages each network's gradients over the ranks.
///
/// With overlap, the trainer passes `listener(announcing:)` to the backward pass that makes a
/// network's gradients final; each time that pass leaves the first layer of a bucket, the
/// bucket's all-reduce starts (non-blocking), last layers first, and every transfer in flight
/// is tested. `finish` starts what is left and waits. In fp32 the sums are those of one
/// all-reduce of the whole buffer, element by element.
///
/// In fp16 (`halfPrecision`) a bucket travels in two collectives: the largest |gradient| over
/// the ranks (a 1-float max), then the gradients scaled by the power of two that keeps every
/// partial sum finite (`HalfScale.choose`), as halves summed in fp32. MPI requires every
/// rank to start its collectives in the same order, so a bucket's second collective starts at
/// fixed points, never when a test happens to see its first complete: when the next bucket
/// starts, and in `finish`.
public final class GradientExchange {
    let communicator: Communicator
    let options: ExchangeOptions
    weak var observer: StepObserver?
    private let backend: Backend
    private var networks: [NetworkRole: NetworkBuckets] = [:]
    /// Buckets started and not yet waited for, over both networks, in the order they started.
    private var inFlight: [BucketTransfer] = []

    public init(communicator: Communicator, options: ExchangeOptions, models: GANModels, backend: Backend) {
        self.communicator = communicator
        self.options = options
        self.backend = backend
        for role in NetworkRole.allCases {
            networks[role] = NetworkBuckets(models[role], role: role, options: options, exchange: self)
        }
        inFlight.reserveCapacity(networks.values.map(\.buckets.count).reduce(0, +) + 2)
    }

    /// Nothing travels between one rank and itself.
    private var alone: Bool { communicator.size == 1 }

    /// The listener for the backward pass after which `network`'s gradients are final: it
    /// starts the network's buckets as they fill. nil when there is nothing to overlap.
    func listener(announcing network: NetworkRole) -> BackwardListener? {
        options.overlap && !alone ? networks[network]! : nil
    }

    /// The listener for other backward passes while transfers are in flight: it only tests them.
    func progressListener() -> BackwardListener? {
        options.overlap && !alone ? self.progress : nil
    }
    private lazy var progress = ProgressListener(exchange: self)

    /// Leaves `network`'s gradients averaged over the ranks: starts the buckets not started
    /// yet (all of them without overlap), then waits for them (and, when profiling, first for
    /// the slowest rank). Every rank calls it at the same point of the step.
    /// On one rank, nothing travels, but the phases are marked all the same.
    public func finish(_ network: NetworkRole) throws {
        let buckets = networks[network]!
        // Float32 without overlap: one all-reduce of the whole buffer, waited for where it is called.
        let blocking = !alone && !options.overlap && !options.halfPrecision
        if !alone && options.overlap {
            try buckets.startRemaining()
        } else if !alone && !blocking {
            try start(buckets.whole)
        }
        try promoteScaled()
        if options.timeWaits {
            observer?.begin(.wait)
            try communicator.barrier()
            observer?.end(.wait)
        }
        observer?.begin(.allReduce)
        defer { observer?.end(.allReduce) }
        if blocking {
            observer?.transfer(buckets.whole.transfer(completed: false))
            try communicator.allReduce(buckets.gradients, .mean)
            observer?.transfer(buckets.whole.transfer(completed: true))
        }
        var i = 0
        while i < inFlight.count {
            if inFlight[i].network == network {
                let bucket = inFlight.remove(at: i)
                try bucket.wait(backend: backend, ranks: communicator.size)
                observer?.transfer(bucket.transfer(completed: true))
            } else {
                i += 1
            }
        }
        buckets.reset()
    }

    /// Starts `bucket`'s all-reduce (in fp16, its first collective, after the second of the
    /// buckets before it).
    fileprivate func start(_ bucket: BucketTransfer) throws {
        try promoteScaled()
        try bucket.start(communicator, backend: backend)
        inFlight.append(bucket)
        observer?.transfer(bucket.transfer(completed: false))
    }

    /// Starts the second collective of every fp16 bucket whose first has been started.
    private func promoteScaled() throws {
        for bucket in inFlight { try bucket.startHalves(communicator, backend: backend) }
    }

    /// Tests every transfer in flight once, so that MPI moves them on.
    fileprivate func testInFlight() throws {
        for bucket in inFlight { try bucket.test() }
    }
}

/// One bucket of one network's gradients and its all-reduce, made once and reused every step.
final class BucketTransfer {
    let network: NetworkRole
    let index: Int
    let gradients: UnsafeMutableBufferPointer<Float>
    /// fp16: the bucket's gradients as scaled halves (its slice of the network's), and the
    /// largest |gradient| over the ranks.
    private let halves: UnsafeMutableBufferPointer<Float16>?
    private let largest: UnsafeMutableBufferPointer<Float>?

    private enum Stage {
        case idle
        case single(PendingAllReduce)
        case largest(PendingAllReduce)
        case halves(PendingAllReduce, scale: Float)
    }
    private var stage = Stage.idle

    init(network: NetworkRole, index: Int, gradients: UnsafeMutableBufferPointer<Float>,
         halves: UnsafeMutableBufferPointer<Float16>?) {
        self.network = network
        self.index = index
        self.gradients = gradients
        self.halves = halves
        largest = halves == nil ? nil : .allocate(capacity: 1)
    }

    deinit { largest?.deallocate() }

    func transfer(completed: Bool) -> Transfer {
        Transfer(network: network, bucket: index, bytes: gradients.count * (halves == nil ? 4 : 2), completed: completed)
    }

    func start(_ communicator: Communicator, backend: Backend) throws {
        if let largest {
            largest[0] = backend.maxAbs(gradients.baseAddress!, count: gradients.count)
            stage = .largest(try communicator.startAllReduce(largest, .max))
        } else {
            stage = .single(try communicator.startAllReduce(gradients, .mean))
        }
    }

    /// fp16, once the largest |gradient| is on its way: waits for it and starts the halves'
    /// sum (or, if some rank's gradients are not finite, the fp32 mean, which carries the NaN
    /// or infinity to every rank as one all-reduce would).
    func startHalves(_ communicator: Communicator, backend: Backend) throws {
        guard case let .largest(pending) = stage, let halves, let largest else { return }
        try pending.wait()
        guard let scale = HalfScale.choose(largestMagnitude: largest[0], ranks: communicator.size) else {
            stage = .single(try communicator.startAllReduce(gradients, .mean))
            return
        }
        backend.convertToHalf(gradients.baseAddress!, halves.baseAddress!, count: gradients.count, scale: scale)
        stage = .halves(try communicator.startAllReduce(halves, .sum), scale: scale)
    }

    func test() throws {
        switch stage {
        case let .single(pending), let .largest(pending), let .halves(pending, _): _ = try pending.test()
        case .idle: break
        }
    }

    /// Waits for the all-reduce and leaves the mean in `gradients`.
    func wait(backend: Backend, ranks: Int) throws {
        switch stage {
        case let .single(pending):
            try pending.wait()
        case let .halves(pending, scale):
            try pending.wait()
            backend.convertFromHalf(halves!.baseAddress!, gradients.baseAddress!, count: gradients.count,
                                    scale: 1 / (scale * Float(ranks)))
        case .largest:
            preconditionFailure("bucket \(index) of \(network) waited for before its halves started")
        case .idle:
            break
        }
        stage = .idle
    }
}

/// One network's gradient buffer cut into buckets at layer boundaries, in the order backward
/// finishes them.
final class NetworkBuckets: BackwardListener {
    let role: NetworkRole
    let gradients: UnsafeMutableBufferPointer<Float>
    /// Bucket 0 first (the buffer's tail: the last layers).
    let buckets: [BucketTransfer]
    /// The whole buffer as one bucket, for exchanges without overlap.
    let whole: BucketTransfer
    /// fp16: the gradients as halves, in the buckets' slices.
    private let halves: UnsafeMutableBufferPointer<Float16>?
    /// The bucket that becomes complete when backward leaves layer i, if any.
    private let completes: [Int?]
    /// Buckets started this step (they start in order).
    private var started = 0
    private unowned let exchange: GradientExchange

    init(_ network: Sequential, role: NetworkRole, options: ExchangeOptions, exchange: GradientExchange) {
        self.role = role
        self.exchange = exchange
        gradients = network.parameters.gradients
        let cut = NetworkBuckets.cut(network.layers.indices.map(network.parameterRange(ofLayer:)),
                                     maxElements: max(1, options.bucketBytes / 4))
        let gradients = gradients, halves = options.halfPrecision ? UnsafeMutableBufferPointer<Float16>.allocate(capacity: gradients.count) : nil
        self.halves = halves
        buckets = cut.buckets.enumerated().map { i, range in
            BucketTransfer(network: role, index: i, gradients: UnsafeMutableBufferPointer(rebasing: gradients[range]),
                           halves: halves.map { UnsafeMutableBufferPointer(rebasing: $0[range]) })
        }
        whole = BucketTransfer(network: role, index: 0, gradients: gradients, halves: halves)
        completes = cut.completes
    }

    deinit { halves?.deallocate() }

    /// Cuts the layers' parameter ranges (in layer order) into buckets, walking from the last
    /// layer: a bucket closes at the first layer whose range takes it to `maxElements` or more,
    /// and the first layer with parameters closes the last bucket. Returns the buckets and, per
    /// layer, the bucket that leaving it completes.
    static func cut(_ ranges: [Range<Int>], maxElements: Int) -> (buckets: [Range<Int>], completes: [Int?]) {
        var buckets: [Range<Int>] = [], completes = [Int?](repeating: nil, count: ranges.count)
        let firstWithParameters = ranges.firstIndex { !$0.isEmpty }
        var upper: Int?
        for (i, range) in ranges.enumerated().reversed() where !range.isEmpty {
            upper = upper ?? range.upperBound
            if upper! - range.lowerBound >= maxElements || i == firstWithParameters {
                completes[i] = buckets.count
                buckets.append(range.lowerBound ..< upper!)
                upper = nil
            }
        }
        return (buckets, completes)
    }

    func backwardDone(layer: Int) {
        do {
            if let bucket = completes[layer] {
                try exchange.start(buckets[bucket])
                started = bucket + 1
            }
            try exchange.testInFlight()
        } catch {
            // A backward pass cannot throw; a failed collective leaves the other ranks
            // waiting, so the whole job stops (as synchronized batch norm does).
            exchange.communicator.abort(message: "gantry: gradient all-reduce: \(error)")
        }
    }

    /// Starts the buckets backward did not start (a layer it did not reach: none in a GAN step).
    func startRemaining() throws {
        while started < buckets.count {
            try exchange.start(buckets[started])
            started += 1
        }
    }

    func reset() { started = 0 }
}

/// Tests the transfers in flight after each layer of a backward pass that announces nothing.
final class ProgressListener: BackwardListener {
    private unowned let exchange: GradientExchange
    init(exchange: GradientExchange) { self.exchange = exchange }

    func backwardDone(layer: Int) {
        do {
            try exchange.testInFlight()
        } catch {
            exchange.communicator.abort(message: "gantry: gradient all-reduce: \(error)")
        }
    }
}
