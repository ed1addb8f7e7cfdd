import Foundation

/// This binary's version, and the commit of the checkout it was built in (asked of git at run
/// time: SwiftPM has no build-time hook for it), for `gantry --version` and run.json.
enum BuildInfo {
    static let version = "0.17.0"

    /// `git rev-parse HEAD` in the binary's folder (inside the checkout's .build), "+changes"
    /// when tracked files differ from it; nil when the binary is not in a checkout or git is missing.
    static let commit: String? = {
        guard let executable = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") else { return nil }
        let folder = (executable as NSString).deletingLastPathComponent
        guard let head = git(["-C", folder, "rev-parse", "HEAD"]), !head.isEmpty else { return nil }
        let changes = git(["-C", folder, "status", "--porcelain", "--untracked-files=no"]) ?? ""
        return head + (changes.isEmpty ? "" : "+changes")
    }()

    static var description: String { version + (commit.map { " (commit \($0))" } ?? "") }

    private static func git(_ arguments: [String]) -> String? {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["git"] + arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = FileHandle.nullDevice
        guard (try? process.run()) != nil else { return nil }
        let output = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { return nil }
        return String(decoding: output, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// The CPU's model name (/proc/cpuinfo), or "unknown".
    static var cpu: String {
        guard let text = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
              let line = text.split(separator: "\n").first(where: { $0.hasPrefix("model name") }),
              let colon = line.firstIndex(of: ":") else { return "unknown" }
        return line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
    }
}
