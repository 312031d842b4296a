import Testing

@testable import LogcastProtocol

@Suite struct JSONWriterTests {
    private func encode(_ body: (inout JSONWriter) -> Void) -> String {
        var writer = JSONWriter()
        body(&writer)
        return String(decoding: writer.bytes, as: UTF8.self)
    }

    @Test func objectWithFieldsAndCommas() {
        let json = encode {
            $0.beginObject()
            $0.field("s", "x")
            $0.field("n", 42)
            $0.field("b", true)
            $0.field("nil", nil as String?)
            $0.field("nilInt", nil as Int?)
            $0.field("a", strings: ["p", "q"])
            $0.field("e", strings: [])
            $0.endObject()
        }
        #expect(json == #"{"s":"x","n":42,"b":true,"a":["p","q"],"e":[]}"#)
    }

    @Test func nestedObjectsAndArrays() {
        let json = encode {
            $0.beginArrayValue()
            $0.beginObject()
            $0.key("inner")
            $0.beginObject()
            $0.field("k", -1)
            $0.endObject()
            $0.endObject()
            $0.value("v")
            $0.endArray()
        }
        #expect(json == #"[{"inner":{"k":-1}},"v"]"#)
    }

    @Test func rawFieldIsCopiedVerbatim() {
        let json = encode {
            $0.beginObject()
            $0.field("a", 1)
            $0.rawField("raw", Array(#"{"x":[1,2]}"#.utf8))
            $0.field("b", 2)
            $0.endObject()
        }
        #expect(json == #"{"a":1,"raw":{"x":[1,2]},"b":2}"#)
    }

    @Test func newlineSeparatesObjectsWithoutComma() {
        let json = encode {
            $0.beginObject()
            $0.endObject()
            $0.newline()
            $0.beginObject()
            $0.endObject()
            $0.newline()
        }
        #expect(json == "{}\n{}\n")
    }

    @Test func escapesOnlyWhatRFC8259Requires() {
        let json = encode { $0.value("q\" b\\ n\n r\r t\t nul\u{0} esc\u{1B} us\u{1F} sp é/") }
        #expect(json == #""q\" b\\ n\n r\r t\t nul\u0000 esc\u001b us\u001f sp é/""#)
    }

    @Test func escapesKeysToo() {
        let json = encode {
            $0.beginObject()
            $0.field("a\"b", "c")
            $0.endObject()
        }
        #expect(json == #"{"a\"b":"c"}"#)
    }

    /// The escape, byte by byte, as RFC 8259 asks: what the word-at-a-time scan must equal.
    private static func reference(_ text: String) -> [UInt8] {
        var out: [UInt8] = [UInt8(ascii: "\"")]
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "\""): out += Array(#"\""#.utf8)
            case UInt8(ascii: "\\"): out += Array(#"\\"#.utf8)
            case 0x0A: out += Array(#"\n"#.utf8)
            case 0x0D: out += Array(#"\r"#.utf8)
            case 0x09: out += Array(#"\t"#.utf8)
            case ..<0x20:
                let hex = Array("0123456789abcdef".utf8)
                out += Array(#"\u00"#.utf8) + [hex[Int(byte >> 4)], hex[Int(byte & 0xF)]]
            default: out.append(byte)
            }
        }
        out.append(UInt8(ascii: "\""))
        return out
    }

    /// Every byte that needs an escape, and its neighbours that do not
    /// (0x1F/0x20, 0x21/0x23, 0x5B/0x5D, 0x7F, UTF-8 lead and continuation
    /// bytes), at every position of strings from 0 to 24 bytes long: the
    /// eight-byte scan finds each in any lane, after a clean word or in the
    /// tail, and copies everything else unchanged.
    @Test func escapingMatchesTheByteByByteRuleAtEveryPosition() {
        var special: [UInt8] = Array(0x00...0x20)
        special += [0x21, 0x22, 0x23, 0x5B, 0x5C, 0x5D, 0x7E, 0x7F]
        for length in 0...24 {
            for position in 0..<max(length, 1) {
                for byte in special {
                    var scalars = Array(repeating: Character("a"), count: length)
                    if length > 0 { scalars[position] = Character(Unicode.Scalar(byte)) }
                    let text = String(scalars)
                    #expect(JSONWriter.quotedString(text) == Self.reference(text), "\(length) bytes, 0x\(String(byte, radix: 16)) at \(position)")
                }
            }
        }
        // Multi-byte UTF-8 (lead bytes 0xC3, 0xE2, 0xF0; continuation bytes 0x80 to 0xBF) beside escapes, across word edges.
        for prefix in 0..<9 {
            let text = String(repeating: "x", count: prefix) + "é\"€\\😀\u{1}ü" + String(repeating: "y", count: 9 - prefix) + "\n"
            #expect(JSONWriter.quotedString(text) == Self.reference(text), "prefix \(prefix)")
        }
    }

    /// The word test on its own: every single byte value in every lane of an otherwise clean word.
    @Test func wordTestFlagsExactlyTheBytesThatNeedAnEscape() {
        let clean = UInt64(0x6161_6161_6161_6161)  // "aaaaaaaa"
        #expect(!JSONEscaping.needsEscape(clean))
        for lane in 0..<8 {
            for value in 0...255 {
                let word = (clean & ~(UInt64(0xFF) << (8 * lane))) | (UInt64(value) << (8 * lane))
                let expected = value < 0x20 || value == 0x22 || value == 0x5C
                #expect(JSONEscaping.needsEscape(word) == expected, "0x\(String(value, radix: 16)) in lane \(lane)")
            }
        }
    }

    /// A line's object, written in one allocation of its size
    /// (`ProtocolObject.encodedLine`), is byte for byte what the generic
    /// writer makes of the same fields in the same order, with every
    /// optional field present or absent, escapes, an empty message and a
    /// negative number.
    @Test func aLineObjectIsItsFieldsWrittenOneByOne() {
        for mask in 0..<256 {
            func present(_ bit: Int) -> Bool { mask & (1 << bit) != 0 }
            var record = LogRecord(
                timestamp: Timestamp(microseconds: 1_796_631_979_123_456),
                source: "app \"one\"",
                message: present(0) ? "first\nsecond \u{1} é \\ \"" : (mask % 5 == 0 ? "" : "plain"),
                host: present(1) ? "web-1" : nil,
                path: present(2) ? "/var/log/app.log" : nil,
                priority: present(3) ? 3 : nil,
                unit: present(4) ? "nginx.service" : nil,
                identifier: present(5) ? "nginx" : nil,
                pid: present(6) ? (mask % 2 == 0 ? 812 : -1) : nil,
                cursor: present(7) ? "s=abc;i=1" : nil
            )
            record.continued = mask % 3 == 0
            for seq in [nil, UInt64(42)] {
                var writer = JSONWriter()
                writer.beginObject()
                writer.field("type", "line")
                writer.field("seq", seq)
                writer.key("ts")
                writer.appendRawValue(JSONWriter.quotedString(record.timestamp.rfc3339))
                writer.field("source", record.source)
                writer.field("host", record.host)
                writer.field("path", record.path)
                writer.field("msg", record.message)
                if record.lineCount > 1 { writer.field("lines", record.lineCount) }
                if record.continued { writer.field("continued", true) }
                writer.field("priority", record.priority)
                writer.field("unit", record.unit)
                writer.field("identifier", record.identifier)
                writer.field("pid", record.pid)
                writer.field("cursor", record.cursor)
                writer.endObject()
                writer.newline()
                let encoded = ProtocolObject.line(record, seq: seq).encoded()
                #expect(encoded == writer.bytes, "mask \(mask), seq \(seq.map { "\($0)" } ?? "nil")")
            }
        }
    }
}
