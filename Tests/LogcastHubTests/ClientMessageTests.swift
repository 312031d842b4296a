import LogcastProtocol
import Testing

@testable import LogcastHub

@Suite struct ClientMessageTests {
    private func subscribe(_ text: String, knownSources: [String] = []) throws -> SubscriptionRequest {
        switch ClientMessage.parse(text, knownSources: knownSources) {
        case .success(.subscribe(let request)): return request
        case .failure(let error):
            Issue.record("unexpected error: \(error)")
            throw error
        }
    }

    private func refusal(_ text: String, knownSources: [String] = []) -> FilterError? {
        switch ClientMessage.parse(text, knownSources: knownSources) {
        case .success(let message):
            Issue.record("expected an error, got \(message)")
            return nil
        case .failure(let error): return error
        }
    }

    @Test func subscribeWithArraysStringsAndBacklog() throws {
        let request = try subscribe(
            #"{"type":"subscribe","filter":{"grep":["timeout","refused"],"source":"syslog","#
                + #""priority":"warning..err","unit":["nginx"]},"backlog":100}"#,
            knownSources: ["syslog", "journal"]
        )
        #expect(request.filter.grep == ["timeout", "refused"])
        #expect(request.filter.sources == ["syslog"])
        #expect(request.filter.priority == 3...4)
        #expect(request.filter.units == ["nginx.service"])
        #expect(request.backlog == 100)
    }

    @Test func subscribeWithoutFilterGivesEmptyFilterAndDefaultBacklog() throws {
        let request = try subscribe(#"{"type":"subscribe"}"#)
        #expect(request.filter == Filter())
        #expect(request.backlog == SubscriptionRequest.defaultBacklog)
    }

    @Test func backlogMayBeGivenInsideFilter() throws {
        #expect(try subscribe(#"{"type":"subscribe","filter":{"backlog":5}}"#).backlog == 5)
        #expect(try subscribe(#"{"type":"subscribe","filter":{"backlog":"7"}}"#).backlog == 7)
    }

    @Test func numbersAreAcceptedAsValues() throws {
        #expect(try subscribe(#"{"type":"subscribe","filter":{"priority":3}}"#).filter.priority == 0...3)
    }

    @Test func arrayElementContainingACommaIsKeptWhole() throws {
        let request = try subscribe(#"{"type":"subscribe","filter":{"grep":["a,b","c"]}}"#)
        #expect(request.filter.grep == ["a,b", "c"])
    }

    @Test func plainStringForARepeatableKeyIsSplitOnCommas() throws {
        let request = try subscribe(#"{"type":"subscribe","filter":{"grep":"a,b"}}"#)
        #expect(request.filter.grep == ["a", "b"])
    }

    @Test func regexStringIsNotSplitOnCommas() throws {
        #expect(try subscribe(#"{"type":"subscribe","filter":{"regex":"x{1,2}"}}"#).filter.regex == "x{1,2}")
    }

    @Test(arguments: ["not json", "{", "", #"["subscribe"]"#, #""subscribe""#, "42"])
    func notAJSONObject(text: String) throws {
        let error = try #require(refusal(text))
        #expect(error.error == "message is not a JSON object")
        #expect(error.hint.contains(#""type":"subscribe""#))
    }

    @Test func missingType() throws {
        let error = try #require(refusal(#"{"filter":{}}"#))
        #expect(error.error.contains("no \"type\""))
    }

    @Test func nonStringType() throws {
        let error = try #require(refusal(#"{"type":1}"#))
        #expect(error.error.contains("no \"type\""))
    }

    @Test func unknownType() throws {
        let error = try #require(refusal(#"{"type":"unsubscribe"}"#))
        #expect(error.error.contains("unknown message type 'unsubscribe'"))
        #expect(error.hint.contains("subscribe"))
    }

    @Test func unknownTopLevelKey() throws {
        let error = try #require(refusal(#"{"type":"subscribe","grep":["x"]}"#))
        #expect(error.error.contains("unknown key 'grep'"))
        #expect(error.hint.contains("type, filter and backlog"))
    }

    @Test(arguments: [#"[]"#, #""grep=x""#, "1"])
    func filterNotAnObject(filter: String) throws {
        let error = try #require(refusal(#"{"type":"subscribe","filter":\#(filter)}"#))
        #expect(error.error.contains("\"filter\" is not an object"))
    }

    @Test(arguments: [
        (#""after":"5""#, "after"), (#""after":5"#, "after"),
        (#""epoch":"abcd""#, "epoch"), (#""format":"text""#, "format"),
    ])
    func streamPositionKeysAreRefused(field: String, key: String) throws {
        let error = try #require(refusal(#"{"type":"subscribe","filter":{\#(field)}}"#))
        #expect(error.error.contains("'\(key)' cannot change on an open stream"))
        #expect(error.hint.contains("reconnect"))
    }

    @Test func arrayWithNonStringElementIsRejected() throws {
        let error = try #require(refusal(#"{"type":"subscribe","filter":{"grep":["a",1]}}"#))
        #expect(error.error.contains("filter key 'grep'"))
    }

    @Test func objectValueIsRejected() throws {
        let error = try #require(refusal(#"{"type":"subscribe","filter":{"grep":{"a":1}}}"#))
        #expect(error.error.contains("filter key 'grep'"))
    }

    @Test func backlogMustBeANumber() throws {
        let error = try #require(refusal(#"{"type":"subscribe","backlog":["1","2"]}"#))
        #expect(error.error.contains("\"backlog\" must be a number"))
    }

    @Test func badBacklogValueIsJudgedByTheFilterParser() throws {
        let error = try #require(refusal(#"{"type":"subscribe","backlog":-3}"#))
        #expect(error.error.contains("backlog '-3'"))
    }

    @Test func filterKeyErrorsComeFromTheSharedParser() throws {
        let unknownKey = try #require(refusal(#"{"type":"subscribe","filter":{"bogus":"x"}}"#))
        #expect(unknownKey.error.contains("unknown parameter 'bogus'"))
        let unknownSource = try #require(refusal(#"{"type":"subscribe","filter":{"source":["nope"]}}"#, knownSources: ["syslog"]))
        #expect(unknownSource.error.contains("unknown source 'nope'"))
        #expect(unknownSource.hint.contains("syslog"))
    }

    @Test func parsedMessageEqualsTheEquivalentQuery() throws {
        let fromJSON = try subscribe(#"{"type":"subscribe","filter":{"grep":["a"],"priority":"err"},"backlog":3}"#)
        let fromQuery = try SubscriptionRequest.parse(QueryString.parse("grep=a&priority=err&backlog=3"))
        #expect(fromJSON == fromQuery)
    }

    @Test func aSubscribeMayChangeFieldConditionsButNotTheFieldsSent() throws {
        let request = try subscribe(#"{"type":"subscribe","filter":{"field":["status>=500","path=/a,b"]}}"#)
        #expect(request.filter.fields.map(\.description) == ["status>=500", "path=/a,b"], "array elements and strings are not split")
        let single = try subscribe(#"{"type":"subscribe","filter":{"field":"path=/a,b"}}"#)
        #expect(single.filter.fields.map(\.description) == ["path=/a,b"])
        #expect(refusal(#"{"type":"subscribe","filter":{"fields":"status"}}"#)?.error.contains("'fields' cannot change") == true)
    }
}
