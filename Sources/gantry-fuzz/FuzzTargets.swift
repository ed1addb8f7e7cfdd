import Datasets
import FileFormats
import Foundation

/// The readers of untrusted files, each as a function of one input's bytes. Every thrown error
/// whose message is one line is a correct answer; a trap, a crash, a hang, an allocation the
/// input's size does not justify, or a message the file's bytes break over lines is a bug.
enum FuzzTarget: String, CaseIterable {
    /// `CompressedFileReader`: raw or gzip, read to the end.
    case gzip
    /// `IDX.read` of an images file (raw or gzip).
    case idxImages = "idx-images"
    /// `IDX.read` of a labels file.
    case idxLabels = "idx-labels"
    /// `ImageShard`: the input as the images file of rank 1 of 3, beside a valid labels file
    /// of the count its header declares.
    case shard
    /// `SafetensorsFile(bytes:)`, then every tensor read.
    case safetensors
    /// `PNG.decodeGrayscale`: a sample grid as a resumed run reads it back.
    case png

    func run(_ bytes: UnsafeRawBufferPointer, scratch: ScratchFile) {
        switch self {
        case .gzip:
            guard let path = scratch.write(bytes) else { return }
            refused { _ = try CompressedFileReader(path: path).readAll() }
        case .idxImages:
            guard let path = scratch.write(bytes) else { return }
            refused { _ = try IDX.read(path: path, kind: .images) }
        case .idxLabels:
            guard let path = scratch.write(bytes) else { return }
            refused { _ = try IDX.read(path: path, kind: .labels) }
        case .shard:
            guard let images = scratch.write(bytes) else { return }
            // Labels for the count the images header declares (when it is small), else for 3.
            let declared = bytes.count >= 8 ? bytes[4 ..< 8].reduce(0) { $0 << 8 | Int($1) } : 3
            let count = declared <= 1 << 16 ? declared : 3
            guard let labels = scratch.write(labelsFile(count: count), suffix: "labels") else { return }
            refused { _ = try ImageShard(imagesPath: images, labelsPath: labels, rank: 1, ranks: 3) }
        case .safetensors:
            refused {
                let file = try SafetensorsFile(bytes: Array(bytes), path: "input.safetensors")
                for tensor in file.tensors where tensor.count <= 1 << 20 {
                    _ = try file.tensor(named: tensor.name)
                }
            }
        case .png:
            refused { _ = try PNG.decodeGrayscale(Array(bytes), path: "input.png") }
        }
    }

    /// Runs `read`; an error it throws must describe itself on one line, whatever the input held.
    private func refused(_ read: () throws -> Void) {
        do { try read() } catch {
            let message = "\(error)"
            if message.contains(where: \.isNewline) { fatalError("an error message spans lines: \(message.debugDescription)") }
        }
    }

    private func labelsFile(count: Int) -> [UInt8] {
        [0, 0, 8, 1] + withUnsafeBytes(of: UInt32(count).bigEndian, Array.init) + [UInt8](repeating: 7, count: count)
    }
}

/// A file in /dev/shm (memory) rewritten for each input: the file readers take paths.
final class ScratchFile {
    let base: String

    init() {
        let folder = FileManager.default.fileExists(atPath: "/dev/shm") ? "/dev/shm" : NSTemporaryDirectory()
        base = folder + "/gantry-fuzz-\(getpid())"
    }

    deinit {
        for suffix in ["input", "input.gz", "labels"] { unlink(base + "." + suffix) }
    }

    /// Writes `bytes` to the scratch file (named .gz when they start as gzip does, as the
    /// readers only decompress such files); nil if the file system refused.
    func write(_ bytes: UnsafeRawBufferPointer, suffix: String = "input") -> String? {
        let gzip = bytes.count >= 2 && bytes[0] == 0x1F && bytes[1] == 0x8B
        let path = base + "." + suffix + (gzip ? ".gz" : "")
        let descriptor = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        guard descriptor >= 0 else { return nil }
        defer { close(descriptor) }
        var done = 0
        while done < bytes.count {
            let n = Foundation.write(descriptor, bytes.baseAddress! + done, bytes.count - done)
            if n <= 0 { return nil }
            done += n
        }
        return path
    }

    func write(_ bytes: [UInt8], suffix: String) -> String? {
        bytes.withUnsafeBytes { write($0, suffix: suffix) }
    }
}
