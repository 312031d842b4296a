import LogcastHub
import LogcastProtocol

/// Finds the level a log line states in its text, for file lines that carry
/// no structured priority.
///
/// Only the first 256 bytes are looked at, and the leftmost match wins. A
/// level word counts when it appears in one of these forms (`W` is any level
/// word: `emerg emergency panic alert crit critical fatal err error severe
/// warn warning notice info information debug trace`):
///
/// 1. a syslog prefix `<N>` at the start (`<3>disk failed` is `err`);
/// 2. a glog/klog prefix: `E1125 09:05:29.123 ...` (`I`, `W`, `E`, `F`);
/// 3. a key: `level=W`, `lvl=W`, `severity=W`, `loglevel=W`, or JSON
///    `"level":"W"` (any case);
/// 4. in brackets: `[W]`, `<W>`, `(W)`, also `[W ]` padding (any case);
/// 5. a bare upper-case word: `ERROR`, `WARN`, `INFO` ...;
/// 6. a capitalised word followed by a colon: `Error:`, `Warning:`.
///
/// `fatal` and `critical` map to `crit` (2), `trace` to `debug` (7), `severe`
/// to `err` (3).
///
/// When no word is found in a JSON line (one starting with `{`), a number
/// as the value of one of those keys counts (`"level":50`): 0–7 are syslog levels; 10, 20, 30, 40, 50, 60
/// are the levels of pino and bunyan (trace, debug → debug; info; warn;
/// error → err; fatal → crit).
public enum PriorityDetector {
    static let words: [String: Int] = [
        "emerg": 0, "emergency": 0, "panic": 0,
        "alert": 1,
        "crit": 2, "critical": 2, "fatal": 2,
        "err": 3, "error": 3, "severe": 3,
        "warn": 4, "warning": 4,
        "notice": 5,
        "info": 6, "information": 6,
        "debug": 7, "trace": 7,
    ]

    static let keys: Set<String> = ["level", "lvl", "severity", "loglevel", "log_level", "levelname"]

    /// A word of up to 16 ASCII letters folded to lower case and packed
    /// into two integers (byte `k` of the word in byte `k mod 8` of the
    /// `k / 8`-th), so that comparing a word costs two comparisons, not a
    /// `String`, a `lowercased()` and a hash.
    struct PackedWord: Equatable {
        var low: UInt64 = 0
        var high: UInt64 = 0

        /// `letters` must be ASCII letters (`| 0x20` makes them lower case).
        init(letters: UnsafeRawBufferPointer) {
            precondition(letters.count <= 16, "a packed word holds at most 16 letters")
            for (index, byte) in letters.enumerated() {
                let folded = UInt64(byte | 0x20)
                if index < 8 {
                    low |= folded << (8 * UInt64(index))
                } else {
                    high |= folded << (8 * UInt64(index - 8))
                }
            }
        }

        init(_ word: String) {
            var word = word
            self = word.withUTF8 { PackedWord(letters: UnsafeRawBufferPointer($0)) }
        }
    }

    /// ``words``, packed: the table a line's words are looked up in.
    static let packedWords: [(word: PackedWord, level: Int)] = words.map { (PackedWord($0.key), $0.value) }

    /// The level a word of 3 to 11 ASCII letters names, in any case (nil: none).
    static func level(ofWord letters: UnsafeRawBufferPointer) -> Int? {
        let packed = PackedWord(letters: letters)
        for entry in packedWords where entry.word == packed { return entry.level }
        return nil
    }

    public static func detect(_ message: String) -> Int? {
        var message = message
        return message.withUTF8 { detect(bytes: UnsafeRawBufferPointer($0)) }
    }

    static func detect(bytes full: UnsafeRawBufferPointer) -> Int? {
        let bytes = UnsafeRawBufferPointer(rebasing: full[0..<min(full.count, 256)])
        let n = bytes.count
        guard n > 0 else { return nil }

        // 1. <N> syslog prefix.
        if n >= 3, bytes[0] == UInt8(ascii: "<") {
            var i = 1
            var value = 0
            while i < n, i <= 3, isDigit(bytes[i]) {
                value = value * 10 + Int(bytes[i] - 48)
                i += 1
            }
            if i > 1, i < n, bytes[i] == UInt8(ascii: ">") { return value & 7 }
        }
        // 2. glog prefix: one of IWEF, four digits, a space.
        if n >= 6, isDigit(bytes[1]), isDigit(bytes[2]), isDigit(bytes[3]), isDigit(bytes[4]), bytes[5] == 0x20 {
            switch bytes[0] {
            case UInt8(ascii: "I"): return 6
            case UInt8(ascii: "W"): return 4
            case UInt8(ascii: "E"): return 3
            case UInt8(ascii: "F"): return 2
            default: break
            }
        }

        var i = 0
        while i < n {
            guard isLetter(bytes[i]) else {
                i += 1
                continue
            }
            var j = i
            while j < n, isLetter(bytes[j]) { j += 1 }
            defer { i = j }
            // Whole words only: no letters, digits or `_` glued to either side.
            if i > 0, isWordByte(bytes[i - 1]) { continue }
            // Look past the 256-byte window so a word cut by it is not taken as whole.
            if j < full.count, isWordByte(full[j]) { continue }
            let length = j - i
            guard length >= 3, length <= 11 else { continue }
            guard let level = level(ofWord: UnsafeRawBufferPointer(rebasing: bytes[i..<j])) else { continue }
            let before: UInt8? = i > 0 ? bytes[i - 1] : nil
            let after: UInt8? = j < n ? bytes[j] : nil

            // 3. key=value / "key":"value".
            if let key = precedingKey(bytes, wordStart: i), keys.contains(key.lowercased()) { return level }
            // 4. brackets, with optional padding inside.
            if let open = before, open == UInt8(ascii: "[") || open == UInt8(ascii: "<") || open == UInt8(ascii: "(") {
                var k = j
                while k < n, bytes[k] == 0x20 { k += 1 }
                if k < n, bytes[k] == closing(open) { return level }
            }
            // 5. bare upper case.
            let upper = (i..<j).allSatisfy { bytes[$0] >= 65 && bytes[$0] <= 90 }
            if upper { return level }
            // 6. Capitalised, followed by a colon.
            let capitalised = bytes[i] >= 65 && bytes[i] <= 90 && (i + 1..<j).allSatisfy { bytes[$0] >= 97 }
            if capitalised, after == UInt8(ascii: ":") { return level }
        }
        return bytes[0] == UInt8(ascii: "{") ? numericLevel(bytes, full: full) : nil
    }

    static let numericLevels: [Int: Int] = [10: 7, 20: 7, 30: 6, 40: 4, 50: 3, 60: 2]

    /// `"level":30`, `level=3`: a number as the value of a level key.
    private static func numericLevel(_ bytes: UnsafeRawBufferPointer, full: UnsafeRawBufferPointer) -> Int? {
        let n = bytes.count
        var i = 0
        while i < n {
            guard isDigit(bytes[i]), i == 0 || !isWordByte(bytes[i - 1]) && bytes[i - 1] != UInt8(ascii: ".") else {
                i += 1
                continue
            }
            var j = i
            var value = 0
            while j < n, isDigit(bytes[j]), j - i < 3 {
                value = value * 10 + Int(bytes[j] - 48)
                j += 1
            }
            defer { i = j + 1 }
            // A whole number: no digit, letter or fraction glued after it (look past the window too).
            if j < full.count, isWordByte(full[j]) || full[j] == UInt8(ascii: ".") { continue }
            guard let key = precedingKey(bytes, wordStart: i), keys.contains(key.lowercased()) else { continue }
            if value <= 7 { return value }
            if let level = numericLevels[value] { return level }
        }
        return nil
    }

    /// For `level=W` or `"level":"W"` or `level: W`: the key before the value that starts at `wordStart`.
    private static func precedingKey(_ bytes: UnsafeRawBufferPointer, wordStart: Int) -> String? {
        var k = wordStart - 1
        if k >= 0, bytes[k] == UInt8(ascii: "\"") { k -= 1 }
        while k >= 0, bytes[k] == 0x20 { k -= 1 }
        guard k >= 0, bytes[k] == UInt8(ascii: "=") || bytes[k] == UInt8(ascii: ":") else { return nil }
        k -= 1
        if k >= 0, bytes[k] == UInt8(ascii: "\"") { k -= 1 }
        let end = k + 1
        while k >= 0, isWordByte(bytes[k]) { k -= 1 }
        let start = k + 1
        guard start < end else { return nil }
        return String(decoding: UnsafeRawBufferPointer(rebasing: bytes[start..<end]), as: UTF8.self)
    }

    private static func closing(_ open: UInt8) -> UInt8 {
        switch open {
        case UInt8(ascii: "["): return UInt8(ascii: "]")
        case UInt8(ascii: "<"): return UInt8(ascii: ">")
        default: return UInt8(ascii: ")")
        }
    }

    private static func isDigit(_ b: UInt8) -> Bool { b >= 48 && b <= 57 }
    private static func isLetter(_ b: UInt8) -> Bool { (b | 0x20) >= 97 && (b | 0x20) <= 122 }
    private static func isWordByte(_ b: UInt8) -> Bool { isLetter(b) || isDigit(b) || b == UInt8(ascii: "_") }
}
