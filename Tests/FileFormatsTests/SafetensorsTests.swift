import TestSupport
import XCTest
@testable import FileFormats

final class SafetensorsTests: XCTestCase {
    /// A file with the given header text (unpadded) followed by `dataSize` zero bytes.
    func rawFile(header: String, dataSize: Int) -> [UInt8] {
        let json = Array(header.utf8)
        let length = UInt64(json.count)
        return (0..<8).map { UInt8(truncatingIfNeeded: length >> (8 * $0)) } + json + [UInt8](repeating: 0, count: dataSize)
    }

    func testRoundTrip() throws {
        let directory = makeTemporaryDirectory(self)
        let path = "\(directory)/step-100.safetensors"
        let weights: [Float] = [1, -2, 3.5, .pi, -0.0, 1e-30]
        let bias: [Float] = [0.25, 0.5, 0.75]
        let metadata = ["step": "100", "model": "dcgan \"small\"\nv2", "seed": "ünïcode"]
        try weights.withUnsafeBufferPointer { weightValues in
            try bias.withUnsafeBufferPointer { biasValues in
                try Safetensors.write(path: path, tensors: [
                    Safetensors.Tensor(name: "g.fc.weight", shape: [2, 3], values: weightValues),
                    Safetensors.Tensor(name: "g.fc.bias", shape: [3], values: biasValues),
                ], metadata: metadata)
            }
        }
        XCTAssertEqual(directoryEntries(directory), ["step-100.safetensors"])
        let bytes = fileBytes(path)
        let headerLength = bytes[0..<8].reversed().reduce(0) { $0 << 8 | Int($1) }
        XCTAssertEqual((8 + headerLength) % 8, 0, "data section not 8-byte aligned")
        XCTAssertEqual(bytes.count, 8 + headerLength + 4 * (weights.count + bias.count))

        let file = try SafetensorsFile(path: path)
        XCTAssertEqual(file.metadata, metadata)
        XCTAssertEqual(file.tensors.map(\.name), ["g.fc.weight", "g.fc.bias"])
        XCTAssertEqual(try file.info(named: "g.fc.bias"),
                       SafetensorsFile.TensorInfo(name: "g.fc.bias", shape: [3], byteRange: 24..<36))
        let loaded = try file.tensor(named: "g.fc.weight")
        XCTAssertEqual(loaded.shape, [2, 3])
        XCTAssertEqual(loaded.values.map(\.bitPattern), weights.map(\.bitPattern))
        var into = [Float](repeating: .nan, count: 3)
        try into.withUnsafeMutableBufferPointer { try file.copyTensor(named: "g.fc.bias", into: $0) }
        XCTAssertEqual(into, bias)

        // Same inputs, same bytes: metadata keys are written sorted.
        try Safetensors.write(path: "\(directory)/again.safetensors",
                              tensors: [(name: "g.fc.weight", shape: [2, 3], values: weights),
                                        (name: "g.fc.bias", shape: [3], values: bias)],
                              metadata: metadata)
        XCTAssertEqual(fileBytes("\(directory)/again.safetensors"), bytes)
    }

    func testScalarsAndEmptyTensors() throws {
        let directory = makeTemporaryDirectory(self)
        let path = "\(directory)/odd.safetensors"
        try Safetensors.write(path: path, tensors: [(name: "scalar", shape: [], values: [42]),
                                                    (name: "empty", shape: [0, 5], values: [])])
        let file = try SafetensorsFile(path: path)
        XCTAssertEqual(file.metadata, [:])
        XCTAssertEqual(try file.tensor(named: "scalar").values, [42])
        XCTAssertEqual(try file.tensor(named: "scalar").shape, [])
        XCTAssertEqual(try file.tensor(named: "empty").shape, [0, 5])
        XCTAssertEqual(try file.tensor(named: "empty").values, [])
    }

    func testModelMismatchErrors() throws {
        let directory = makeTemporaryDirectory(self)
        let path = "\(directory)/ckpt.safetensors"
        try Safetensors.write(path: path, tensors: [(name: "d.conv1.weight", shape: [10, 10], values: Array(repeating: 1, count: 100)),
                                                    (name: "d.conv1.bias", shape: [10], values: Array(repeating: 0, count: 10))])
        let file = try SafetensorsFile(path: path)
        var buffer = [Float](repeating: 7, count: 128)
        assertThrows("checkpoint \(path): tensor d.conv1.weight has 100 values, the model expects 128; "
                     + "the checkpoint was written for another model configuration") {
            try buffer.withUnsafeMutableBufferPointer { try file.copyTensor(named: "d.conv1.weight", into: $0) }
        }
        XCTAssertEqual(buffer, Array(repeating: 7, count: 128), "a rejected copy touched the buffer")
        assertThrows("checkpoint \(path) has no tensor g.fc.weight (it has: d.conv1.weight, d.conv1.bias); "
                     + "the checkpoint was written for another model configuration") {
            _ = try file.tensor(named: "g.fc.weight")
        }
    }

    func testWriterRejectsInconsistentTensorsAndKeepsTheOldFile() throws {
        let directory = makeTemporaryDirectory(self)
        let path = "\(directory)/ckpt.safetensors"
        try Safetensors.write(path: path, tensors: [(name: "a", shape: [1], values: [1])])
        let before = fileBytes(path)
        assertThrows("cannot write checkpoint \(path): tensor b has shape [2, 3] but 5 values were given; "
                     + "nothing was written (this is a bug in the caller)") {
            try Safetensors.write(path: path, tensors: [(name: "a", shape: [1], values: [2]),
                                                        (name: "b", shape: [2, 3], values: [1, 2, 3, 4, 5])])
        }
        assertThrows("cannot write checkpoint \(path): tensor a appears twice; nothing was written (this is a bug in the caller)") {
            try Safetensors.write(path: path, tensors: [(name: "a", shape: [1], values: [2]), (name: "a", shape: [1], values: [2])])
        }
        assertThrows("cannot write checkpoint \(path): tensor __metadata__ uses the reserved name __metadata__; "
                     + "nothing was written (this is a bug in the caller)") {
            try Safetensors.write(path: path, tensors: [(name: "__metadata__", shape: [1], values: [2])])
        }
        XCTAssertEqual(fileBytes(path), before)
        XCTAssertEqual(directoryEntries(directory), ["ckpt.safetensors"])
    }

    func testMalformedFiles() throws {
        let path = "bad.safetensors"
        let valid = #"{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#
        XCTAssertNoThrow(try SafetensorsFile(bytes: rawFile(header: valid, dataSize: 8), path: path))

        let cases: [(bytes: [UInt8], message: String)] = [
            ([1, 2, 3, 4, 5],
             "checkpoint bad.safetensors is too short to be a safetensors file (5 bytes; the 8-byte header length "
             + "alone is missing); it was cut off or is not a checkpoint, use another one"),
            ([200, 0, 0, 0, 0, 0, 0, 0] + Array(valid.utf8),
             "checkpoint bad.safetensors declares a 200-byte header but the file has only 62 bytes; "
             + "it is truncated or not a safetensors file, use another checkpoint"),
            ([0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0],
             "checkpoint bad.safetensors declares a 18446744073709551615-byte header but the file has only 9 bytes; "
             + "it is truncated or not a safetensors file, use another checkpoint"),
            (rawFile(header: #"{"w":{"dtype":"F32","#, dataSize: 8),
             "checkpoint bad.safetensors: the 20-byte header is not valid JSON; "
             + "the file is corrupt or not a safetensors file, use another checkpoint"),
            (rawFile(header: "[1, 2]", dataSize: 0),
             "checkpoint bad.safetensors: malformed safetensors header: the header is not a JSON object; "
             + "the file is corrupt or was not written by a safetensors writer"),
            (rawFile(header: #"{"__metadata__":{"step":100}}"#, dataSize: 0),
             "checkpoint bad.safetensors: malformed safetensors header: __metadata__ value step is not a string; "
             + "the file is corrupt or was not written by a safetensors writer"),
            (rawFile(header: #"{"w":{"dtype":"F32","shape":[2.5],"data_offsets":[0,8]}}"#, dataSize: 8),
             "checkpoint bad.safetensors: malformed safetensors header: tensor w has no shape list of non-negative "
             + "integers; the file is corrupt or was not written by a safetensors writer"),
            (rawFile(header: #"{"w":{"dtype":"F32","shape":[2]}}"#, dataSize: 8),
             "checkpoint bad.safetensors: malformed safetensors header: tensor w has no data_offsets pair of integers; "
             + "the file is corrupt or was not written by a safetensors writer"),
            (rawFile(header: #"{"w":{"dtype":"BF16","shape":[4],"data_offsets":[0,8]}}"#, dataSize: 8),
             "checkpoint bad.safetensors: tensor w has dtype BF16 but Gantry reads only F32; "
             + "convert the checkpoint to float32 (e.g. tensor.float() before saving)"),
            (rawFile(header: #"{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#, dataSize: 6),
             "checkpoint bad.safetensors: tensor w has data offsets [0, 8] outside the 6-byte data section; "
             + "the file is truncated or corrupt, use another checkpoint"),
            (rawFile(header: #"{"w":{"dtype":"F32","shape":[2],"data_offsets":[8,4]}}"#, dataSize: 8),
             "checkpoint bad.safetensors: tensor w has data offsets [8, 4] outside the 8-byte data section; "
             + "the file is truncated or corrupt, use another checkpoint"),
            (rawFile(header: #"{"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}"#, dataSize: 8),
             "checkpoint bad.safetensors: tensor w has shape [3] but its data offsets span 8 bytes, not 4 per value; "
             + "the file is corrupt, use another checkpoint"),
            (rawFile(header: #"{"w":{"dtype":"F32","shape":[4611686018427387904,4],"data_offsets":[0,8]}}"#, dataSize: 8),
             "checkpoint bad.safetensors: tensor w has shape [4611686018427387904, 4] but its data offsets span 8 bytes, "
             + "not 4 per value; the file is corrupt, use another checkpoint"),
            (rawFile(header: #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}"#,
                     dataSize: 12),
             "checkpoint bad.safetensors: tensors a and b overlap in the data section; the file is corrupt, use another checkpoint"),
        ]
        for (bytes, message) in cases {
            assertThrows(message) { _ = try SafetensorsFile(bytes: bytes, path: path) }
        }
    }

    /// Names in the header may hold any character; the description escapes the ones that would
    /// break its line (launch/fuzz found a tensor named "a\nb" printing on two lines).
    func testNamesFromTheHeaderAreEscapedInMessages() throws {
        let path = "bad.safetensors"
        let cases: [(header: String, message: String)] = [
            (#"{"a\nb":{"dtype":"F\r16","shape":[2],"data_offsets":[0,4]}}"#,
             #"checkpoint bad.safetensors: tensor a\nb has dtype F\r16 but Gantry reads only F32; "#
             + "convert the checkpoint to float32 (e.g. tensor.float() before saving)"),
            (#"{"__metadata__":{"step\u2028":1}}"#,
             #"checkpoint bad.safetensors: malformed safetensors header: __metadata__ value step\u{2028} is not a "#
             + "string; the file is corrupt or was not written by a safetensors writer"),
            (#"{"x\ty":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"é":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#,
             #"checkpoint bad.safetensors: tensors x\ty and é overlap in the data section; "#
             + "the file is corrupt, use another checkpoint"),
        ]
        for (header, message) in cases {
            assertThrows(message) { _ = try SafetensorsFile(bytes: rawFile(header: header, dataSize: 4), path: path) }
        }
        let file = try SafetensorsFile(bytes: rawFile(header: #"{"w\n":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#,
                                                      dataSize: 4), path: path)
        assertThrows(#"checkpoint bad.safetensors has no tensor v\n (it has: w\n); "#
                     + "the checkpoint was written for another model configuration") {
            _ = try file.tensor(named: "v\n")
        }
    }

    func testTruncatedFileOnDisk() throws {
        let directory = makeTemporaryDirectory(self)
        let path = "\(directory)/ckpt.safetensors"
        try Safetensors.write(path: path, tensors: [(name: "w", shape: [4], values: [1, 2, 3, 4])])
        let bytes = fileBytes(path)
        writeRaw(Array(bytes.dropLast(4)), to: path)
        assertThrows("checkpoint \(path): tensor w has data offsets [0, 16] outside the 12-byte data section; "
                     + "the file is truncated or corrupt, use another checkpoint") {
            _ = try SafetensorsFile(path: path)
        }
        assertThrows("cannot open \(directory)/none.safetensors: no such file "
                     + "(check the path; relative paths start at the current directory)") {
            _ = try SafetensorsFile(path: "\(directory)/none.safetensors")
        }
    }
}
