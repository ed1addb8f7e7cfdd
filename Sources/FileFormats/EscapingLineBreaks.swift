/// `text` as it is, or with its control characters and line or paragraph separators escaped
/// (a newline as `\n`, U+2028 as `\u{2028}`) when it has any.
///
/// Names and details read from a file may hold any character; error messages pass them through
/// this so that a damaged file cannot break a message's one line.
public func escapingLineBreaks(_ text: String) -> String {
    /// Unicode's control characters (Cc) and its line and paragraph separators (Zl, Zp), by
    /// value: looking up `properties.generalCategory` per character made launch/fuzz 4× slower.
    func breaksLine(_ scalar: Unicode.Scalar) -> Bool {
        scalar.value < 0x20 || (0x7F...0x9F).contains(scalar.value) || scalar.value == 0x2028 || scalar.value == 0x2029
    }
    guard text.unicodeScalars.contains(where: breaksLine) else { return text }
    return text.unicodeScalars.map { breaksLine($0) ? $0.escaped(asASCII: true) : String($0) }.joined()
}
