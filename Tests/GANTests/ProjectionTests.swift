import Backends
import Distributed
import XCTest
@testable import GAN

/// `gantry bench --project`'s cost model on hand-worked cases, Open MPI's choices against its
/// source, and the fit on timings made from known α and β.
final class ProjectionTests: XCTestCase {
    let network = Network(name: "test", latency: 10e-6, secondsPerByte: 1e-9)
    let reduction = ReductionCosts(secondsPerByte: 0.1e-9, halfSecondsPerByte: 0.2e-9, halfConversionSecondsPerElement: 0.5e-9)
    /// 1 ms of compute; D 1M gradients (4 MB) under 0.2 ms of backward, G 2M (8 MB) under 0.5 ms.
    let profile = StepCost(model: .dcgan, batchSize: 64, computeSeconds: 1e-3, exchanges: [
        ExchangeCost(network: .discriminator, elements: 1 << 20, overlappableSeconds: 0.2e-3),
        ExchangeCost(network: .generator, elements: 1 << 21, overlappableSeconds: 0.5e-3),
    ])

    // MARK: The algorithms

    func testAlgorithmTermsByHand() {
        func terms(_ a: AllReduceAlgorithm, _ n: Double, _ p: Int) -> [Double] {
            let t = a.terms(bytes: n, ranks: p)
            return [t.messages, t.bytesSent, t.bytesReduced]
        }
        // Recursive doubling, 8 ranks: 3 exchanges of the whole 1000 bytes, each reduced.
        XCTAssertEqual(terms(.recursiveDoubling, 1000, 8), [3, 3000, 3000])
        // 6 ranks: 2 rank pairs fold in and get the result back (2 messages of n, 1 reduction), then 4 ranks' 2 steps.
        XCTAssertEqual(terms(.recursiveDoubling, 1000, 6), [4, 4000, 3000])
        // Ring, 4 ranks: 2·3 messages of 250 bytes; 3 of them reduced.
        XCTAssertEqual(terms(.ring, 1000, 4), [6, 1500, 750])
        // Rabenseifner, 8 ranks: 3 halvings (500 + 250 + 125 sent and reduced), 3 doublings back.
        XCTAssertEqual(terms(.rabenseifner, 1000, 8), [6, 1750, 875])
        // Two ranks: ring and Rabenseifner both send half and get half back.
        XCTAssertEqual(terms(.ring, 1000, 2), terms(.rabenseifner, 1000, 2))
        XCTAssertEqual(terms(.ring, 1000, 2), [2, 1000, 500])
        // Binomial reduce then broadcast, 5 ranks: 3 levels each way.
        XCTAssertEqual(terms(.reduceBroadcast, 1000, 5), [6, 6000, 3000])
        for algorithm in AllReduceAlgorithm.allCases { XCTAssertEqual(terms(algorithm, 1000, 1), [0, 0, 0], "\(algorithm)") }
    }

    func testRingOvertakesRecursiveDoublingWhereTheBandwidthTermsOutweighTheLatencies() {
        // 8 ranks, α 1 µs, β 1 ns/byte, no reduction cost: 3α + 3nβ = 14α + 1.75nβ at n = 11α / 1.25β = 8,800 bytes.
        let link = Network(name: "", latency: 1e-6, secondsPerByte: 1e-9)
        func seconds(_ a: AllReduceAlgorithm, _ n: Double) -> Double {
            a.terms(bytes: n, ranks: 8).seconds(link, reductionSecondsPerByte: 0)
        }
        XCTAssertLessThan(seconds(.recursiveDoubling, 8000), seconds(.ring, 8000))
        XCTAssertEqual(seconds(.recursiveDoubling, 8800), seconds(.ring, 8800), accuracy: 1e-15)
        XCTAssertGreaterThan(seconds(.recursiveDoubling, 9600), seconds(.ring, 9600))
    }

    /// `nbc_iallreduce.c` (v4.1.4) on its own: binomial trees in place, below 4 ranks or 65,536 bytes.
    func testOpenMPIChoosesForMPIIallreduceAsLibNBC() {
        func choice(_ p: Int, _ bytes: Int, inPlace: Bool) -> AllReduceAlgorithm {
            OpenMPIDecision.allReduce(ranks: p, elements: bytes / 4, elementBytes: 4, inPlace: inPlace, forced: 0)
        }
        XCTAssertEqual(choice(1024, 4 << 20, inPlace: true), .reduceBroadcast)
        XCTAssertEqual(choice(1024, 4 << 20, inPlace: false), .rabenseifner)
        XCTAssertEqual(choice(3, 4 << 20, inPlace: false), .reduceBroadcast)
        XCTAssertEqual(choice(16, 32768, inPlace: false), .reduceBroadcast)
        XCTAssertEqual(OpenMPIDecision.allReduce(ranks: 1024, elements: 1000, elementBytes: 128, inPlace: false,
                                                            forced: 0), .ring)
    }

    /// What Gantry has libnbc run (`coll_libnbc_iallreduce_algorithm`, set before MPI_Init):
    /// Rabenseifner's (the ring for fewer elements than the largest power of two of ranks), in
    /// place or not.
    func testGantrysChoiceForMPIIallreduce() {
        XCTAssertEqual(OpenMPIDecision.allReduce(ranks: 2, elements: 1 << 20, elementBytes: 4, inPlace: true),
                       .rabenseifner)
        XCTAssertEqual(OpenMPIDecision.allReduce(ranks: 2, elements: 1, elementBytes: 4, inPlace: true), .ring)
        XCTAssertEqual(OpenMPIDecision.allReduce(ranks: 16, elements: 1 << 20, elementBytes: 4, inPlace: true),
                       .rabenseifner)
        XCTAssertEqual(OpenMPIDecision.allReduce(ranks: 1024, elements: 1000, elementBytes: 4, inPlace: true), .ring)
    }

    // MARK: The step

    func testOneRankHasNoCommunicationAndEfficiencyOne() {
        for variant in ExchangeVariant.all {
            let p = Projection.predict(profile, ranks: 1, network: network, reduction: reduction, variant: variant)
            XCTAssertEqual(p.stepSeconds, profile.computeSeconds, "\(variant)")
            XCTAssertEqual(p.communicationSeconds + p.exposedSeconds + p.conversionSeconds, 0, "\(variant)")
            XCTAssertEqual(p.efficiency, 1, "\(variant)")
            XCTAssertEqual(p.imagesPerSecond, 64 / 1e-3, accuracy: 1e-6)
        }
    }

    func testTwoRanksByHand() {
        // Both exchanges are over 262,144 bytes: Rabenseifner's, 2α + nβ + (n/2)γ each.
        let p = Projection.predict(profile, ranks: 2, network: network, reduction: reduction)
        let d = 2 * 10e-6 + 4_194_304 * 1e-9 + 2_097_152 * 0.1e-9, g = 2 * 10e-6 + 8_388_608 * 1e-9 + 4_194_304 * 0.1e-9
        XCTAssertEqual(p.algorithms, [.rabenseifner, .rabenseifner])
        XCTAssertEqual(p.stepSeconds, 1e-3 + d + g, accuracy: 1e-15)
        XCTAssertEqual(p.exposedSeconds, p.communicationSeconds)
        XCTAssertEqual(p.imagesPerSecond, 2 * 64 / p.stepSeconds, accuracy: 1e-9)
        XCTAssertEqual(p.efficiency, 1e-3 / p.stepSeconds, accuracy: 1e-15)
    }

    func testOverlapHidesAllButTheLastBucketAndNeverMoreThanTheCompute() {
        // D's 4 MiB in four 1 MiB buckets: 3 of them under 0.2 ms of backward. Each goes by
        // MPI_Iallreduce in place, which Gantry has run by Rabenseifner's: 2α + bβ + (b/2)γ at 2 ranks.
        let b: Double = 1_048_576, bucket: Double = 2 * 10e-6 + b * 1e-9 + b / 2 * 0.1e-9
        let single = StepCost(model: .mlp, batchSize: 1, computeSeconds: 1e-3, exchanges: [profile.exchanges[0]])
        let p = Projection.predict(single, ranks: 2, network: network, reduction: reduction,
                                   variant: .init(overlap: true, halfPrecision: false), bucketBytes: 1 << 20)
        XCTAssertEqual(p.communicationSeconds, 4 * bucket, accuracy: 1e-15)
        XCTAssertEqual(p.exposedSeconds, 3 * bucket - 0.2e-3 + bucket, accuracy: 1e-15)
        // Enough backward to hide three buckets: only the last is left.
        var hidden = single
        hidden.exchanges[0].overlappableSeconds = 1
        XCTAssertEqual(Projection.predict(hidden, ranks: 2, network: network, reduction: reduction,
                                          variant: .init(overlap: true, halfPrecision: false)).exposedSeconds, bucket, accuracy: 1e-15)
        // Overlap never takes a step below its compute, whatever the ranks, link and buckets.
        for ranks in Projection.defaultRanks {
            for link in [network, Network.link(gigabits: 1, latency: 50e-6), Network.link(gigabits: 100, latency: 0)] {
                for bucketBytes in [4096, 1 << 20, 1 << 30] {
                    for half in [false, true] {
                        let x = Projection.predict(hidden, ranks: ranks, network: link, reduction: reduction,
                                                   variant: .init(overlap: true, halfPrecision: half), bucketBytes: bucketBytes)
                        XCTAssertGreaterThanOrEqual(x.stepSeconds, x.computeSeconds + x.conversionSeconds)
                        XCTAssertLessThanOrEqual(x.efficiency, 1)
                    }
                }
            }
        }
    }

    func testHalfPrecisionHalvesTheBandwidthTerm() {
        // 16 ranks: 4 and 8 MB, and their halves, all go by Rabenseifner's; no latency, no arithmetic.
        let wire = Network(name: "", latency: 0, secondsPerByte: 1e-9)
        let free = ReductionCosts(secondsPerByte: 0, halfSecondsPerByte: 0, halfConversionSecondsPerElement: 0)
        let full = Projection.predict(profile, ranks: 16, network: wire, reduction: free)
        let half = Projection.predict(profile, ranks: 16, network: wire, reduction: free, variant: .init(overlap: false, halfPrecision: true))
        XCTAssertEqual(full.algorithms, half.algorithms)
        // Plus, per exchange, the all-reduce of one Float (the largest |gradient|): fewer
        // elements than ranks, so the ring, 2(p-1)/p of 4 bytes.
        let largest = 2 * 15.0 / 16 * 4 * 1e-9
        XCTAssertEqual(half.communicationSeconds, full.communicationSeconds / 2 + 2 * largest, accuracy: 1e-15)
        // The conversions: every element there and back, never hidden.
        let converting = Projection.predict(profile, ranks: 16, network: wire, reduction: reduction,
                                            variant: .init(overlap: true, halfPrecision: true))
        XCTAssertEqual(converting.conversionSeconds, Double(3 << 20) * 0.5e-9, accuracy: 1e-15)
    }

    // MARK: The fit

    func testFitRecoversLatencyAndBandwidthFromExactTimings() throws {
        let truth = Network(name: "truth", latency: 3.5e-6, secondsPerByte: 0.25e-9), gamma = 0.05e-9
        for ranks in [2, 3, 8, 64] {
            // The sizes cross libnbc's switch from the ring to Rabenseifner's: two algorithms in one fit.
            let timings = (0...22).map { k -> AllReduceTiming in
                let bytes = 4 << k
                let algorithm = OpenMPIDecision.allReduce(ranks: ranks, elements: bytes / 4, elementBytes: 4, inPlace: true)
                return AllReduceTiming(bytes: bytes, seconds: algorithm.terms(bytes: Double(bytes), ranks: ranks)
                    .seconds(truth, reductionSecondsPerByte: gamma))
            }
            let fit = try AllReduceFit.fit(timings, ranks: ranks, reductionSecondsPerByte: gamma, name: "fit")
            XCTAssertGreaterThan(Set(fit.algorithms).count, 1, "\(ranks) ranks")
            XCTAssertEqual(fit.network.latency, truth.latency, accuracy: 1e-12 * truth.latency, "\(ranks) ranks")
            XCTAssertEqual(fit.network.secondsPerByte, truth.secondsPerByte, accuracy: 1e-12 * truth.secondsPerByte, "\(ranks) ranks")
            XCTAssertLessThan(fit.relativeResiduals.map(abs).max()!, 1e-9, "\(ranks) ranks")
        }
    }

    func testFitNeedsTwoRanksAndTwoSizes() {
        let timings = [AllReduceTiming(bytes: 4, seconds: 1e-6), AllReduceTiming(bytes: 8, seconds: 1e-6)]
        XCTAssertThrowsError(try AllReduceFit.fit(timings, ranks: 1, reductionSecondsPerByte: 0, name: "")) {
            XCTAssertEqual($0 as? ProjectionError, .notEnoughData(ranks: 1, timings: 2))
            XCTAssertEqual("\($0)", "cannot fit α and β to 2 all-reduce timing(s) over 1 rank(s): "
                           + "it takes 2 or more ranks and 2 or more message sizes")
        }
        XCTAssertThrowsError(try AllReduceFit.fit([timings[0], timings[0]], ranks: 2, reductionSecondsPerByte: 0, name: "")) {
            XCTAssertEqual($0 as? ProjectionError, .notEnoughData(ranks: 2, timings: 2))
        }
        XCTAssertThrowsError(try AllReduceFit.fit([timings[0], AllReduceTiming(bytes: 8, seconds: 0)], ranks: 2,
                                                  reductionSecondsPerByte: 0, name: "")) {
            XCTAssertEqual("\($0)", "cannot fit an all-reduce timing of 8 bytes in 0.0 s: both must be positive")
        }
    }

    // MARK: The measurement, on one process

    func testOneProcessMeasuresComputeAndReductionAndNoNetwork() throws {
        var c = GANConfiguration.defaults(for: .mlp)
        c.batchSize = 8
        var model = BenchmarkOptions(configuration: c, instructionSet: try Backends.choose())
        model.steps = 3
        model.warmup = 1
        model.peakSeconds = 0.01
        var options = ScalingOptions(models: [model])
        options.rounds = 1
        let m = try ScalingBenchmark.run(options, communicator: SingleProcessCommunicator())
        XCTAssertEqual([m.ranks, m.hosts], [1, 1])
        XCTAssertGreaterThan(m.cpuShare, 0)
        XCTAssertTrue(m.sweep.isEmpty)
        let scaling = try XCTUnwrap(m.models.first)
        XCTAssertNil(scaling.medianMeasured)
        XCTAssertTrue(scaling.exchangeTimings.isEmpty)
        let trainer = try makeTrainer(.mlp, batch: 8)
        XCTAssertEqual(scaling.profile.exchanges.map(\.network), [.discriminator, .generator])
        XCTAssertEqual(scaling.profile.exchanges.map(\.elements),
                       [trainer.models.discriminator.parameters.count, trainer.models.generator.parameters.count])
        XCTAssertGreaterThan(scaling.profile.computeSeconds, 0)
        // The backward that completes each network's gradients is a part of the step's backward.
        let backward = scaling.compute[0].phaseSeconds[.backward]!
        for e in scaling.profile.exchanges {
            XCTAssertGreaterThan(e.overlappableSeconds, 0, "\(e.network)")
            XCTAssertLessThan(e.overlappableSeconds, backward, "\(e.network)")
        }
        for cost in [m.reduction.secondsPerByte, m.reduction.halfSecondsPerByte, m.reduction.halfConversionSecondsPerElement] {
            XCTAssertGreaterThan(cost, 0)
            XCTAssertLessThan(cost, 1e-6)
        }
    }
}
