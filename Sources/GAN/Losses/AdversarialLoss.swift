import Kernels
import NN

/// Which images D's outputs are of.
public enum DiscriminatorInput: Sendable {
    case real, fake
}

/// What the two networks minimize, as functions of D's outputs on one batch: logits for binary
/// cross-entropy, critic values for the Wasserstein losses. The trainer runs the networks and
/// asks the loss only for these terms, so a step reads the same for every loss.
///
/// Each term is a mean over the `count` examples of the batch: the call returns it and writes
/// its gradient with respect to each output (already divided by `count`) into `gradient`.
public protocol AdversarialLoss: AnyObject {
    /// D's loss term on its outputs for real or generated images.
    func discriminator(_ outputs: UnsafePointer<Float>, on input: DiscriminatorInput, count: Int,
                       gradient: UnsafeMutablePointer<Float>) -> Double
    /// G's loss on D's outputs for generated images.
    func generator(_ outputs: UnsafePointer<Float>, count: Int, gradient: UnsafeMutablePointer<Float>) -> Double
    /// The figure reported for D's outputs: the mean of sigmoid(logit), D(x), for binary
    /// cross-entropy; the mean critic value for the Wasserstein losses.
    func score(_ outputs: UnsafePointer<Float>, count: Int) -> Double
    /// Runs after every update of D: WGAN clips the critic's weights there.
    func discriminatorUpdated(_ discriminator: Sequential)
}

extension AdversarialLoss {
    public func discriminatorUpdated(_ discriminator: Sequential) {}
}

/// The loss `configuration` names, for batches of up to `maxBatch` examples.
func makeLoss(_ configuration: GANConfiguration, maxBatch: Int, backend: Backend) -> AdversarialLoss {
    switch configuration.loss {
    case .bce:
        return BinaryCrossEntropyLoss(maxBatch: maxBatch, labelSmoothing: configuration.labelSmoothing, backend: backend)
    case .wgan, .wganGP:
        return WassersteinLoss(maxBatch: maxBatch, clipValue: configuration.loss == .wgan ? configuration.clipValue : nil,
                               backend: backend)
    }
}
