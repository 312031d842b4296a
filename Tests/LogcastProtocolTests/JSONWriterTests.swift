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
}
