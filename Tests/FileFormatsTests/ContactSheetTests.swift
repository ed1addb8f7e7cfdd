import TestSupport
import XCTest
@testable import FileFormats

/// The contact sheet's layout: labels right-aligned on the left, rows in order, lines between.
final class ContactSheetTests: XCTestCase {
    func testRowsStackUnderTheirLabelsWithALineBetween() {
        let first = GrayscaleImage(width: 30, height: 20, value: 255)
        let second = GrayscaleImage(width: 22, height: 20, pixels: (0 ..< 440).map { UInt8($0 % 251) })
        let sheet = ContactSheet.render(rows: [(200, first), (1000, second)], padding: 2, scale: 2)
        // The label column: the widest label ("1000", 4 characters of 16 pixels) and 8 on each side.
        let labelWidth = 8 + 64 + 8
        XCTAssertEqual(sheet.width, labelWidth + 30)
        XCTAssertEqual(sheet.height, 20 + 1 + 20 + 2)
        XCTAssertEqual(sheet.cropped(x: labelWidth, y: 0, width: 30, height: 20), first)
        XCTAssertEqual(sheet.cropped(x: labelWidth, y: 21, width: 22, height: 20), second)
        XCTAssertEqual(sheet.cropped(x: labelWidth + 22, y: 21, width: 8, height: 20), GrayscaleImage(width: 8, height: 20),
                       "black right of a narrower row")
        XCTAssertEqual(sheet.cropped(x: 0, y: 20, width: sheet.width, height: 1),
                       GrayscaleImage(width: sheet.width, height: 1, value: ContactSheet.separatorLevel))
        XCTAssertEqual(sheet.cropped(x: 0, y: 41, width: sheet.width, height: 2), GrayscaleImage(width: sheet.width, height: 2))
        // "200" right-aligned 8 pixels left of the images, centred in its row (16 of 20 pixels).
        let label = ContactSheet.text("200", level: ContactSheet.textLevel, scale: 2)
        XCTAssertEqual(sheet.cropped(x: labelWidth - 8 - 48, y: 2, width: 48, height: 16), label)
        XCTAssertEqual(sheet.cropped(x: 8, y: 23, width: 64, height: 16), ContactSheet.text("1000", level: ContactSheet.textLevel, scale: 2))
    }

    /// giflib's font draws digits: some pixels lit, the rest black; scale 2 doubles each.
    func testTextIsGiflibsFontScaled() {
        let one = ContactSheet.text("7", level: 200, scale: 1)
        XCTAssertEqual([one.width, one.height], [8, 8])
        XCTAssertEqual(Set(one.pixels), [0, 200])
        XCTAssertNotEqual(ContactSheet.text("1", level: 200), ContactSheet.text("7", level: 200))
        let two = ContactSheet.text("7", level: 200, scale: 2)
        XCTAssertEqual([two.width, two.height], [16, 16])
        for y in 0 ..< 16 { for x in 0 ..< 16 { XCTAssertEqual(two[x, y], one[x / 2, y / 2]) } }
        XCTAssertEqual(ContactSheet.text("", level: 200).pixels, [])
    }
}
