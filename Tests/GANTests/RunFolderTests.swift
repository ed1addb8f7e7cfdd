import GAN
import XCTest

/// The run folder: created with its parents, or refused naming the part that stops it.
final class RunFolderTests: XCTestCase {
    func testCreatesParentsAndNamesAFileInTheWay() throws {
        let base = FileManager.default.temporaryDirectory.path + "/gantry-folder-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: base) }
        try createDirectory(base + "/a/b")
        try createDirectory(base + "/a/b")  // already there: nothing to do
        var isFolder: ObjCBool = false
        XCTAssertTrue(FileManager.default.fileExists(atPath: base + "/a/b", isDirectory: &isFolder) && isFolder.boolValue)
        FileManager.default.createFile(atPath: base + "/file", contents: Data())
        XCTAssertThrowsError(try createDirectory(base + "/file/run/x")) { error in
            XCTAssertEqual("\(error)", "cannot create folder \(base)/file/run/x: \(base)/file is a file; "
                           + "pass an --out folder you can write to")
        }
    }
}
