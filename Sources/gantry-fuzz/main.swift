import Foundation

// gantry-fuzz TARGET [ARGS...]: feeds inputs to one of Gantry's file readers (FuzzTarget).
//
// Built with libFuzzer (`launch/fuzz` does: swift build -Xswiftc -sanitize=fuzzer,address
// -Xswiftc -DFUZZING), ARGS are libFuzzer's (a corpus folder, -runs=N, ...) and libFuzzer
// generates the inputs. Built plainly, ARGS are files, each run once: a crash's input replays so.

let usage = "usage: gantry-fuzz \(FuzzTarget.allCases.map(\.rawValue).joined(separator: "|")) [libFuzzer arguments | input files]"
var arguments = CommandLine.arguments
guard arguments.count >= 2, let target = FuzzTarget(rawValue: arguments[1]) else {
    FileHandle.standardError.write(Data((usage + "\n").utf8))
    exit(2)
}
arguments.remove(at: 1)

/// What the C callback reaches: it cannot capture context.
nonisolated(unsafe) var chosen = target
nonisolated(unsafe) let scratch = ScratchFile()

#if FUZZING
@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(_ argc: UnsafeMutablePointer<Int32>,
                         _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
                         _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> Int32) -> Int32

var argc = Int32(arguments.count)
var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = UnsafeMutablePointer.allocate(capacity: arguments.count + 1)
for (i, argument) in arguments.enumerated() { argv![i] = strdup(argument) }
argv![arguments.count] = nil
exit(LLVMFuzzerRunDriver(&argc, &argv) { data, size in
    chosen.run(UnsafeRawBufferPointer(start: data, count: size), scratch: scratch)
    return 0
})
#else
for path in arguments.dropFirst() {
    guard let bytes = FileManager.default.contents(atPath: path) else {
        FileHandle.standardError.write(Data("gantry-fuzz: cannot read \(path)\n".utf8))
        exit(1)
    }
    bytes.withUnsafeBytes { chosen.run($0, scratch: scratch) }
}
print("gantry-fuzz \(target.rawValue): \(arguments.count - 1) input(s) replayed, none crashed")
#endif
