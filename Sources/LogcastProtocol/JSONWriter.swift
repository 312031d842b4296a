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

    /// Appends `string` as a JSON string literal (``JSONEscaping``).
    mutating func appendString(_ string: String) {
        bytes.append(UInt8(ascii: "\""))
        var string = string
        string.withUTF8 { utf8 in
            JSONEscaping.scan(utf8) { run in
                bytes.append(contentsOf: run)
            } escape: { byte in
                JSONEscaping.forEachByte(escaping: byte) { bytes.append($0) }
            }
        }
        bytes.append(UInt8(ascii: "\""))
    }
}

/// What JSON strings escape (RFC 8259: the quote, the backslash and control
/// characters; UTF-8 beyond ASCII is copied as is), shared by
/// ``JSONWriter`` and the one-allocation line encoder (``ProtocolObject``).
enum JSONEscaping {
    /// Calls `copy` for each run of bytes that need no escape and `escape`
    /// for each byte that does, in order.
    ///
    /// Runs are found eight bytes at a time (``needsEscape(_:)``); only a
    /// word that holds a byte to escape is looked at byte by byte.
    @inline(__always)
    static func scan(
        _ text: UnsafeBufferPointer<UInt8>,
        copy: (UnsafeBufferPointer<UInt8>) -> Void,
        escape: (UInt8) -> Void
    ) {
        guard let base = text.baseAddress else { return }
        let count = text.count
        var runStart = 0
        var index = 0
        while index < count {
            while index + 8 <= count, !needsEscape(UnsafeRawPointer(base).loadUnaligned(fromByteOffset: index, as: UInt64.self)) {
                index += 8
            }
            guard index < count else { break }
            let byte = base[index]
            index += 1
            if byte >= 0x20 && byte != UInt8(ascii: "\"") && byte != UInt8(ascii: "\\") { continue }
            if runStart < index - 1 { copy(UnsafeBufferPointer(start: base + runStart, count: index - 1 - runStart)) }
            runStart = index
            escape(byte)
        }
        if runStart < count { copy(UnsafeBufferPointer(start: base + runStart, count: count - runStart)) }
    }

    /// The bytes of `text` as a JSON string literal, quotes included.
    static func quotedCount(_ text: UnsafeBufferPointer<UInt8>) -> Int {
        var count = 2
        scan(text) {
            count += $0.count
        } escape: {
            count += escapedCount($0)
        }
        return count
    }

    /// The length of a byte's escape: `\n` or `\u001f`.
    @inline(__always)
    static func escapedCount(_ byte: UInt8) -> Int {
        switch byte {
        case UInt8(ascii: "\""), UInt8(ascii: "\\"), 0x0A, 0x0D, 0x09: 2
        default: 6
        }
    }

    private static let hex: StaticString = "0123456789abcdef"

    /// Calls `put` with each byte of the escape for a quote, a backslash or
    /// a control character.
    @inline(__always)
    static func forEachByte(escaping byte: UInt8, _ put: (UInt8) -> Void) {
        put(0x5C)
        switch byte {
        case UInt8(ascii: "\""), UInt8(ascii: "\\"): put(byte)
        case 0x0A: put(UInt8(ascii: "n"))
        case 0x0D: put(UInt8(ascii: "r"))
        case 0x09: put(UInt8(ascii: "t"))
        default:
            put(UInt8(ascii: "u"))
            put(0x30)
            put(0x30)
            put(hex.utf8Start[Int(byte >> 4)])
            put(hex.utf8Start[Int(byte & 0xF)])
        }
    }

    /// Whether any of the eight bytes of `word` is a control character
    /// (below 0x20), a quote or a backslash. Each test is the classic
    /// "has a byte below n" (a zero byte for the quote and the backslash
    /// after an XOR): `(x - n·0x01…01) & ~x & 0x80…80` is non-zero exactly
    /// when some byte of `x` is below `n` (n ≤ 128); bytes of 0x80 and above
    /// (UTF-8 beyond ASCII) never count.
    @inline(__always)
    static func needsEscape(_ word: UInt64) -> Bool {
        let ones: UInt64 = 0x0101_0101_0101_0101
        let highs: UInt64 = 0x8080_8080_8080_8080
        let control = (word &- ones &* 0x20) & ~word
        let quote = word ^ (ones &* 0x22)
        let backslash = word ^ (ones &* 0x5C)
        return ((control | ((quote &- ones) & ~quote) | ((backslash &- ones) & ~backslash)) & highs) != 0
    }
}
