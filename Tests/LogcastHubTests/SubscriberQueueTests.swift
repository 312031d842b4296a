import LogcastProtocol
import Testing

@testable import LogcastHub

@Suite struct SubscriberQueueTests {
    private func line(_ seq: UInt64, _ size: Int) -> HubEntry { TestSupport.lineEntry(seq, size: size) }
    private func control(_ text: String) -> SubscriberQueue.Item { .control(Array(text.utf8)) }

    private func drainAll(_ queue: inout SubscriberQueue) -> (gap: SubscriberQueue.Gap?, items: [SubscriberQueue.Item]) {
        queue.drain(maxBytes: .max)
    }

    @Test func itemsComeOutInOrder() {
        var queue = SubscriberQueue(maxLines: 100, maxBytes: 1 << 20, policy: .drop)
        queue.push(control("hello"))
        for seq: UInt64 in 1...5 { queue.push(.entry(line(seq, 100))) }
        queue.push(.entry(TestSupport.eventEntry(6)))
        queue.push(.entry(line(6, 100)))
        let (gap, items) = drainAll(&queue)
        #expect(gap == nil)
        #expect(items.count == 8)
        #expect(items[0].text == "hello")
        #expect(items.compactMap(\.lineSeq) == [1, 2, 3, 4, 5, 6])
        #expect(items[6].lineSeq == nil && !items[6].isControl)
        #expect(queue.count == 0)
        #expect(queue.queuedBytes == 0)
        #expect(queue.isEmpty)
        #expect(queue.lastDeliveredSeq == 6)
    }

    @Test func dropPolicyDropsOldestLines() {
        var queue = SubscriberQueue(maxLines: 3, maxBytes: 1 << 20, policy: .drop)
        #expect(queue.push(.entry(line(1, 100))) == .queued)
        #expect(queue.push(.entry(line(2, 100))) == .queued)
        #expect(queue.push(.entry(line(3, 100))) == .queued)
        #expect(queue.push(.entry(line(4, 100))) == .queuedAfterDropping(1))
        #expect(queue.push(.entry(line(5, 100))) == .queuedAfterDropping(1))
        #expect(queue.count == 3)
        let (_, items) = drainAll(&queue)
        #expect(items.compactMap(\.lineSeq) == [3, 4, 5])
    }

    @Test func controlItemsAreNeverDropped() {
        var queue = SubscriberQueue(maxLines: 2, maxBytes: 1 << 20, policy: .drop)
        queue.push(control("hello"))
        queue.push(.entry(line(1, 100)))
        queue.push(.entry(line(2, 100)))
        queue.push(control("subscribed"))
        queue.push(.entry(line(3, 100)))
        queue.push(.entry(line(4, 100)))
        let (gap, items) = drainAll(&queue)
        #expect(items.map(\.text).filter { !$0.hasPrefix("x") } == ["hello", "subscribed"])
        #expect(items.compactMap(\.lineSeq) == [3, 4])
        #expect(gap == SubscriberQueue.Gap(after: 0, next: 3, missed: 2))
    }

    @Test func controlItemsOverTheByteCapAreStillQueued() {
        var queue = SubscriberQueue(maxLines: 10, maxBytes: 10, policy: .drop)
        queue.push(control(String(repeating: "a", count: 8)))
        #expect(queue.push(control(String(repeating: "b", count: 8))) == .queued)
        #expect(queue.count == 2)
    }

    @Test func drainReportsGapThenClearsIt() {
        var queue = SubscriberQueue(maxLines: 3, maxBytes: 1 << 20, policy: .drop)
        for seq: UInt64 in 1...3 { queue.push(.entry(line(seq, 100))) }
        // Deliver 1 and 2.
        let first = queue.drain(maxBytes: 200)
        #expect(first.gap == nil)
        #expect(first.items.compactMap(\.lineSeq) == [1, 2])
        #expect(queue.lastDeliveredSeq == 2)
        // 3 is queued; 4..8 arrive, 3, 4 and 5 are dropped.
        for seq: UInt64 in 4...8 { queue.push(.entry(line(seq, 100))) }
        #expect(!queue.isEmpty)
        let second = drainAll(&queue)
        #expect(second.gap == SubscriberQueue.Gap(after: 2, next: 6, missed: 3))
        #expect(second.items.compactMap(\.lineSeq) == [6, 7, 8])
        #expect(queue.lastDeliveredSeq == 8)
        // The gap is announced once.
        queue.push(.entry(line(9, 100)))
        let third = drainAll(&queue)
        #expect(third.gap == nil)
        #expect(third.items.compactMap(\.lineSeq) == [9])
    }

    @Test func gapAfterUsesTheMarkedResumePoint() {
        var queue = SubscriberQueue(maxLines: 1, maxBytes: 1 << 20, policy: .drop)
        queue.markDelivered(upTo: 40)
        queue.push(.entry(line(41, 100)))
        queue.push(.entry(line(42, 100)))
        #expect(drainAll(&queue).gap == SubscriberQueue.Gap(after: 40, next: 42, missed: 1))
    }

    @Test func markDeliveredNeverMovesBackwards() {
        var queue = SubscriberQueue(maxLines: 4, maxBytes: 1 << 20, policy: .drop)
        queue.markDelivered(upTo: 10)
        queue.markDelivered(upTo: 3)
        #expect(queue.lastDeliveredSeq == 10)
    }

    @Test func byteCapDropsOldestLines() {
        // Each line costs 100 bytes.
        var queue = SubscriberQueue(maxLines: 100, maxBytes: 250, policy: .drop)
        queue.push(.entry(line(1, 100)))
        queue.push(.entry(line(2, 100)))
        #expect(queue.queuedBytes == 200)
        #expect(queue.push(.entry(line(3, 100))) == .queuedAfterDropping(1))
        #expect(queue.queuedBytes == 200)
        #expect(queue.push(.entry(line(4, 200))) == .queuedAfterDropping(2))
        #expect(queue.queuedBytes == 200)
        let (gap, items) = drainAll(&queue)
        #expect(items.compactMap(\.lineSeq) == [4])
        #expect(gap == SubscriberQueue.Gap(after: 0, next: 4, missed: 3))
    }

    @Test func firstItemMayExceedTheByteCap() {
        var queue = SubscriberQueue(maxLines: 10, maxBytes: 50, policy: .drop)
        #expect(queue.push(.entry(line(1, 500))) == .queued)
        #expect(queue.queuedBytes == 500)
        #expect(queue.push(.entry(line(2, 500))) == .queuedAfterDropping(1))
        #expect(queue.count == 1)
    }

    @Test func disconnectPolicyOverflowsAndRefusesEverything() {
        var queue = SubscriberQueue(maxLines: 2, maxBytes: 1 << 20, policy: .disconnect)
        #expect(queue.push(.entry(line(1, 100))) == .queued)
        #expect(queue.push(.entry(line(2, 100))) == .queued)
        #expect(!queue.isOverflowed)
        #expect(queue.push(.entry(line(3, 100))) == .overflowed)
        #expect(queue.isOverflowed)
        #expect(queue.count == 2)
        #expect(queue.push(control("error")) == .overflowed)
        #expect(queue.count == 2)
    }

    @Test func disconnectPolicyOverflowsOnBytes() {
        var queue = SubscriberQueue(maxLines: 100, maxBytes: 250, policy: .disconnect)
        queue.push(.entry(line(1, 100)))
        queue.push(.entry(line(2, 100)))
        #expect(queue.push(.entry(line(3, 100))) == .overflowed)
        #expect(queue.isOverflowed)
    }

    @Test func drainRespectsTheByteBudget() {
        var queue = SubscriberQueue(maxLines: 100, maxBytes: 1 << 20, policy: .drop)
        for seq: UInt64 in 1...5 { queue.push(.entry(line(seq, 100))) }
        #expect(queue.drain(maxBytes: 250).items.compactMap(\.lineSeq) == [1, 2])
        #expect(queue.drain(maxBytes: 300).items.compactMap(\.lineSeq) == [3, 4, 5])
        #expect(queue.queuedBytes == 0)
    }

    @Test func drainReturnsAtLeastOneItem() {
        var queue = SubscriberQueue(maxLines: 100, maxBytes: 1 << 20, policy: .drop)
        queue.push(.entry(line(1, 1000)))
        queue.push(.entry(line(2, 100)))
        #expect(queue.drain(maxBytes: 1).items.compactMap(\.lineSeq) == [1])
        #expect(queue.drain(maxBytes: 1).items.compactMap(\.lineSeq) == [2])
        let empty = queue.drain(maxBytes: 1)
        #expect(empty.gap == nil && empty.items.isEmpty)
    }

    @Test func removeEntriesForgetsLinesAndDropsButKeepsControls() {
        var queue = SubscriberQueue(maxLines: 1, maxBytes: 1 << 20, policy: .drop)
        queue.push(.entry(line(1, 100)))
        queue.push(control("error-1"))
        queue.push(.entry(line(2, 100)))
        queue.push(control("error-2"))
        queue.removeEntries()
        #expect(queue.controlCount == 2)
        #expect(queue.queuedBytes == 14)
        let kept = queue.drain(maxBytes: 1 << 20)
        #expect(kept.gap == nil)
        #expect(kept.items.count == 2)
        #expect(queue.controlCount == 0)
        #expect(queue.isEmpty)
        #expect(queue.count == 0)
        #expect(queue.queuedBytes == 0)
        queue.push(.entry(line(3, 100)))
        let (gap, items) = drainAll(&queue)
        #expect(gap == nil)
        #expect(items.compactMap(\.lineSeq) == [3])
    }

    @Test func sizeOfItems() {
        #expect(SubscriberQueue.size(of: .entry(line(1, 164))) == 164)
        #expect(SubscriberQueue.size(of: control("12345")) == 5)
    }

    /// Lines of random text and JSON sizes, queued as single entries and as
    /// runs, drained with random budgets in both measures: every line comes
    /// out once and in order; a frame takes at most its budget as its
    /// measure counts (a first line alone may pass it), and stops only
    /// where the next line would pass it; the queue's own bytes are always
    /// the queued size of what is left.
    @Test(arguments: [SubscriberQueue.FrameMeasure.queued, .text])
    func framesTakeTheirBudgetAsTheirMeasureCountsIt(measure: SubscriberQueue.FrameMeasure) {
        var random = HistoryRingTests.Random(state: measure == .text ? 11 : 12)
        for round in 0..<200 {
            var queue = SubscriberQueue(maxLines: 1 << 20, maxBytes: 1 << 30, policy: .catchUp, frameMeasure: measure)
            var pushed: [HubEntry] = []
            var seq: UInt64 = 0
            for _ in 0..<(1 + random.next(12)) {
                let lines = (0..<(1 + random.next(30))).map { _ -> HubEntry in
                    seq += 1
                    let record = TestSupport.record(String(repeating: "t", count: random.next(300)))
                    return HubEntry(position: seq, payload: .line(record), json: [UInt8](repeating: UInt8(ascii: "j"), count: 20 + random.next(600)))
                }
                if random.next(2) == 0 {
                    for entry in lines { queue.push(.entry(entry)) }
                } else {
                    _ = queue.pushRun(lines[...], bytes: lines.reduce(0) { $0 + $1.byteCount })
                }
                pushed += lines
            }
            var next = 0
            while !queue.isEmpty {
                let budget = 1 + random.next(4000)
                let items = queue.drain(maxBytes: budget).items
                let lines = Subscription.flatten(items, filter: nil).compactMap(\.carried)
                #expect(zip(lines, pushed[next...]).allSatisfy { $0 === $1 } && !lines.isEmpty, "round \(round): in order")
                let cost = SubscriberQueue.budgetBytes(of: items, measure: measure)
                #expect(cost == lines.reduce(0) { $0 + measure.size(of: .entry($1)) }, "round \(round): runs and entries count alike")
                #expect(cost <= budget || lines.count == 1, "round \(round): within \(budget), or one line alone")
                next += lines.count
                if next < pushed.count {
                    #expect(cost + measure.size(of: .entry(pushed[next])) > budget, "round \(round): the next line would not fit")
                }
                #expect(queue.queuedBytes == pushed[next...].reduce(0) { $0 + $1.byteCount }, "round \(round): queued bytes")
            }
            #expect(next == pushed.count, "round \(round): every line")
        }
    }

    @Test func aTextLineCountsItsTextAndNewline() {
        let record = TestSupport.record("hello")
        let entry = HubEntry(position: 1, payload: .line(record), json: ProtocolObject.line(record, seq: 1).encoded())
        #expect(SubscriberQueue.FrameMeasure.text.size(of: .entry(entry)) == 6)
        #expect(SubscriberQueue.FrameMeasure.queued.size(of: .entry(entry)) == entry.byteCount)
        #expect(SubscriberQueue.FrameMeasure.text.size(of: control("12345")) == 5)
        #expect(SubscriberQueue.FrameMeasure(.text) == .text && SubscriberQueue.FrameMeasure(.json) == .queued)
    }
}
