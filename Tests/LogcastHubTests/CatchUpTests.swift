import Foundation
import LogcastProtocol
import Synchronization
import Testing

@testable import LogcastHub

/// The catch-up policy: a subscriber whose queue fills reads on from the
/// hub's history where it is, and gets a `gap` only for what the history no
/// longer holds.
@Suite struct CatchUpTests {
    func hub(history: Int, queue: Int, durable: (any DurableHistory)? = nil) -> Hub {
        var configuration = Hub.Configuration()
        configuration.historyLines = history
        configuration.queueLines = queue
        #expect(configuration.slowConsumerPolicy == .catchUp, "catch-up is the default")
        return Hub(configuration: configuration, epoch: "00000000000000cc", durable: durable)
    }

    /// What a subscriber reads until it has seen `last` (or `limit` batches
    /// passed): lines as their message, events as `event@POSITION`, gaps
    /// as `gap A..N`.
    func read(_ subscription: Subscription, through last: UInt64, limit: Int = 10_000) async -> [String] {
        var out: [String] = []
        var seen: UInt64 = 0
        for _ in 0..<limit where seen < last {
            guard case .items(let gap, let items) = await subscription.boundedBatch(maxBytes: 4096) else { break }
            if let gap {
                out.append("gap \(gap.after)..\(gap.next) missed \(gap.missed)")
                seen = max(seen, gap.next - 1)
            }
            for case .entry(let entry) in items {
                switch entry.payload {
                case .line(let record):
                    out.append(record.message)
                    seen = max(seen, entry.position)
                case .event: out.append("event@\(entry.position)")
                }
            }
        }
        return out
    }

    func lines(_ range: ClosedRange<Int>) -> [String] { range.map { "n\($0)" } }

    func publish(_ hub: Hub, _ range: ClosedRange<Int>) {
        hub.publish(range.map { TestSupport.record("n\($0)") })
    }

    func subscribe(_ hub: Hub, filter: Filter = Filter()) throws -> Subscription {
        hub.subscribe(matcher: try LineMatcher(filter), request: SubscriptionRequest(backlog: 0))
    }

    // MARK: The queue

    @Test func aFullQueueRefusesTheLineAndKeepsEverythingBeforeIt() {
        var queue = SubscriberQueue(maxLines: 2, maxBytes: 1 << 20, policy: .catchUp)
        #expect(queue.push(.entry(TestSupport.lineEntry(1))) == .queued)
        #expect(queue.push(.entry(TestSupport.lineEntry(2))) == .queued)
        #expect(queue.push(.entry(TestSupport.lineEntry(3))) == .refused)
        #expect(queue.push(.control(Array("{}\n".utf8))) == .queued, "control objects always fit")
        let (gap, items) = queue.drain(maxBytes: .max)
        #expect(gap == nil, "nothing was dropped")
        #expect(items.count == 3)
    }

    @Test func theEventsBeforeARefusedLineAreTakenBackWithIt() {
        var queue = SubscriberQueue(maxLines: 1, maxBytes: 1 << 20, policy: .catchUp)
        queue.push(.entry(TestSupport.lineEntry(1)))
        queue.push(.entry(TestSupport.eventEntry(2)))
        #expect(queue.push(.entry(TestSupport.lineEntry(2))) == .refused)
        let (_, items) = queue.drain(maxBytes: .max)
        #expect(items.count == 1, "the event of position 2 is read again with line 2")
    }

    @Test func aFullQueueByBytesRefusesToo() {
        var queue = SubscriberQueue(maxLines: 100, maxBytes: 300, policy: .catchUp)
        #expect(queue.push(.entry(TestSupport.lineEntry(1, size: 200))) == .queued)
        #expect(queue.push(.entry(TestSupport.lineEntry(2, size: 200))) == .refused)
    }

    @Test func anAnnouncedGapComesFirst() {
        var queue = SubscriberQueue(maxLines: 10, maxBytes: 1 << 20, policy: .catchUp)
        queue.announceGap(after: 3, next: 9, missed: 5)
        #expect(!queue.isEmpty)
        queue.push(.entry(TestSupport.lineEntry(9)))
        let (gap, items) = queue.drain(maxBytes: .max)
        #expect(gap == SubscriberQueue.Gap(after: 3, next: 9, missed: 5))
        #expect(items.count == 1)
        #expect(queue.isEmpty)
    }

    // MARK: The hub

    @Test func aSubscriberBehindReadsOnFromMemoryWithoutAGap() async throws {
        let hub = hub(history: 1000, queue: 4)
        let subscription = try subscribe(hub)
        publish(hub, 1...50)
        #expect(await read(subscription, through: 50) == lines(1...50))
        #expect(hub.statistics.catchUpReads > 0)
        #expect(hub.statistics.catchUpStoredReads == 0)
        publish(hub, 51...53)
        #expect(await read(subscription, through: 53) == lines(51...53), "then live again")
    }

    /// A part read from memory is slices of the chunks the lines were
    /// published in, each run carrying its chunk (and so its text index),
    /// both the parts that stay behind and the rest queued on going live.
    @Test(arguments: [1, 3, 7])
    func memoryPartsAreSlicesOfThePublishedChunks(chunkLines: Int) async throws {
        let hub = hub(history: 1000, queue: 4)
        let subscription = try subscribe(hub)
        var published: [[String]] = []
        for first in stride(from: 1, through: 60, by: chunkLines) {
            let range = first...min(60, first + chunkLines - 1)
            publish(hub, range)
            published.append(lines(range))
        }
        var got: [String] = []
        var runs = 0
        while got.count < 60, case .items(nil, let items) = await subscription.boundedBatch(maxBytes: 4096, keepingRuns: true) {
            for item in items {
                guard case .run(let slice, _, let chunk?) = item else {
                    Issue.record("a line outside a run of its chunk: \(item.text)")
                    continue
                }
                runs += 1
                let messages = chunk.lines.map { entry -> String in
                    guard case .line(let record) = entry.payload else { return "event" }
                    return record.message
                }
                #expect(published.contains(messages), "the run's chunk is one that was published")
                #expect(slice.indices.allSatisfy { chunk.lines[$0] === slice[$0] }, "a slice of that chunk")
                got += slice.compactMap { entry in
                    guard case .line(let record) = entry.payload else { return nil }
                    return record.message
                }
            }
        }
        #expect(got == lines(1...60), "every line once, in order")
        #expect(hub.statistics.catchUpReads > 0 && runs > 0)
    }

    @Test func linesNoLongerInMemoryAndNotStoredAreOneGap() async throws {
        let hub = hub(history: 10, queue: 4)
        let subscription = try subscribe(hub)
        publish(hub, 1...50)
        #expect(await read(subscription, through: 50) == lines(1...4) + ["gap 4..41 missed 36"] + lines(41...50))
    }

    @Test func aSubscriberBehindMemoryReadsFromTheDurableHistory() async throws {
        let durable = FakeDurable()
        let hub = hub(history: 10, queue: 4, durable: durable)
        let subscription = try subscribe(hub)
        publish(hub, 1...50)
        #expect(await read(subscription, through: 50) == lines(1...50))
        #expect(hub.statistics.catchUpStoredReads > 0)
    }

    @Test func linesTheDurableHistoryNoLongerHoldsAreAGapThenItGoesOn() async throws {
        let hub = hub(history: 10, queue: 4, durable: FakeDurable(firstKept: 20))
        let subscription = try subscribe(hub)
        publish(hub, 1...50)
        #expect(await read(subscription, through: 50) == lines(1...4) + ["gap 4..20 missed 15"] + lines(20...50))
    }

    @Test func aHoleInTheStoredHistoryIsAGapInPlace() async throws {
        let durable = FakeDurable()
        let hub = hub(history: 10, queue: 4, durable: durable)
        let subscription = try subscribe(hub)
        publish(hub, 1...50)
        durable.stored.withLock { $0.removeAll { (12...14).contains($0.position) } }
        #expect(await read(subscription, through: 50) == lines(1...11) + ["gap 11..15 missed 3"] + lines(15...50))
    }

    @Test func eventsAreReadOnceWhereverAPartEnds() async throws {
        // Every line has an event before it, so parts end beside events everywhere.
        for queue in 1...5 {
            let hub = hub(history: 1000, queue: queue)
            let subscription = try subscribe(hub)
            var expected: [String] = []
            for i in 1...20 {
                hub.publish(SourceEvent(source: "app", kind: .rotated, path: "/var/log/app.log"))
                publish(hub, i...i)
                expected += ["event@\(i)", "n\(i)"]
            }
            #expect(await read(subscription, through: 20) == expected, "queue of \(queue)")
        }
    }

    @Test func aFilteredSubscriberBehindGetsItsLinesOnly() async throws {
        let hub = hub(history: 1000, queue: 3)
        var filter = Filter()
        filter.grep = ["7"]
        let subscription = try subscribe(hub, filter: filter)
        publish(hub, 1...80)
        let expected = ["n7", "n17", "n27", "n37", "n47", "n57", "n67", "n70", "n71", "n72", "n73", "n74", "n75", "n76", "n77", "n78", "n79"]
        #expect(await read(subscription, through: 79) == expected)
    }

    /// Every selection key: what it selects is all a subscriber's queue
    /// holds, so a burst of other lines never puts it behind.
    @Test(arguments: ["source", "host", "unit", "identifier", "priority", "since"])
    func aBurstOfLinesASelectionExcludesTakesNoRoomInTheQueue(key: String) async throws {
        let hub = hub(history: 10_000, queue: 3)
        var filter = Filter()
        switch key {
        case "source": filter.sources = ["quiet"]
        case "host": filter.hosts = ["quiet"]
        case "unit": filter.units = ["quiet.service"]
        case "identifier": filter.identifiers = ["quiet"]
        case "priority": filter.priority = 0...3
        default: filter.since = Timestamp(microseconds: 1000)
        }
        func line(_ message: String, selected: Bool) -> LogRecord {
            TestSupport.record(
                message,
                source: selected ? "quiet" : "busy",
                micros: selected ? 5000 : 0,
                host: selected ? "quiet" : "busy",
                priority: selected ? 3 : 6,
                unit: selected ? "quiet.service" : "busy.service",
                identifier: selected ? "quiet" : "busy"
            )
        }
        let subscription = try subscribe(hub, filter: filter)
        hub.publish((1...2000).map { line("busy \($0)", selected: false) })
        hub.publish([line("quiet 1", selected: true)])
        hub.publish((1...2000).map { line("busy \($0)", selected: false) })
        hub.publish([line("quiet 2", selected: true)])
        #expect(!subscription.isBehind, "\(key): the excluded lines were not queued")
        #expect(subscription.queueDepth.items == 2)
        #expect(await read(subscription, through: 4002) == ["quiet 1", "quiet 2"])
    }

    /// Chunks of one source's lines are admitted or left out whole by a
    /// filter whose only selection key is `source`; chunks of several
    /// sources, and filters with more keys, line by line. Random chunks,
    /// events and filters: each subscriber reads what a line-by-line
    /// filter gives, and one of one source's chunks is one queued run.
    /// With a queue of 5 lines every subscriber falls behind and catches
    /// up from memory, where the same holds for the runs it reads; with a
    /// history of 20 lines too, from a durable history that selects by
    /// source, whose reads are chunks of their own.
    @Test(arguments: 0..<20, [10_000, 5, 4])
    func chunksOfOneSourceAreAdmittedWholeAsLineByLine(seed: UInt64, queue: Int) async throws {
        var random = HistoryRingTests.Random(state: seed)
        let durable = queue == 4 ? SelectingFake() : nil
        let hub = hub(history: queue == 4 ? 20 : 10_000, queue: queue, durable: durable)
        let sources = ["a", "b", "c"]
        var filters: [Filter] = []
        for keys in [["a"], ["a", "b"], ["c"]] {
            var filter = Filter()
            filter.sources = keys
            filters.append(filter)
        }
        var withPriority = filters[0]
        withPriority.priority = 0...3
        var withGrep = filters[1]
        withGrep.grep = ["x1"]
        filters += [withPriority, withGrep, Filter()]
        let matchers = try filters.map { try LineMatcher($0) }
        let subscriptions = matchers.map { hub.subscribe(matcher: $0, request: SubscriptionRequest(backlog: 0)) }
        var expected = Array(repeating: [String](), count: matchers.count)
        var runsOfC = 0
        var wholeChunks = [0, 0, 0]  // per filter by source: chunks of one of its sources alone
        var position: UInt64 = 0
        for number in 0..<40 {
            // Events but with the selecting store, which keeps lines only (as the cluster stream does).
            if durable == nil, random.next(6) == 0 {
                let event = SourceEvent(source: sources[random.next(3)], kind: .rotated)
                hub.publish(event)
                for (index, matcher) in matchers.enumerated() where matcher.matches(event) {
                    expected[index].append("event@\(position + 1)")
                }
                continue
            }
            let mixed = random.next(3) == 0
            let source = sources[random.next(3)]
            let records = (0..<(1 + random.next(12))).map { line in
                TestSupport.record(
                    "x\(number) line \(line)",
                    source: mixed ? sources[random.next(3)] : source,
                    priority: random.next(8)
                )
            }
            // Subscriber 2 (source c) queues one run per stretch of c's lines: the whole chunk when it is c's alone.
            var stretch = false
            for record in records {
                if record.source == "c", !stretch { runsOfC += 1 }
                stretch = record.source == "c"
            }
            hub.publish(records)
            position += UInt64(records.count)
            if Set(records.map(\.source)).count == 1 {
                for index in 0..<3 where filters[index].sources.contains(records[0].source) { wholeChunks[index] += 1 }
            }
            for (index, matcher) in matchers.enumerated() {
                expected[index] += records.filter { matcher.matches($0, fields: { nil }) }.map(\.message)
            }
        }
        // The mechanism: a source-only subscriber holds a run per stretch of its lines (and an item per event).
        if queue > 1000 {
            #expect(subscriptions[2].queueDepth.items == runsOfC + expected[2].filter { $0.hasPrefix("event") }.count)
        }
        // A last line of each source that every filter lets through one of: nothing may come before it but the expected.
        for source in sources {
            let last = TestSupport.record("x1 end \(source)", source: source, priority: 3)
            hub.publish([last])
            for (index, matcher) in matchers.enumerated() where matcher.matches(last, fields: { nil }) {
                expected[index].append(last.message)
            }
        }
        for (index, subscription) in subscriptions.enumerated() {
            // Read until as many as expected came (fewer: the bounded read records it). Odd seeds
            // read as the server's writers do, keeping runs: those a filter passes whole stay runs.
            let keepingRuns = seed % 2 == 1
            var got: [String] = []
            var runs = 0
            while got.count < expected[index].count,
                case .items(nil, let items) = await subscription.boundedBatch(maxBytes: 4096, keepingRuns: keepingRuns)
            {
                for item in items {
                    let entries: [HubEntry]
                    switch item {
                    case .entry(let entry): entries = [entry]
                    case .run(let lines, _, _):
                        entries = Array(lines)
                        runs += 1
                    default: entries = []
                    }
                    for entry in entries {
                        switch entry.payload {
                        case .line(let record): got.append(record.message)
                        case .event: got.append("event@\(entry.position)")
                        }
                    }
                }
            }
            #expect(got == expected[index], "seed \(seed), queue \(queue), filter \(index)")
            if index < 3 {
                // By source alone: the chunks of its sources, and its stretches of mixed ones, come as runs when runs are kept.
                #expect(keepingRuns ? runs >= wholeChunks[index] && runs > 0 : runs == 0, "seed \(seed), filter \(index)")
            } else if index < 5 {
                #expect(runs == 0, "seed \(seed), filter \(index): a filter with more keys tests line by line")
            }
        }
        #expect(durable.map { $0.selections.withLock { $0 } > 0 } ?? true, "seed \(seed): reads selected by source")
    }

    @Test func textFiltersApplyWhenTheWriterTakesLinesSoABurstStillFillsTheQueue() async throws {
        let hub = hub(history: 10_000, queue: 3)
        var filter = Filter()
        filter.grep = ["quiet"]
        let subscription = try subscribe(hub, filter: filter)
        hub.publish((1...100).map { TestSupport.record("busy \($0)") } + [TestSupport.record("quiet 1")])
        #expect(subscription.isBehind, "patterns do not run where lines are offered")
        #expect(await read(subscription, through: 101) == ["quiet 1"], "and it catches up to its line")
    }

    @Test func aNewFilterWhileBehindStartsOverFromTheBacklog() async throws {
        let hub = hub(history: 1000, queue: 3)
        let subscription = try subscribe(hub)
        publish(hub, 1...30)
        #expect(subscription.isBehind)
        var filter = Filter()
        filter.grep = ["n3"]
        hub.resubscribe(subscription, matcher: try LineMatcher(filter), backlog: 2, reply: Array("{\"type\":\"subscribed\"}\n".utf8))
        #expect(!subscription.isBehind)
        publish(hub, 31...31)
        #expect(await read(subscription, through: 31) == ["n3", "n30", "n31"])
    }

    @Test func publishingWhileTheSubscriberCatchesUpLosesAndRepeatsNothing() async throws {
        let hub = hub(history: 500, queue: 16, durable: FakeDurable())
        let subscription = try subscribe(hub)
        let total = 5000
        let publisher = Thread {
            var next = 1
            while next <= total {
                let chunk = min(total, next + Int.random(in: 0..<40))
                hub.publish((next...chunk).map { TestSupport.record("n\($0)") })
                next = chunk + 1
            }
        }
        publisher.start()
        let got = await read(subscription, through: UInt64(total), limit: 1_000_000)
        #expect(got == lines(1...total))
    }

    @Test func aFinishedSubscriberBehindStopsWithoutReadingOn() async throws {
        let hub = hub(history: 1000, queue: 2)
        let subscription = try subscribe(hub)
        publish(hub, 1...10)
        hub.unsubscribe(subscription)
        #expect(await read(subscription, through: 10) == ["n1", "n2"])
        guard case .finished = await subscription.boundedBatch(maxBytes: .max) else {
            Issue.record("expected the end")
            return
        }
    }
}
