import Foundation

/// The repository's root, from this file's place in it.
let repositoryRoot = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

/// Runs `launch/NAME` with `arguments` (and `environment`, else this process's) to its end;
/// returns its exit status, standard output and standard error.
func runLaunchScript(_ name: String, _ arguments: [String],
                     environment: [String: String]? = nil) throws -> (status: Int32, output: String, errors: String) {
    let process = Process()
    process.executableURL = repositoryRoot.appendingPathComponent("launch/\(name)")
    process.arguments = arguments
    if let environment { process.environment = environment }
    let output = Pipe(), errors = Pipe()
    process.standardOutput = output
    process.standardError = errors
    try process.run()
    let out = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    let err = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    process.waitUntilExit()
    return (process.terminationStatus, out, err)
}
