import Distributed
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// A cost model of data-parallel training at ranks this machine does not have, from what one
// job measures (`ScalingBenchmark`): a step is its compute on one rank plus the all-reduces
// of the gradients that the compute does not hide. Pure arithmetic, no MPI: the tests check
// it on hand-worked cases.
//
// Assumptions (the README's "Projecting to 1,024 ranks" repeats them):
// - Compute per rank does not change with the number of ranks (the batch per rank is fixed:
//   weak scaling), and ranks are balanced: no rank waits for a slower one.
// - One rank per host, each host with its own full-duplex link to a non-blocking switch;
//   a message of n bytes between two ranks costs α + nβ (Hockney), reducing n bytes nγ.
// - Every all-reduce of Gantry's is an MPI_Iallreduce (so that a wait can time out: see
//   `MPICommunicator.stallTimeout`), which Open MPI 4.1's `coll/libnbc` runs by the algorithm
//   Gantry sets (`OpenMPIDecision`), and each algorithm costs what Thakur, Rabenseifner and
//   Gropp (2005) give for it; no contention, no congestion, no protocol overheads beyond α.

/// A link between ranks: Hockney's α and β.
public struct Network: Sendable, Equatable {
    /// What it is: "shared memory (measured)", "10 Gbit/s".
    public var name: String
    /// α: seconds of one message of no bytes (software, stack, wire and switch).
    public var latency: Double
    /// β: seconds per byte on the wire, 8 / bits per second at line rate.
    public var secondsPerByte: Double

    public init(name: String, latency: Double, secondsPerByte: Double) {
        self.name = name
        self.latency = latency
        self.secondsPerByte = secondsPerByte
    }

    /// A link of `gigabits` per second at line rate, with latency `latency`.
    public static func link(gigabits: Double, latency: Double) -> Network {
        Network(name: "\(trimmed(gigabits)) Gbit/s", latency: latency, secondsPerByte: 8 / (gigabits * 1e9))
    }
}

/// The arithmetic an all-reduce does on each rank, measured on this machine.
public struct ReductionCosts: Sendable, Equatable {
    /// γ for Float: seconds to add n bytes of an incoming message into the local buffer, per byte.
    public var secondsPerByte: Double
    /// γ for Float16 gradients (each half converted, added in Float, converted back), per byte.
    public var halfSecondsPerByte: Double
    /// Converting one gradient element Float -> Float16 before the exchange and back after it.
    public var halfConversionSecondsPerElement: Double

    public init(secondsPerByte: Double, halfSecondsPerByte: Double, halfConversionSecondsPerElement: Double) {
        self.secondsPerByte = secondsPerByte
        self.halfSecondsPerByte = halfSecondsPerByte
        self.halfConversionSecondsPerElement = halfConversionSecondsPerElement
    }
}

/// The all-reduce algorithms of Open MPI 4.1 for a commutative operation (MPI_SUM), as
/// `ompi/mca/coll/base/coll_base_allreduce.c` implements them (`coll/libnbc`'s MPI_Iallreduce
/// runs the same schedules, minus the linear one).
public enum AllReduceAlgorithm: String, CaseIterable, Sendable {
    /// log₂ p exchanges of the whole message, each reduced (algorithm 3).
    case recursiveDoubling = "recursive doubling"
    /// A reduce-scatter and an allgather around a ring: 2(p−1) messages of n/p (4, and 5:
    /// the segmented ring, which the fixed rules call with no segment size, runs the ring).
    case ring
    /// Rabenseifner's: a reduce-scatter by recursive halving, an allgather by recursive
    /// doubling: 2 log₂ p messages, 2n(p−1)/p bytes (6).
    case rabenseifner = "Rabenseifner"
    /// `coll/tuned`'s reduce, then its broadcast (2, "nonoverlapping"), modeled as binomial
    /// trees; and `coll/libnbc`'s binomial MPI_Iallreduce, which is that.
    case reduceBroadcast = "reduce + broadcast"
    /// Every rank's message to rank 0, reduced there, and the result back, one at a time
    /// (1; only where Rabenseifner's falls back, for fewer elements than ranks).
    case linear

    /// What the algorithm moves and adds on the busiest rank for `bytes` over `ranks`.
    public func terms(bytes: Double, ranks p: Int) -> AllReduceTerms {
        guard p > 1 else { return AllReduceTerms(messages: 0, bytesSent: 0, bytesReduced: 0) }
        let n = bytes, steps = Double(floorLog2(p)), pof2 = Double(1 << floorLog2(p))
        // Where p is not a power of two, Open MPI first folds the extra ranks' data into
        // partners (one message, one reduction) and sends them the result at the end.
        let fold = p == 1 << floorLog2(p) ? AllReduceTerms(messages: 0, bytesSent: 0, bytesReduced: 0)
                                          : AllReduceTerms(messages: 2, bytesSent: 2 * n, bytesReduced: n)
        switch self {
        case .recursiveDoubling:
            return fold + AllReduceTerms(messages: steps, bytesSent: steps * n, bytesReduced: steps * n)
        case .ring:
            let share = Double(p - 1) / Double(p)
            return AllReduceTerms(messages: 2 * Double(p - 1), bytesSent: 2 * share * n, bytesReduced: share * n)
        case .rabenseifner:
            let share = (pof2 - 1) / pof2
            return fold + AllReduceTerms(messages: 2 * steps, bytesSent: 2 * share * n, bytesReduced: share * n)
        case .reduceBroadcast:
            let depth = Double(ceilLog2(p))
            return AllReduceTerms(messages: 2 * depth, bytesSent: 2 * depth * n, bytesReduced: depth * n)
        case .linear:
            let others = Double(p - 1)
            return AllReduceTerms(messages: 2 * others, bytesSent: 2 * others * n, bytesReduced: others * n)
        }
    }
}

/// T = messages·α + bytesSent·β + bytesReduced·γ: an all-reduce's cost, linear in α, β and γ
/// (which is what lets `AllReduceFit` fit them by least squares).
public struct AllReduceTerms: Sendable, Equatable {
    public var messages: Double
    public var bytesSent: Double
    public var bytesReduced: Double

    public init(messages: Double, bytesSent: Double, bytesReduced: Double) {
        self.messages = messages
        self.bytesSent = bytesSent
        self.bytesReduced = bytesReduced
    }

    public func seconds(_ network: Network, reductionSecondsPerByte: Double) -> Double {
        messages * network.latency + bytesSent * network.secondsPerByte + bytesReduced * reductionSecondsPerByte
    }

    static func + (a: AllReduceTerms, b: AllReduceTerms) -> AllReduceTerms {
        AllReduceTerms(messages: a.messages + b.messages, bytesSent: a.bytesSent + b.bytesSent,
                       bytesReduced: a.bytesReduced + b.bytesReduced)
    }
}

/// The algorithm Open MPI 4.1 runs Gantry's all-reduces by.
public enum OpenMPIDecision {
    /// Open MPI 4.1's choice for MPI_Iallreduce, which `coll/libnbc` runs (`nbc_iallreduce.c`,
    /// v4.1.4). `forced` is its parameter `coll_libnbc_iallreduce_algorithm` (1 ring,
    /// 2 binomial, 3 Rabenseifner's where every rank of the largest power of two gets an
    /// element, else the ring, 4 recursive doubling); by default what Gantry sets
    /// (`MPICommunicator.nonBlockingAllReduceDefault`: 3). With 0, libnbc's
    /// own rule: binomial reduce to rank 0 and broadcast (`allred_sched_diss`) for fewer than 4
    /// ranks, under 65,536 bytes, or in place (as `startAllReduce` is); else Rabenseifner's or the ring.
    public static func allReduce(ranks p: Int, elements: Int, elementBytes: Int, inPlace: Bool,
                                 forced: Int? = nil) -> AllReduceAlgorithm {
        let forced = forced ?? Int(MPICommunicator.nonBlockingAllReduceDefault(environment: ["OMPI_COMM_WORLD_SIZE": "\(p)"]) ?? "0")!
        let everyRankAnElement = elements >= 1 << floorLog2(p)
        switch forced {
        case 0:
            if p < 4 || elements * elementBytes < 65536 || inPlace { return .reduceBroadcast }
            return everyRankAnElement ? .rabenseifner : .ring
        case 2: return .reduceBroadcast
        case 3: return everyRankAnElement ? .rabenseifner : .ring
        case 4: return .recursiveDoubling
        default: return .ring
        }
    }
}

/// One all-reduce of a network's gradients in a step.
public struct ExchangeCost: Sendable, Equatable {
    public var network: NetworkRole
    /// Gradient elements: the network's parameter count.
    public var elements: Int
    /// Seconds of the step's compute that an all-reduce started as gradients become ready
    /// could run under: the backward pass that completes this network's gradients.
    public var overlappableSeconds: Double

    public init(network: NetworkRole, elements: Int, overlappableSeconds: Double) {
        self.network = network
        self.elements = elements
        self.overlappableSeconds = overlappableSeconds
    }
}

/// What one training step of a model costs on one rank, measured with no communication.
public struct StepCost: Sendable, Equatable {
    public var model: ModelKind
    public var batchSize: Int
    /// Seconds of one step on one rank: forward, backward, optimizer and the rest, no all-reduce.
    public var computeSeconds: Double
    /// The step's all-reduces in order (D's, then G's: `GANTrainer.step`).
    public var exchanges: [ExchangeCost]

    public init(model: ModelKind, batchSize: Int, computeSeconds: Double, exchanges: [ExchangeCost]) {
        self.model = model
        self.batchSize = batchSize
        self.computeSeconds = computeSeconds
        self.exchanges = exchanges
    }
}

/// How the gradients travel.
public struct ExchangeVariant: Sendable, Equatable, Hashable {
    /// All-reduces started bucket by bucket during the backward pass, as PyTorch DDP's
    /// (false: one all-reduce per network after its backward, as `GANTrainer.step` today).
    public var overlap: Bool
    /// Float16 gradients on the wire: half the bytes, plus a conversion each way.
    public var halfPrecision: Bool

    public init(overlap: Bool, halfPrecision: Bool) {
        self.overlap = overlap
        self.halfPrecision = halfPrecision
    }

    public static let plain = ExchangeVariant(overlap: false, halfPrecision: false)
    public static let all: [ExchangeVariant] = [
        .plain, .init(overlap: true, halfPrecision: false), .init(overlap: false, halfPrecision: true),
        .init(overlap: true, halfPrecision: true),
    ]
}

/// A predicted step at one number of ranks.
public struct StepPrediction: Sendable, Equatable {
    public var ranks: Int
    public var batchSize: Int
    public var stepSeconds: Double
    /// The step's single-rank time: its compute.
    public var computeSeconds: Double
    /// The all-reduces' seconds, all of them, and the part no compute hides.
    public var communicationSeconds: Double
    public var exposedSeconds: Double
    /// The Float16 conversions' seconds (CPU work: never hidden).
    public var conversionSeconds: Double
    /// The algorithm Open MPI would run for each exchange (for each bucket, with overlap).
    public var algorithms: [AllReduceAlgorithm]

    /// Images per second, all ranks together.
    public var imagesPerSecond: Double { Double(ranks * batchSize) / stepSeconds }
    /// Weak-scaling efficiency: the single-rank step over this step (1 at one rank).
    public var efficiency: Double { computeSeconds / stepSeconds }
}

/// The cost model itself.
public enum Projection {
    /// The powers of two from 1 to 1,024: the table's rows.
    public static let defaultRanks = (0...10).map { 1 << $0 }

    /// The predicted step of `profile` at `ranks` ranks on `network`.
    ///
    /// With `variant.overlap`, each network's gradients go in equal buckets of at most
    /// `bucketBytes`; all but the last can run under the exchange's overlappable compute,
    /// the last cannot (its gradients are ready when the backward pass ends):
    /// exposed = max(0, T(all buckets but the last) − overlappable) + T(last bucket).
    /// Buckets pay their own latencies: overlap is slower than none where α dominates. Every
    /// exchange goes by MPI_Iallreduce (`OpenMPIDecision.allReduce`); `inPlace` as
    /// Gantry's communicator calls it.
    public static func predict(_ profile: StepCost, ranks p: Int, network: Network, reduction: ReductionCosts,
                               variant: ExchangeVariant = .plain, bucketBytes: Int = 1 << 20,
                               inPlace: Bool = true) -> StepPrediction {
        precondition(p >= 1 && bucketBytes > 0, "ranks \(p) and bucket bytes \(bucketBytes) must be positive")
        var prediction = StepPrediction(ranks: p, batchSize: profile.batchSize, stepSeconds: profile.computeSeconds,
                                        computeSeconds: profile.computeSeconds, communicationSeconds: 0, exposedSeconds: 0,
                                        conversionSeconds: 0, algorithms: [])
        guard p > 1 else { return prediction }
        let elementBytes = variant.halfPrecision ? 2 : 4
        let gamma = variant.halfPrecision ? reduction.halfSecondsPerByte : reduction.secondsPerByte
        for exchange in profile.exchanges where exchange.elements > 0 {
            // Buckets are cut by Float32 bytes (`ExchangeOptions.bucketBytes`) in either precision.
            let buckets = variant.overlap ? (exchange.elements * 4 + bucketBytes - 1) / bucketBytes : 1
            let elements = (exchange.elements + buckets - 1) / buckets
            let algorithm = OpenMPIDecision.allReduce(ranks: p, elements: elements, elementBytes: elementBytes,
                                                                 inPlace: inPlace)
            var bucket = algorithm.terms(bytes: Double(elements * elementBytes), ranks: p)
                .seconds(network, reductionSecondsPerByte: gamma)
            if variant.halfPrecision {
                // Each Float16 bucket first all-reduces its largest |gradient|: one Float.
                bucket += OpenMPIDecision.allReduce(ranks: p, elements: 1, elementBytes: 4, inPlace: inPlace)
                    .terms(bytes: 4, ranks: p).seconds(network, reductionSecondsPerByte: reduction.secondsPerByte)
            }
            let all = Double(buckets) * bucket
            let exposed = variant.overlap ? max(0, all - bucket - exchange.overlappableSeconds) + bucket : all
            let conversion = variant.halfPrecision ? Double(exchange.elements) * reduction.halfConversionSecondsPerElement : 0
            prediction.communicationSeconds += all
            prediction.exposedSeconds += exposed
            prediction.conversionSeconds += conversion
            prediction.stepSeconds += exposed + conversion
            prediction.algorithms.append(algorithm)
        }
        return prediction
    }
}

/// An all-reduce of `bytes` timed on the job's ranks.
public struct AllReduceTiming: Sendable, Equatable {
    public var bytes: Int
    /// The median over repetitions (the slowest rank's median).
    public var seconds: Double

    public init(bytes: Int, seconds: Double) {
        self.bytes = bytes
        self.seconds = seconds
    }
}

/// α and β fitted to a job's all-reduce timings, and how well the fit follows them.
public struct NetworkFit: Sendable, Equatable {
    public var network: Network
    /// (model − measured) / measured, per timing, in their order.
    public var relativeResiduals: [Double]
    /// The algorithm each timing was fitted under.
    public var algorithms: [AllReduceAlgorithm]
}

/// Why a fit could not be made.
public enum ProjectionError: Error, Equatable, CustomStringConvertible {
    /// A fit needs two or more ranks (one rank has no network) and two or more message sizes.
    case notEnoughData(ranks: Int, timings: Int)
    /// A timing of zero or fewer seconds, or of no bytes: not a measurement.
    case invalidTiming(bytes: Int, seconds: Double)

    public var description: String {
        switch self {
        case let .notEnoughData(ranks, timings):
            return "cannot fit α and β to \(timings) all-reduce timing(s) over \(ranks) rank(s): "
                + "it takes 2 or more ranks and 2 or more message sizes"
        case let .invalidTiming(bytes, seconds):
            return "cannot fit an all-reduce timing of \(bytes) bytes in \(seconds) s: both must be positive"
        }
    }
}

/// The network's α (latency per message) and β (seconds per byte) fitted to measured
/// all-reduce timings, for the projection to more ranks (`gantry bench --project`).
public enum AllReduceFit {
    /// Fits α and β to `timings` of Float all-reduces over `ranks` ranks, each timing under the
    /// algorithm Open MPI runs for its size, with γ known (measured apart: at two ranks every
    /// algorithm's β and γ terms grow alike with n, so the timings alone cannot part them).
    ///
    /// Least squares on the relative error (weights 1/T²): the sizes span 4 bytes to 16 MB,
    /// their times three orders of magnitude, and plain least squares would fit the largest
    /// only. A negative α or β (timings that bend, as shared memory's protocols switch) is
    /// set to 0 and the other refitted alone.
    public static func fit(_ timings: [AllReduceTiming], ranks: Int, reductionSecondsPerByte gamma: Double,
                           name: String) throws -> NetworkFit {
        guard ranks >= 2, Set(timings.map(\.bytes)).count >= 2 else {
            throw ProjectionError.notEnoughData(ranks: ranks, timings: timings.count)
        }
        if let bad = timings.first(where: { $0.bytes <= 0 || !($0.seconds > 0) }) {
            throw ProjectionError.invalidTiming(bytes: bad.bytes, seconds: bad.seconds)
        }
        let algorithms = timings.map {
            OpenMPIDecision.allReduce(ranks: ranks, elements: $0.bytes / 4, elementBytes: 4, inPlace: true)
        }
        // Rows T − γ·bytesReduced = messages·α + bytesSent·β, weighted by 1/T.
        let rows = zip(timings, algorithms).map { timing, algorithm in
            let t = algorithm.terms(bytes: Double(timing.bytes), ranks: ranks), w = 1 / timing.seconds
            return (a: w * t.messages, b: w * t.bytesSent, y: w * (timing.seconds - gamma * t.bytesReduced))
        }
        // The normal equations of the columns scaled to unit length (messages and bytes differ
        // by ten orders of magnitude), solved by Cramer's rule.
        let sa = rows.reduce(0) { $0 + $1.a * $1.a }.squareRoot(), sb = rows.reduce(0) { $0 + $1.b * $1.b }.squareRoot()
        let ab = rows.reduce(0) { $0 + $1.a / sa * $1.b / sb }
        let ay = rows.reduce(0) { $0 + $1.a / sa * $1.y }, by = rows.reduce(0) { $0 + $1.b / sb * $1.y }
        let determinant = 1 - ab * ab
        var alpha = (ay - by * ab) / determinant / sa, beta = (by - ab * ay) / determinant / sb
        if !(alpha >= 0) || !alpha.isFinite { alpha = 0; beta = max(0, by / sb) }
        if !(beta >= 0) || !beta.isFinite { beta = 0; alpha = max(0, ay / sa) }
        let network = Network(name: name, latency: alpha, secondsPerByte: beta)
        let residuals = zip(timings, algorithms).map { timing, algorithm in
            algorithm.terms(bytes: Double(timing.bytes), ranks: ranks).seconds(network, reductionSecondsPerByte: gamma)
                / timing.seconds - 1
        }
        return NetworkFit(network: network, relativeResiduals: residuals, algorithms: algorithms)
    }
}

/// ⌊log₂ n⌋ for n ≥ 1.
func floorLog2(_ n: Int) -> Int { Int.bitWidth - 1 - n.leadingZeroBitCount }

/// ⌈log₂ n⌉ for n ≥ 1.
func ceilLog2(_ n: Int) -> Int { n <= 1 ? 0 : floorLog2(n - 1) + 1 }

/// "10", "2.5": a number without a trailing ".0".
func trimmed(_ x: Double) -> String { x == x.rounded() && abs(x) < 1e15 ? String(Int(x)) : String(x) }
