import NN

/// The parts of a training step, as `GANTrainer` marks them, and the run loop's checkpoint writes.
public enum StepPhase: String, CaseIterable, Sendable {
    /// Copying this rank's batch out of its shard.
    case data
    /// A network's forward pass, and the loss on its output.
    case forward
    /// Zeroing a network's gradients and backpropagating into them (with overlap, starting
    /// and progressing the gradients' all-reduces between layers).
    case backward
    /// Waiting for the slowest rank to finish its gradients (a timed barrier, when profiling).
    case wait
    /// The gradients' all-reduce, as far as it is not hidden behind backward.
    case allReduce
    /// One Adam update of a network's parameters.
    case optimizer
    /// Rank 0 writing a checkpoint (outside the step).
    case checkpoint
    /// Rank 0 generating and writing a sample grid (outside the step).
    case samples

    /// Whether the phase is part of a training step (not the run loop's files).
    public var inStep: Bool { self != .checkpoint && self != .samples }
}

/// One all-reduce of a bucket of gradients, as it starts or completes.
public struct Transfer: Sendable {
    public var network: NetworkRole
    /// The bucket's index in its network, 0 for the one backward finishes first.
    public var bucket: Int
    /// Bytes this rank contributes (2 per gradient in fp16, 4 otherwise).
    public var bytes: Int
    /// false when it starts, true when it completes.
    public var completed: Bool
}

/// Hears a training step from the inside, so that `gantry bench`, `--profile` and
/// `--timeline` observe the step training runs, not a copy of it:
/// - each phase's begin and end (phases do not nest; one phase comes several times a step);
/// - each layer's passes (`LayerObserver`, per network);
/// - each bucket's all-reduce starting and completing (inside backward with overlap).
/// With no observer set (the default) the step pays one nil check per phase and layer.
public protocol StepObserver: AnyObject {
    func begin(_ phase: StepPhase)
    func end(_ phase: StepPhase)
    /// The observer of `network`'s layers, or nil for none (the default).
    func layerObserver(for network: NetworkRole) -> LayerObserver?
    func transfer(_ transfer: Transfer)
}

extension StepObserver {
    public func layerObserver(for network: NetworkRole) -> LayerObserver? { nil }
    public func transfer(_ transfer: Transfer) {}
}

/// Several observers as one (a profile and a timeline at once).
final class StepObservers: StepObserver {
    let observers: [StepObserver]
    private let layers: [NetworkRole: LayerObservers]

    /// nil for no observers, the observer itself for one.
    static func combine(_ observers: [StepObserver]) -> StepObserver? {
        observers.count <= 1 ? observers.first : StepObservers(observers)
    }

    private init(_ observers: [StepObserver]) {
        self.observers = observers
        var layers: [NetworkRole: LayerObservers] = [:]
        for role in NetworkRole.allCases {
            let some = observers.compactMap { $0.layerObserver(for: role) }
            if !some.isEmpty { layers[role] = LayerObservers(some) }
        }
        self.layers = layers
    }

    func begin(_ phase: StepPhase) { for o in observers { o.begin(phase) } }
    func end(_ phase: StepPhase) { for o in observers { o.end(phase) } }
    func layerObserver(for network: NetworkRole) -> LayerObserver? { layers[network] }
    func transfer(_ transfer: Transfer) { for o in observers { o.transfer(transfer) } }
}

private final class LayerObservers: LayerObserver {
    let observers: [LayerObserver]
    init(_ observers: [LayerObserver]) { self.observers = observers }
    func begin(layer: Int, _ pass: LayerPass) { for o in observers { o.begin(layer: layer, pass) } }
    func end(layer: Int, _ pass: LayerPass) { for o in observers { o.end(layer: layer, pass) } }
}
