import ArgumentParser
import Datasets
import FileFormats
import Foundation
import GAN
import Kernels

/// `gantry sample`: images from a checkpoint's generator, as an IDX file or a PNG grid.
struct Sample: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Generate digits from a checkpoint: a uint8 IDX file (.idx) or a PNG grid (.png).",
        discussion: """
              gantry sample --checkpoint runs/a/checkpoints/step-00020000.safetensors --count 10000 --out digits.idx
              gantry sample --checkpoint runs/a/checkpoints/step-00020000.safetensors --count 64 --columns 8 --out grid.png
            """)

    @Option(help: "A checkpoint written by gantry train (OUT/checkpoints/step-N.safetensors).")
    var checkpoint: String

    @Option(help: "Number of images.")
    var count: Int = 100

    @Option(help: "Output file: .idx (count x 28 x 28, values 0-255) or .png (a grid).")
    var out: String

    @Option(help: "Seed of the noise.")
    var seed: UInt64 = 1

    @Option(help: "Columns of a PNG grid (default: a square grid).")
    var columns: Int?

    enum Format { case idx, png }

    var format: Format? {
        if out.hasSuffix(".idx") { return .idx }
        if out.hasSuffix(".png") { return .png }
        return nil
    }

    func validate() throws {
        if count <= 0 { throw ValidationError("--count must be a positive integer, got \(count)") }
        if format == nil { throw ValidationError("--out \(out): the name must end in .idx (IDX images) or .png (a grid)") }
        if let columns, columns <= 0 { throw ValidationError("--columns must be a positive integer, got \(columns)") }
        if !FileManager.default.fileExists(atPath: checkpoint) {
            throw ValidationError("--checkpoint \(checkpoint): no such file; pass a file from a run's checkpoints/ folder")
        }
    }

    func run() throws {
        do {
            let sampler = try Sampler(checkpoint: checkpoint)
            let c = sampler.configuration
            let images = UnsafeMutableBufferPointer<Float>.allocate(capacity: count * c.pixelCount)
            defer { images.deallocate() }
            sampler.generate(count: count, stream: RandomStream(seed: seed, 0x5A4D_504C), into: images.baseAddress!)
            switch format! {
            case .idx:
                try IDX.writeImages(path: out, count: count, rows: c.imageHeight, columns: c.imageWidth,
                                    signedPixels: UnsafeBufferPointer(images))
            case .png:
                let columns = columns ?? Int(Double(count).squareRoot().rounded(.up))
                try PNG.writeGrid(path: out, images: UnsafeBufferPointer(images), count: count,
                                  height: c.imageHeight, width: c.imageWidth, columns: columns)
            }
            print("gantry: wrote \(count) images to \(out)")
        } catch {
            FileHandle.standardError.write(Data("gantry: \(error)\n".utf8))
            throw ExitCode(exitStatus(for: error))
        }
    }
}
