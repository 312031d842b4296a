import DequeModule

/// The hub's history in memory: the newest entries, oldest first, and the
/// chunks they were published in.
///
/// ``entries`` is what scans (a backlog, a resume, `/api/v1/lines`) read.
/// The chunks are what a subscriber catching up reads: ``runs(_:)``
/// returns the stretch as slices of the published chunks, a few references
/// instead of a copy of every entry (taken under the hub's lock), and each
/// slice keeps its chunk, so a filtered writer visits only the lines its
/// key is in (``HubChunk/candidates(for:in:)``), as it does for a live chunk.
///
/// The chunks hold exactly ``entries``, in order, but for the part of the
/// oldest chunk already trimmed (at most one chunk's worth of entries stays
/// referenced beyond the limits).
struct HistoryRing {
    /// One chunk and the count of entries ever appended up to its end.
    private struct Span {
        let chunk: HubChunk
        let end: Int
    }

    private(set) var entries: Deque<HubEntry> = []
    /// The summed ``HubEntry/byteCount`` of ``entries``.
    private(set) var bytes = 0
    private var spans: Deque<Span> = []
    /// Entries ever trimmed: the oldest entry's number among all appended.
    private var trimmed = 0

    /// A stretch of the history: consecutive entries of one chunk.
    struct Run {
        let lines: ArraySlice<HubEntry>
        let chunk: HubChunk
    }

    var count: Int { entries.count }

    /// Appends one published chunk (`bytes`: its entries' summed byte counts, if known).
    mutating func append(_ chunk: HubChunk, bytes: Int? = nil) {
        guard !chunk.lines.isEmpty else { return }
        entries.append(contentsOf: chunk.lines)
        self.bytes += bytes ?? chunk.lines.reduce(0) { $0 + $1.byteCount }
        spans.append(Span(chunk: chunk, end: trimmed + entries.count))
    }

    /// Appends entries published one by one or restored (an event, the
    /// lines stored before a restart): a chunk of their own, without a text index.
    mutating func append(_ newEntries: [HubEntry]) {
        append(HubChunk(lines: newEntries, dictionary: nil))
    }

    /// Drops the oldest entries until at most `lines` entries and `maxBytes` bytes are left.
    mutating func trim(lines: Int, bytes maxBytes: Int) {
        while entries.count > lines || bytes > maxBytes, let old = entries.popFirst() {
            bytes -= old.byteCount
            trimmed += 1
        }
        while let first = spans.first, first.end <= trimmed { spans.removeFirst() }
    }

    /// The entries at `range` (indices into ``entries``), as slices of the
    /// chunks they were published in, in order.
    func runs(_ range: Range<Int>) -> [Run] {
        precondition(range.lowerBound >= 0 && range.upperBound <= entries.count, "a range of the history")
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

    /// The index in ``entries`` of the first entry with a position above
    /// `seq` (binary search: positions rise).
    func firstIndex(after seq: UInt64) -> Int {
        var low = 0
        var high = entries.count
        while low < high {
            let middle = (low + high) / 2
            if entries[entries.startIndex + middle].position > seq { high = middle } else { low = middle + 1 }
        }
        return low
    }
}
