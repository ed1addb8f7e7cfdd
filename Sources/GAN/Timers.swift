import NN
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Adds up the seconds of each phase of the steps it hears, and with `layersOf`, of each
/// layer's forward and backward passes.
final class PhaseTimer: StepObserver {
    private(set) var seconds: [StepPhase: Double] = [:]
    private var started = 0.0
    /// One per network (generator, discriminator), when asked for.
    let layers: [LayerTimer]

    init(layersOf models: GANModels? = nil) {
        layers = models.map { models in NetworkRole.allCases.map { LayerTimer($0, models[$0]) } } ?? []
    }

    func begin(_ phase: StepPhase) { started = monotonicSeconds() }
    func end(_ phase: StepPhase) { seconds[phase, default: 0] += monotonicSeconds() - started }
    func layerObserver(for network: NetworkRole) -> LayerObserver? { layers.first { $0.role == network } }
    /// Starts a new sum.
    func reset() { seconds = [:] }
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

