/// Finds the fields of a file line's message: a JSON object, or logfmt.
///
/// - A message whose first non-blank byte is `{` is JSON: it has fields
///   when the whole message is one valid JSON object (blanks around it
///   allowed). Nested objects are flattened into dotted names
///   (`{"http":{"status":500}}` has `http.status` = `500`); a string is its
///   unescaped text, a number its text as written, `true`/`false` those
///   words; an array is its JSON text as written (not looked into); a
///   `null` is no field.
/// - Any other message is read as logfmt, leniently (real lines mix words
///   and pairs): every `KEY=VALUE` that starts the message or follows a
///   blank is a field, where KEY starts with a letter or `_` and goes on
///   with letters, digits and `_ . - / @`, and VALUE is a double-quoted
///   string (`\"`, `\\`, `\n`, `\t`, `\r` unescaped) or runs to the next
///   blank (it may be empty). Other words are not fields.
///
/// Bounded work whatever the input: a message over ``maxMessageBytes``,
/// nested deeper than ``maxDepth``, with more than ``maxFields`` fields or
/// a name over ``maxNameBytes`` has no fields at all (nil). A parse is one
/// pass over the bytes.
public enum FieldParser {
    public static let maxMessageBytes = 64 * 1024
    public static let maxDepth = 16
    public static let maxFields = 256
    public static let maxNameBytes = 256

    /// The fields of `message`, or nil when it has none.
    public static func fields(of message: String) -> LineFields? {
        var message = message
        return message.withUTF8 { fields(of: UnsafeRawBufferPointer($0)) }
    }

    public static func fields(of bytes: UnsafeRawBufferPointer) -> LineFields? {
        guard bytes.count <= maxMessageBytes else { return nil }
        var start = 0
        while start < bytes.count, isBlank(bytes[start]) { start += 1 }
        var fields: LineFields?
        if start < bytes.count, bytes[start] == UInt8(ascii: "{") {
            var parser = JSONFields(bytes: bytes, index: start)
            fields = parser.parseDocument()
        } else {
            fields = logfmt(bytes)
        }
        guard let fields, !fields.isEmpty else { return nil }
        return fields
    }

    static func isBlank(_ byte: UInt8) -> Bool {
        byte == 0x20 || byte == 0x09 || byte == 0x0A || byte == 0x0D
    }

    static func isKeyStart(_ byte: UInt8) -> Bool {
        (byte | 0x20) >= 97 && (byte | 0x20) <= 122 || byte == UInt8(ascii: "_")
    }

    static func isKeyByte(_ byte: UInt8) -> Bool {
        isKeyStart(byte) || (byte >= 48 && byte <= 57) || byte == UInt8(ascii: ".") || byte == UInt8(ascii: "-")
            || byte == UInt8(ascii: "/") || byte == UInt8(ascii: "@")
    }

    /// Lenient logfmt: the `KEY=VALUE` pairs among the words.
    static func logfmt(_ bytes: UnsafeRawBufferPointer) -> LineFields? {
        var fields = LineFields()
        var value: [UInt8] = []
        var index = 0
        let n = bytes.count
        while index < n {
            // At the start of a word.
            while index < n, isBlank(bytes[index]) { index += 1 }
            let keyStart = index
            guard index < n, isKeyStart(bytes[index]) else {
                while index < n, !isBlank(bytes[index]) { index += 1 }
                continue
            }
            while index < n, isKeyByte(bytes[index]) { index += 1 }
            guard index < n, bytes[index] == UInt8(ascii: "=") else {
                while index < n, !isBlank(bytes[index]) { index += 1 }
                continue
            }
            let key = UnsafeRawBufferPointer(rebasing: bytes[keyStart..<index])
            index += 1
            value.removeAll(keepingCapacity: true)
            if index < n, bytes[index] == UInt8(ascii: "\"") {
                index += 1
                var closed = false
                while index < n {
                    let byte = bytes[index]
                    index += 1
                    if byte == UInt8(ascii: "\"") {
                        closed = true
                        break
                    }
                    if byte == UInt8(ascii: "\\"), index < n {
                        let escaped = bytes[index]
                        index += 1
                        switch escaped {
                        case UInt8(ascii: "n"): value.append(0x0A)
                        case UInt8(ascii: "t"): value.append(0x09)
                        case UInt8(ascii: "r"): value.append(0x0D)
                        case UInt8(ascii: "\""), UInt8(ascii: "\\"): value.append(escaped)
                        default: value += [byte, escaped]
                        }
                        continue
                    }
                    value.append(byte)
                }
                // An unterminated quote is not a value: the rest of the line is not pairs.
                guard closed else { break }
                // `key="a"b`: the word goes on; it is not a pair.
                if index < n, !isBlank(bytes[index]) {
                    while index < n, !isBlank(bytes[index]) { index += 1 }
                    continue
                }
            } else {
                let valueStart = index
                while index < n, !isBlank(bytes[index]) { index += 1 }
                value += UnsafeRawBufferPointer(rebasing: bytes[valueStart..<index])
            }
            guard key.count <= maxNameBytes else { return nil }
            value.withUnsafeBytes { _ = fields.append(name: key, value: $0) }
            if fields.count > maxFields { return nil }
        }
        return fields
    }
}

/// One pass over a JSON object, flattening it into fields.
private struct JSONFields {
    let bytes: UnsafeRawBufferPointer
    var index: Int
    var fields = LineFields()
    var failed = false
    var scratch: [UInt8] = []

    init(bytes: UnsafeRawBufferPointer, index: Int) {
        self.bytes = bytes
        self.index = index
    }

    mutating func parseDocument() -> LineFields? {
        guard object(prefix: [], depth: 1) else { return nil }
        skipBlanks()
        guard index == bytes.count else { return nil }
        return fields
    }

    mutating func skipBlanks() {
        while index < bytes.count, FieldParser.isBlank(bytes[index]) { index += 1 }
    }

    mutating func expect(_ byte: UInt8) -> Bool {
        skipBlanks()
        guard index < bytes.count, bytes[index] == byte else { return false }
        index += 1
        return true
    }

    /// `{ "key": value, ... }`: its members become fields named after
    /// `prefix` (`a.b`), or with a nil prefix (an object inside an array)
    /// are only checked.
    mutating func object(prefix: [UInt8]?, depth: Int) -> Bool {
        list(open: UInt8(ascii: "{"), close: UInt8(ascii: "}"), depth: depth) { parser in
            parser.skipBlanks()
            guard parser.index < parser.bytes.count, parser.bytes[parser.index] == UInt8(ascii: "\""), let key = parser.string() else {
                return false
            }
            guard let prefix else { return parser.expect(UInt8(ascii: ":")) && parser.skipValue(depth: depth) }
            let name = prefix.isEmpty ? key : prefix + [UInt8(ascii: ".")] + key
            return name.count <= FieldParser.maxNameBytes && parser.expect(UInt8(ascii: ":")) && parser.member(name: name, depth: depth)
        }
    }

    /// `open`, elements separated by commas (each read by `element`), `close`;
    /// at most ``FieldParser/maxDepth`` deep.
    mutating func list(open: UInt8, close: UInt8, depth: Int, element: (inout JSONFields) -> Bool) -> Bool {
        guard depth <= FieldParser.maxDepth, expect(open) else { return false }
        skipBlanks()
        if index < bytes.count, bytes[index] == close {
            index += 1
            return true
        }
        while true {
            guard element(&self) else { return false }
            skipBlanks()
            guard index < bytes.count else { return false }
            if bytes[index] == UInt8(ascii: ",") {
                index += 1
                continue
            }
            guard bytes[index] == close else { return false }
            index += 1
            return true
        }
    }

    mutating func member(name: [UInt8], depth: Int) -> Bool {
        skipBlanks()
        guard index < bytes.count else { return false }
        switch bytes[index] {
        case UInt8(ascii: "{"):
            return object(prefix: name, depth: depth + 1)
        case UInt8(ascii: "["):
            let start = index
            guard skipArray(depth: depth + 1) else { return false }
            return add(name, UnsafeRawBufferPointer(rebasing: bytes[start..<index]))
        case UInt8(ascii: "\""):
            guard let value = string() else { return false }
            return value.withUnsafeBytes { add(name, $0) }
        case UInt8(ascii: "t"):
            return literal("true") && add(name, "true")
        case UInt8(ascii: "f"):
            return literal("false") && add(name, "false")
        case UInt8(ascii: "n"):
            return literal("null")
        default:
            let start = index
            guard number() else { return false }
            return add(name, UnsafeRawBufferPointer(rebasing: bytes[start..<index]))
        }
    }

    mutating func add(_ name: [UInt8], _ value: UnsafeRawBufferPointer) -> Bool {
        name.withUnsafeBytes { _ = fields.append(name: $0, value: value) }
        return fields.count <= FieldParser.maxFields
    }

    mutating func add(_ name: [UInt8], _ value: StaticString) -> Bool {
        add(name, UnsafeRawBufferPointer(start: value.utf8Start, count: value.utf8CodeUnitCount))
    }

    mutating func literal(_ word: StaticString) -> Bool {
        let count = word.utf8CodeUnitCount
        guard bytes.count - index >= count else { return false }
        for offset in 0..<count where bytes[index + offset] != word.utf8Start[offset] { return false }
        index += count
        return true
    }

    /// A JSON number (RFC 8259 grammar).
    mutating func number() -> Bool {
        func digits() -> Int {
            let start = index
            while index < bytes.count, bytes[index] >= 48, bytes[index] <= 57 { index += 1 }
            return index - start
        }
        if index < bytes.count, bytes[index] == UInt8(ascii: "-") { index += 1 }
        guard index < bytes.count else { return false }
        if bytes[index] == UInt8(ascii: "0") {
            index += 1
        } else if digits() == 0 {
            return false
        }
        if index < bytes.count, bytes[index] == UInt8(ascii: ".") {
            index += 1
            guard digits() > 0 else { return false }
        }
        if index < bytes.count, bytes[index] | 0x20 == UInt8(ascii: "e") {
            index += 1
            if index < bytes.count, bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-") { index += 1 }
            guard digits() > 0 else { return false }
        }
        return true
    }

    /// Skips an array (checking it), at most ``FieldParser/maxDepth`` deep.
    mutating func skipArray(depth: Int) -> Bool {
        list(open: UInt8(ascii: "["), close: UInt8(ascii: "]"), depth: depth) { $0.skipValue(depth: depth) }
    }

    /// Skips any value inside an array.
    mutating func skipValue(depth: Int) -> Bool {
        skipBlanks()
        guard index < bytes.count else { return false }
        switch bytes[index] {
        case UInt8(ascii: "["): return skipArray(depth: depth + 1)
        case UInt8(ascii: "{"): return object(prefix: nil, depth: depth + 1)
        case UInt8(ascii: "\""): return string() != nil
        case UInt8(ascii: "t"): return literal("true")
        case UInt8(ascii: "f"): return literal("false")
        case UInt8(ascii: "n"): return literal("null")
        default: return number()
        }
    }

    /// A string at `index` (its opening quote), unescaped.
    mutating func string() -> [UInt8]? {
        index += 1
        scratch.removeAll(keepingCapacity: true)
        while index < bytes.count {
            let byte = bytes[index]
            index += 1
            switch byte {
            case UInt8(ascii: "\""):
                return scratch
            case UInt8(ascii: "\\"):
                guard index < bytes.count else { return nil }
                let escaped = bytes[index]
                index += 1
                switch escaped {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): scratch.append(escaped)
                case UInt8(ascii: "b"): scratch.append(0x08)
                case UInt8(ascii: "f"): scratch.append(0x0C)
                case UInt8(ascii: "n"): scratch.append(0x0A)
                case UInt8(ascii: "r"): scratch.append(0x0D)
                case UInt8(ascii: "t"): scratch.append(0x09)
                case UInt8(ascii: "u"):
                    guard var scalar = hex4() else { return nil }
                    if (0xD800..<0xDC00).contains(scalar), bytes.count - index >= 6, bytes[index] == UInt8(ascii: "\\"),
                        bytes[index + 1] == UInt8(ascii: "u")
                    {
                        let save = index
                        index += 2
                        if let low = hex4(), (0xDC00..<0xE000).contains(low) {
                            scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                        } else {
                            index = save
                        }
                    }
                    // A lone surrogate is not a character: U+FFFD.
                    let character = Unicode.Scalar(scalar) ?? "\u{FFFD}"
                    scratch += Array(String(Character(character)).utf8)
                default:
                    return nil
                }
            default:
                guard byte >= 0x20 else { return nil }  // raw control characters are not JSON
                scratch.append(byte)
            }
        }
        return nil
    }

    mutating func hex4() -> UInt32? {
        guard bytes.count - index >= 4 else { return nil }
        var value: UInt32 = 0
        for _ in 0..<4 {
            let byte = bytes[index] | 0x20
            let digit: UInt32
            switch byte {
            case 48...57: digit = UInt32(byte - 48)
            case 97...102: digit = UInt32(byte - 87)
            default: return nil
            }
            value = value << 4 | digit
            index += 1
        }
        return value
    }
}
