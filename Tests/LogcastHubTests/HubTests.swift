import LogcastProtocol
import Testing

@testable import LogcastHub

@Suite struct HubTests {
    static let epoch = "00000000000000aa"

    private func makeHub(historyLines: Int = 100, historyBytes: Int = 1 << 20, queueLines: Int = 1000, policy: SlowConsumerPolicy = .drop) -> Hub {
        var configuration = Hub.Configuration()
        configuration.historyLines = historyLines
        configuration.historyBytes = historyBytes
        configuration.queueLines = queueLines
        configuration.slowConsumerPolicy = policy
        return Hub(configuration: configuration, epoch: Self.epoch)
    }

    private func publish(_ hub: Hub, _ count: Int, source: String = "app", priority: Int? = nil) {
        hub.publish((0..<count).map { TestSupport.record("line \($0)", source: source, priority: priority) })
    }

    private func everything() throws -> LineMatcher { try LineMatcher(Filter()) }

    /// The items of the next batch (recording an issue for anything else).
    private func batch(_ subscription: Subscription) async -> (gap: SubscriberQueue.Gap?, items: [SubscriberQueue.Item]) {
        switch await subscription.boundedBatch(maxBytes: .max) {
        case .items(let gap, let items): return (gap, items)
        case .finished:
            Issue.record("unexpected .finished")
            return (nil, [])
        case .overflowed:
            Issue.record("unexpected .overflowed")
            return (nil, [])
        case .close(let request):
            Issue.record("unexpected .close(\(request))")
            return (nil, [])
        }
    }

    private func messages(_ entries: [HubEntry]) -> [String] {
        entries.map {
            guard case .line(let record) = $0.payload else { return "<event>" }
            return record.message
        }
    }

    // MARK: publishing and history

    @Test func seqStartsAtOneAndRisesByOne() throws {
        let hub = makeHub()
        #expect(hub.statistics.lastSeq == 0)
        publish(hub, 3)
        hub.publish(TestSupport.record("four"))
        let retained = hub.retainedLines(matching: try everything(), after: nil, limit: 10)
        #expect(retained.map(\.position) == [1, 2, 3, 4])
        #expect(hub.statistics.lastSeq == 4)
        #expect(hub.statistics.linesPublished == 4)
    }

    @Test func publishingNothingChangesNothing() {
        let hub = makeHub()
        hub.publish([])
        #expect(hub.statistics.lastSeq == 0)
    }

    @Test func historyIsBoundedByLines() throws {
        let hub = makeHub(historyLines: 5)
        publish(hub, 12)
        let retained = hub.retainedLines(matching: try everything(), after: nil, limit: 100)
        #expect(retained.map(\.position) == [8, 9, 10, 11, 12])
        #expect(hub.statistics.historyLines == 5)
        #expect(hub.statistics.lastSeq == 12)
    }

    @Test func historyIsBoundedByBytes() throws {
        // Measure one line's cost, then allow room for three.
        let probe = HubEntry(
            position: 1,
            payload: .line(TestSupport.record("line 0")),
            json: ProtocolObject.line(TestSupport.record("line 0"), seq: 1).encoded()
        )
        let cost = probe.byteCount
        let hub = makeHub(historyBytes: cost * 3 + cost / 2)
        publish(hub, 9)  // seq 1...9, all the same length
        let stats = hub.statistics
        #expect(stats.historyLines == 3)
        #expect(stats.historyBytes <= cost * 3 + cost / 2)
        #expect(hub.retainedLines(matching: try everything(), after: nil, limit: 100).map(\.position) == [7, 8, 9])
    }

    @Test func retainedLinesAfterAndLimit() throws {
        let hub = makeHub()
        publish(hub, 10)
        let m = try everything()
        #expect(hub.retainedLines(matching: m, after: 6, limit: 100).map(\.position) == [7, 8, 9, 10])
        #expect(hub.retainedLines(matching: m, after: 6, limit: 2).map(\.position) == [7, 8])
        #expect(hub.retainedLines(matching: m, after: nil, limit: 3).map(\.position) == [8, 9, 10])
    }

    // MARK: subscribing

    @Test func backlogComesAfterThePrelude() async throws {
        let hub = makeHub()
        publish(hub, 10)
        let subscription = hub.subscribe(matcher: try everything(), request: SubscriptionRequest(backlog: 3), prelude: [Array("hello".utf8)])
        let (gap, items) = await batch(subscription)
        #expect(gap == nil)
        #expect(items.first?.text == "hello")
        #expect(items.dropFirst().compactMap(\.lineSeq) == [8, 9, 10])
        #expect(items.count == 4)
    }

    @Test func backlogCountsOnlyMatchingLines() async throws {
        let hub = makeHub()
        for index in 1...10 {
            hub.publish(TestSupport.record("line \(index)", source: index.isMultiple(of: 2) ? "even" : "odd"))
        }
        var filter = Filter()
        filter.sources = ["odd"]
        let subscription = hub.subscribe(matcher: try LineMatcher(filter), request: SubscriptionRequest(backlog: 2))
        #expect(await batch(subscription).items.compactMap(\.lineSeq) == [7, 9])
    }

    @Test func backlogLargerThanHistoryGivesAllOfIt() async throws {
        let hub = makeHub()
        publish(hub, 3)
        let subscription = hub.subscribe(matcher: try everything(), request: SubscriptionRequest(backlog: 100))
        #expect(await batch(subscription).items.compactMap(\.lineSeq) == [1, 2, 3])
    }

    @Test func resumeAfterGivesExactlyTheLaterLines() async throws {
        let hub = makeHub()
        publish(hub, 10)
        let subscription = hub.subscribe(matcher: try everything(), request: SubscriptionRequest(backlog: 2, after: 6, epoch: Self.epoch))
        let (gap, items) = await batch(subscription)
        #expect(gap == nil)
        #expect(items.allSatisfy { !$0.isControl })
        #expect(items.compactMap(\.lineSeq) == [7, 8, 9, 10])
    }

    @Test func resumeWithoutEpochIsTakenAsSameEpoch() async throws {
        let hub = makeHub()
        publish(hub, 5)
        let subscription = hub.subscribe(matcher: try everything(), request: SubscriptionRequest(backlog: 0, after: 3))
        #expect(await batch(subscription).items.compactMap(\.lineSeq) == [4, 5])
    }

    @Test func resumeAtTheLatestLineGivesOnlyLiveLines() async throws {
        let hub = makeHub()
        publish(hub, 5)
        let subscription = hub.subscribe(matcher: try everything(), request: SubscriptionRequest(backlog: 10, after: 5, epoch: Self.epoch))
        publish(hub, 1)
        #expect(await batch(subscription).items.compactMap(\.lineSeq) == [6])
    }

    @Test func resumeOlderThanHistoryGivesEvictedGap() async throws {
        let hub = makeHub(historyLines: 3)
        publish(hub, 10)  // history keeps 8, 9, 10
        let subscription = hub.subscribe(matcher: try everything(), request: SubscriptionRequest(after: 2, epoch: Self.epoch))
        let (gap, items) = await batch(subscription)
        #expect(gap == nil)
        let first = try #require(items.first)
        #expect(first.isControl)
        #expect(first.text == #"{"type":"gap","after":2,"next":8,"missed":5,"reason":"evicted"}"# + "\n")
        #expect(items.dropFirst().compactMap(\.lineSeq) == [8, 9, 10])
        #expect(items.count == 4)
    }

    @Test func resumeJustBeforeHistoryHasNoGap() async throws {
        let hub = makeHub(historyLines: 3)
        publish(hub, 10)
        let subscription = hub.subscribe(matcher: try everything(), request: SubscriptionRequest(after: 7, epoch: Self.epoch))
        let items = await batch(subscription).items
        #expect(items.allSatisfy { !$0.isControl })
        #expect(items.compactMap(\.lineSeq) == [8, 9, 10])
    }

    @Test func wrongEpochGivesRestartGapThenBacklog() async throws {
        let hub = makeHub()
        publish(hub, 10)
        let request = SubscriptionRequest(backlog: 2, after: 500, epoch: "0123abcd")
        let subscription = hub.subscribe(matcher: try everything(), request: request, prelude: [Array("hello".utf8)])
        let items = await batch(subscription).items
        #expect(items.count == 4)
        #expect(items[0].text == "hello")
        #expect(items[1].text == #"{"type":"gap","after":500,"next":9,"reason":"restart"}"# + "\n")
        #expect(items.dropFirst(2).compactMap(\.lineSeq) == [9, 10])
    }

    @Test func wrongEpochWithNoBacklogPointsAtTheNextLine() async throws {
        let hub = makeHub()
        publish(hub, 4)
        let subscription = hub.subscribe(matcher: try everything(), request: SubscriptionRequest(backlog: 0, after: 9, epoch: "ff"))
        let items = await batch(subscription).items
        #expect(items.map(\.text) == [#"{"type":"gap","after":9,"next":5,"reason":"restart"}"# + "\n"])
    }

    // MARK: live lines

    @Test func liveLinesReachASubscriber() async throws {
        let hub = makeHub()
        publish(hub, 2)
        let subscription = hub.subscribe(matcher: try everything(), request: SubscriptionRequest(backlog: 0))
        #expect(subscription.queueDepth.items == 0)
        hub.publish(TestSupport.record("live"))
        let items = await batch(subscription).items
        #expect(items.compactMap(\.lineSeq) == [3])
        #expect(items.first?.text.contains(#""msg":"live""#) == true)
    }

    @Test func waitingWriterIsWokenByALiveLine() async throws {
        let hub = makeHub()
        let subscription = hub.subscribe(matcher: try everything(), request: SubscriptionRequest(backlog: 0))
        let writer = Task { await subscription.boundedBatch(maxBytes: .max) }
        hub.publish(TestSupport.record("wake up"))
        guard case .items(_, let items) = await writer.value else {
            Issue.record("expected items")
            return
        }
        #expect(items.compactMap(\.lineSeq) == [1])
    }

    @Test func subscriberFilterIsApplied() async throws {
        let hub = makeHub()
        var filter = Filter()
        filter.grep = ["keep"]
        let subscription = hub.subscribe(matcher: try LineMatcher(filter), request: SubscriptionRequest(backlog: 0))
        hub.publish([TestSupport.record("drop me"), TestSupport.record("KEEP me"), TestSupport.record("other")])
        #expect(await batch(subscription).items.compactMap(\.lineSeq) == [2])
    }

    @Test func liveLinesFollowTheBacklogWithoutGapOrRepeat() async throws {
        let hub = makeHub()
        publish(hub, 5)
        let subscription = hub.subscribe(matcher: try everything(), request: SubscriptionRequest(backlog: 2))
        publish(hub, 2)
        #expect(await batch(subscription).items.compactMap(\.lineSeq) == [4, 5, 6, 7])
    }

    @Test func resubscribeDropsQueuedLinesKeepsControlsAndQueuesReplyThenBacklog() async throws {
        let hub = makeHub()
        for index in 1...6 {
            hub.publish(TestSupport.record("msg \(index)", source: index <= 3 ? "a" : "b"))
        }
        var onlyA = Filter()
        onlyA.sources = ["a"]
        let subscription = hub.subscribe(matcher: try everything(), request: SubscriptionRequest(backlog: 6), prelude: [Array("hello".utf8)])
        hub.resubscribe(subscription, matcher: try LineMatcher(onlyA), backlog: 2, reply: Array("subscribed".utf8))
        #expect(subscription.filter == onlyA)
        let items = await batch(subscription).items
        // The unsent control object stays; the old backlog goes.
        #expect(items.map(\.text).prefix(2) == ["hello", "subscribed"])
        #expect(items.dropFirst(2).compactMap(\.lineSeq) == [2, 3])
        #expect(items.count == 4)
        // Live lines now use the new filter.
        hub.publish([TestSupport.record("x", source: "b"), TestSupport.record("y", source: "a")])
        #expect(await self.batch(subscription).items.compactMap(\.lineSeq) == [8])
    }

    @Test func finishAllDrainsThenFinishes() async throws {
        let hub = makeHub()
        let subscription = hub.subscribe(matcher: try everything(), request: SubscriptionRequest(backlog: 0))
        publish(hub, 2)
        hub.finishAll()
        #expect(hub.statistics.subscribers == 0)
        #expect(await batch(subscription).items.compactMap(\.lineSeq) == [1, 2])
        guard case .finished = await subscription.boundedBatch(maxBytes: .max) else {
            Issue.record("expected .finished")
            return
        }
        // Nothing is queued after the end.
        publish(hub, 1)
        #expect(subscription.queueDepth.items == 0)
    }

    @Test func unsubscribeStopsDeliveryAndFinishes() async throws {
        let hub = makeHub()
        let subscription = hub.subscribe(matcher: try everything(), request: SubscriptionRequest(backlog: 0))
        #expect(hub.statistics.subscribers == 1)
        hub.unsubscribe(subscription)
        #expect(hub.statistics.subscribers == 0)
        publish(hub, 1)
        guard case .finished = await subscription.boundedBatch(maxBytes: .max) else {
            Issue.record("expected .finished")
            return
        }
    }

    @Test func cancelledWriterGetsFinished() async throws {
        let hub = makeHub()
        let subscription = hub.subscribe(matcher: try everything(), request: SubscriptionRequest(backlog: 0))
        let writer = Task { await subscription.nextBatch(maxBytes: .max) }
        writer.cancel()
        guard case .finished = await writer.value else {
            Issue.record("expected .finished")
            return
        }
    }

    @Test func disconnectPolicyOverflowEndsTheStream() async throws {
        let hub = makeHub(queueLines: 2, policy: .disconnect)
        let subscription = hub.subscribe(matcher: try everything(), request: SubscriptionRequest(backlog: 0))
        publish(hub, 3)
        guard case .overflowed = await subscription.boundedBatch(maxBytes: .max) else {
            Issue.record("expected .overflowed")
            return
        }
    }

    @Test func dropPolicySlowSubscriberGetsSlowConsumerGap() async throws {
        let hub = makeHub(queueLines: 2, policy: .drop)
        let subscription = hub.subscribe(matcher: try everything(), request: SubscriptionRequest(backlog: 0))
        publish(hub, 5)
        let (gap, items) = await batch(subscription)
        #expect(gap == SubscriberQueue.Gap(after: 0, next: 4, missed: 3))
        #expect(items.compactMap(\.lineSeq) == [4, 5])
    }

    @Test func sendControlIsQueued() async throws {
        let hub = makeHub()
        let subscription = hub.subscribe(matcher: try everything(), request: SubscriptionRequest(backlog: 0))
        subscription.sendControl(Array("{\"type\":\"error\"}".utf8))
        #expect(await batch(subscription).items.map(\.text) == ["{\"type\":\"error\"}"])
    }

    // MARK: source events

    @Test func sourceEventsAreDeliveredLiveAndKeptInPlace() async throws {
        let hub = makeHub()
        publish(hub, 2)
        let subscription = hub.subscribe(matcher: try everything(), request: SubscriptionRequest(backlog: 0))
        hub.publish(SourceEvent(source: "app", kind: .rotated, path: "/var/log/app.log"))
        publish(hub, 1)
        let items = await batch(subscription).items
        #expect(items.count == 2)
        #expect(items[0].text == #"{"type":"source","source":"app","event":"rotated","path":"/var/log/app.log"}"# + "\n")
        guard case .entry(let event) = items[0] else {
            Issue.record("expected an entry")
            return
        }
        #expect(!event.isLine)
        #expect(event.position == 3)  // the seq the next line gets
        #expect(items[1].lineSeq == 3)

        // A backlog counts lines, and carries the event among them.
        let late = hub.subscribe(matcher: try everything(), request: SubscriptionRequest(backlog: 2))
        let backlog = await self.batch(late).items
        #expect(backlog.map { $0.lineSeq.map(String.init) ?? "event" } == ["2", "event", "3"])

        // A resume after line 2 gets the event, then line 3; after line 3, nothing.
        let resumed = hub.subscribe(matcher: try everything(), request: SubscriptionRequest(after: 2, epoch: Self.epoch))
        #expect(await self.batch(resumed).items.map { $0.lineSeq.map(String.init) ?? "event" } == ["event", "3"])
        let current = hub.subscribe(matcher: try everything(), request: SubscriptionRequest(after: 3, epoch: Self.epoch))
        publish(hub, 1)
        #expect(await self.batch(current).items.compactMap(\.lineSeq) == [4])
    }

    @Test func anEventAfterTheNewestLineReachesAResumeAtThatLine() async throws {
        let hub = makeHub()
        publish(hub, 1)
        hub.publish(SourceEvent(source: "app", kind: .downtime, skippedBytes: 10))
        let resumed = hub.subscribe(matcher: try everything(), request: SubscriptionRequest(after: 1, epoch: Self.epoch))
        #expect(await batch(resumed).items.map(\.text).first?.contains("downtime") == true)
    }

    @Test func aResumeFilteredToAnotherSourceGetsNoneOfItsEvents() async throws {
        let hub = makeHub()
        publish(hub, 1, source: "b")
        hub.publish(SourceEvent(source: "a", kind: .truncated))
        publish(hub, 1, source: "b")
        var filter = Filter()
        filter.sources = ["b"]
        let resumed = hub.subscribe(matcher: try LineMatcher(filter), request: SubscriptionRequest(after: 0, epoch: Self.epoch))
        #expect(await batch(resumed).items.map { $0.lineSeq.map(String.init) ?? "event" } == ["1", "2"])
    }

    @Test func aDowntimeEventIsSentAsAGapBetweenTwoLines() async throws {
        let hub = makeHub()
        publish(hub, 1)
        hub.publish(SourceEvent(source: "app", kind: .downtime, path: "/var/log/app.log", skippedBytes: 4096))
        publish(hub, 1)
        let resumed = hub.subscribe(matcher: try everything(), request: SubscriptionRequest(after: 1, epoch: Self.epoch))
        let items = await batch(resumed).items
        #expect(
            items.first?.text
                == #"{"type":"gap","after":1,"next":2,"reason":"downtime","source":"app","path":"/var/log/app.log","skipped_bytes":4096}"#
                + "\n"
        )
        #expect(items.compactMap(\.lineSeq) == [2])
    }

    @Test func sourceEventsFollowTheSourceFilter() async throws {
        let hub = makeHub()
        var filter = Filter()
        filter.sources = ["a"]
        let subscription = hub.subscribe(matcher: try LineMatcher(filter), request: SubscriptionRequest(backlog: 0))
        hub.publish(SourceEvent(source: "b", kind: .missing))
        hub.publish(SourceEvent(source: "a", kind: .created))
        let items = await batch(subscription).items
        #expect(items.map(\.text) == [#"{"type":"source","source":"a","event":"created"}"# + "\n"])
    }

    // MARK: wire form

    @Test func lineJSONOmitsNilFields() {
        let record = TestSupport.record("hello", source: "app", micros: 0)
        let json = TestSupport.string(ProtocolObject.line(record, seq: 7).encoded())
        #expect(json == #"{"type":"line","seq":7,"ts":"1970-01-01T00:00:00.000000Z","source":"app","msg":"hello"}"# + "\n")
    }

    @Test func lineJSONHasEveryKnownField() {
        let record = TestSupport.record(
            "m",
            source: "journal",
            micros: 1_709_210_096_000_001,
            host: "h",
            path: "/p",
            priority: 3,
            unit: "u.service",
            identifier: "id",
            pid: 42,
            cursor: "s=1"
        )
        let json = TestSupport.string(ProtocolObject.line(record, seq: 1).encoded())
        #expect(
            json
                == #"{"type":"line","seq":1,"ts":"2024-02-29T12:34:56.000001Z","source":"journal","host":"h","path":"/p","msg":"m","#
                + #""priority":3,"unit":"u.service","identifier":"id","pid":42,"cursor":"s=1"}"# + "\n"
        )
    }

    @Test func lineJSONEscapesQuotesBackslashesAndControlCharacters() {
        let record = TestSupport.record("say \"hi\"\\ \n\r\t\u{1B}[31mred\u{0}\u{7F} é😀")
        let json = TestSupport.string(ProtocolObject.line(record, seq: 1).encoded())
        #expect(json.contains(#""msg":"say \"hi\"\\ \n\r\t\u001b[31mred\u0000"# + "\u{7F} é😀\""))
        #expect(json.hasSuffix("}\n"))
        #expect(json.dropLast().allSatisfy { $0 != "\n" && $0 != "\u{1B}" })
    }

    @Test func gapJSONOmitsNilMissed() {
        #expect(
            TestSupport.string(ProtocolObject.gap(after: 1, next: 2, missed: nil, reason: .restart).encoded())
                == #"{"type":"gap","after":1,"next":2,"reason":"restart"}"# + "\n"
        )
        #expect(
            TestSupport.string(ProtocolObject.gap(after: 1, next: 5, missed: 3, reason: .evicted).encoded())
                == #"{"type":"gap","after":1,"next":5,"missed":3,"reason":"evicted"}"# + "\n"
        )
    }

    @Test func randomEpochIsSixteenLowerHexDigits() {
        let epoch = Hub(configuration: .init()).epoch
        #expect(epoch.count == 16)
        #expect(epoch.allSatisfy { $0.isHexDigit && !$0.isUppercase })
        #expect(Hub(configuration: .init(), epoch: "abc").epoch == "abc")
    }
}
