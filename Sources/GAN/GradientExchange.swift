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
/// is tested. `finish` starts what is left and waits. Every rank starts the same buckets in
/// the same order, as MPI's non-blocking collectives require. The sums are those of one
/// all-reduce of the whole buffer, element by element.
final class GradientExchange {
    let communicator: Communicator
    let options: ExchangeOptions
    weak var observer: StepObserver?
    private var networks: [NetworkRole: NetworkBuckets] = [:]
    /// Transfers started and not yet waited for, over both networks.
    private var inFlight: [(transfer: Transfer, pending: PendingAllReduce)] = []

    init(communicator: Communicator, options: ExchangeOptions, models: GANModels) {
        self.communicator = communicator
        self.options = options
        for role in NetworkRole.allCases {
            networks[role] = NetworkBuckets(models[role], role: role, options: options, exchange: self)
        }
        inFlight.reserveCapacity(networks.values.map(\.buckets.count).reduce(0, +))
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
    func finish(_ network: NetworkRole) throws {
        let buckets = networks[network]!
        if !alone && options.overlap {
            try buckets.startRemaining()
        } else if !alone {
            try start(network, bucket: 0, of: buckets, range: buckets.whole)
        }
        if options.timeWaits {
            observer?.begin(.wait)
            try communicator.barrier()
            observer?.end(.wait)
        }
        observer?.begin(.allReduce)
        defer { observer?.end(.allReduce) }
        var i = 0
        while i < inFlight.count {
            if inFlight[i].transfer.network == network {
                var (transfer, pending) = inFlight.remove(at: i)
                try pending.wait()
                transfer.completed = true
                observer?.transfer(transfer)
            } else {
                i += 1
            }
        }
        buckets.reset()
    }

    /// Starts the mean all-reduce of `range` of `buckets`' gradients.
    fileprivate func start(_ network: NetworkRole, bucket: Int, of buckets: NetworkBuckets, range: Range<Int>) throws {
        let slice = UnsafeMutableBufferPointer(rebasing: buckets.gradients[range])
        let transfer = Transfer(network: network, bucket: bucket, bytes: range.count * 4, completed: false)
        inFlight.append((transfer, try communicator.startAllReduce(slice, .mean)))
        observer?.transfer(transfer)
    }

    /// Tests every transfer in flight once, so that MPI moves them on.
    fileprivate func testInFlight() throws {
        for transfer in inFlight { _ = try transfer.pending.test() }
    }
}

/// One network's gradient buffer cut into buckets at layer boundaries, in the order backward
/// finishes them.
final class NetworkBuckets: BackwardListener {
    let role: NetworkRole
    let gradients: UnsafeMutableBufferPointer<Float>
    /// Element ranges, bucket 0 first (the buffer's tail: the last layers).
    let buckets: [Range<Int>]
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
        buckets = cut.buckets
        completes = cut.completes
    }

    var whole: Range<Int> { 0 ..< gradients.count }

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
                try exchange.start(role, bucket: bucket, of: self, range: buckets[bucket])
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
            try exchange.start(role, bucket: started, of: self, range: buckets[started])
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
