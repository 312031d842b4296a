import CLinuxShims
import Foundation
import LogcastProtocol
import Synchronization
import Testing

@testable import LogcastHub

/// A durable history in memory, keeping lines from `firstKept` on (older ones "deleted").
final class FakeDurable: DurableHistory, Sendable {
    let stored = Mutex<[HubEntry]>([])
    let positions = Mutex<[String: SourcePosition]>([:])
    let firstKept: UInt64

    init(firstKept: UInt64 = 1) { self.firstKept = firstKept }

    func append(_ entries: [HubEntry], source: String?, position: SourcePosition?) {
        stored.withLock { $0 += entries.filter { $0.position >= firstKept } }
        if let source, let position { positions.withLock { $0[source] = position } }
    }

    func lines(after: UInt64, before: UInt64, limit: Int) -> [HubEntry] {
        Array(stored.withLock { $0 }.filter { $0.position > after && $0.position < before }.prefix(limit))
    }

    func lines(since: Timestamp, before: UInt64, limit: Int) -> [HubEntry] {
        Array(stored.withLock { $0 }.filter { $0.position < before && $0.timestampForTest >= since }.prefix(limit))
    }

    var oldestLineTime: Timestamp? {
        stored.withLock { $0 }.first(where: \.isLine)?.timestampForTest
    }
}

/// A store that selects by host and source (like the cluster stream by subject), keeping lines from `firstKept` on.
final class SelectingFake: DurableHistory, Sendable {
    let inner: FakeDurable
    let complete: Bool
    let selections = Mutex(0)

    init(firstKept: UInt64 = 1, complete: Bool = true) {
        inner = FakeDurable(firstKept: firstKept)
        self.complete = complete
    }

    func append(_ entries: [HubEntry], source: String?, position: SourcePosition?) { inner.append(entries, source: source, position: position) }
    func lines(after: UInt64, before: UInt64, limit: Int) -> [HubEntry] { inner.lines(after: after, before: before, limit: limit) }
    func lines(since: Timestamp, before: UInt64, limit: Int) -> [HubEntry] { inner.lines(since: since, before: before, limit: limit) }
    var oldestLineTime: Timestamp? { inner.oldestLineTime }

    func lines(after: UInt64, before: UInt64, limit: Int, host: String?, source: String?) -> SelectedRead? {
        selections.withLock { $0 += 1 }
        let all = inner.stored.withLock { $0 }.filter { entry in
            guard entry.position > after, entry.position < before, case .line(let record) = entry.payload else { return false }
            return (host == nil || record.host == host) && (source == nil || record.source == source)
        }
        // A read cut short (its time ran out) got only its first three.
        return SelectedRead(entries: Array(all.prefix(complete ? limit : 3)), firstKept: inner.firstKept, complete: complete)
    }
}

/// A durable history whose first read takes longer than a scan may (``Hub/scanBudget``).
final class SlowFirstReadFake: DurableHistory, Sendable {
    let inner = FakeDurable()
    let reads = Mutex(0)

    func append(_ entries: [HubEntry], source: String?, position: SourcePosition?) { inner.append(entries, source: source, position: position) }
    func lines(since: Timestamp, before: UInt64, limit: Int) -> [HubEntry] { inner.lines(since: since, before: before, limit: limit) }
    var oldestLineTime: Timestamp? { inner.oldestLineTime }

    func lines(after: UInt64, before: UInt64, limit: Int) -> [HubEntry] {
        if reads.withLock({
            $0 += 1
            return $0
        }) == 1 {
            Thread.sleep(forTimeInterval: 0.3)
        }
        return inner.lines(after: after, before: before, limit: limit)
    }
}

/// A durable history that hands out stretches of one array it keeps (as
/// the segment log hands out its cached chunks).
final class SharingFake: DurableHistory, Sendable {
    let inner = FakeDurable()

    func append(_ entries: [HubEntry], source: String?, position: SourcePosition?) { inner.append(entries, source: source, position: position) }
    func lines(after: UInt64, before: UInt64, limit: Int) -> [HubEntry] { inner.lines(after: after, before: before, limit: limit) }
    func lines(since: Timestamp, before: UInt64, limit: Int) -> [HubEntry] { inner.lines(since: since, before: before, limit: limit) }
    var oldestLineTime: Timestamp? { inner.oldestLineTime }

    func part(after: UInt64, before: UInt64, limit: Int) -> DurablePart {
        let all = inner.stored.withLock { $0 }
        let start = all.firstIndex { $0.position > after } ?? all.endIndex
        let end = min(all.firstIndex { $0.position >= before } ?? all.endIndex, start + min(limit, all.count))
        return DurablePart(array: all, range: start..<end, shared: true)
    }
}

extension HubEntry {
    var timestampForTest: Timestamp {
        if case .line(let record) = payload { return record.timestamp }
        return Timestamp(microseconds: 0)
    }
}

@Suite struct DurableHubTests {
    func hub(_ durable: any DurableHistory, history: Int = 5, queue: Int = 1000) -> Hub {
        var configuration = Hub.Configuration()
        configuration.historyLines = history
        configuration.queueLines = queue
        return Hub(configuration: configuration, epoch: "00000000000000bb", durable: durable)
    }

    func publish(_ hub: Hub, _ range: ClosedRange<Int>) {
        for i in range {
            hub.publish(
                [TestSupport.record("n\(i)", micros: Int64(i) * 1_000_000)],
                source: "app",
                position: .journal(cursor: "c\(i)")
            )
        }
    }

    func start(_ hub: Hub, _ request: SubscriptionRequest) async throws -> [String] {
        let subscription = hub.subscribe(matcher: try LineMatcher(request.filter), request: request)
        defer { hub.unsubscribe(subscription) }
        guard case .items(_, let items) = await subscription.boundedBatch(maxBytes: .max) else { return [] }
        return items.map { item in
            switch item {
            case .entry(let entry):
                if case .line(let record) = entry.payload { return record.message }
                return "event"
            case .control(let json):
                return String(decoding: json, as: UTF8.self).trimmingCharacters(in: .newlines)
            case .selected, .context, .separator, .prime, .adopt, .run:
                return "\(item)"
            }
        }
    }

    /// Subscribers with text filters catching up through a chunk the store
    /// shares get it with one text index for all of them (as a published
    /// chunk), which finds exactly the lines that hold their text; a filter
    /// without text, or a read the store does not share, gets none.
    @Test func catchUpPartsOfASharedChunkCarryOneTextIndex() throws {
        let shared = SharingFake()
        let hub = hub(shared, history: 10)
        hub.publish((0..<200).map { TestSupport.record("line \($0) G\($0 % 5) end") }, source: "app", position: nil)
        var grep = Filter()
        grep.grep = ["g3 "]  // smart case: caseless, as the index folds
        let subscription = hub.subscribe(matcher: try LineMatcher(grep), request: SubscriptionRequest(backlog: 0))
        defer { hub.unsubscribe(subscription) }
        let first = hub.storedPart(at: CatchUpCursor(after: 0), before: 150, limit: 100, filter: grep)
        let second = hub.storedPart(at: CatchUpCursor(after: 40), before: 150, limit: 100, filter: grep)
        let chunk = try #require(first.chunk)
        #expect(second.chunk === chunk, "one chunk, one index, for every reader")
        #expect(first.entries.map(\.position) == Array(1...100))
        let candidates = try #require(chunk.candidates(for: Array("g3 ".utf8), in: first.entries.indices))
        #expect(candidates.map { chunk.lines[Int($0)].message } == (0..<100).filter { $0 % 5 == 3 }.map { "line \($0) G3 end" })
        #expect(hub.storedPart(at: CatchUpCursor(after: 0), before: 150, limit: 100, filter: Filter()).chunk == nil)
        #expect(self.hub(FakeDurable(), history: 10).storedPart(at: CatchUpCursor(after: 0), before: 150, limit: 100, filter: grep).chunk == nil)
    }

    @Test func linesAndPositionsAreStoredBeforeTheyAreOffered() {
        let durable = FakeDurable()
        let hub = hub(durable)
        publish(hub, 1...3)
        #expect(durable.stored.withLock { $0.map(\.position) } == [1, 2, 3])
        #expect(durable.positions.withLock { $0 } == ["app": .journal(cursor: "c3")])
    }

    @Test func aResumeOlderThanMemoryIsServedFromDiskWithoutAGap() async throws {
        let durable = FakeDurable()
        let hub = hub(durable)
        publish(hub, 1...20)
        let got = try await start(hub, SubscriptionRequest(after: 2, epoch: "00000000000000bb"))
        #expect(got == (3...20).map { "n\($0)" })
    }

    @Test func pastTheStoredHistoryTheGapIsEvicted() async throws {
        let durable = FakeDurable(firstKept: 8)
        let hub = hub(durable)
        publish(hub, 1...20)
        let got = try await start(hub, SubscriptionRequest(after: 2, epoch: "00000000000000bb"))
        #expect(got.first == #"{"type":"gap","after":2,"next":8,"missed":5,"reason":"evicted"}"#)
        #expect(Array(got.dropFirst()) == (8...20).map { "n\($0)" })
    }

    @Test func aHoleInTheStoredHistoryIsAGapNotASilentSkip() async throws {
        let durable = FakeDurable()
        let hub = hub(durable)
        publish(hub, 1...20)
        // Lines 6 to 9 were never stored (a full disk), and memory holds 16 to 20.
        durable.stored.withLock { $0.removeAll { (6...9).contains($0.position) } }
        let got = try await start(hub, SubscriptionRequest(after: 2, epoch: "00000000000000bb"))
        #expect(
            got == ["n3", "n4", "n5", #"{"type":"gap","after":5,"next":10,"missed":4,"reason":"evicted"}"#] + (10...20).map { "n\($0)" }
        )
    }

    @Test func aHoleInTheRestoredMemoryIsAGapToo() async throws {
        let restored = [1, 2, 5, 6].map { seq in
            HubEntry(position: UInt64(seq), payload: .line(TestSupport.record("n\(seq)")), json: Array("n\(seq)".utf8))
        }
        let hub = Hub(epoch: "00000000000000bb", restored: restored)
        let got = try await start(hub, SubscriptionRequest(after: 0, epoch: "00000000000000bb"))
        #expect(got == ["n1", "n2", #"{"type":"gap","after":2,"next":5,"missed":2,"reason":"evicted"}"#, "n5", "n6"])
    }

    /// A resume further back than one queue holds reads on from the disk
    /// where the first read stopped (catch-up), not with a gap to memory:
    /// every stored line arrives, once and in order, then live lines.
    @Test(.timeLimit(.minutes(1)), arguments: [10, 5, 1])
    func aResumeBeyondTheQueueReadsOnFromDiskWithoutAGap(queue: Int) async throws {
        let durable = FakeDurable()
        // Memory holds 5: a queue of 10 leaves 5 for the first disk read, of 5 or 1 none.
        let hub = hub(durable, queue: queue)
        publish(hub, 1...40)
        let subscription = hub.subscribe(matcher: try LineMatcher(Filter()), request: SubscriptionRequest(after: 0, epoch: "00000000000000bb"))
        defer { hub.unsubscribe(subscription) }
        var got: [String] = []
        while got.count < 40 {
            guard case .items(let gap, let items) = await subscription.boundedBatch(maxBytes: 300) else { break }
            #expect(gap == nil)
            for case .entry(let entry) in items {
                if case .line(let record) = entry.payload { got.append(record.message) }
            }
            for case .control(let json) in items { got.append(String(decoding: json, as: UTF8.self)) }
        }
        #expect(got == (1...40).map { "n\($0)" })
        publish(hub, 41...41)
        guard case .items(_, let items) = await subscription.boundedBatch(maxBytes: .max) else { return }
        #expect(items.compactMap(\.lineSeq) == [41], "then live")
    }

    /// A stream's start that runs out of time on the disk reads on from
    /// where it stopped (no `incomplete`, nothing lost, the event in place).
    @Test(.timeLimit(.minutes(1))) func aResumeCutShortByTimeReadsOnFromWhereItStopped() async throws {
        let durable = SlowFirstReadFake()
        let hub = hub(durable, queue: 1000)
        publish(hub, 1...70)
        hub.publish(SourceEvent(source: "app", kind: .rotated))
        publish(hub, 71...200)
        let subscription = hub.subscribe(matcher: try LineMatcher(Filter()), request: SubscriptionRequest(after: 0, epoch: "00000000000000bb"))
        defer { hub.unsubscribe(subscription) }
        var got: [String] = []
        while !got.contains("n200") {
            guard case .items(let gap, let items) = await subscription.boundedBatch(maxBytes: .max) else { break }
            #expect(gap == nil)
            for item in items {
                switch item {
                case .entry(let entry):
                    if case .line(let record) = entry.payload { got.append(record.message) } else { got.append("event") }
                default: got.append("\(item)")
                }
            }
        }
        #expect(got == (1...70).map { "n\($0)" } + ["event"] + (71...200).map { "n\($0)" })
        #expect(durable.reads.withLock { $0 } > 1, "the rest came from catch-up reads")
    }

    @Test func aReadWhoseLimitCutsTheDiskEndsIncompleteNotWithAGap() throws {
        let durable = FakeDurable()
        let hub = hub(durable)
        publish(hub, 1...20)
        let scan = hub.snapshot(request: SubscriptionRequest(after: 2, epoch: "00000000000000bb"), matcher: try LineMatcher(Filter()), limit: 4)
        let got = scan.items.map { item -> String in
            switch item {
            case .entry(let entry): if case .line(let record) = entry.payload { return record.message } else { return "event" }
            case .control(let json): return String(decoding: json, as: UTF8.self).trimmingCharacters(in: .newlines)
            case .selected, .context, .separator, .prime, .adopt, .run: return "\(item)"
            }
        }
        #expect(Array(got.prefix(4)) == ["n3", "n4", "n5", "n6"])
        #expect(got.count == 5 && got[4].contains(#""type":"incomplete""#) && got[4].contains(#""resume_after":6"#), "\(got)")
        #expect(got[4].contains(#""reason":"limit""#) && !got.contains { $0.contains("gap") })
        #expect(!scan.complete)
    }

    func publishHosts(_ hub: Hub, _ range: ClosedRange<Int>) {
        for i in range {
            var record = TestSupport.record("n\(i)", micros: Int64(i) * 1_000_000)
            record.host = i.isMultiple(of: 2) ? "even" : "odd"
            hub.publish([record], source: "app", position: nil)
        }
    }

    @Test func aSelectingStoreReadsOneHostWithoutCallingTheOthersHoles() async throws {
        let durable = SelectingFake()
        let hub = hub(durable, queue: 15)  // 5 in memory: 10 from the store, fewer than the 15 lines of a whole read
        publishHosts(hub, 1...20)
        var request = SubscriptionRequest(after: 0, epoch: "00000000000000bb")
        request.filter.hosts = ["even"]
        let got = try await start(hub, request)
        #expect(got == (1...10).map { "n\($0 * 2)" }, "every even line, no gap between them or to memory")
        #expect(durable.selections.withLock { $0 } == 1)
    }

    @Test func aSelectedReadPastWhatTheStoreKeepsStartsWithAnEvictedGap() async throws {
        let durable = SelectingFake(firstKept: 7)
        let hub = hub(durable)
        publishHosts(hub, 1...20)
        var request = SubscriptionRequest(after: 2, epoch: "00000000000000bb")
        request.filter.hosts = ["odd"]
        let got = try await start(hub, request)
        #expect(got.first == #"{"type":"gap","after":2,"next":7,"missed":4,"reason":"evicted"}"#)
        #expect(Array(got.dropFirst()) == [7, 9, 11, 13, 15, 17, 19].map { "n\($0)" })
    }

    @Test func aSelectedReadCutShortIsNotTakenForTheWhole() async throws {
        let durable = SelectingFake(complete: false)
        let hub = hub(durable)
        publishHosts(hub, 1...20)
        var request = SubscriptionRequest(after: 0, epoch: "00000000000000bb")
        request.filter.hosts = ["odd"]
        let got = try await start(hub, request)
        #expect(Array(got.prefix(4)) == ["n1", "n3", "n5", #"{"type":"gap","after":5,"next":16,"missed":10,"reason":"evicted"}"#], "\(got)")
    }

    func streamHub() -> Hub {
        var configuration = Hub.Configuration()
        configuration.streamNumbered = true
        return Hub(configuration: configuration, epoch: "00000000000000ee")
    }

    func stamped(_ seqs: [UInt64]) -> [(seq: UInt64, record: LogRecord)] {
        seqs.map { ($0, TestSupport.record("n\($0)")) }
    }

    @Test func aGatewaysClientAheadOfItGetsNothingTwice() async throws {
        let hub = streamHub()
        hub.publish(stamped: stamped(Array(1...10)))
        // The client saw up to 14 on a gateway that is ahead of this one.
        let subscription = hub.subscribe(matcher: try LineMatcher(Filter()), request: SubscriptionRequest(after: 14, epoch: "00000000000000ee"))
        defer { hub.unsubscribe(subscription) }
        hub.publish(stamped: stamped(Array(11...16)))
        guard case .items(let gap, let items) = await subscription.boundedBatch(maxBytes: .max) else {
            Issue.record("no batch")
            return
        }
        #expect(gap == nil)
        let seqs = items.compactMap { item -> UInt64? in
            if case .entry(let entry) = item { return entry.position }
            return nil
        }
        #expect(seqs == [15, 16])
    }

    @Test func numbersTheStreamSkipsAreNoHoles() async throws {
        let hub = streamHub()
        hub.publish(stamped: stamped([1, 2, 5, 6]))  // 3 and 4 were not logcast lines
        let got = try await start(hub, SubscriptionRequest(after: 1, epoch: "00000000000000ee"))
        #expect(got == ["n2", "n5", "n6"])
    }

    @Test func filtersOfOneHostOrSourceAreSelections() {
        var filter = Filter()
        #expect(filter.selection == nil)
        filter.hosts = ["a"]
        #expect(filter.selection?.host == "a" && filter.selection?.source == nil)
        filter.sources = ["s"]
        #expect(filter.selection?.host == "a" && filter.selection?.source == "s")
        filter.hosts = ["a", "b"]
        #expect(filter.selection == nil, "two hosts are no one subject")
    }

    @Test func sinceReadsFromDiskThenMemory() async throws {
        let durable = FakeDurable()
        let hub = hub(durable)
        publish(hub, 1...20)
        var request = SubscriptionRequest()
        request.filter.since = Timestamp(microseconds: 12_000_000)
        request.filter.until = Timestamp(microseconds: 17_000_000)
        #expect(try await start(hub, request) == (12...17).map { "n\($0)" })
    }

    @Test func theHistoryContinuesFromWhatWasRestored() {
        let durable = FakeDurable()
        let restored = (1...8).map { TestSupport.lineEntry(UInt64($0)) }
        var configuration = Hub.Configuration()
        configuration.historyLines = 5
        let hub = Hub(configuration: configuration, epoch: "00000000000000cc", durable: durable, restored: restored, lastSeq: 8)
        hub.publish(TestSupport.record("next"))
        #expect(durable.stored.withLock { $0.map(\.position) } == [9])
        #expect(hub.statistics.lastSeq == 9)
    }
}

/// A durable history that notes the thread of every read (by its name).
final class ThreadNotingFake: DurableHistory, Sendable {
    let inner = FakeDurable()
    let readThreads = Mutex<[String]>([])

    func append(_ entries: [HubEntry], source: String?, position: SourcePosition?) { inner.append(entries, source: source, position: position) }
    func lines(since: Timestamp, before: UInt64, limit: Int) -> [HubEntry] { inner.lines(since: since, before: before, limit: limit) }
    var oldestLineTime: Timestamp? { inner.oldestLineTime }

    func lines(after: UInt64, before: UInt64, limit: Int) -> [HubEntry] {
        let name = (try? String(contentsOfFile: "/proc/thread-self/comm", encoding: .utf8)) ?? "?"
        readThreads.withLock { $0.append(name.trimmingCharacters(in: .whitespacesAndNewlines)) }
        return inner.lines(after: after, before: before, limit: limit)
    }
}

/// Runs each job on a thread of its own named `read-on` (a stand-in for the server's bulk lane).
final class NamedThreadExecutor: TaskExecutor {
    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        Thread { [self] in
            _ = logcast_set_thread_name("read-on")
            job.runSynchronously(on: asUnownedTaskExecutor())
        }.start()
    }
}

@Suite struct ReadOnExecutorTests {
    /// A read from the history may wait for the disk: it runs where the
    /// writer says (the server's bulk lane), not where the writer waits
    /// (which may be an event loop).
    @Test func readsFromTheHistoryRunOnTheExecutorTheWriterNames() async throws {
        let durable = ThreadNotingFake()
        var configuration = Hub.Configuration()
        configuration.historyLines = 10
        configuration.queueLines = 4
        let hub = Hub(configuration: configuration, epoch: "00000000000000cc", durable: durable)
        let subscription = hub.subscribe(matcher: try LineMatcher(Filter()), request: SubscriptionRequest(backlog: 0))
        hub.publish((1...50).map { TestSupport.record("n\($0)") })
        let executor = NamedThreadExecutor()
        var seen: UInt64 = 0
        while seen < 50 {
            guard case .items(_, let items) = await subscription.boundedBatch(maxBytes: 4096, readOnExecutor: executor) else { break }
            for case .entry(let entry) in items { seen = max(seen, entry.position) }
        }
        #expect(seen == 50)
        let threads = durable.readThreads.withLock { $0 }
        #expect(!threads.isEmpty && threads.allSatisfy { $0 == "read-on" }, "\(threads)")
    }
}
