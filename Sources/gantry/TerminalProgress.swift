import Foundation
import GAN

/// Rank 0's progress on standard output: one line per event; on a terminal, the progress line
/// is redrawn in place. Unbuffered, so that lines appear at once under mpirun's forwarding.
final class TerminalProgress: TrainingOutput {
    private let live: Bool
    /// A live progress line is on screen without its newline.
    private var lineOpen = false

    init(live: Bool) { self.live = live }

    func record(_ event: TrainingEvent) throws {
        guard let text = EventText.line(event) else { return }
        if case let .interval(summary) = event, live, summary.profile == nil {
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
