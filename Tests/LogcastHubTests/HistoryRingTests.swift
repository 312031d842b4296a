import LogcastProtocol
import Synchronization
import Testing

@testable import LogcastHub

/// The history in memory as published chunks: every stretch a catch-up
/// reads is the same entries as the flat history, in slices of the chunks
/// that carry the text index.
@Suite struct HistoryRingTests {
    /// A deterministic generator (SplitMix64), so a failure names its seed.
    struct Random {
        var state: UInt64
        mutating func next(_ bound: Int) -> Int {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return Int((z ^ (z >> 31)) % UInt64(bound))
        }
    }

    /// Chunks of 1 to 9 lines and single events, appended and trimmed at
    /// random limits into small blocks (sealed by count or by bytes), the
    /// flat history kept beside them as the reference. Views taken along
    /// the way still read what the history held when they were taken.
    @Test(arguments: 0..<40)
    func everyStretchIsTheFlatHistoryInSlicesOfItsChunks(seed: UInt64) {
        var random = Random(state: seed)
        var ring = HistoryRing(blockLimit: 1 + random.next(6), blockByteLimit: 100 * (1 + random.next(8)))
        var reference: [HubEntry] = []
        var views: [(view: HistoryRing.View, saw: [HubEntry])] = []
        var position: UInt64 = 1
        let maxLines = 5 + random.next(40)
        let maxBytes = 100 * (5 + random.next(40))
        for _ in 0..<60 {
            if random.next(5) == 0 {
                let event = TestSupport.eventEntry(position)
                ring.append([event])
                reference.append(event)
            } else {
                let lines = (0..<(1 + random.next(9))).map { TestSupport.lineEntry(position + UInt64($0)) }
                position += UInt64(lines.count)
                ring.append(HubChunk(lines: lines, dictionary: nil), bytes: random.next(2) == 0 ? lines.count * 100 : nil)
                reference += lines
            }
            ring.trim(lines: maxLines, bytes: maxBytes)
            while reference.count > maxLines || reference.count * 100 > maxBytes { reference.removeFirst() }

            #expect(ring.entries.map(\.position) == reference.map(\.position), "seed \(seed)")
            #expect(ring.bytes == reference.count * 100, "seed \(seed)")
            #expect(ring.count == reference.count && ring.first === reference.first, "seed \(seed)")
            if random.next(3) == 0 { views.append((ring.entries, reference)) }
            for (number, kept) in views.enumerated() {
                Self.expect(kept.view, reads: kept.saw, random: &random, "seed \(seed), view \(number)")
            }
            for seq in 0...(position + 1) {
                let expected = reference.firstIndex { $0.position > seq } ?? reference.count
                #expect(ring.firstIndex(after: seq) == expected, "seed \(seed), after \(seq)")
            }
            for _ in 0..<8 {
                let lower = random.next(reference.count + 1)
                let upper = lower + random.next(reference.count - lower + 1)
                let runs = ring.runs(lower..<upper)
                let flat = runs.flatMap(\.lines)
                #expect(flat.count == upper - lower, "seed \(seed), \(lower)..<\(upper)")
                #expect(zip(flat, reference[lower..<upper]).allSatisfy { $0 === $1 }, "seed \(seed), \(lower)..<\(upper): the same entries")
                for run in runs {
                    #expect(!run.lines.isEmpty, "seed \(seed): no empty run")
                    let inChunk = run.chunk.lines.indices.contains(run.lines.startIndex) && run.lines.endIndex <= run.chunk.lines.endIndex
                    #expect(
                        inChunk && run.lines.indices.allSatisfy { run.chunk.lines[$0] === run.lines[$0] },
                        "seed \(seed): a run is a slice of its own chunk, at the chunk's indices"
                    )
                }
            }
        }
    }

    /// `view` holds exactly `saw`, the same entries, in every way a scan reads it:
    /// in order, backwards, by index, and in slices (whose indices are the view's).
    static func expect(_ view: HistoryRing.View, reads saw: [HubEntry], random: inout Random, _ comment: Comment) {
        func same(_ a: some Sequence<HubEntry>, _ b: some Sequence<HubEntry>) -> Bool {
            Array(a).map(ObjectIdentifier.init) == Array(b).map(ObjectIdentifier.init)
        }
        #expect(view.count == saw.count && view.startIndex == 0, comment)
        #expect(same(view, saw), comment)
        #expect(same(view.reversed(), saw.reversed()), comment)
        #expect(view.indices.allSatisfy { view[$0] === saw[$0] }, comment)
        let lower = random.next(saw.count + 1)
        let upper = lower + random.next(saw.count - lower + 1)
        let slice = view[lower..<upper]
        #expect(slice.startIndex == lower && slice.endIndex == upper, comment)
        #expect(same(slice, saw[lower..<upper]) && same(slice.reversed(), saw[lower..<upper].reversed()), comment)
        #expect(slice.indices.allSatisfy { slice[$0] === saw[$0] }, comment)
        if !saw.isEmpty {
            let seq = saw[random.next(saw.count)].position
            #expect(view.firstIndex(after: seq) == (saw.firstIndex { $0.position > seq } ?? saw.count), comment)
        }
    }

    /// A view costs a reference per block, not per entry: with the default
    /// blocks, 10,000 single-line publishes make a view of 40 references.
    @Test func aViewHoldsABlockReferencePerBlockNotPerEntry() {
        var ring = HistoryRing()
        for seq in UInt64(1)...10_000 {
            ring.append([TestSupport.lineEntry(seq)])
            ring.trim(lines: 10_000, bytes: 64 * 1024 * 1024)
        }
        let view = ring.entries
        #expect(view.count == 10_000 && view.blockCount == 40)
        var big = HistoryRing()
        for seq in UInt64(1)...100 { big.append([TestSupport.lineEntry(seq, size: 10_000)]) }
        #expect(big.entries.blockCount == 4, "a block takes no more entries once they hold 256 KiB")
    }

    /// What the ring no longer holds is let go once no view holds it: a
    /// view keeps its blocks, the ring only its own.
    @Test func trimmedEntriesAreLetGoOnceNoViewHoldsThem() {
        var ring = HistoryRing(blockLimit: 4)
        weak var oldest: HubEntry?
        var view: HistoryRing.View?
        do {
            let first = TestSupport.lineEntry(1)
            oldest = first
            ring.append([first])
            view = ring.entries
        }
        for seq in UInt64(2)...40 {
            ring.append([TestSupport.lineEntry(seq)])
            ring.trim(lines: 10, bytes: .max)
        }
        #expect(oldest != nil, "the view still reads it")
        #expect(view?.first?.position == 1 && view?.count == 1)
        view = nil
        #expect(oldest == nil, "trimmed, and no view holds it")
        #expect(ring.entries.map(\.position) == Array(31...40))
    }

    /// A view is read outside the hub's lock while publishers append and
    /// trim: readers on other threads take views under a lock, then check
    /// them without it against the positions they must hold.
    @Test func viewsReadOutsideTheLockWhileTheHistoryMoves() async {
        final class Shared: Sendable {
            let ring = Mutex(HistoryRing(blockLimit: 8, blockByteLimit: 1000))
        }
        let shared = Shared()
        let published = 20_000
        await withTaskGroup(of: Int.self) { group in
            group.addTask {
                for seq in 1...UInt64(published) {
                    let entry = seq % 7 == 0 ? TestSupport.eventEntry(seq) : TestSupport.lineEntry(seq)
                    shared.ring.withLock {
                        $0.append([entry])
                        $0.trim(lines: 300, bytes: 100 * 250)
                    }
                }
                return 0
            }
            for _ in 0..<2 {
                group.addTask {
                    var wrong = 0
                    var last: UInt64 = 0
                    while last < UInt64(published) {
                        let view = shared.ring.withLock { $0.entries }
                        guard let first = view.first?.position else { continue }
                        // The history holds consecutive positions: the view must too, whatever happened since.
                        if view.map(\.position) != Array(first..<(first + UInt64(view.count))) { wrong += 1 }
                        if view.reversed().map(\.position) != Array((first..<(first + UInt64(view.count))).reversed()) { wrong += 1 }
                        last = view.last?.position ?? last
                    }
                    return wrong
                }
            }
            var wrong = 0
            for await count in group { wrong += count }
            #expect(wrong == 0)
        }
    }

    @Test func anEmptyStretchIsNoRun() {
        var ring = HistoryRing()
        #expect(ring.runs(0..<0).isEmpty)
        ring.append(HubChunk(lines: [TestSupport.lineEntry(1)], dictionary: nil))
        #expect(ring.runs(1..<1).isEmpty)
        ring.append(HubChunk(lines: [], dictionary: nil))
        #expect(ring.count == 1 && ring.runs(0..<1).count == 1, "an empty chunk adds nothing")
    }

    /// A cursor that has passed some events at its position skips them in
    /// runs as it does in a flat read, however the events are cut into runs.
    @Test func passedEventsAreSkippedInRunsAsInAFlatRead() {
        let events = (0..<3).map { _ in TestSupport.eventEntry(5) }
        let line = TestSupport.lineEntry(5)
        for split in 0...3 {
            var ring = HistoryRing()
            if split > 0 { ring.append(Array(events[..<split])) }
            ring.append(HubChunk(lines: Array(events[split...]) + [line], dictionary: nil))
            for passed in 0...4 {
                let cursor = CatchUpCursor(after: 4, events: passed)
                let runs = cursor.unseen(ring.runs(0..<ring.count))
                let expected = cursor.unseen(Array(ring.entries))
                #expect(runs.flatMap(\.lines).map(ObjectIdentifier.init) == expected.map(ObjectIdentifier.init), "split \(split), passed \(passed)")
                #expect(runs.allSatisfy { !$0.lines.isEmpty })
            }
        }
    }
}
