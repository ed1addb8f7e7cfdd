import Kernels

/// An exponential moving average of parameters (Polyak averaging in its exponential form):
/// after the t-th update of the parameters θ,
///
///     θ̄ ← θ̄ + (1 − β_t)(θ − θ̄),   β_t = min(β, (1 + t) / (10 + t))
///
/// as TensorFlow's `ExponentialMovingAverage` with `num_updates`: early on β_t is small, so the
/// average forgets the initialization within tens of updates, then settles at β. GAN generators
/// sample better from the average than from their last iterate (Yazıcı et al. 2019, "The
/// unusual effectiveness of averaging in GAN training"), which oscillates around it.
///
/// β_t depends on t alone, so every rank (holding the same θ) holds the same average.
public struct MovingAverage: Sendable, Equatable {
    /// β: the weight of the old average once warmed up, in [0, 1).
    public var decay: Float

    public init(decay: Float) {
        self.decay = decay
    }

    /// β_t, the old average's weight at the t-th update (t ≥ 1).
    public func decay(atUpdate t: Int) -> Float {
        min(decay, Float(1 + t) / Float(10 + t))
    }

    /// Moves `average` toward `values` (both `count`) for the t-th update.
    public func update(_ average: UnsafeMutablePointer<Float>, toward values: UnsafePointer<Float>, count: Int,
                       update t: Int, backend: Backend) {
        backend.parallelFor(count, granularity: 4096, cost: 3,
                            MovingAverageUpdate(average: average, values: values, rate: 1 - decay(atUpdate: t)))
    }
}

/// One range of the average's update, eight values at a time.
struct MovingAverageUpdate: RangeWork {
    let average: UnsafeMutablePointer<Float>
    let values: UnsafePointer<Float>
    let rate: Float

    func callAsFunction(_ range: Range<Int>) {
        var i = range.lowerBound
        let end = range.upperBound
        while i + 8 <= end {
            let a = UnsafeRawPointer(average + i).loadUnaligned(as: SIMD8<Float>.self)
            let v = UnsafeRawPointer(values + i).loadUnaligned(as: SIMD8<Float>.self)
            UnsafeMutableRawPointer(average + i).storeBytes(of: a + rate * (v - a), as: SIMD8<Float>.self)
            i += 8
        }
        while i < end {
            average[i] += rate * (values[i] - average[i])
            i += 1
        }
    }
}
