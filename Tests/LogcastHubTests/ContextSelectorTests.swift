import LogcastProtocol
import Testing

@testable import LogcastHub

/// A small seeded generator, so that a failing random stream can be replayed.
struct SeededGenerator: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
        return state >> 11 | state << 53
    }
}

/// What a selector sent, as text: `m:SEQ` a match, `c:SEQ` a context line, `--` a separator, `e` an event.
private func rendered(_ items: [SubscriberQueue.Item]) -> [String] {
    items.compactMap { item in
        switch item {
        case .selected(let entry), .entry(let entry): entry.isLine ? "m:\(entry.position)" : "e"
        case .context(let entry): "c:\(entry.position)"
        case .separator: "--"
        case .control, .prime, .adopt, .run: nil
        }
    }
}

/// grep -B/-A over each file, written as plainly as possible: the lines of
/// a file within `before` lines before or `after` lines after a match are
/// sent; a line is sent when its match arrives (before-context and the
/// match) or when it arrives (after-context); `--` precedes a group that
/// does not follow on from the file's last line sent.
private func reference(_ lines: [(seq: UInt64, file: String, matches: Bool)], before: Int, after: Int) -> [String] {
    var byFile: [String: [Int]] = [:]  // file -> indices into `lines`, in order
    for (index, line) in lines.enumerated() { byFile[line.file, default: []].append(index) }
    var sendAt: [Int: Int] = [:]  // index into `lines` -> the index whose arrival sends it
    for indices in byFile.values {
        for (n, index) in indices.enumerated() where lines[index].matches {
            for k in max(0, n - before)...min(indices.count - 1, n + after) {
                let other = indices[k]
                let when = k <= n ? index : other
                sendAt[other] = min(sendAt[other] ?? .max, when)
            }
        }
    }
    var out: [String] = []
    var lastSent: [String: Int] = [:]  // file -> number in file of the last line sent
    let numberInFile = Dictionary(uniqueKeysWithValues: byFile.values.flatMap { $0.enumerated().map { ($0.element, $0.offset) } })
    for time in lines.indices {
        let sent = sendAt.filter { $0.value == time }.keys.sorted()
        for index in sent {
            let line = lines[index]
            let number = numberInFile[index]!
            if let last = lastSent[line.file], number != last + 1, index == sent.first { out.append("--") }
            lastSent[line.file] = number
            out.append((line.matches ? "m:" : "c:") + "\(line.seq)")
        }
    }
    return out
}

@Suite struct ContextSelectorTests {
    /// `items` fed to a new selector in batches of 1 to `most` items, as a
    /// writer drains them: what it sent, in order.
    private func selectedInBatches(
        _ items: [SubscriberQueue.Item],
        window: ContextWindow,
        matcher: LineMatcher,
        upTo most: Int,
        using random: inout SeededGenerator
    ) -> [SubscriberQueue.Item] {
        var selector = ContextSelector(window: window)
        var out: [SubscriberQueue.Item] = []
        var rest = items[...]
        while !rest.isEmpty {
            let size = Int.random(in: 1...most, using: &random)
            out += selector.select(Array(rest.prefix(size)), matcher: matcher)
            rest = rest.dropFirst(size)
        }
        return out
    }

    private func entry(_ seq: UInt64, source: String = "app", path: String? = "/a", message: String = "x") -> HubEntry {
        let record = TestSupport.record(message, source: source, path: path)
        return HubEntry(position: seq, payload: .line(record), json: ProtocolObject.line(record, seq: seq).encoded())
    }

    @Test func randomStreamsOfSeveralFilesGetWhatGrepWouldSendPerFile() throws {
        var random = SeededGenerator(state: 42)
        for round in 0..<300 {
            let before = Int.random(in: 0...3, using: &random)
            let after = Int.random(in: before == 0 ? 1...3 : 0...3, using: &random)
            let files = [("app", "/a"), ("app", "/b"), ("sys", nil)] as [(String, String?)]
            var lines: [(seq: UInt64, file: String, matches: Bool)] = []
            var items: [SubscriberQueue.Item] = []
            for seq in 1...UInt64(Int.random(in: 1...60, using: &random)) {
                let (source, path) = files[Int.random(in: 0..<files.count, using: &random)]
                let matches = Int.random(in: 0..<5, using: &random) == 0
                lines.append((seq, "\(source)\(path ?? "")", matches))
                items.append(.entry(entry(seq, source: source, path: path, message: matches ? "ERROR" : "ok")))
            }
            var filter = Filter()
            filter.grep = ["ERROR"]
            filter.context = ContextWindow(before: before, after: after)
            let matcher = try LineMatcher(filter)
            // Fed whole, or in batches as a writer drains them: the same.
            var whole = ContextSelector(window: filter.context)
            let expected = reference(lines, before: before, after: after)
            #expect(rendered(whole.select(items, matcher: matcher)) == expected, "round \(round), -B \(before) -A \(after)")
            let out = selectedInBatches(items, window: filter.context, matcher: matcher, upTo: 7, using: &random)
            #expect(rendered(out) == expected, "round \(round) in batches")
        }
    }

    /// Lines that come in runs of published chunks, whose text index names
    /// the lines that may match: what is sent is what grep would send, for
    /// chunks of one file (where a selector skips the stretches no match can
    /// reach) and of several, with and without an index, cut into runs and
    /// batches anywhere. Some lines hold the key but do not match (the
    /// regex wants a digit after it).
    @Test func runsWithATextIndexGetWhatGrepWouldSendPerFile() throws {
        var random = SeededGenerator(state: 7)
        var filter = Filter()
        filter.regex = #"ERROR \d"#
        for round in 0..<400 {
            let before = Int.random(in: 0...4, using: &random)
            let after = Int.random(in: before == 0 ? 1...4 : 0...4, using: &random)
            filter.context = ContextWindow(before: before, after: after)
            let matcher = try LineMatcher(filter)
            let key = try #require(matcher.textKey)
            let dictionary = try #require(TextDictionary(keys: [key, Array("other".utf8)]))
            let files = [("app", "/a"), ("app", "/b"), ("sys", nil)] as [(String, String?)]
            let density = Int.random(in: 2...40, using: &random)
            var lines: [(seq: UInt64, file: String, matches: Bool)] = []
            var items: [SubscriberQueue.Item] = []
            var seq: UInt64 = 0
            for _ in 0..<Int.random(in: 1...12, using: &random) {
                let oneFile = Int.random(in: 0..<3, using: &random) > 0
                let fileOfChunk = files[Int.random(in: 0..<files.count, using: &random)]
                var entries: [HubEntry] = []
                for _ in 0..<Int.random(in: 1...40, using: &random) {
                    seq += 1
                    let (source, path) = oneFile ? fileOfChunk : files[Int.random(in: 0..<files.count, using: &random)]
                    let kind = Int.random(in: 0..<density, using: &random)
                    let message = kind == 0 ? "ERROR 7" : kind == 1 ? "ERROR x" : "ok other"
                    lines.append((seq, "\(source)\(path ?? "")", kind == 0))
                    entries.append(entry(seq, source: source, path: path, message: message))
                }
                let chunk = HubChunk(lines: entries, dictionary: Int.random(in: 0..<4, using: &random) > 0 ? dictionary : nil)
                // The chunk in one to three runs.
                var start = 0
                while start < entries.count {
                    let end = Int.random(in: 0..<2, using: &random) == 0 ? entries.count : Int.random(in: (start + 1)...entries.count, using: &random)
                    items.append(.run(chunk.lines[start..<end], bytes: 0, chunk: chunk))
                    start = end
                }
            }
            let expected = reference(lines, before: before, after: after)
            var whole = ContextSelector(window: filter.context)
            #expect(rendered(whole.select(items, matcher: matcher)) == expected, "round \(round), -B \(before) -A \(after)")
            let out = selectedInBatches(items, window: filter.context, matcher: matcher, upTo: 3, using: &random)
            #expect(rendered(out) == expected, "round \(round) in batches")
        }
    }

    @Test func aChunkKnowsWhetherItsLinesComeFromOneFile() {
        let one = HubChunk(lines: [entry(1), entry(2), entry(3)], dictionary: nil)
        #expect(one.file?.source == "app" && one.file?.path == "/a")
        #expect(HubChunk(lines: [entry(1), entry(2, path: "/b")], dictionary: nil).file == nil, "another path")
        #expect(HubChunk(lines: [entry(1), entry(2, source: "sys")], dictionary: nil).file == nil, "another source")
        #expect(HubChunk(lines: [entry(1, path: nil), entry(2, path: nil)], dictionary: nil).file?.path == nil)
        #expect(HubChunk(lines: [entry(1, path: nil), entry(2)], dictionary: nil).file == nil, "no path, then a path")
        #expect(HubChunk(lines: [], dictionary: nil).file == nil)
    }

    /// The source all of a chunk's lines share, found in the same pass as
    /// the file: one source over two paths (a glob's members) still has it.
    @Test func aChunkKnowsWhetherItsLinesComeFromOneSource() {
        #expect(HubChunk(lines: [entry(1), entry(2, path: "/b")], dictionary: nil).source == "app", "two paths, one source")
        #expect(HubChunk(lines: [entry(1), entry(2, source: "sys")], dictionary: nil).source == nil, "another source")
        #expect(HubChunk(lines: [entry(1), entry(2, path: "/b"), entry(3, source: "sys")], dictionary: nil).source == nil)
        #expect(HubChunk(lines: [entry(1), TestSupport.eventEntry(2)], dictionary: nil).source == nil, "an event")
        #expect(HubChunk(lines: [], dictionary: nil).source == nil)
        let one = HubChunk(lines: [entry(1), entry(2)], dictionary: nil)
        #expect(one.source == "app" && one.file?.path == "/a")
    }

    @Test func aLineIsSentOnceAndSeparatorsSplitGroupsThatDoNotFollowOn() throws {
        var filter = Filter()
        filter.grep = ["E"]
        filter.context = ContextWindow(before: 1, after: 1)
        var selector = ContextSelector(window: filter.context)
        let messages = ["a", "E", "b", "E", "c", "d", "e", "f", "E"]
        let items = messages.enumerated().map { SubscriberQueue.Item.entry(entry(UInt64($0.offset + 1), message: $0.element)) }
        // 1 before 2 (E); 3 is after-context of 2 and before-context of 4 (E); 5 after 4; 6, 7 skipped; 8 before 9.
        #expect(rendered(selector.select(items, matcher: try LineMatcher(filter))) == ["c:1", "m:2", "c:3", "m:4", "c:5", "--", "c:8", "m:9"])
    }

    @Test func aRotationEndsTheFilesContextAndAGapEndsEverything() throws {
        var filter = Filter()
        filter.grep = ["E"]
        filter.context = ContextWindow(before: 2, after: 2)
        let matcher = try LineMatcher(filter)
        var selector = ContextSelector(window: filter.context)
        let rotated = HubEntry(
            position: 3,
            payload: .event(SourceEvent(source: "app", kind: .rotated, path: "/a")),
            json: ProtocolObject.source(SourceEvent(source: "app", kind: .rotated, path: "/a")).encoded()
        )
        let before = selector.select([.entry(entry(1)), .entry(entry(2)), .entry(rotated), .entry(entry(3, message: "E"))], matcher: matcher)
        #expect(rendered(before) == ["e", "m:3"], "lines of the old file are not context")
        _ = selector.select([.entry(entry(4)), .entry(entry(5))], matcher: matcher)  // after-context of 3
        _ = selector.select([.entry(entry(6))], matcher: matcher)
        selector.reset()
        #expect(rendered(selector.select([.entry(entry(8, message: "E"))], matcher: matcher)) == ["m:8"], "nothing before a gap")
    }

    @Test func contextIsTakenOnlyFromLinesThatPassTheSelectionKeys() throws {
        var filter = Filter()
        filter.grep = ["E"]
        filter.hosts = ["web1"]
        filter.context = ContextWindow(before: 1, after: 0)
        let matcher = try LineMatcher(filter)
        func line(_ seq: UInt64, host: String, _ message: String) -> SubscriberQueue.Item {
            let record = TestSupport.record(message, host: host, path: "/a")
            return .entry(HubEntry(position: seq, payload: .line(record), json: ProtocolObject.line(record, seq: seq).encoded()))
        }
        var selector = ContextSelector(window: filter.context)
        let out = selector.select([line(1, host: "web1", "a"), line(2, host: "db1", "b"), line(3, host: "web1", "E")], matcher: matcher)
        #expect(rendered(out) == ["c:1", "m:3"])
    }

    @Test func withContextPriorityChoosesMatchesAndTheLinesAroundAreAnyLevel() throws {
        var filter = Filter()
        filter.priority = 0...3
        filter.context = ContextWindow(before: 1, after: 1)
        let matcher = try LineMatcher(filter)
        let debug = TestSupport.record("debug", priority: 7)
        let error = TestSupport.record("error", priority: 3)
        #expect(matcher.admits(debug) && !matcher.matches(debug) && matcher.matches(error))
        var plain = Filter()
        plain.priority = 0...3
        #expect(try !LineMatcher(plain).admits(debug), "without context priority is a selection key, as before")
        #expect(try LineMatcher(filter).admitsEverything && !LineMatcher(plain).admitsEverything)
    }
}

@Suite struct HubContextTests {
    private func hub() -> Hub {
        var configuration = Hub.Configuration()
        configuration.historyLines = 1000
        return Hub(configuration: configuration, epoch: HubTests.epoch)
    }

    private func items(_ subscription: Subscription) async -> [SubscriberQueue.Item] {
        var out: [SubscriberQueue.Item] = []
        while case .items(_, let batch) = await subscription.boundedBatch(maxBytes: .max) {
            out += batch
            if subscription.queueDepth.items == 0 { break }
        }
        return out
    }

    private func matcher(before: Int, after: Int) throws -> LineMatcher {
        var filter = Filter()
        filter.grep = ["ERROR"]
        filter.context = ContextWindow(before: before, after: after)
        return try LineMatcher(filter)
    }

    /// Random lines of two files; every fifth or so an ERROR.
    private func publishRandom(_ hub: Hub, count: Int, seed: UInt64) -> [(seq: UInt64, file: String, matches: Bool)] {
        var random = SeededGenerator(state: seed)
        var lines: [(seq: UInt64, file: String, matches: Bool)] = []
        var records: [LogRecord] = []
        for seq in 1...UInt64(count) {
            let path = Bool.random(using: &random) ? "/a" : "/b"
            let matches = Int.random(in: 0..<5, using: &random) == 0
            lines.append((seq, path, matches))
            records.append(TestSupport.record(matches ? "ERROR \(seq)" : "ok \(seq)", path: path))
        }
        hub.publish(records)
        return lines
    }

    @Test func aResumeAnywhereGoesOnExactlyAsTheUnbrokenStreamWould() async throws {
        for (seed, before, after) in [(1, 2, 2), (2, 3, 0), (3, 0, 3), (4, 1, 4)] as [(UInt64, Int, Int)] {
            let hub = hub()
            let lines = publishRandom(hub, count: 200, seed: seed)
            let whole = reference(lines, before: before, after: after)
            for resumeAfter in stride(from: UInt64(0), through: 200, by: 13) {
                let subscription = hub.subscribe(
                    matcher: try matcher(before: before, after: after),
                    request: SubscriptionRequest(backlog: 0, after: resumeAfter, epoch: HubTests.epoch)
                )
                let got = rendered(await items(subscription))
                hub.unsubscribe(subscription)
                // What the unbroken stream sent once line `resumeAfter` had arrived (a separator may open it).
                let sentBefore = reference(Array(lines.prefix(Int(resumeAfter))), before: before, after: after).filter { $0 != "--" }.count
                var tail = whole.filter { $0 != "--" }.dropFirst(sentBefore).map { $0 }
                if !got.isEmpty, got.first == "--" { tail.insert("--", at: 0) }
                #expect(got.filter { $0 != "--" } == tail.filter { $0 != "--" }, "seed \(seed), after=\(resumeAfter)")
            }
        }
    }

    @Test func aBacklogIsTheLastMatchesWithTheirWholeContext() async throws {
        let hub = hub()
        let lines = publishRandom(hub, count: 300, seed: 9)
        let subscription = hub.subscribe(matcher: try matcher(before: 3, after: 2), request: SubscriptionRequest(backlog: 5))
        let got = rendered(await items(subscription))
        // grep -B3 -A2 over the whole history, where only the last five matches count.
        let first = lines.filter(\.matches).suffix(5).first!.seq
        let lastFive = lines.map { ($0.seq, $0.file, $0.matches && $0.seq >= first) }
        #expect(got == reference(lastFive, before: 3, after: 2))
        #expect(got.filter { $0.hasPrefix("m:") }.count == 5)
        // Live lines go on with the same selector: an ERROR's after-context follows it.
        hub.publish([TestSupport.record("ERROR live", path: "/a"), TestSupport.record("ok live", path: "/a")])
        let live = rendered(await items(subscription))
        #expect(live.filter { $0 != "--" }.suffix(2) == ["m:301", "c:302"])
    }
}
