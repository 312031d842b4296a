import LogcastProtocol
import Synchronization
import Testing

@testable import LogcastHub

/// The writer that holds no task while idle (``Subscription/whenReady(_:)``
/// and ``Subscription/takeBatchNow(maxBytes:keepingRuns:)``): it is called
/// back once for whatever makes the subscription ready, never twice for one
/// arming, and what it then takes is what ``Subscription/nextBatch(maxBytes:readOnExecutor:keepingRuns:)``
/// would have given.
@Suite struct WhenReadyTests {
    private func makeHub(queueLines: Int = 1000, policy: SlowConsumerPolicy = .catchUp, historyLines: Int = 1000) -> Hub {
        var configuration = Hub.Configuration()
        configuration.queueLines = queueLines
        configuration.slowConsumerPolicy = policy
        configuration.historyLines = historyLines
        return Hub(configuration: configuration, epoch: "00000000000000aa")
    }

    /// Counts calls of the callbacks it hands out.
    final class Calls: Sendable {
        let count = Atomic<Int>(0)
        var value: Int { count.load(ordering: .sequentiallyConsistent) }
        func callback() -> @Sendable () -> Void { { self.count.add(1, ordering: .sequentiallyConsistent) } }
    }

    private func subscribe(_ hub: Hub, _ filter: Filter = Filter()) throws -> Subscription {
        hub.subscribe(matcher: try LineMatcher(filter), request: SubscriptionRequest(backlog: 0))
    }

    private func lines(_ taken: Subscription.Taken) -> [String] {
        guard case .batch(.items(_, let items)) = taken else { return [] }
        return Subscription.flatten(items, filter: nil).compactMap {
            guard case .entry(let entry) = $0, case .line(let record) = entry.payload else { return nil }
            return record.message
        }
    }

    @Test func anIdleSubscriptionCallsBackOnceWhenALineArrivesAndNotBefore() throws {
        let hub = makeHub()
        let subscription = try subscribe(hub)
        #expect(subscription.takeBatchNow(maxBytes: .max).isEmpty, "nothing queued: nothing taken, nothing waited for")
        let calls = Calls()
        subscription.whenReady(calls.callback())
        #expect(calls.value == 0)
        hub.publish(TestSupport.record("one"))
        #expect(calls.value == 1)
        hub.publish(TestSupport.record("two"))
        #expect(calls.value == 1, "one call per arming, however many lines arrive")
        #expect(lines(subscription.takeBatchNow(maxBytes: .max, keepingRuns: true)) == ["one", "two"])
        #expect(subscription.takeBatchNow(maxBytes: .max).isEmpty)
    }

    /// An offer that queues nothing (the selection keys leave out every
    /// line: another source's lines, or a level below the filter's) does
    /// not call back; the arming waits for a line of its own. Both ways of
    /// deciding: a chunk of one source, as a whole, and line by line.
    @Test(arguments: ["one source", "mixed sources", "priority"])
    func anOfferThatQueuesNothingDoesNotCallBack(kind: String) throws {
        let hub = makeHub()
        var filter = Filter()
        filter.sources = ["app"]
        if kind == "priority" { filter.priority = 0...3 }
        let subscription = try subscribe(hub, filter)
        let calls = Calls()
        subscription.whenReady(calls.callback())
        let others: [LogRecord] =
            switch kind {
            case "one source": (0..<5).map { TestSupport.record("other \($0)", source: "db") }
            case "mixed sources": (0..<5).map { TestSupport.record("other \($0)", source: $0 % 2 == 0 ? "db" : "web") }
            default: (0..<5).map { TestSupport.record("debug \($0)", source: "app", priority: 7) }
            }
        hub.publish(others)
        #expect(calls.value == 0, "nothing was queued: the writer sleeps on")
        #expect(subscription.takeBatchNow(maxBytes: .max).isEmpty)
        hub.publish([TestSupport.record("mine", source: "app", priority: 3)])
        #expect(calls.value == 1)
        #expect(lines(subscription.takeBatchNow(maxBytes: .max, keepingRuns: true)) == ["mine"])
    }

    @Test func armingWhileSomethingIsQueuedCallsBackAtOnce() throws {
        let hub = makeHub()
        let subscription = try subscribe(hub)
        hub.publish(TestSupport.record("waiting"))
        let calls = Calls()
        subscription.whenReady(calls.callback())
        #expect(calls.value == 1)
        hub.publish(TestSupport.record("more"))
        #expect(calls.value == 1, "the call used the arming up")
    }

    /// Every way a subscription becomes ready calls back: a line, a reply,
    /// the end, a close, an overflow under the disconnect policy.
    @Test(arguments: ["line", "control", "finish", "close", "overflow"])
    func everyKindOfReadinessCallsBack(kind: String) throws {
        let hub = makeHub(queueLines: 2, policy: kind == "overflow" ? .disconnect : .catchUp)
        let subscription = try subscribe(hub)
        let calls = Calls()
        subscription.whenReady(calls.callback())
        switch kind {
        case "line": hub.publish(TestSupport.record("x"))
        case "control": subscription.sendControl(Array(#"{"type":"error"}"#.utf8))
        case "finish": hub.unsubscribe(subscription)
        case "close": subscription.close(code: 4401, reason: "token revoked")
        default: hub.publish((0..<5).map { TestSupport.record("line \($0)") })
        }
        #expect(calls.value == 1)
        switch (kind, subscription.takeBatchNow(maxBytes: .max)) {
        case ("line", .batch(.items)), ("control", .batch(.items)), ("finish", .batch(.finished)), ("close", .batch(.close)),
            ("overflow", .batch(.overflowed)):
            break
        case (_, let taken):
            Issue.record("\(kind): took \(taken)")
        }
    }

    /// The end, a close and an overflow stay: a writer that takes one and
    /// hands the stream to a task finds it again there.
    @Test func theEndAndACloseAreTakenAgainUntilHandled() throws {
        let hub = makeHub()
        let closed = try subscribe(hub)
        closed.close(code: 1008, reason: "replies not read")
        for _ in 0..<2 {
            guard case .batch(.close(let request)) = closed.takeBatchNow(maxBytes: .max) else {
                Issue.record("no close")
                return
            }
            #expect(request.code == 1008)
        }
        let ended = try subscribe(hub)
        hub.unsubscribe(ended)
        for _ in 0..<2 {
            guard case .batch(.finished) = ended.takeBatchNow(maxBytes: .max) else {
                Issue.record("no end")
                return
            }
        }
    }

    /// A filter runs in the taking, as in nextBatch: lines it drops are taken
    /// and dropped, and a queue of only such lines is empty.
    @Test func aFilteredSubscriptionTakesOnlyMatchingLines() async throws {
        let hub = makeHub()
        var errors = Filter()
        errors.grep = ["error"]
        let now = try subscribe(hub, errors)
        let waiting = try subscribe(hub, errors)
        hub.publish(["ok 1", "error 2", "ok 3", "error 4"].map { TestSupport.record($0) })
        #expect(lines(now.takeBatchNow(maxBytes: .max)) == ["error 2", "error 4"])
        guard case .items(_, let items) = await waiting.boundedBatch(maxBytes: .max) else {
            Issue.record("no batch")
            return
        }
        #expect(lines(.batch(.items(gap: nil, items))) == ["error 2", "error 4"], "the same as nextBatch")
        hub.publish(["ok 5", "ok 6"].map { TestSupport.record($0) })
        #expect(now.takeBatchNow(maxBytes: .max).isEmpty, "only dropped lines: nothing to send")
    }

    /// A subscriber behind reads on from the history, which only a task
    /// does: without one, the taking says so (and the callback came).
    @Test func aSubscriberBehindIsLeftToATask() async throws {
        let hub = makeHub(queueLines: 3)
        let subscription = try subscribe(hub)
        hub.publish((0..<10).map { TestSupport.record("line \($0)") })
        var got: [String] = []
        while true {
            let taken = subscription.takeBatchNow(maxBytes: .max)
            if case .behind = taken { break }
            guard case .batch = taken else {
                Issue.record("neither lines nor behind: \(taken)")
                return
            }
            got += lines(taken)
        }
        let calls = Calls()
        subscription.whenReady(calls.callback())
        #expect(calls.value == 1, "a read is due: ready")
        while got.count < 10, let batch = await subscription.takeBatch(maxBytes: .max, keepingRuns: true) {
            got += lines(.batch(batch))
        }
        #expect(got == (0..<10).map { "line \($0)" }, "every line once, in order, the rest read from the history")
    }

    /// A publisher wakes the writers it made ready only after it has let go
    /// of the hub's fan-out lock, so no other source's lines wait while a
    /// woken thread runs: for every kind of publish (lines, lines stamped
    /// elsewhere, a source event) and every way an offer queues (a run for
    /// an unfiltered subscriber, runs picked by selection keys, entries one
    /// by one under the drop policy), the callback finds the lock free.
    @Test func writersAreWokenAfterThePublisherLetsGoOfTheFanOutLock() throws {
        let publishes: [(String, (Hub, Int) -> Void)] = [
            ("lines", { hub, n in hub.publish([TestSupport.record("error \(n)"), TestSupport.record("info \(n)")]) }),
            ("stamped", { hub, n in hub.publish(stamped: [(seq: UInt64(2 * n + 1), record: TestSupport.record("error \(n)"))]) }),
            ("event", { hub, _ in hub.publish(SourceEvent(source: "app", kind: .rotated, path: "/var/log/app.log")) }),
        ]
        var grep = Filter()
        grep.grep = ["error"]
        let subscribers: [(String, SlowConsumerPolicy, Filter)] = [
            ("unfiltered", .catchUp, Filter()),
            ("grep", .catchUp, grep),
            ("drop policy", .drop, Filter()),
        ]
        for (kind, publish) in publishes {
            for (name, policy, filter) in subscribers {
                let hub = makeHub(policy: policy)
                let subscription = try subscribe(hub, filter)
                for round in 0..<3 {
                    let wokenFree = Mutex<[Bool]>([])
                    subscription.whenReady { wokenFree.withLock { $0.append(hub.fanoutIsFree) } }
                    publish(hub, round)
                    #expect(wokenFree.withLock { $0 } == [true], "\(kind) to \(name), round \(round): woken once, the lock free")
                    _ = subscription.takeBatchNow(maxBytes: .max, keepingRuns: true)
                }
            }
        }
    }
}

extension Subscription.Taken {
    var isEmpty: Bool {
        if case .empty = self { return true }
        return false
    }
}
