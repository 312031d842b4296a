import LogcastProtocol
import Testing

@testable import LogcastHub

/// The shared text index: what it finds must be exactly what a plain
/// search finds, and a filter that uses it must pass exactly the lines it
/// passes without it.
@Suite struct TextIndexTests {
    private func entries(_ messages: [String]) -> [HubEntry] {
        messages.enumerated().map { index, message in
            HubEntry(position: UInt64(index + 1), payload: .line(TestSupport.record(message)), json: Array("{}\n".utf8))
        }
    }

    private func folded(_ text: String) -> [UInt8] { text.utf8.map(TextDictionary.fold) }

    /// Random keys and lines over a small alphabet (so that keys overlap,
    /// nest and repeat): the postings of every key are the lines whose
    /// folded message contains it, each once, in order.
    @Test(arguments: 1...30)
    func postingsAreWhatAPlainSearchFinds(seed: UInt64) throws {
        var rng = SeededGenerator(state: seed)
        let alphabet = Array("abAB c\u{e9}1")
        func word(_ length: ClosedRange<Int>) -> String {
            String((0..<Int.random(in: length, using: &rng)).map { _ in alphabet.randomElement(using: &rng)! })
        }
        let keys = (0..<Int.random(in: 1...40, using: &rng)).map { _ in folded(word(1...6)) }
        let messages = (0..<200).map { _ in word(0...40) }
        let dictionary = try #require(TextDictionary(keys: keys))
        let postings = dictionary.scan(entries(messages))
        for key in Set(keys) {
            let id = try #require(dictionary.id(of: key))
            let expected = messages.indices.filter { folded(messages[$0]).contains(key) }.map(Int32.init)
            #expect(Array(postings.lines(of: id)) == expected, "key \(String(decoding: key, as: UTF8.self))")
        }
    }

    @Test func keysPastTheTableLimitAreLeftOutAndTheRestKept() throws {
        // 2,000 keys of 20 bytes out of 100 byte values need far more than 2^20 moves.
        var rng = SeededGenerator(state: 3)
        var keys = (0..<2000).map { _ in (0..<20).map { _ in UInt8(0x80 + Int.random(in: 0..<100, using: &rng)) } }
        keys.append([])  // empty: never indexed
        keys.append([UInt8](repeating: 97, count: TextDictionary.maxKeyBytes + 1))  // too long
        let dictionary = try #require(TextDictionary(keys: keys))
        #expect(dictionary.id(of: []) == nil)
        #expect(dictionary.id(of: [UInt8](repeating: 97, count: TextDictionary.maxKeyBytes + 1)) == nil)
        #expect(dictionary.keys.count > 100 && dictionary.keys.count < 2000, "\(dictionary.keys.count) kept")
        for key in dictionary.keys { #expect(dictionary.id(of: key) != nil) }
        let kept = dictionary.keys.count
        let distinct = Set(keys.prefix(2000))
        #expect(kept + distinct.filter { dictionary.id(of: $0) == nil }.count == distinct.count)
        // What is kept is still found exactly.
        let lines = [keys[0] + keys[1], keys[2]].map { String(decoding: $0, as: UTF8.self) }
        let postings = dictionary.scan(entries(lines))
        for key in dictionary.keys.prefix(50) {
            let expected = lines.indices.filter { Array(lines[$0].utf8).contains(key) }.map(Int32.init)
            #expect(Array(postings.lines(of: dictionary.id(of: key)!)) == expected)
        }
        #expect(TextDictionary(keys: [[UInt8]]()) == nil)
    }

    @Test func whichGrepTheIndexStandsFor() throws {
        func key(_ grep: [String]) throws -> String? {
            var filter = Filter()
            filter.grep = grep
            return try LineMatcher(filter).textKey.map { String(decoding: $0, as: UTF8.self) }
        }
        #expect(try key(["G5 "]) == "g5 ", "case-sensitive: folded, the matcher checks the case")
        #expect(try key(["timeout"]) == "timeout")
        #expect(try key(["error", "connection timed out"]) == "connection timed out", "the longest")
        #expect(try key(["disk"]) == nil, "caseless k: the Kelvin sign folds to it")
        #expect(try key(["ssh"]) == nil, "caseless s: the long s folds to it")
        #expect(try key(["Disk"]) == "disk", "case-sensitive: exact bytes")
        #expect(try key(["été"]) == nil, "caseless non-ASCII")
        #expect(try key(["Été"]) == "Été", "case-sensitive (É is upper case): its bytes")
        #expect(try key([]) == nil)
    }

    /// The reason a caseless key must be ASCII without k or s: among all
    /// characters outside ASCII, PCRE2's caseless matching lets only the
    /// Kelvin sign stand for an ASCII letter (k) and the long s (s).
    @Test func onlyTheKelvinSignAndTheLongSFoldToAnASCIILetter() throws {
        var others = String.UnicodeScalarView()
        for value in UInt32(0x80)...0x10FFFF {
            guard let scalar = Unicode.Scalar(value), value != 0x212A, value != 0x17F else { continue }
            others.append(scalar)
        }
        let subject = String(others)
        for letter in "abcdefghijklmnopqrstuvwxyz" {
            let pattern = try Pattern(String(letter), kind: .fixedString, caseSensitive: false)
            #expect(!pattern.matches(subject), "\(letter) matches a character outside ASCII")
        }
        #expect(try Pattern("k", kind: .fixedString, caseSensitive: false).matches("\u{212A}"))
        #expect(try Pattern("s", kind: .fixedString, caseSensitive: false).matches("\u{17F}"))
    }

    // MARK: Through the hub

    /// What a subscriber has read (messages), until it has `count` lines.
    private func read(_ subscription: Subscription, lines count: Int) async -> [String] {
        var out: [String] = []
        while out.count < count {
            guard case .items(_, let items) = await subscription.boundedBatch(maxBytes: 1 << 20) else { break }
            for case .entry(let entry) in items {
                if case .line(let record) = entry.payload { out.append(record.message) }
            }
        }
        return out
    }

    /// Subscribers with indexable greps, before and after a chunk is
    /// published and with other keys beside them, get what their filter
    /// alone passes: the index only narrows where the filter looks.
    @Test(.timeLimit(.minutes(1))) func indexedSubscribersGetWhatTheirFilterPasses() async throws {
        let hub = Hub(epoch: "00000000000000ee")
        var rng = SeededGenerator(state: 7)
        let words = ["G5 ", "g5 ", "timeout", "TIMEOUT", "refused", "Kelvin", "\u{212A}elvin", "é"]
        let messages = (0..<2000).map { _ in (0..<4).map { _ in words.randomElement(using: &rng)! }.joined(separator: "-") }
        let filters: [[String]] = [["G5 "], ["timeout"], ["timeout", "refused"], ["kelvin"], ["Kelvin"], ["é"]]
        func subscribe(_ grep: [String], exclude: [String] = []) throws -> (Subscription, LineMatcher) {
            var filter = Filter()
            filter.grep = grep
            filter.exclude = exclude
            let matcher = try LineMatcher(filter)
            return (hub.subscribe(matcher: matcher, request: SubscriptionRequest(backlog: 0)), matcher)
        }
        var early = try filters.map { try subscribe($0) }
        early.append(try subscribe(["refused"], exclude: ["G5"]))
        hub.publish(messages[..<1000].map { TestSupport.record($0) })
        // Subscribed after that chunk: its key is in the next chunk's dictionary only.
        let late = try subscribe(["TIMEOUT"])
        hub.publish(messages[1000...].map { TestSupport.record($0) })
        for (subscription, matcher) in early {
            let expected = messages.filter { matcher.matches(TestSupport.record($0)) }
            #expect(!expected.isEmpty)
            #expect(await read(subscription, lines: expected.count) == expected, "\(matcher.filter.grep)")
        }
        let expected = messages[1000...].filter { $0.contains("TIMEOUT") }
        #expect(await read(late.0, lines: expected.count) == Array(expected))
        // Nothing more for anyone: a last line comes next to each whose filter passes it.
        let last = "G5 timeout refused Kelvin é TIMEOUT"
        hub.publish(TestSupport.record(last))
        for (subscription, matcher) in early + [late] where matcher.matches(TestSupport.record(last)) {
            #expect(await read(subscription, lines: 1) == [last])
        }
    }
}
