import Kernels

/// Sums values over the data-parallel replicas of one network, for synchronized batch
/// normalization. NN knows nothing of MPI; the layer above (GAN) adapts its `Communicator`.
///
/// Every replica calls it in the same order with buffers of the same length, as with any
/// collective. It does not throw because forward and backward do not: a failed collective
/// would leave the other replicas waiting in it, so an implementation ends the whole job
/// (`Communicator.abort`) instead of returning.
public protocol ReplicaReducer: AnyObject {
    /// Replaces every value with its sum over all replicas, in place.
    func sumOverReplicas(_ values: UnsafeMutableBufferPointer<Double>)
}

/// Batch normalization over the channels of an NHWC activation, with the semantics of Keras 3's
/// `BatchNormalization()` (axis -1, momentum 0.99, epsilon 1e-3, gamma 1, beta 0, moving mean 0,
/// moving variance 1).
///
/// Shapes: x and y are `[batch, height, width, channels]`, read as a `rows x channels` matrix with
/// `rows = batch · height · width`; a dense activation `[batch, features]` is height = width = 1.
/// gamma and beta (parameters) and moving_mean and moving_variance (state) are `[channels]`.
///
/// Training: `y = gamma · (x - mean) / sqrt(variance + epsilon) + beta`, with the mean and the
/// *biased* variance (divided by rows, not rows - 1) of each channel over the rows; then
/// `moving = moving · momentum + batch statistic · (1 - momentum)` for the mean and the variance.
/// Keras 3 takes both from `ops.moments`, so its moving variance is the biased one too (tf.keras
/// 2's fused kernel applied Bessel's correction there; Keras 3 does not, nor does this).
/// Inference: the moving statistics in place of the batch's, which are left unchanged.
///
/// Synchronized: with a `reducer`, the statistics are those of the rows of all replicas together,
/// so N replicas with b examples each compute what one replica with N·b examples would, and
/// the moving statistics stay identical on every replica. Forward sums `[Σx, Σx², rows]` over
/// replicas in one call of `2·channels + 1` values; backward sums `[Σdy, Σdy·x̂]` in one call
/// of `2·channels` (only when the input gradient is asked for, which all replicas agree on).
/// gamma's and beta's gradients stay local sums, for the gradient all-reduce to combine.
///
/// Statistics are sums in Double (Float inputs square exactly there), so the variance as
/// E[x²] - E[x]² loses only ~1e-16 · E[x²] / variance relative, and needs no second pass, which
/// a synchronized layer could not afford (one more collective).
public final class BatchNormalization: Layer {
    public let channels: Int
    public let height: Int, width: Int
    public var inputCount: Int { height * width * channels }
    public var outputCount: Int { inputCount }
    public let momentum: Float
    public let epsilon: Float
    /// Set on every replica to synchronize the statistics; nil normalizes over the local batch.
    public var reducer: ReplicaReducer?

    private var gammaOffset = 0, betaOffset = 0, meanOffset = 0, varianceOffset = 0
    private var gamma: UnsafeMutablePointer<Float>!, gammaGradient: UnsafeMutablePointer<Float>!
    private var beta: UnsafeMutablePointer<Float>!, betaGradient: UnsafeMutablePointer<Float>!
    private var movingMean: UnsafeMutablePointer<Float>!, movingVariance: UnsafeMutablePointer<Float>!

    private var output = LayerBuffer()
    private var memory: NetworkMemory!
    /// Scratch sized by channels alone, so no call allocates. `sums` is laid out for one reducer
    /// call: forward [Σx, Σx², rows], backward [Σdy, Σdy·x̂], in Double. The
    /// Float arrays hold per channel the mean, 1/std, gamma/std and backward's two coefficients.
    private let sums: UnsafeMutableBufferPointer<Double>
    private let mean: UnsafeMutablePointer<Float>, inverseStd: UnsafeMutablePointer<Float>
    private let scale: UnsafeMutablePointer<Float>
    private let meanTerm: UnsafeMutablePointer<Float>, normalizedTerm: UnsafeMutablePointer<Float>

    private var lastInput: UnsafePointer<Float>?
    private var lastBatch = 0, lastTraining = false
    /// Rows behind the last training statistics, over all replicas.
    public private(set) var lastTotalRows = 0

    public init(_ channels: Int, height: Int = 1, width: Int = 1, momentum: Float = 0.99, epsilon: Float = 1e-3) {
        precondition(channels > 0 && height > 0 && width > 0, "batch normalization needs a positive shape")
        self.channels = channels
        self.height = height
        self.width = width
        self.momentum = momentum
        self.epsilon = epsilon
        sums = .allocate(capacity: 2 * channels + 1)
        sums.initialize(repeating: 0)
        mean = .allocate(capacity: 5 * channels)
        mean.initialize(repeating: 0, count: 5 * channels)
        inverseStd = mean + channels
        scale = mean + 2 * channels
        meanTerm = mean + 3 * channels
        normalizedTerm = mean + 4 * channels
    }

    deinit {
        output.free()
        sums.deallocate(); mean.deallocate()
    }

    public func declareParameters(prefix: String, in layout: inout ParameterLayout) {
        gammaOffset = layout.declare(prefix + "gamma", shape: [channels])
        betaOffset = layout.declare(prefix + "beta", shape: [channels])
    }

    public func bind(to store: ParameterStore) {
        gamma = store.values.baseAddress! + gammaOffset
        gammaGradient = store.gradients.baseAddress! + gammaOffset
        beta = store.values.baseAddress! + betaOffset
        betaGradient = store.gradients.baseAddress! + betaOffset
    }

    public func declareState(prefix: String, in layout: inout ParameterLayout) {
        meanOffset = layout.declare(prefix + "moving_mean", shape: [channels])
        varianceOffset = layout.declare(prefix + "moving_variance", shape: [channels])
    }

    public func bindState(to store: ParameterStore) {
        movingMean = store.values.baseAddress! + meanOffset
        movingVariance = store.values.baseAddress! + varianceOffset
    }

    public func initializeParameters(random: RandomStream) {
        gamma.update(repeating: 1, count: channels)
        beta.update(repeating: 0, count: channels)
        movingMean.update(repeating: 0, count: channels)
        movingVariance.update(repeating: 1, count: channels)
    }

    public func allocate(maxBatch: Int, memory: NetworkMemory) {
        output.reserve(maxBatch * inputCount)
        memory.reserveInputGradient(maxBatch * inputCount)
        self.memory = memory
    }

    public func forward(_ input: UnsafePointer<Float>, batch: Int, context: ForwardContext) -> UnsafePointer<Float> {
        lastInput = input
        lastBatch = batch
        lastTraining = context.training
        let rows = batch * height * width, c = channels
        if context.training {
            batchStatistics(input, rows: rows)
        } else {
            for j in 0..<c {
                mean[j] = movingMean[j]
                inverseStd[j] = 1 / (movingVariance[j] + epsilon).squareRoot()
            }
        }
        for j in 0..<c { scale[j] = gamma[j] * inverseStd[j] }

        // y = (x - mean) · scale + beta
        let y = output.base
        for r in 0..<rows {
            let x = input + r * c, out = y + r * c
            var j = 0
            while j + 8 <= c {
                store8((load8(x + j) - load8(mean + j)) * load8(scale + j) + load8(beta + j), out + j)
                j += 8
            }
            while j < c { out[j] = (x[j] - mean[j]) * scale[j] + beta[j]; j += 1 }
        }
        return UnsafePointer(y)
    }

    /// Fills `mean` and `inverseStd` with the statistics of `rows x channels` (over all replicas
    /// when synchronized) and updates the moving statistics.
    private func batchStatistics(_ input: UnsafePointer<Float>, rows: Int) {
        let c = channels
        let s1 = sums.baseAddress!, s2 = s1 + c
        s1.update(repeating: 0, count: 2 * c)
        // Σx and Σx² per channel, rows outer, channels inner.
        for r in 0..<rows {
            let x = input + r * c
            var j = 0
            while j + 8 <= c {
                let v = Double8(load8(x + j))
                store8(load8(s1 + j) + v, s1 + j)
                store8(load8(s2 + j).addingProduct(v, v), s2 + j)
                j += 8
            }
            while j < c {
                let v = Double(x[j])
                s1[j] += v
                s2[j] += v * v
                j += 1
            }
        }
        sums[2 * c] = Double(rows)
        reducer?.sumOverReplicas(sums)
        let n = sums[2 * c]
        lastTotalRows = Int(n)
        for j in 0..<c {
            let batchMean = s1[j] / n
            let batchVariance = max(s2[j] / n - batchMean * batchMean, 0)
            mean[j] = Float(batchMean)
            inverseStd[j] = Float(1 / (batchVariance + Double(epsilon)).squareRoot())
            // Keras: moving * momentum + batch * (1 - momentum), in Float.
            movingMean[j] = movingMean[j] * momentum + Float(batchMean) * (1 - momentum)
            movingVariance[j] = movingVariance[j] * momentum + Float(batchVariance) * (1 - momentum)
        }
    }

    public func backward(_ dy: UnsafePointer<Float>, batch: Int, parameterGradients: Bool,
                         needInputGradient: Bool) -> UnsafePointer<Float>? {
        precondition(batch == lastBatch, "backward's batch \(batch) differs from forward's \(lastBatch)")
        guard parameterGradients || needInputGradient else { return nil }
        let x = lastInput!, rows = batch * height * width, c = channels
        let dx = memory.inputGradient(avoiding: dy)

        if !lastTraining && !parameterGradients {
            // Statistics are constants in inference: dx = dy · gamma / std.
            scaleRows(dy, dx, rows: rows)
            return UnsafePointer(dx)
        }

        // Σdy and Σdy·x̂ per channel, x̂ = (x - mean) / std.
        let sumDy = sums.baseAddress!, sumDyXhat = sumDy + c
        sumDy.update(repeating: 0, count: 2 * c)
        for r in 0..<rows {
            let xr = x + r * c, g = dy + r * c
            var j = 0
            while j + 8 <= c {
                let gv = load8(g + j)
                let xhat = (load8(xr + j) - load8(mean + j)) * load8(inverseStd + j)
                store8(load8(sumDy + j) + Double8(gv), sumDy + j)
                store8(load8(sumDyXhat + j) + Double8(gv * xhat), sumDyXhat + j)
                j += 8
            }
            while j < c {
                let xhat = (xr[j] - mean[j]) * inverseStd[j]
                sumDy[j] += Double(g[j])
                sumDyXhat[j] += Double(g[j] * xhat)
                j += 1
            }
        }
        if parameterGradients {
            // Local sums: the gradient all-reduce combines replicas.
            for j in 0..<c {
                betaGradient[j] += Float(sumDy[j])
                gammaGradient[j] += Float(sumDyXhat[j])
            }
        }
        guard needInputGradient else { return nil }
        guard lastTraining else {
            scaleRows(dy, dx, rows: rows)
            return UnsafePointer(dx)
        }

        // dx = gamma/std · (dy - Σdy/N - x̂ · Σdy·x̂/N), the sums and N over all replicas.
        reducer?.sumOverReplicas(UnsafeMutableBufferPointer(start: sumDy, count: 2 * c))
        let n = Double(lastTotalRows)
        for j in 0..<c {
            meanTerm[j] = Float(Double(scale[j]) * sumDy[j] / n)
            normalizedTerm[j] = Float(Double(scale[j]) * Double(inverseStd[j]) * sumDyXhat[j] / n)
        }
        for r in 0..<rows {
            let xr = x + r * c, g = dy + r * c, out = dx + r * c
            var j = 0
            while j + 8 <= c {
                let centered = load8(xr + j) - load8(mean + j)
                let v = load8(g + j) * load8(scale + j) - load8(meanTerm + j) - centered * load8(normalizedTerm + j)
                store8(v, out + j)
                j += 8
            }
            while j < c {
                out[j] = g[j] * scale[j] - meanTerm[j] - (xr[j] - mean[j]) * normalizedTerm[j]
                j += 1
            }
        }
        return UnsafePointer(dx)
    }

    /// dx = dy · scale per channel.
    private func scaleRows(_ dy: UnsafePointer<Float>, _ dx: UnsafeMutablePointer<Float>, rows: Int) {
        let c = channels
        for r in 0..<rows {
            let g = dy + r * c, out = dx + r * c
            var j = 0
            while j + 8 <= c { store8(load8(g + j) * load8(scale + j), out + j); j += 8 }
            while j < c { out[j] = g[j] * scale[j]; j += 1 }
        }
    }
}
