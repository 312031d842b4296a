import Foundation
import Testing

@testable import LogcastProtocol

@Suite struct FieldParserTests {
    func pairs(_ message: String) -> [String]? {
        FieldParser.fields(of: message)?.pairs.map { "\($0.name)=\($0.value)" }
    }

    // MARK: JSON

    @Test func aJSONObjectIsFlattenedIntoDottedNames() {
        let line =
            #"{"level":"error","http":{"status":500,"req":{"path":"/a b"}},"ok":true,"no":false,"gone":null,"tags":[1, "x", {"y":[]}],"n":-1.5e3}"#
        #expect(
            pairs(line) == [
                "level=error", "http.status=500", "http.req.path=/a b", "ok=true", "no=false", #"tags=[1, "x", {"y":[]}]"#, "n=-1.5e3",
            ]
        )
    }

    @Test func stringsAreUnescaped() {
        #expect(pairs(#"{"m":"a\"b\\c\/d\n\t\u00e9\ud83d\ude00\ud800x"}"#) == ["m=a\"b\\c/d\n\té😀\u{FFFD}x"])
    }

    @Test func blanksAroundTheObjectAreAllowed() {
        #expect(pairs(" \t{ \"a\" : 1 , \"b\":\"c\" } \r\n") == ["a=1", "b=c"])
    }

    @Test(arguments: [
        #"{"a":1} trailing"#, #"{"a":1"#, #"{"a" 1}"#, #"{"a":01}"#, #"{"a":1.}"#, #"{"a":-}"#, #"{"a":tru}"#, #"{"a":"x}"#,
        "{\"a\":\"raw\u{1}control\"}", #"{"a":[1,2}"#, #"{a:1}"#, #"{"a":1,}"#, #"{"a":"\x"}"#, #"{"a":"\u12"}"#, "{}", #"{"a":null}"#,
    ])
    func aLineThatIsNotAnObjectWithFieldsHasNone(line: String) {
        #expect(FieldParser.fields(of: line) == nil, "\(line)")
    }

    @Test func aFieldWithANulIsLeftOutAndTheOthersKept() {
        #expect(pairs(#"{"a":"x\u0000y","b":"2"}"#) == ["b=2"])
    }

    /// How many fields Foundation's reading of `object` has, by the rules (nulls and empty objects have none).
    func fieldCount(_ object: [String: Any]) -> Int {
        object.values.reduce(0) { total, value in
            if let nested = value as? [String: Any] { return total + fieldCount(nested) }
            return total + (value is NSNull ? 0 : 1)
        }
    }

    @Test func theParserAgreesWithFoundationOnWhatIsValid() {
        // Random objects from a fixed seed, half of them damaged by one
        // edit: the parser accepts exactly the valid ones that have fields,
        // with as many names.
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        func next(_ bound: Int) -> Int {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return Int((state >> 33) % UInt64(bound))
        }
        func value(_ depth: Int) -> String {
            switch next(depth > 2 ? 6 : 8) {
            case 0: return "\(next(1000) - 500)"
            case 1: return "-\(next(9)).\(next(99))e\(next(5))"
            case 2: return #""s\#(next(50))\n\u00e9""#
            case 3: return ["true", "false", "null"][next(3)]
            case 4: return #"" spaced ""#
            case 5: return "\"\\\"q\\\\\""
            case 6: return "[" + (0..<next(3)).map { _ in value(depth + 1) }.joined(separator: ",") + "]"
            default: return "{" + (0..<next(4)).map { "\"k\($0)\": " + value(depth + 1) }.joined(separator: ", ") + "}"
            }
        }
        let edits = [#"{"#, #"}"#, #"""#, #":"#, #","#, #"["#, #"]"#, "1", "\\", "e", " ", "-"]
        var accepted = 0
        for round in 0..<3000 {
            var text = "{" + (0..<1 + next(4)).map { "\"f\($0)\":" + value(0) }.joined(separator: ",") + "}"
            if round % 2 == 1 {
                var bytes = Array(text.utf8)
                let at = next(bytes.count)
                if next(2) == 0 { bytes.remove(at: at) } else { bytes.insert(contentsOf: edits[next(edits.count)].utf8, at: at) }
                text = String(decoding: bytes, as: UTF8.self)
            }
            // Foundation on Linux also takes a trailing comma, which JSON does not allow.
            if text.range(of: #",\s*[}\]]"#, options: .regularExpression) != nil { continue }
            let object = (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any]
            let parsed = FieldParser.fields(of: text)
            if let parsed {
                accepted += 1
                #expect(object != nil, "accepted what is not a JSON object: \(text)")
                if let object { #expect(Set(parsed.names).count == fieldCount(object), "\(text)") }
            } else if let object {
                #expect(fieldCount(object) == 0, "refused a valid object with fields: \(text)")
            }
        }
        #expect(accepted > 1000, "the generator makes valid objects")
    }

    // MARK: logfmt

    @Test func logfmtPairsAreFoundAmongTheWords() {
        let line = #"2026-12-04 12:00:00 INFO level=info msg="user logged in" user=bob dur=1.5ms path=/x?a=b empty= _x.y-z/w@v=1"#
        #expect(pairs(line) == ["level=info", "msg=user logged in", "user=bob", "dur=1.5ms", "path=/x?a=b", "empty=", "_x.y-z/w@v=1"])
    }

    @Test func quotedValuesAreUnescaped() {
        #expect(pairs(#"a="x \"y\" \\ z\n" b=2"#) == ["a=x \"y\" \\ z\n", "b=2"])
    }

    @Test(
        arguments: [
            ("=x a=1", ["a=1"]),  // no key
            ("1a=2 b=3", ["b=3"]),  // a key starts with a letter or _
            ("x:=1 c=4", ["c=4"]),
            (#"a="unterminated b=2"#, nil),  // the rest of the line is one open quote
            (#"a="x"y b=2"#, ["b=2"]),  // a quote glued to more is not a value
            ("word a=1 a=2", ["a=1", "a=2"]),
            ("no pairs here", nil),
        ] as [(String, [String]?)]
    )
    func logfmtEdges(line: String, expected: [String]?) {
        #expect(pairs(line) == expected, "\(line)")
    }

    // MARK: Bounds

    @Test func deepNestingCostsBoundedWorkAndGivesNoFields() {
        let deep = String(repeating: #"{"a":"#, count: 10_000) + "1" + String(repeating: "}", count: 10_000)
        #expect(FieldParser.fields(of: deep) == nil)
        let deepArray = #"{"a":"# + String(repeating: "[", count: 10_000) + String(repeating: "]", count: 10_000) + "}"
        #expect(FieldParser.fields(of: deepArray) == nil)
        let atTheLimit = String(repeating: #"{"a":"#, count: FieldParser.maxDepth) + "1" + String(repeating: "}", count: FieldParser.maxDepth)
        #expect(pairs(atTheLimit) == [Array(repeating: "a", count: FieldParser.maxDepth).joined(separator: ".") + "=1"])
    }

    @Test func aLineOverTheSizeBoundHasNoFields() {
        let big = #"{"a":""# + String(repeating: "x", count: FieldParser.maxMessageBytes) + #""}"#
        #expect(FieldParser.fields(of: big) == nil)
        #expect(FieldParser.fields(of: "a=1 " + String(repeating: "x", count: 1 << 20)) == nil)
    }

    @Test func tooManyFieldsMeansNone() {
        let many = (0...FieldParser.maxFields).map { "k\($0)=v" }.joined(separator: " ")
        #expect(FieldParser.fields(of: many) == nil)
        let enough = (1...FieldParser.maxFields).map { "k\($0)=v" }.joined(separator: " ")
        #expect(FieldParser.fields(of: enough)?.count == FieldParser.maxFields)
        let json = "{" + (0...FieldParser.maxFields).map { "\"k\($0)\":1" }.joined(separator: ",") + "}"
        #expect(FieldParser.fields(of: json) == nil)
    }

    // MARK: LineFields

    @Test func lineFieldsKeepOrderAndRepeatsAndEncodeTheLastValue() throws {
        var fields = LineFields()
        let added = [
            fields.append(name: "a", value: "1"), fields.append(name: "b", value: "x\"y"), fields.append(name: "a", value: "2"),
            fields.append(name: "", value: "e"), fields.append(name: "n", value: "nul\u{0}"),
        ]
        #expect(added == [true, true, true, false, false])
        #expect(fields.count == 3 && fields.names == ["a", "b"])
        #expect(fields.last(named: "a") == "2" && fields.last(named: "zz") == nil)
        #expect(fields.jsonObject(selecting: nil).map { String(decoding: $0, as: UTF8.self) } == #"{"a":"2","b":"x\"y"}"#)
        #expect(fields.jsonObject(selecting: ["b", "zz"]).map { String(decoding: $0, as: UTF8.self) } == #"{"b":"x\"y"}"#)
        #expect(fields.jsonObject(selecting: ["zz"]) == nil)
        #expect(LineFields(storage: fields.storage) == fields)
        #expect(LineFields(storage: Array("a\u{0}b".utf8)) == nil)
    }
}
