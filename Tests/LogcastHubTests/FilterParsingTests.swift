import LogcastProtocol
import Testing

@testable import LogcastHub

@Suite struct FilterParsingTests {
    private func parse(_ items: [(String, String)], knownSources: [String] = []) throws(FilterError) -> SubscriptionRequest {
        try SubscriptionRequest.parse(items.map { (key: $0.0, value: $0.1) }, limits: .init(knownSources: knownSources))
    }

    /// The error a parse throws, or nil (recording an issue) when it succeeds.
    private func failure(_ items: [(String, String)], knownSources: [String] = []) -> FilterError? {
        do throws(FilterError) {
            let request = try parse(items, knownSources: knownSources)
            Issue.record("expected an error, got \(request)")
            return nil
        } catch {
            return error
        }
    }

    @Test func emptyQueryGivesDefaults() throws {
        let request = try parse([])
        #expect(request == SubscriptionRequest())
        #expect(request.backlog == 10)
        #expect(request.after == nil)
        #expect(request.epoch == nil)
        #expect(request.format == .json)
        #expect(request.filter == Filter())
    }

    @Test func eachKeyIsApplied() throws {
        let request = try parse([
            ("source", "syslog"), ("grep", "timeout"), ("regex", "^E\\d+"), ("exclude", "healthz"),
            ("priority", "warning"), ("unit", "nginx"), ("identifier", "sshd"), ("host", "web1"),
            ("backlog", "100"), ("after", "1042"), ("epoch", "5f0c2a9e41d7b3aa"), ("format", "text"),
        ])
        #expect(request.filter.sources == ["syslog"])
        #expect(request.filter.grep == ["timeout"])
        #expect(request.filter.regex == "^E\\d+")
        #expect(request.filter.exclude == ["healthz"])
        #expect(request.filter.priority == 0...4)
        #expect(request.filter.units == ["nginx.service"])
        #expect(request.filter.identifiers == ["sshd"])
        #expect(request.filter.hosts == ["web1"])
        #expect(request.backlog == 100)
        #expect(request.after == 1042)
        #expect(request.epoch == "5f0c2a9e41d7b3aa")
        #expect(request.format == .text)
    }

    @Test func repeatedAndCommaSeparatedKeysAddValuesInOrder() throws {
        let request = try parse([("grep", "a,b"), ("grep", "c"), ("source", "x,y"), ("host", "h1"), ("host", "h2,h3")])
        #expect(request.filter.grep == ["a", "b", "c"])
        #expect(request.filter.sources == ["x", "y"])
        #expect(request.filter.hosts == ["h1", "h2", "h3"])
    }

    @Test func duplicateSourceUnitIdentifierHostValuesAreKeptOnce() throws {
        let request = try parse([("source", "a,a"), ("unit", "nginx"), ("unit", "nginx.service"), ("identifier", "x,x"), ("host", "h,h")])
        #expect(request.filter.sources == ["a"])
        #expect(request.filter.units == ["nginx.service"])
        #expect(request.filter.identifiers == ["x"])
        #expect(request.filter.hosts == ["h"])
    }

    @Test func regexIsNotSplitOnCommas() throws {
        let request = try parse([("regex", "a{1,3}")])
        #expect(request.filter.regex == "a{1,3}")
    }

    @Test func commasAreNotSplitWhenSplittingIsOff() throws {
        let request = try SubscriptionRequest.parse([(key: "grep", value: "a,b")], splitCommas: false)
        #expect(request.filter.grep == ["a,b"])
    }

    @Test func emptyValuesAreIgnored() throws {
        let request = try parse([
            ("grep", ""), ("grep", "a,,b,"), ("regex", ""), ("priority", ""), ("backlog", ""), ("source", ""),
            ("after", ""), ("epoch", ""), ("format", ""),
        ])
        #expect(request.filter.grep == ["a", "b"])
        #expect(request.filter.regex == nil)
        #expect(request.filter.priority == nil)
        #expect(request.filter.sources.isEmpty)
        #expect(request.backlog == SubscriptionRequest.defaultBacklog)
        #expect(request.after == nil)
        #expect(request.epoch == nil)
        #expect(request.format == .json)
    }

    @Test func emptyRegexDoesNotCountAsGivenTwice() throws {
        let request = try parse([("regex", ""), ("regex", "x")])
        #expect(request.filter.regex == "x")
    }

    @Test func unknownKeyIsRejectedNamingTheKnownKeys() throws {
        let error = try #require(failure([("grpe", "x")]))
        #expect(error.error.contains("'grpe'"))
        for key in SubscriptionRequest.allKeys {
            #expect(error.hint.contains(key), "hint should list \(key)")
        }
    }

    @Test func unknownSourceIsRejectedListingTheKnownSources() throws {
        let error = try #require(failure([("source", "syslog,nope")], knownSources: ["syslog", "journal"]))
        #expect(error.error.contains("'nope'"))
        #expect(error.hint.contains("syslog"))
        #expect(error.hint.contains("journal"))
    }

    @Test func knownSourceIsAccepted() throws {
        let request = try parse([("source", "journal")], knownSources: ["syslog", "journal"])
        #expect(request.filter.sources == ["journal"])
    }

    // MARK: priority

    @Test(arguments: [
        ("emerg", 0...0), ("alert", 0...1), ("crit", 0...2), ("err", 0...3), ("warning", 0...4),
        ("notice", 0...5), ("info", 0...6), ("debug", 0...7),
        ("error", 0...3), ("warn", 0...4), ("panic", 0...0), ("ERR", 0...3),
        ("0", 0...0), ("3", 0...3), ("7", 0...7),
        ("warning..err", 3...4), ("err..warning", 3...4), ("3..4", 3...4), ("4..3", 3...4),
        ("info..info", 6...6), ("emerg..debug", 0...7), ("1..warn", 1...4),
    ])
    func priorityForms(text: String, range: ClosedRange<Int>) throws {
        #expect(try SubscriptionRequest.parsePriority(text) == range)
        #expect(try parse([("priority", text)]).filter.priority == range)
    }

    @Test(arguments: ["8", "loud", "-1", "..err", "err..", "err..warning..info", "3...4", "10"])
    func badPriorityIsRejected(text: String) throws {
        let error = try #require(failure([("priority", text)]))
        #expect(error.error.contains(text))
        #expect(error.hint.contains("warning..err"))
    }

    @Test func priorityGivenTwiceIsRejected() throws {
        let error = try #require(failure([("priority", "err"), ("priority", "info")]))
        #expect(error.error.contains("priority given more than once"))
    }

    // MARK: backlog, after, epoch, format

    @Test(arguments: ["0", "1", "1000000"])
    func backlogInBounds(text: String) throws {
        #expect(try parse([("backlog", text)]).backlog == Int(text))
    }

    @Test(arguments: ["-1", "1000001", "ten", "1.5", " 5", "+5", "99999999999999999999"])
    func backlogOutOfBounds(text: String) throws {
        let error = try #require(failure([("backlog", text)]))
        #expect(error.error.contains("backlog '\(text)'"))
        #expect(error.error.contains("1000000"))
    }

    @Test(arguments: ["abc", "-1", "1e3", "18446744073709551616", "+7"])
    func afterMustBeASequenceNumber(text: String) throws {
        let error = try #require(failure([("after", text)]))
        #expect(error.error.contains("after '\(text)'"))
        #expect(error.hint.contains("after=1042"))
    }

    @Test func afterTakesTheFullUInt64Range() throws {
        #expect(try parse([("after", "18446744073709551615")]).after == UInt64.max)
    }

    @Test(arguments: ["xyz", "5F0C", "0x12", String(repeating: "a", count: 65)])
    func epochMustBeLowerCaseHex(text: String) throws {
        let error = try #require(failure([("epoch", text)]))
        #expect(error.error.contains("is not an epoch"))
    }

    @Test func epochOf64HexDigitsIsAccepted() throws {
        let epoch = String(repeating: "0123456789abcdef", count: 4)
        #expect(try parse([("epoch", epoch)]).epoch == epoch)
    }

    @Test func formatJsonAndText() throws {
        #expect(try parse([("format", "json")]).format == .json)
        #expect(try parse([("format", "text")]).format == .text)
    }

    @Test func badFormatIsRejected() throws {
        let error = try #require(failure([("format", "xml")]))
        #expect(error.error.contains("'xml'"))
        #expect(error.hint.contains("json"))
        #expect(error.hint.contains("text"))
    }

    // MARK: size and count limits

    @Test func valueOf1024BytesIsAccepted() throws {
        let value = String(repeating: "g", count: 1024)
        #expect(try parse([("grep", value)]).filter.grep == [value])
        #expect(try parse([("regex", value)]).filter.regex == value)
    }

    @Test func overLongValueIsRejected() throws {
        let value = String(repeating: "g", count: 1025)
        let error = try #require(failure([("grep", value)]))
        #expect(error.error.contains("grep is 1025 bytes long"))
        #expect(error.error.contains("1024"))
        #expect(error.hint.contains("grep"))
    }

    @Test func overLongRegexIsRejected() throws {
        let error = try #require(failure([("regex", String(repeating: "r", count: 1025))]))
        #expect(error.error.contains("regex is 1025 bytes long"))
    }

    @Test func valueLengthIsCountedInBytesNotCharacters() throws {
        let value = String(repeating: "é", count: 513)  // 1026 bytes, 513 characters
        let error = try #require(failure([("grep", value)]))
        #expect(error.error.contains("1026 bytes"))
    }

    @Test func regexGivenTwiceIsRejectedWithAHint() throws {
        let error = try #require(failure([("regex", "a"), ("regex", "b")]))
        #expect(error.error.contains("regex given more than once"))
        #expect(error.hint.contains("a|b"))
    }

    @Test func singleValuedKeysGivenTwiceAreRejected() throws {
        for key in ["backlog", "after", "format"] {
            let value = key == "format" ? "json" : "1"
            let error = try #require(failure([(key, value), (key, value)]))
            #expect(error.error.contains("\(key) given more than once"))
        }
    }

    @Test func tooManyValuesForOneKeyAreRejected() throws {
        let ok = (1...32).map { "g\($0)" }.joined(separator: ",")
        #expect(try parse([("grep", ok)]).filter.grep.count == 32)
        let error = try #require(failure([("grep", ok), ("grep", "one-more")]))
        #expect(error.error.contains("too many grep values"))
        #expect(error.error.contains("32"))
    }

    // MARK: unit normalisation

    @Test(arguments: [
        ("nginx", "nginx.service"), ("nginx.service", "nginx.service"), ("foo.socket", "foo.socket"),
        ("dev-sda.device", "dev-sda.device"), ("home.mount", "home.mount"), ("backup.timer", "backup.timer"),
        ("user.slice", "user.slice"), ("session-1.scope", "session-1.scope"), ("my.app", "my.app.service"),
    ])
    func unitNormalisation(unit: String, normalised: String) {
        #expect(Filter.normalizeUnit(unit) == normalised)
    }

    // MARK: encoding and errors

    @Test func priorityText() {
        #expect(Filter.priorityText(0...3) == "err")
        #expect(Filter.priorityText(3...4) == "err..warning")
        #expect(Filter.priorityText(0...0) == "emerg")
    }

    @Test func filterEncodesOnlyGivenKeys() throws {
        var writer = JSONWriter()
        Filter().encode(into: &writer)
        #expect(TestSupport.string(writer.bytes) == "{}")

        let request = try parse([("source", "a,b"), ("regex", "x\"y"), ("priority", "warning..err"), ("unit", "nginx")])
        var full = JSONWriter()
        request.filter.encode(into: &full)
        #expect(TestSupport.string(full.bytes) == #"{"source":["a","b"],"regex":"x\"y","priority":"err..warning","unit":["nginx.service"]}"#)
    }

    @Test func contextSetsBothSidesAndTheOneSidedKeysWinInAnyOrder() throws {
        #expect(try parse([("context", "3")]).filter.context == ContextWindow(before: 3, after: 3))
        #expect(try parse([("context", "3"), ("after-context", "1")]).filter.context == ContextWindow(before: 3, after: 1))
        #expect(try parse([("before-context", "0"), ("context", "5")]).filter.context == ContextWindow(before: 0, after: 5))
        #expect(try parse([("after-context", "100")]).filter.context == ContextWindow(before: 0, after: 100))
        #expect(try parse([("context", "0")]).filter.context.isEmpty)
        let request = try parse([("grep", "x"), ("before-context", "2"), ("after-context", "4")])
        #expect(TestSupport.string(request.filter.json) == #"{"grep":["x"],"before-context":2,"after-context":4}"#)
    }

    @Test(arguments: ["context", "before-context", "after-context"])
    func aContextKeyTakesAWholeNumberUpTo100Once(key: String) throws {
        for bad in ["101", "-1", "three", "1.5", " 2", "1e2", "+2", "99999999999999999999"] {
            let error = try #require(failure([(key, bad)]))
            #expect(error.error == "\(key) '\(bad)' is not a number of lines from 0 to 100")
            #expect(error.hint.hasPrefix("e.g. \(key)=3 for three lines"))
        }
        let twice = try #require(failure([(key, "1"), (key, "2")]))
        #expect(twice.error == "\(key) given more than once")
    }

    @Test func filterErrorJSONAndDescription() {
        let error = FilterError("bad \"x\"", hint: "try y")
        #expect(TestSupport.string(error.json) == #"{"error":"bad \"x\"","hint":"try y"}"#)
        #expect(error.description == "bad \"x\" (try y)")
    }

    @Test func fieldIsRepeatableAndNeverSplitAtCommas() throws {
        let request = try parse([("field", "status>=500"), ("field", "msg~a{1,3}"), ("field", "status>=500")])
        #expect(request.filter.fields.map(\.description) == ["status>=500", "msg~a{1,3}"], "a repeat is kept once")
        #expect(TestSupport.string(request.filter.json).contains(#""field":["status>=500","msg~a{1,3}"]"#))
        let many = (0...32).map { ("field", "f\($0)=1") }
        #expect(failure(many)?.error.contains("too many field values") == true)
        #expect(failure([("field", "status")])?.hint.contains("field=status>=500") == true)
    }

    @Test func fieldsSelectsOutputAndNeedsJSON() throws {
        #expect(try parse([("fields", "status,user")]).fields == .names(["status", "user"]))
        #expect(try parse([("fields", "*")]).fields == .all)
        #expect(try parse([]).fields == nil)
        let error = try #require(failure([("fields", "status"), ("format", "text")]))
        #expect(error.error.contains("fields needs format=json"))
        #expect(failure([("fields", "a b")])?.error.contains("a blank") == true)
    }
}
