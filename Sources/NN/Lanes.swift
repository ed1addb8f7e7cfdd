/// Eight-lane loads and stores for the loops that layers write themselves (batch norm,
/// dropout). Unaligned: a row starts at `row · channels`, not on a 32-byte boundary.
typealias Float8 = SIMD8<Float>
typealias Double8 = SIMD8<Double>

@inline(__always) func load8(_ p: UnsafePointer<Float>) -> Float8 {
    UnsafeRawPointer(p).loadUnaligned(as: Float8.self)
}
@inline(__always) func load8(_ p: UnsafeMutablePointer<Float>) -> Float8 { load8(UnsafePointer(p)) }
@inline(__always) func store8(_ v: Float8, _ p: UnsafeMutablePointer<Float>) {
    UnsafeMutableRawPointer(p).storeBytes(of: v, as: Float8.self)
}
@inline(__always) func load8(_ p: UnsafeMutablePointer<Double>) -> Double8 {
    UnsafeRawPointer(p).loadUnaligned(as: Double8.self)
}
@inline(__always) func store8(_ v: Double8, _ p: UnsafeMutablePointer<Double>) {
    UnsafeMutableRawPointer(p).storeBytes(of: v, as: Double8.self)
}
