// swift-tools-version:6.0
// The manifest reads as the architecture: each target is one concern, and
// dependencies only point down the list (CLI -> GAN, Evaluation -> NN/Optim/Datasets/Distributed/TensorBoard -> Kernels).
import PackageDescription

/// Hot loops are written with SIMD8<Float> and `addingProduct`; without AVX2/FMA at compile time
/// they fall back to SSE and libm `fmaf` calls. `-Xcc -march=x86-64-v3` sets Swift's codegen too.
let simd: [SwiftSetting] = [.unsafeFlags(["-Xcc", "-march=x86-64-v3"])]
/// The compute targets are optimized in debug builds too: -Onone SIMD code runs ~50x slower,
/// which makes the multi-rank DCGAN checks of `swift test` take minutes, and nobody steps
/// through a GEMM micro-kernel in a debugger.
let optimized: [SwiftSetting] = [.unsafeFlags(["-O"], .when(configuration: .debug))]
let compute: [SwiftSetting] = simd + optimized
/// KernelsAVX512 alone is built for x86-64-v4 (SIMD16<Float>.addingProduct becomes
/// `vfmadd231ps zmm`); only Backends creates its backend, after checking the CPU.
let computeAVX512: [SwiftSetting] = [.unsafeFlags(["-Xcc", "-march=x86-64-v4"])] + optimized

let package = Package(
    name: "Gantry",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "gantry", targets: ["gantry"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-protobuf", from: "1.39.0"),
        // `swift package generate-documentation` (DocC): the catalog Sources/GAN/GAN.docc and
        // the other modules' pages. Builds nothing into the products.
        .package(url: "https://github.com/swiftlang/swift-docc-plugin", from: "1.5.0"),
    ],
    targets: [
        // C libraries and shims.
        .systemLibrary(name: "CMPI", pkgConfig: "ompi-c", providers: [.apt(["libopenmpi-dev"])]),
        .systemLibrary(name: "CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
        // LAPACK's symmetric eigensolver, for the Fréchet distance (reference LAPACK or OpenBLAS's).
        .systemLibrary(name: "CLapack", pkgConfig: "lapack", providers: [.apt(["liblapack-dev"])]),
        // giflib: the LZW encoder (and the tests' decoder) of OUT/progress.gif, and its 8x8 font.
        .systemLibrary(name: "CGif", pkgConfig: "libgif", providers: [.apt(["libgif-dev"])]),
        // Built without -march so that the CPU check itself runs on any x86-64.
        .target(name: "CCPUFeatures"),
        // The SIGINT/SIGTERM handler: async-signal-safe, so in C.
        .target(name: "CSignals"),

        // Compute.
        // Kernels: the Backend protocol, the generic SIMD kernels and GEMM engine, the reference;
        // one module per instruction set specializes them; Backends picks one at run time.
        .target(name: "CVectorMath"),
        .target(name: "Kernels", dependencies: ["CVectorMath"], swiftSettings: compute),
        .target(name: "KernelsAVX2", dependencies: ["Kernels", "CVectorMath"], swiftSettings: compute),
        .target(name: "KernelsAVX512", dependencies: ["Kernels", "CVectorMath"], swiftSettings: computeAVX512),
        .target(name: "Backends", dependencies: ["Kernels", "KernelsAVX2", "KernelsAVX512", "CCPUFeatures"],
                swiftSettings: compute),
        .target(name: "NN", dependencies: ["Kernels"], swiftSettings: compute),
        .target(name: "Optim", dependencies: ["Kernels"], swiftSettings: compute),

        // Files and data.
        .target(name: "FileFormats", dependencies: ["CZlib", "CGif"], swiftSettings: simd),
        .target(name: "Datasets", dependencies: ["FileFormats", "Kernels"], swiftSettings: simd),

        // Processes.
        .target(name: "Distributed", dependencies: ["CMPI", "CSignals"], swiftSettings: simd),

        // TensorBoard's event files: TFRecord framing and the Event / Summary messages, encoded by
        // swift-protobuf from Protos/events.proto (the generated code is committed:
        // launch/regenerate-protos remakes it).
        .target(name: "TensorBoard", dependencies: [.product(name: "SwiftProtobuf", package: "swift-protobuf")],
                exclude: ["Protos"]),

        // The product: models, losses, the training step, checkpoints, outputs.
        .target(name: "GAN", dependencies: ["NN", "Optim", "Datasets", "Distributed", "FileFormats", "Kernels", "Backends",
                                            "TensorBoard"],
                swiftSettings: simd),

        // Measuring quality: a digit classifier of Gantry's own layers, and the Fréchet distance,
        // score and class coverage of images in it. Knows nothing of GANs; only it imports CLapack.
        .target(name: "Evaluation", dependencies: ["NN", "Optim", "Kernels", "Datasets", "FileFormats", "CLapack"],
                swiftSettings: compute),

        // Command line.
        .executableTarget(name: "gantry", dependencies: [
            "GAN", "Evaluation", "Datasets", "FileFormats", "Kernels", "Backends", "Distributed", "CCPUFeatures",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),  // no -march: its first act is to check the CPU, which must not need AVX2 itself
        // An example of the library's public API: a small GAN written on NN, Optim, Datasets and
        // Distributed, trained data-parallel under mpirun (the DocC article walks through it).
        .executableTarget(name: "tiny-gan", dependencies: [
            "GAN", "NN", "Optim", "Kernels", "Backends", "Datasets", "Distributed", "FileFormats",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ], path: "Examples/TinyGAN", swiftSettings: simd),
        // The file readers under libFuzzer (launch/fuzz); built plainly, it replays inputs.
        .executableTarget(name: "gantry-fuzz", dependencies: ["Datasets", "FileFormats"]),
        // Multi-rank checks, run under `mpirun -np 2` by the DistributedTests and by .ci/run.
        .executableTarget(name: "gantry-mpi-tests", dependencies: ["GAN", "Distributed", "Kernels", "Backends", "NN"],
                          path: "Tests/MPI", swiftSettings: simd),

        .testTarget(name: "KernelsTests", dependencies: ["Kernels", "Backends"], swiftSettings: simd),
        .testTarget(name: "NNTests", dependencies: ["NN", "Backends"], swiftSettings: simd),
        .testTarget(name: "OptimTests", dependencies: ["Optim", "Backends"], swiftSettings: simd),
        // File helpers (temporary folders, gzip fixtures, exact-error assertions) for the tests below.
        .target(name: "TestSupport", dependencies: ["CZlib", "CGif"], path: "Tests/Support"),
        .testTarget(name: "FileFormatsTests", dependencies: ["FileFormats", "TestSupport", "CZlib"], swiftSettings: simd),
        .testTarget(name: "DatasetsTests", dependencies: ["Datasets", "TestSupport"], swiftSettings: simd),
        .testTarget(name: "DistributedTests", dependencies: ["Distributed"], swiftSettings: simd),
        .testTarget(name: "TensorBoardTests", dependencies: ["TensorBoard", "TestSupport"]),
        .testTarget(name: "EvaluationTests", dependencies: ["Evaluation", "Datasets", "Backends", "Kernels", "TestSupport"],
                    swiftSettings: simd),
        .testTarget(name: "GANTests", dependencies: ["GAN", "Backends", "Kernels", "FileFormats", "TestSupport"], exclude: ["KerasReference"], swiftSettings: simd),
    ]
)
