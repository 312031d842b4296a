import LogcastProtocol
import Testing

@testable import LogcastHub

@Suite struct FieldConditionTests {
    func condition(_ text: String) throws -> FieldCondition {
        try FieldCondition.parse(text)
    }

    func failure(_ text: String) -> FilterError? {
        do throws(FilterError) {
            let parsed = try FieldCondition.parse(text)
            Issue.record("expected an error, got \(parsed)")
            return nil
        } catch {
            return error
        }
    }

    // MARK: Parsing

    @Test(arguments: [
        ("status=500", "status", FieldCondition.Operator.equal, "500"),
        ("status!=500", "status", .notEqual, "500"),
        ("user~^adm", "user", .matches, "^adm"),
        ("http.status>=500", "http.status", .greaterOrEqual, "500"),
        ("n>1", "n", .greater, "1"),
        ("n<=1", "n", .lessOrEqual, "1"),
        ("n<1", "n", .less, "1"),
        ("_PID=1234", "_PID", .equal, "1234"),
        ("url~a=b<c", "url", .matches, "a=b<c"),
        ("msg=", "msg", .equal, ""),
        ("path=/a,b", "path", .equal, "/a,b"),
    ])
    func everyOperatorParses(text: String, name: String, op: FieldCondition.Operator, value: String) throws {
        let parsed = try condition(text)
        #expect(parsed == FieldCondition(name: name, op: op, value: value))
        #expect(parsed.description == text, "the normalised form is the expression")
    }

    @Test(arguments: [
        ("status", "has no operator"),
        ("=500", "has no name"),
        ("a b=1", "a blank"),
        ("st!500", "'!' must be followed by '='"),
        ("n>", "nothing to compare"),
        ("n~", "nothing to compare"),
        ("n<=", "nothing to compare"),
        (String(repeating: "x", count: 300) + "=1", "longer than"),
    ])
    func badExpressionsNameTheProblem(text: String, problem: String) throws {
        let error = try #require(failure(text))
        #expect(error.error.contains(problem), "\(error.error)")
        #expect(error.hint.contains("field=status>=500"), "the hint shows a right form")
    }

    @Test func aBadFieldRegexIsRefusedWhenTheMatcherIsBuilt() throws {
        var filter = Filter()
        filter.fields = [try condition("user~(")]
        #expect(throws: FilterError.self) { try LineMatcher(filter) }
    }

    // MARK: Evaluation

    func passes(_ expression: String, _ message: String) throws -> Bool {
        var filter = Filter()
        filter.fields = [try condition(expression)]
        return try LineMatcher(filter).matches(TestSupport.record(message))
    }

    @Test(arguments: [
        ("status=500", #"{"status":500}"#, true),
        ("status=500", #"{"status":"500.0"}"#, true),  // both numbers: numeric equality
        ("status=500", #"{"status":"5e2"}"#, true),
        ("status=500", #"{"status":501}"#, false),
        ("user=bob", "user=bob", true),
        ("user=bob", "user=Bob", false),  // exact
        ("user!=bob", "user=alice", true),
        ("user!=bob", "user=bob", false),
        ("user!=bob", "other=1", false),  // a line without the field does not pass
        ("status>=500", #"{"status":500}"#, true),
        ("status>=500", #"{"status":499}"#, false),
        ("status>500", #"{"status":500}"#, false),
        ("status<500", #"{"status":-1}"#, true),
        ("status<=500", "status=500", true),
        ("status>=500", "status=abc", false),  // not a number: does not pass a numeric comparison
        ("status>=500", "msg=x", false),
        ("ts>=2026-12-01", "ts=2026-12-04T10:00", true),  // strings compare byte by byte
        ("ts>=2026-12-01", "ts=2026-11-30", false),
        ("ts<b", "ts=a", true),
        ("http.status>=500", #"{"http":{"status":503}}"#, true),
        ("http.status>=500", #"{"http":{"status":200}}"#, false),
        ("user~^adm", #"{"user":"admin"}"#, true),
        ("user~^adm", #"{"user":"ADMIN"}"#, true),  // smart-case: lower-case pattern ignores case
        ("user~^Adm", #"{"user":"admin"}"#, false),
        ("a=2", "a=1 a=2", true),  // any value of a repeated field
        ("a!=1", "a=1 a=2", true),
        ("empty=", "empty= x=1", true),
        ("msg=hello", "just text", false),
        ("tags=[1,2]", #"{"tags":[1,2]}"#, true),
    ])
    func conditionsFollowTheRules(expression: String, message: String, expected: Bool) throws {
        #expect(try passes(expression, message) == expected, "\(expression) on \(message)")
    }

    @Test func everyConditionMustHoldAndTheyComeAfterTheTextKeys() throws {
        var filter = Filter()
        filter.fields = [try condition("status>=500"), try condition("user=bob")]
        filter.grep = ["GET"]
        let matcher = try LineMatcher(filter)
        #expect(matcher.needsFields && !matcher.passesEverything)
        #expect(matcher.matches(TestSupport.record("GET status=500 user=bob")))
        #expect(!matcher.matches(TestSupport.record("GET status=500 user=eve")))
        #expect(!matcher.matches(TestSupport.record("PUT status=500 user=bob")))
        var asked = 0
        #expect(
            !matcher.matches(TestSupport.record("PUT status=500 user=bob")) {
                asked += 1
                return nil
            }
        )
        #expect(asked == 0, "fields are not parsed for a line the text keys already refuse")
    }

    @Test func journalFieldsAreUsedAsTheyAre() throws {
        var record = TestSupport.record(#"{"status":200}"#)
        var fields = LineFields()
        fields.append(name: "_PID", value: "1234")
        record.fields = fields
        var filter = Filter()
        filter.fields = [try condition("_PID=1234")]
        #expect(try LineMatcher(filter).matches(record))
        filter.fields = [try condition("status=200")]
        #expect(try !LineMatcher(filter).matches(record), "a source's own fields are the line's fields")
    }

    @Test func anEntryParsesItsFieldsOnce() throws {
        let record = TestSupport.record(#"{"status":503,"user":"bob"}"#)
        let entry = HubEntry(position: 1, payload: .line(record), json: ProtocolObject.line(record, seq: 1).encoded())
        let first = entry.fields
        #expect(first?.last(named: "status") == "503")
        #expect(entry.fields == first)
        var filter = Filter()
        filter.fields = [try condition("status>=500")]
        #expect(try LineMatcher(filter).matches(entry))
    }

    /// The first readers of a line's fields may race to parse them (no
    /// lock): every one gets the fields, for a message with fields, one
    /// without, and a line with a source's own; an event has none.
    @Test func readersRacingForTheFirstParseAllGetTheFields() async throws {
        var journal = TestSupport.record("status=1 plain")
        var own = LineFields()
        own.append(name: "_PID", value: "7")
        journal.fields = own
        let records = [
            TestSupport.record(#"{"status":503,"user":"bob"}"#), TestSupport.record("level=warn user=bob"),
            TestSupport.record("no fields here"), journal,
        ]
        for record in records {
            let expected = record.fields ?? FieldParser.fields(of: record.message)
            for round in 0..<50 {
                let entry = HubEntry(position: 1, payload: .line(record), json: ProtocolObject.line(record, seq: 1).encoded())
                let results = await withTaskGroup(of: LineFields?.self) { group in
                    for _ in 0..<8 { group.addTask { entry.fields } }
                    return await group.reduce(into: [LineFields?]()) { $0.append($1) }
                }
                #expect(results.count == 8 && results.allSatisfy { $0 == expected }, "\(record.message), round \(round)")
                #expect(entry.fields == expected, "and after the race")
            }
        }
        let event = HubEntry(position: 1, payload: .event(SourceEvent(source: "app", kind: .rotated)), json: [])
        #expect(event.fields == nil)
    }

    // MARK: fields=

    @Test func fieldSelectionsParse() throws {
        #expect(try FieldSelection.parse("*") == .all)
        #expect(try FieldSelection.parse("a,b,a,*") == .all)
        #expect(try FieldSelection.parse("status,http.status,,status") == .names(["status", "http.status"]))
        #expect(throws: FilterError.self) { try FieldSelection.parse(",") }
        #expect(throws: FilterError.self) { try FieldSelection.parse("a b") }
        #expect(throws: FilterError.self) { try FieldSelection.parse("a=b") }
        let many = (0...FieldSelection.maxNames).map { "f\($0)" }.joined(separator: ",")
        #expect(throws: FilterError.self) { try FieldSelection.parse(many) }
    }

    @Test func theMemberHoldsTheChosenFieldsAsStrings() throws {
        let fields = FieldParser.fields(of: #"{"status":500,"user":"bob","nested":{"x":true}}"#)
        #expect(
            FieldSelection.all.member(fields).map { String(decoding: $0, as: UTF8.self) }
                == #","fields":{"status":"500","user":"bob","nested.x":"true"}"#
        )
        #expect(
            FieldSelection.names(["user", "missing"]).member(fields).map { String(decoding: $0, as: UTF8.self) } == #","fields":{"user":"bob"}"#
        )
        #expect(FieldSelection.names(["missing"]).member(fields) == nil)
        #expect(FieldSelection.all.member(nil) == nil)
    }
}
