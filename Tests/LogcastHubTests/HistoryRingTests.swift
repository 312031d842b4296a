import LogcastProtocol
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
    /// random limits, the flat history kept beside them as the reference.
    @Test(arguments: 0..<40)
    func everyStretchIsTheFlatHistoryInSlicesOfItsChunks(seed: UInt64) {
        var random = Random(state: seed)
        var ring = HistoryRing()
        var reference: [HubEntry] = []
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
