import Testing

@testable import LogcastProtocol

@Suite struct QueryStringTests {
    private func pairs(_ query: Substring) -> [[String]] {
        QueryString.parse(query).map { [$0.key, $0.value] }
    }

    @Test func pairsInOrder() {
        #expect(pairs("grep=a&source=b&grep=c") == [["grep", "a"], ["source", "b"], ["grep", "c"]])
    }

    @Test func percentDecoding() {
        #expect(pairs("grep=a%20b%2Cc%3d") == [["grep", "a b,c="]])
    }

    @Test func percentEncodedUTF8() {
        #expect(pairs("grep=caf%C3%A9") == [["grep", "café"]])
    }

    @Test func plusIsASpace() {
        #expect(pairs("grep=disk+full") == [["grep", "disk full"]])
        #expect(pairs("grep=a%2Bb") == [["grep", "a+b"]])
    }

    @Test func invalidEscapesAreKept() {
        #expect(pairs("grep=100%") == [["grep", "100%"]])
        #expect(pairs("grep=%zz") == [["grep", "%zz"]])
        #expect(pairs("grep=%4") == [["grep", "%4"]])
        #expect(pairs("grep=%4g1") == [["grep", "%4g1"]])
    }

    @Test func invalidUTF8BecomesReplacementCharacter() {
        #expect(pairs("grep=%FFx") == [["grep", "\u{FFFD}x"]])
    }

    @Test func keysWithoutEqualsHaveEmptyValues() {
        #expect(pairs("follow&grep=x") == [["follow", ""], ["grep", "x"]])
    }

    @Test func onlyTheFirstEqualsSplits() {
        #expect(pairs("regex=a=b") == [["regex", "a=b"]])
    }

    @Test func keysAreDecodedToo() {
        #expect(pairs("gr%65p=x&a+b=c") == [["grep", "x"], ["a b", "c"]])
    }

    @Test func emptyPairsAreSkipped() {
        #expect(pairs("&&grep=x&&") == [["grep", "x"]])
        #expect(pairs("").isEmpty)
        #expect(pairs("=v") == [["", "v"]])
    }

    @Test func queryOfTarget() {
        #expect(QueryString.query(ofTarget: "/ws?grep=a&b=c") == "grep=a&b=c")
        #expect(QueryString.query(ofTarget: "/ws?grep=a#frag") == "grep=a")
        #expect(QueryString.query(ofTarget: "/ws") == "")
        #expect(QueryString.query(ofTarget: "/ws?") == "")
    }

    @Test func pathOfTarget() {
        #expect(QueryString.path(ofTarget: "/api/v1/lines?grep=a") == "/api/v1/lines")
        #expect(QueryString.path(ofTarget: "/ws") == "/ws")
        #expect(QueryString.path(ofTarget: "?x") == "")
    }
}

@Suite struct QueryEncodingTests {
    @Test(arguments: ["plain", "a b", "a+b&c=d", "100%", "ünï/cødé?#", "tab\tnew\nline", ""])
    func encodedQueriesParseBackToTheirItems(_ value: String) {
        let encoded = QueryString.encode([("grep", value), ("source", "app")])
        let parsed = QueryString.parse(Substring(encoded))
        #expect(parsed.map(\.key) == ["grep", "source"])
        #expect(parsed.map(\.value) == [value, "app"])
    }

    @Test func onlyUnreservedCharactersStayAsTheyAre() {
        #expect(QueryString.encode([("k", "Az09-._~")]) == "k=Az09-._~")
        #expect(QueryString.encode([("k", "a+b c")]) == "k=a%2Bb%20c")
    }
}
