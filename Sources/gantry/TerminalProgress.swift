import ArgumentParser
import Foundation
import GAN

/// How rank 0 shows each log interval's progress line (`--progress`).
enum ProgressStyle: String, CaseIterable, ExpressibleByArgument {
    /// Redrawn in place (carriage return, erase line): for a person at a terminal.
    case live
    /// A line per interval: for files, CI logs and pipes.
    case plain
    /// No interval lines; the run's other lines (start, checkpoints, end, errors) remain.
    case none

    /// Live on a terminal, else plain. Under mpirun a rank's stdout is a pseudo-terminal even
    /// when mpirun's own output goes to a file, so launch/train passes --progress from its stdout.
    static var automatic: ProgressStyle { isatty(STDOUT_FILENO) != 0 ? .live : .plain }
}

/// Rank 0's progress on standard output: one line per event, the progress line drawn as
/// `ProgressStyle` says. Unbuffered, so that lines appear at once under mpirun's forwarding.
final class TerminalProgress: TrainingOutput {
    private let style: ProgressStyle
    /// A live progress line is on screen without its newline.
    private var lineOpen = false

    init(style: ProgressStyle) { self.style = style }

    func record(_ event: TrainingEvent) throws {
        if case .interval = event, style == .none { return }
        guard let text = EventText.line(event) else { return }
        if case let .interval(summary) = event, style == .live, summary.profile == nil {
            emit("\r\u{1B}[K" + text)
            lineOpen = true
        } else {
            if lineOpen { emit("\n") }
            emit(text + "\n")
            lineOpen = false
        }
    }

    /// Ends a live progress line, so that what is printed next (an error) starts a line of its own.
    func closeLine() {
        if lineOpen { emit("\n") }
        lineOpen = false
    }

    private func emit(_ text: String) {
        FileHandle.standardOutput.write(Data(text.utf8))
    }
}
