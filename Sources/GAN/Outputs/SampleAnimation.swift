import FileFormats
import Foundation

/// `OUT/progress.gif` and `OUT/samples.png` (rank 0): the fixed-noise sample grids over
/// training as an animation, one frame per grid, and as a contact sheet, one row per grid (the
/// grid's first row of images, up to `sheetImages`, its step written on the left). Both are
/// rewritten, atomically, each time a grid is written, so either can be opened during a run.
///
/// Both are a function of the grid files in `OUT/samples` alone, in step order. A resumed run
/// first reads back the grids up to the step it resumes from (a later one, left by a run that
/// went on past its last checkpoint, is rewritten when the run gets there), so its files are
/// those of a run that was never interrupted.
///
/// At most `frameLimit` grids are shown (100 by default; `SampleSelection`): past that, every
/// k-th grid from the first, k the smallest power of two that leaves room, and the newest. A
/// 20,000-step run with a grid every 1,000 steps shows all 20; 100,000 steps with a grid every
/// 10 show 80 of the 10,000 (every 128th and the last). Memory holds only the grids shown: each
/// frame LZW-encoded (65 to 90 KB for the MLP's 302x302 grids), each sheet row as pixels (9 KB).
public final class SampleAnimation: TrainingOutput {
    /// The most grids shown by default.
    public static let defaultFrameLimit = 100
    /// Hundredths of a second each of `frames` frames is shown: together about 8 s, each
    /// between 0.1 and 0.5 s (21 grids: 0.38 s each; 80 or more: 0.1 s).
    public static func frameDelay(frames: Int) -> Int { min(50, max(10, 800 / max(1, frames))) }
    /// The newest grid stays 2 s before the animation starts again.
    public static let lastFrameDelay = 200
    /// Images of each grid on the sheet: the grid's first row, up to this many.
    public static let sheetImages = 10

    public let gifPath: String
    public let sheetPath: String
    let sampleDirectory: String
    let imageHeight: Int
    let imageWidth: Int
    let padding: Int
    let frameLimit: Int

    /// The grids seen, shown or not (the index of the next).
    private var count = 0
    /// The frames of the grids shown (their index as the frame's id).
    private var animation: GIFAnimation?
    /// The grids shown, in order: index, step, sheet row.
    private var shown: [(index: Int, step: Int, row: GrayscaleImage)] = []

    /// Files go to `outputDirectory`; grids are read from `sampleDirectory`; they tile images of
    /// `imageHeight x imageWidth` with `padding` pixels between (as `TrainingRun.writeSamples` writes them).
    public init(outputDirectory: String, sampleDirectory: String, imageHeight: Int, imageWidth: Int,
                padding: Int = ImageGrid.defaultPadding, frameLimit: Int = SampleAnimation.defaultFrameLimit) {
        precondition(frameLimit >= 2, "the first grid and the newest at least")
        gifPath = outputDirectory + "/progress.gif"
        sheetPath = outputDirectory + "/samples.png"
        self.sampleDirectory = sampleDirectory
        self.imageHeight = imageHeight
        self.imageWidth = imageWidth
        self.padding = padding
        self.frameLimit = frameLimit
    }

    public func record(_ event: TrainingEvent) throws {
        switch event {
        case let .started(run) where run.firstStep > 0:
            try readBack(through: run.firstStep)
        case let .saved(file) where file.kind == .samples:
            try add(try PNG.readGrayscale(path: file.path), step: file.step)
            try write()
        default:
            break
        }
    }

    /// Adds the grids of `sampleDirectory` up to `step`, in step order, reading only those shown.
    func readBack(through step: Int) throws {
        let grids = Self.gridFiles(in: sampleDirectory).filter { $0.step <= step }
        for (index, grid) in grids.enumerated() {
            if SampleSelection.shows(index, of: grids.count, limit: frameLimit) {
                count = index
                try add(try PNG.readGrayscale(path: grid.path), step: grid.step)
            }
        }
        count = grids.count
    }

    /// Adds grid number `count` as the newest, then drops the grids no longer shown.
    private func add(_ grid: GrayscaleImage, step: Int) throws {
        if animation == nil { animation = try GIFAnimation(width: grid.width, height: grid.height, path: gifPath) }
        try animation!.append(grid, id: count)
        // The grid's top band: its padding and first row of images, up to `sheetImages` of them.
        let band = grid.cropped(x: 0, y: 0, width: min(grid.width, padding + Self.sheetImages * (imageWidth + padding)),
                                height: min(grid.height, padding + imageHeight))
        shown.append((count, step, band))
        count += 1
        let total = count, limit = frameLimit
        animation!.removeFrames { !SampleSelection.shows($0, of: total, limit: limit) }
        shown.removeAll { !SampleSelection.shows($0.index, of: total, limit: limit) }
    }

    private func write() throws {
        guard let animation else { return }
        try animation.write(delay: Self.frameDelay(frames: animation.frames.count), lastDelay: Self.lastFrameDelay)
        try PNG.writeGrayscale(path: sheetPath, image: ContactSheet.render(rows: shown.map { ($0.step, $0.row) }, padding: padding))
    }

    /// The grid files of `directory` (`step-N.png`), by step; none if it does not exist.
    static func gridFiles(in directory: String) -> [(step: Int, path: String)] {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: directory) else { return [] }
        return names.compactMap { name -> (Int, String)? in
            guard name.hasPrefix("step-"), name.hasSuffix(".png") else { return nil }
            let digits = name.dropFirst(5).dropLast(4)
            guard !digits.isEmpty, digits.allSatisfy({ $0.isASCII && $0.isNumber }), let step = Int(digits) else { return nil }
            return (step, directory + "/" + name)
        }.sorted { $0.0 < $1.0 }
    }
}

/// Which of a run's grids a `SampleAnimation` shows when it may show at most `limit`: every
/// `stride`-th from the first, `stride` the smallest power of two that leaves room, and the
/// newest. As grids are added the stride only doubles, so a grid once passed over is never
/// shown again: an animation can drop frames as it goes, and keeps at most `limit` of them.
public enum SampleSelection {
    /// The spacing of the grids shown among `count`: ceil((count - 1) / stride) of them before
    /// the newest.
    public static func stride(count: Int, limit: Int) -> Int {
        precondition(limit >= 2)
        var stride = 1
        while (count - 1 + stride - 1) / stride + 1 > limit { stride *= 2 }
        return stride
    }

    /// Whether grid `index` (0 the first) of `count` is shown.
    public static func shows(_ index: Int, of count: Int, limit: Int) -> Bool {
        index == count - 1 || index % stride(count: count, limit: limit) == 0
    }
}
