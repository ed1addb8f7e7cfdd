import Backends
import Distributed
import Kernels
import GAN

/// The gradient exchange in fp16, on gradients set by hand: halves really travel, and a
/// non-finite gradient on one rank makes its bucket fall back to fp32, reaching every rank.
func registerExchangeChecks(into harness: inout Harness) {
    harness.add("fp16 exchange: the mean to fp16's precision, not fp32's exact one") { check in
        let (exchange, gradients, models) = try makeExchange(check.comm)
        defer { withExtendedLifetime(models) {} }
        fill(gradients, rank: check.comm.rank)
        try exchange.finish(.discriminator)
        let expected = meanOverRanks(count: gradients.count, ranks: check.comm.size)
        let largest = expected.map(abs).max()!
        var inexact = 0
        for (i, value) in gradients.enumerated() {
            // Each rank's value keeps 11 significant bits of the bucket's largest |gradient|.
            check.expect(abs(value - expected[i]) <= largest / 1024, "element \(i): \(value), expected \(expected[i])")
            if value != expected[i] { inexact += 1 }
        }
        check.expect(inexact > gradients.count / 10, "only \(inexact) of \(gradients.count) values differ from fp32's mean")
    }

    harness.add("fp16 exchange: a NaN on the last rank reaches every rank, the rest exact as in fp32") { check in
        let comm = check.comm
        let (exchange, gradients, models) = try makeExchange(comm)
        defer { withExtendedLifetime(models) {} }
        fill(gradients, rank: comm.rank)
        if comm.rank == comm.size - 1 { gradients[5] = .nan }
        try exchange.finish(.discriminator)
        let expected = meanOverRanks(count: gradients.count, ranks: comm.size)
        check.expect(gradients[5].isNaN, "element 5 is \(gradients[5]), not NaN")
        // Exact on 2 ranks; beyond, MPI's order of summation may differ from ours by an ulp a rank.
        for (i, value) in gradients.enumerated() where i != 5 && abs(value - expected[i]) > expected[i].ulp * Float(comm.size - 2) {
            check.fail("element \(i): \(value), expected fp32's \(expected[i])")
            break
        }
    }
}

/// An fp16 exchange of the MLP GAN's gradients, one bucket per network; D's gradients; the
/// models, which own them (keep them alive while using the gradients).
private func makeExchange(_ comm: Communicator) throws -> (GradientExchange, UnsafeMutableBufferPointer<Float>, GANModels) {
    let backend = try Backends.make(try Backends.choose())
    let models = GANModels(configuration: .defaults(for: .mlp), maxBatch: 4, backend: backend)
    var options = ExchangeOptions()
    options.overlap = false
    options.halfPrecision = true
    let exchange = GradientExchange(communicator: comm, options: options, models: models, backend: backend)
    return (exchange, models.discriminator.parameters.gradients, models)
}

/// Rank r's gradient i: (r + 1) · g(i), with g(i) of 24 significant bits, which fp16 cannot hold.
private func fill(_ gradients: UnsafeMutableBufferPointer<Float>, rank: Int) {
    for i in gradients.indices { gradients[i] = Float(rank + 1) * g(i) }
}

private func g(_ i: Int) -> Float { Float(i % 1021 - 510) * 1.2345679e-4 }

/// What an fp32 mean all-reduce gives: the sum over ranks in Float, divided by the ranks (the
/// same in any order of summation for 2 ranks, as CI runs these checks).
private func meanOverRanks(count: Int, ranks: Int) -> [Float] {
    (0..<count).map { i in (0..<ranks).map { Float($0 + 1) * g(i) }.reduce(0, +) / Float(ranks) }
}
