import DequeModule

/// The hub's history in memory: the newest entries, oldest first, in
/// append-only blocks, and the chunks they were published in.
///
/// A scan (a backlog, a resume, `/api/v1/lines`) reads a ``View``: taken
/// under the hub's lock, it holds the blocks and how many entries each had
/// then, a reference per block (of up to ``blockLimit`` entries) instead of
/// a copy of every entry, and stays valid however the history grows or is
/// trimmed after. A subscriber connecting with 10,000 lines in memory no
/// longer copies (and retains, and later releases) 10,000 references under
/// the lock.
///
/// The chunks are what a subscriber catching up reads: ``runs(_:)`` returns
/// the stretch as slices of the published chunks, and each slice keeps its
/// chunk, so a filtered writer visits only the lines its key is in
/// (``HubChunk/candidates(for:in:)``), as it does for a live chunk.
///
/// The chunks and blocks hold exactly ``count`` entries, in order, but for
/// those of the oldest block and the oldest chunk already trimmed: entries
/// past the limits stay referenced until their block is (at most
/// ``blockLimit`` entries or, beyond one entry, ``blockByteLimit`` bytes)
/// and their chunk is.
struct HistoryRing {
    /// One chunk and the count of entries ever appended up to its end.
    private struct Span {
        let chunk: HubChunk
        let end: Int
    }

    /// How many entries a block holds at most.
    let blockLimit: Int
    /// A block takes no more entries once theirs sum to this many bytes
    /// (``HubEntry/byteCount``), so trimmed entries a block still holds
    /// stay within about this much memory.
    let blockByteLimit: Int

    /// The blocks, oldest first; only the last takes more entries.
    private var blocks: Deque<HistoryBlock> = []
    /// How many of the first block's entries are trimmed.
    private var head = 0
    /// How many entries the history holds.
    private(set) var count = 0
    /// The summed ``HubEntry/byteCount`` of the entries held.
    private(set) var bytes = 0
    private var spans: Deque<Span> = []
    /// Entries ever trimmed: the oldest entry's number among all appended.
    private var trimmed = 0

    init(blockLimit: Int = 256, blockByteLimit: Int = 256 * 1024) {
        precondition(blockLimit > 0 && blockByteLimit > 0, "a block holds something")
        self.blockLimit = blockLimit
        self.blockByteLimit = blockByteLimit
    }

    /// A stretch of the history: consecutive entries of one chunk.
    struct Run {
        let lines: ArraySlice<HubEntry>
        let chunk: HubChunk
    }

    /// The entries held now, oldest first, readable after the lock is let go.
    var entries: View {
        var ends: [Int] = []
        ends.reserveCapacity(blocks.count)
        var end = 0
        for block in blocks {
            end += block.count
            ends.append(end)
        }
        return View(blocks: Array(blocks), ends: ends, offset: head, bounds: 0..<count)
    }

    /// The oldest entry held.
    var first: HubEntry? { count == 0 ? nil : self[0] }

    /// The entry at `index` (0: the oldest held); a walk over the blocks,
    /// for the ends (a scan reads a ``View``).
    private subscript(index: Int) -> HubEntry {
        precondition(index >= 0 && index < count, "an entry of the history")
        var slot = head + index
        for block in blocks {
            if slot < block.count { return block[slot] }
            slot -= block.count
        }
        preconditionFailure("the blocks hold every entry counted")
    }

    /// Appends one published chunk (`bytes`: its entries' summed byte counts, if known).
    mutating func append(_ chunk: HubChunk, bytes: Int? = nil) {
        guard !chunk.lines.isEmpty else { return }
        var added = 0
        for entry in chunk.lines {
            if blocks.last.map({ $0.count == blockLimit || $0.bytes >= blockByteLimit }) ?? true {
                blocks.append(HistoryBlock(capacity: blockLimit))
            }
            blocks[blocks.count - 1].append(entry)
            added += entry.byteCount
        }
        count += chunk.lines.count
        self.bytes += bytes ?? added
        spans.append(Span(chunk: chunk, end: trimmed + count))
        dropTrimmedBlocks()
    }

    /// Appends entries published one by one or restored (an event, the
    /// lines stored before a restart): a chunk of their own, without a text index.
    mutating func append(_ newEntries: [HubEntry]) {
        append(HubChunk(lines: newEntries, dictionary: nil))
    }

    /// Drops the oldest entries until at most `lines` entries and `maxBytes` bytes are left.
    mutating func trim(lines: Int, bytes maxBytes: Int) {
        while count > 0, count > lines || bytes > maxBytes {
            bytes -= self[0].byteCount
            head += 1
            count -= 1
            trimmed += 1
            dropTrimmedBlocks()
        }
        while let first = spans.first, first.end <= trimmed { spans.removeFirst() }
    }

    /// Lets go of the oldest blocks whose every entry is trimmed and that
    /// take no more (the last block takes the next entries, so it stays).
    private mutating func dropTrimmedBlocks() {
        while blocks.count > 1, let oldest = blocks.first, head >= oldest.count {
            head -= oldest.count
            blocks.removeFirst()
        }
    }

    /// The entries at `range` (indices as in ``entries``), as slices of the
    /// chunks they were published in, in order.
    func runs(_ range: Range<Int>) -> [Run] {
        precondition(range.lowerBound >= 0 && range.upperBound <= count, "a range of the history")
        guard !range.isEmpty else { return [] }
        let first = trimmed + range.lowerBound
        let last = trimmed + range.upperBound  // past the end
        // The first span that ends after `first`.
        var low = 0
        var high = spans.count
        while low < high {
            let middle = (low + high) / 2
            if spans[spans.startIndex + middle].end > first { high = middle } else { low = middle + 1 }
        }
        var runs: [Run] = []
        var index = spans.startIndex + low
        while index < spans.endIndex {
            let span = spans[index]
            let lines = span.chunk.lines
            let start = span.end - lines.count  // the number of the chunk's first entry
            let from = max(first, start) - start
            let to = min(last, span.end) - start
            runs.append(Run(lines: lines[(lines.startIndex + from)..<(lines.startIndex + to)], chunk: span.chunk))
            if span.end >= last { break }
            index += 1
        }
        return runs
    }

    /// The index of the first entry held with a position above `seq`
    /// (binary search: positions rise).
    func firstIndex(after seq: UInt64) -> Int {
        var before = 0  // entries held in the blocks passed
        for (number, block) in blocks.enumerated() {
            let start = number == 0 ? head : 0
            guard start < block.count else { continue }
            if block[block.count - 1].position > seq {
                var low = start
                var high = block.count
                while low < high {
                    let middle = (low + high) / 2
                    if block[middle].position > seq { high = middle } else { low = middle + 1 }
                }
                return before + low - start
            }
            before += block.count - start
        }
        return count
    }

    /// The history as it was when the view was taken: its blocks, and how
    /// many entries each held then. Appends after only write past those
    /// counts and trims only move the ring's own start, so the view reads
    /// what it saw, outside the hub's lock.
    ///
    /// Indices are `Int`s from 0 (the oldest entry of the view); a slice is
    /// a view too and keeps its base's indices.
    struct View: RandomAccessCollection, @unchecked Sendable {
        // @unchecked: the blocks' entries below `ends` never change (see ``HistoryBlock``).
        fileprivate let blocks: [HistoryBlock]
        /// The running total of the blocks' counts as the view saw them.
        fileprivate let ends: [Int]
        /// Where entry 0 of the view is among the first block's slots.
        fileprivate let offset: Int
        let bounds: Range<Int>

        typealias Index = Int
        typealias SubSequence = View
        typealias Indices = Range<Int>

        /// An empty history.
        init() {
            self.init(blocks: [], ends: [], offset: 0, bounds: 0..<0)
        }

        fileprivate init(blocks: [HistoryBlock], ends: [Int], offset: Int, bounds: Range<Int>) {
            self.blocks = blocks
            self.ends = ends
            self.offset = offset
            self.bounds = bounds
        }

        /// The references the view holds: one per block, whatever the entries.
        var blockCount: Int { blocks.count }

        var startIndex: Int { bounds.lowerBound }
        var endIndex: Int { bounds.upperBound }
        var indices: Range<Int> { bounds }

        subscript(index: Int) -> HubEntry {
            precondition(bounds.contains(index), "an index of the view")
            let (block, slot) = locate(index)
            return blocks[block][slot]
        }

        subscript(range: Range<Int>) -> View {
            precondition(range.lowerBound >= bounds.lowerBound && range.upperBound <= bounds.upperBound, "a range of the view")
            return View(blocks: blocks, ends: ends, offset: offset, bounds: range)
        }

        /// The block and the slot in it of entry `index`.
        private func locate(_ index: Int) -> (block: Int, slot: Int) {
            let global = offset + index
            // The first block that ends after `global`.
            var low = 0
            var high = ends.count
            while low < high {
                let middle = (low + high) / 2
                if ends[middle] > global { high = middle } else { low = middle + 1 }
            }
            return (low, global - (low == 0 ? 0 : ends[low - 1]))
        }

        func makeIterator() -> Iterator {
            guard !bounds.isEmpty else { return Iterator(view: self, block: 0, slot: 0, left: 0) }
            let (block, slot) = locate(bounds.lowerBound)
            return Iterator(view: self, block: block, slot: slot, left: bounds.count)
        }

        /// Walks the blocks in order: no search per entry.
        struct Iterator: IteratorProtocol {
            fileprivate let view: View
            fileprivate var block: Int
            fileprivate var slot: Int
            fileprivate var left: Int

            mutating func next() -> HubEntry? {
                guard left > 0 else { return nil }
                let inBlock = view.ends[block] - (block == 0 ? 0 : view.ends[block - 1])
                if slot == inBlock {
                    block += 1
                    slot = 0
                }
                left -= 1
                defer { slot += 1 }
                return view.blocks[block][slot]
            }
        }

        /// The index of the first entry with a position above `seq`
        /// (binary search: positions rise).
        func firstIndex(after seq: UInt64) -> Int {
            var low = startIndex
            var high = endIndex
            while low < high {
                let middle = (low + high) / 2
                if self[middle].position > seq { high = middle } else { low = middle + 1 }
            }
            return low
        }
    }
}

/// A block of the history: up to its capacity of entries, appended in
/// place and never changed or moved after (until the block goes).
///
/// The hub appends under its state lock; a ``HistoryRing/View`` notes
/// ``count`` under the same lock and reads only the slots below it, which
/// no append touches again, so it may read them without the lock.
final class HistoryBlock: @unchecked Sendable {
    private let slots: UnsafeMutablePointer<HubEntry>
    private let capacity: Int
    /// How many slots hold an entry.
    private(set) var count = 0
    /// Their summed ``HubEntry/byteCount``.
    private(set) var bytes = 0

    init(capacity: Int) {
        self.capacity = capacity
        slots = .allocate(capacity: capacity)
    }

    deinit {
        slots.deinitialize(count: count)
        slots.deallocate()
    }

    /// Fills the next slot (under the hub's state lock).
    func append(_ entry: HubEntry) {
        precondition(count < capacity, "a block takes at most its capacity")
        (slots + count).initialize(to: entry)
        count += 1
        bytes += entry.byteCount
    }

    subscript(slot: Int) -> HubEntry {
        slots[slot]
    }
}
