import LogcastProtocol
import Testing

@testable import LogcastHub

/// Runs: a published chunk queued as one item (``SubscriberQueue/pushRun(_:bytes:)``)
/// must behave exactly as its lines pushed one by one, and a subscriber fed
/// runs must see what it saw before, filtered the same way.
@Suite struct RunQueueTests {
    /// Lines of random sizes from `first`, and their summed sizes; a slice
    /// that starts at a random index of its array, as the runs of a chunk do.
    private func chunk(from first: UInt64, count: Int, using rng: inout SeededGenerator) -> (lines: ArraySlice<HubEntry>, bytes: Int) {
        let skipped = Int.random(in: 0...5, using: &rng)
        let all = (0..<(skipped + count)).map { index in
            index < skipped
                ? TestSupport.lineEntry(0) : TestSupport.lineEntry(first + UInt64(index - skipped), size: Int.random(in: 64...400, using: &rng))
        }
        let lines = all[skipped...]
        return (lines, lines.reduce(0) { $0 + $1.byteCount })
    }

    /// The seqs (and `e@POSITION` for events) of drained items, runs laid out line by line.
    private func seqs(_ items: [SubscriberQueue.Item]) -> [String] {
        Subscription.flatten(items, filter: nil).map { item in
            guard let entry = item.carried else { return "control" }
            return entry.isLine ? "\(entry.position)" : "e@\(entry.position)"
        }
    }

    /// Random chunks, events and drains, fed to one queue as runs and to
    /// another line by line: the same refusals, bytes, lines out, frames and
    /// delivered position after every step.
    @Test(arguments: 1...40)
    func aRunIsQueuedAndDrainedAsItsLinesOneByOne(seed: UInt64) {
        var rng = SeededGenerator(state: seed)
        let maxLines = Int.random(in: 1...40, using: &rng)
        let maxBytes = Int.random(in: 200...8000, using: &rng)
        var runs = SubscriberQueue(maxLines: maxLines, maxBytes: maxBytes, policy: .catchUp)
        var singles = SubscriberQueue(maxLines: maxLines, maxBytes: maxBytes, policy: .catchUp)
        var next: UInt64 = 1
        for step in 0..<200 {
            switch Int.random(in: 0..<10, using: &rng) {
            case 0..<5:
                let (lines, bytes) = chunk(from: next, count: Int.random(in: 1...30, using: &rng), using: &rng)
                let result = runs.pushRun(lines, bytes: bytes)
                var refusedAt: Int?
                for index in lines.indices where singles.push(.entry(lines[index])) == .refused {
                    refusedAt = index
                    break
                }
                #expect(result == (refusedAt.map { .refused(at: $0) } ?? .queued), "step \(step)")
                // A subscriber reads the refused rest from the history later: go on after it.
                next += UInt64(lines.count)
            case 5:
                let event = TestSupport.eventEntry(next, size: Int.random(in: 64...200, using: &rng))
                #expect(runs.push(.entry(event)) == singles.push(.entry(event)))
            default:
                let budget = Int.random(in: 1...3000, using: &rng)
                let fromRuns = runs.drain(maxBytes: budget)
                let fromSingles = singles.drain(maxBytes: budget)
                #expect(seqs(fromRuns.items) == seqs(fromSingles.items), "step \(step): one frame's lines")
                #expect(fromRuns.gap == fromSingles.gap)
                #expect(runs.lastDeliveredSeq == singles.lastDeliveredSeq)
            }
            #expect(runs.queuedBytes == singles.queuedBytes, "step \(step)")
            #expect(runs.isEmpty == singles.isEmpty)
        }
        let rest = runs.drain(maxBytes: .max)
        #expect(seqs(rest.items) == seqs(singles.drain(maxBytes: .max).items))
    }

    @Test func anEmptyQueueTakesTheFirstLineOfARunWhateverItsSize() {
        var queue = SubscriberQueue(maxLines: 10, maxBytes: 100, policy: .catchUp)
        let lines = [TestSupport.lineEntry(1, size: 500), TestSupport.lineEntry(2, size: 64)]
        #expect(queue.pushRun(lines[...], bytes: 564) == .refused(at: 1))
        #expect(queue.queuedBytes == 500)
        let (_, items) = queue.drain(maxBytes: 10)
        #expect(seqs(items) == ["1"], "a frame holds at least one line")
        #expect(queue.lastDeliveredSeq == 1)
    }

    @Test func aRunWhoseFirstLineDoesNotFitTakesBackTheEventsOfItsPosition() {
        var queue = SubscriberQueue(maxLines: 1, maxBytes: 1 << 20, policy: .catchUp)
        queue.push(.entry(TestSupport.lineEntry(1)))
        queue.push(.entry(TestSupport.eventEntry(2)))
        let lines = [TestSupport.lineEntry(2), TestSupport.lineEntry(3)]
        #expect(queue.pushRun(lines[...], bytes: 200) == .refused(at: 0))
        #expect(seqs(queue.drain(maxBytes: .max).items) == ["1"], "the event is read again with line 2")
    }

    @Test func aFrameBudgetSplitsARunAndTheRestComesNext() {
        var queue = SubscriberQueue(maxLines: 100, maxBytes: 1 << 20, policy: .catchUp)
        let lines = (1...10).map { TestSupport.lineEntry(UInt64($0), size: 100) }
        #expect(queue.pushRun(lines[...], bytes: 1000) == .queued)
        #expect(seqs(queue.drain(maxBytes: 350).items) == ["1", "2", "3"])
        #expect(queue.queuedBytes == 700)
        #expect(queue.lastDeliveredSeq == 3)
        #expect(seqs(queue.drain(maxBytes: .max).items) == (4...10).map { "\($0)" })
        #expect(queue.isEmpty)
    }

    @Test func theDropPolicyDropsARunAsItsLines() {
        var queue = SubscriberQueue(maxLines: 3, maxBytes: 1 << 20, policy: .drop)
        queue.push(.entry(TestSupport.lineEntry(1)))
        #expect(queue.push(.entry(TestSupport.lineEntry(2))) == .queued)
        queue.push(.entry(TestSupport.lineEntry(3)))
        #expect(queue.push(.entry(TestSupport.lineEntry(4))) == .queuedAfterDropping(1))
        let (gap, items) = queue.drain(maxBytes: .max)
        #expect(gap == SubscriberQueue.Gap(after: 0, next: 2, missed: 1))
        #expect(seqs(items) == ["2", "3", "4"])
    }

    // MARK: Through the hub

    /// What a subscriber has read: `source:message` per line, until `count` lines.
    private func read(_ subscription: Subscription, lines count: Int) async -> [String] {
        var out: [String] = []
        while out.count < count {
            guard case .items(_, let items) = await subscription.boundedBatch(maxBytes: 2048) else { break }
            for item in items {
                guard case .entry(let entry) = item, case .line(let record) = entry.payload else {
                    Issue.record("a batch holds only line entries, not \(item)")
                    continue
                }
                out.append("\(record.source):\(record.message)")
            }
        }
        return out
    }

    @Test(.timeLimit(.minutes(1))) func subscribersOfOneMixedChunkGetTheirLinesInOrder() async throws {
        let hub = Hub(epoch: "00000000000000dd")
        func subscribe(_ configure: (inout Filter) -> Void) throws -> Subscription {
            var filter = Filter()
            configure(&filter)
            return hub.subscribe(matcher: try LineMatcher(filter), request: SubscriptionRequest(backlog: 0))
        }
        let everything = try subscribe { _ in }
        let sourceA = try subscribe { $0.sources = ["a"] }
        let grepSeven = try subscribe { $0.grep = ["7"] }
        let sourceBRegex = try subscribe {
            $0.sources = ["b"]
            $0.regex = "^m[0-4]"
        }
        // One chunk (a gateway's publish may mix sources), in runs of both sources.
        let stamped = (1...300).map { index in
            (seq: UInt64(index), record: TestSupport.record("m\(index)", source: (index / 7) % 2 == 0 ? "a" : "b"))
        }
        hub.publish(stamped: stamped)
        func expected(_ keep: (LogRecord) -> Bool) -> [String] {
            stamped.map(\.record).filter(keep).map { "\($0.source):\($0.message)" }
        }
        let all = expected { _ in true }
        #expect(await read(everything, lines: all.count) == all)
        let ofA = expected { $0.source == "a" }
        #expect(await read(sourceA, lines: ofA.count) == ofA)
        let sevens = expected { $0.message.contains("7") }
        #expect(await read(grepSeven, lines: sevens.count) == sevens)
        let early = expected { $0.source == "b" && ("0"..."4").contains($0.message.dropFirst().prefix(1)) }
        #expect(await read(sourceBRegex, lines: early.count) == early)
        // Nothing more is queued for any of them: one more line shows what comes next.
        hub.publish(stamped: [(seq: 301, record: TestSupport.record("m7 last", source: "a"))])
        #expect(await read(everything, lines: 1) == ["a:m7 last"])
        #expect(await read(sourceA, lines: 1) == ["a:m7 last"])
        #expect(await read(grepSeven, lines: 1) == ["a:m7 last"])
    }

    /// `keepingRuns`: an unfiltered subscriber gets a published chunk as
    /// one run item (what its writer frames whole), holding the same lines
    /// in the same order; a filtered one still gets single items, filtered.
    @Test(.timeLimit(.minutes(1))) func keepingRunsHandsAnUnfilteredSubscriberItsChunksWhole() async throws {
        let hub = Hub(epoch: "00000000000000de")
        let everything = hub.subscribe(matcher: try LineMatcher(Filter()), request: SubscriptionRequest(backlog: 0))
        var sevens = Filter()
        sevens.grep = ["7"]
        let filtered = hub.subscribe(matcher: try LineMatcher(sevens), request: SubscriptionRequest(backlog: 0))
        let records = (1...64).map { TestSupport.record("m\($0)") }
        hub.publish(Array(records[..<40]))
        hub.publish(Array(records[40...]))

        guard case .items(nil, let whole) = await everything.boundedBatch(maxBytes: 1 << 20, keepingRuns: true) else {
            Issue.record("no batch")
            return
        }
        #expect(whole.count == 2)
        #expect(whole.allSatisfy { if case .run = $0 { true } else { false } })
        #expect(seqs(whole) == (1...64).map { "\($0)" })

        guard case .items(nil, let picked) = await filtered.boundedBatch(maxBytes: 1 << 20, keepingRuns: true) else {
            Issue.record("no batch")
            return
        }
        let expected = records.enumerated().filter { $0.element.message.contains("7") }.map { "\($0.offset + 1)" }
        #expect(picked.allSatisfy { if case .entry = $0 { true } else { false } })
        #expect(seqs(picked) == expected)
    }
}
