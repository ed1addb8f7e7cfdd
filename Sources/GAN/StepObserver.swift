/// The parts of a training step, as `GANTrainer.step` marks them.
public enum StepPhase: String, CaseIterable, Sendable {
    /// A network's forward pass, and the loss on its output.
    case forward
    /// Zeroing a network's gradients and backpropagating into them.
    case backward
    /// One all-reduce of a network's gradient buffer (waiting for the other ranks included).
    case allReduce
    /// One Adam update of a network's parameters.
    case optimizer
}

/// Hears each phase of a training step begin and end, so that `gantry bench` times the step
/// training runs, not a copy of it. Phases do not nest; one phase may come several times in a
/// step (two all-reduces, four forward phases). With no observer set (the default) the step
/// pays one nil check per phase.
public protocol StepObserver: AnyObject {
    func begin(_ phase: StepPhase)
    func end(_ phase: StepPhase)
}
