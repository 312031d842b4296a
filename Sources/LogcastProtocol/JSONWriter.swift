/// A minimal JSON writer into a byte array.
///
/// The hub encodes every record exactly once, on the publishing thread, so
/// this is on the per-line hot path: it appends bytes directly and escapes
/// only what RFC 8259 requires (quote, backslash, control characters).
/// Non-ASCII UTF-8 is copied as is.
public struct JSONWriter {
    public private(set) var bytes: [UInt8]
    private var needsComma = false

    public init(capacity: Int = 256) {
        bytes = []
        bytes.reserveCapacity(capacity)
    }

    public mutating func beginObject() {
        separator()
        bytes.append(UInt8(ascii: "{"))
        needsComma = false
    }

    public mutating func endObject() {
        bytes.append(UInt8(ascii: "}"))
        needsComma = true
    }

    public mutating func beginArray(key: String) {
        self.key(key)
        bytes.append(UInt8(ascii: "["))
        needsComma = false
    }

    /// Starts an array that is a value of its own (top level or an element).
    public mutating func beginArrayValue() {
        separator()
        bytes.append(UInt8(ascii: "["))
        needsComma = false
    }

    public mutating func endArray() {
        bytes.append(UInt8(ascii: "]"))
        needsComma = true
    }

    public mutating func key(_ key: String) {
        separator()
        appendString(key)
        bytes.append(UInt8(ascii: ":"))
        needsComma = false
    }

    /// Appends an integer's decimal digits without making a `String`.
    mutating func appendInteger<I: BinaryInteger>(_ value: I) {
        guard let small = Int64(exactly: value) else {
            bytes.append(contentsOf: String(value).utf8)
            return
        }
        if small < 0 { bytes.append(UInt8(ascii: "-")) }
        var magnitude = small.magnitude
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 20) { digits in
            var start = 20
            repeat {
                start -= 1
                digits[start] = UInt8(ascii: "0") &+ UInt8(truncatingIfNeeded: magnitude % 10)
                magnitude /= 10
            } while magnitude > 0
            bytes.append(contentsOf: UnsafeBufferPointer(rebasing: digits[start..<20]))
        }
    }

    public mutating func field(_ key: String, _ value: String) {
        self.key(key)
        appendString(value)
        needsComma = true
    }

    public mutating func field(_ key: String, _ value: String?) {
        if let value { field(key, value) }
    }

    public mutating func field<I: BinaryInteger>(_ key: String, _ value: I) {
        self.key(key)
        appendInteger(value)
        needsComma = true
    }

    public mutating func field<I: BinaryInteger>(_ key: String, _ value: I?) {
        if let value { field(key, value) }
    }

    public mutating func field(_ key: String, _ value: Bool) {
        self.key(key)
        bytes.append(contentsOf: (value ? "true" : "false").utf8)
        needsComma = true
    }

    public mutating func field(_ key: String, strings: [String]) {
        beginArray(key: key)
        for value in strings { self.value(value) }
        endArray()
    }

    /// `text` as a JSON string literal (also a valid YAML double-quoted scalar).
    public static func quotedString(_ text: String) -> [UInt8] {
        var writer = JSONWriter()
        writer.appendString(text)
        return writer.bytes
    }

    /// An array element or a bare value.
    public mutating func value(_ value: String) {
        separator()
        appendString(value)
        needsComma = true
    }

    /// Appends raw, already-encoded JSON as the value of `key`.
    public mutating func rawField(_ key: String, _ json: [UInt8]) {
        self.key(key)
        bytes.append(contentsOf: json)
        needsComma = true
    }

    /// Appends an already-encoded JSON value after a `key(_:)`.
    public mutating func appendRawValue(_ json: [UInt8]) {
        bytes.append(contentsOf: json)
        needsComma = true
    }

    public mutating func newline() {
        bytes.append(UInt8(ascii: "\n"))
        needsComma = false
    }

    private mutating func separator() {
        if needsComma { bytes.append(UInt8(ascii: ",")) }
    }

    private static let hex: [UInt8] = Array("0123456789abcdef".utf8)

    mutating func appendString(_ string: String) {
        bytes.append(UInt8(ascii: "\""))
        var string = string
        string.withUTF8 { utf8 in
            var runStart = 0
            for index in 0..<utf8.count {
                let byte = utf8[index]
                if byte >= 0x20 && byte != UInt8(ascii: "\"") && byte != UInt8(ascii: "\\") { continue }
                if runStart < index {
                    bytes.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[runStart..<index]))
                }
                runStart = index + 1
                switch byte {
                case UInt8(ascii: "\""): bytes.append(contentsOf: [0x5C, 0x22])
                case UInt8(ascii: "\\"): bytes.append(contentsOf: [0x5C, 0x5C])
                case 0x0A: bytes.append(contentsOf: [0x5C, UInt8(ascii: "n")])
                case 0x0D: bytes.append(contentsOf: [0x5C, UInt8(ascii: "r")])
                case 0x09: bytes.append(contentsOf: [0x5C, UInt8(ascii: "t")])
                default:
                    bytes.append(contentsOf: [0x5C, UInt8(ascii: "u"), 0x30, 0x30])
                    bytes.append(Self.hex[Int(byte >> 4)])
                    bytes.append(Self.hex[Int(byte & 0xF)])
                }
            }
            if runStart < utf8.count {
                bytes.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[runStart..<utf8.count]))
            }
        }
        bytes.append(UInt8(ascii: "\""))
    }
}
