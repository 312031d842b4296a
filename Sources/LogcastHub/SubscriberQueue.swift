import DequeModule
import LogcastProtocol

/// What a subscriber does when its queue is full.
public enum SlowConsumerPolicy: String, Sendable, CaseIterable {
    /// Stop queueing live lines; once the queue has drained, read on from the
    /// hub's history (memory, then the durable history) where the subscriber
    /// is. A `gap` (`slow-consumer`) only for lines the history no longer holds.
    case catchUp = "catch-up"
    /// Drop the oldest queued lines and tell the subscriber with a `gap` (`slow-consumer`).
    case drop
    /// Close the connection (WebSocket code 1013).
    case disconnect
}

/// One subscriber's bounded queue of outgoing items, and its drop policy.
///
/// A plain value type that makes decisions and does no I/O: the hub pushes,
/// the connection's writer drains. Guarantees:
/// - Never holds more than `maxLines` lines or (beyond the first) `maxBytes` bytes.
/// - Under ``SlowConsumerPolicy/drop`` the oldest items go first, and the
///   next drain starts with a `gap` naming the last `seq` handed out, the
///   first `seq` after the hole and how many matching lines were dropped.
/// - Under ``SlowConsumerPolicy/disconnect`` an overflow marks the queue
///   ``isOverflowed`` and it accepts nothing more.
/// - Under ``SlowConsumerPolicy/catchUp`` a line that does not fit is
///   refused (``PushResult/refused``), with the events of its position queued
///   just before it taken back, so the subscriber can read on from the
///   history after `position - 1` without seeing anything twice.
/// - Lines come out in the order they went in.
public struct SubscriberQueue: Sendable {
    public enum Item: Sendable {
        /// A line or source event, to be filtered by the writer.
        case entry(HubEntry)
        /// A pre-encoded control object (`hello`, `subscribed`, `error`, a resume `gap`).
        case control([UInt8])
        /// A matching line a ``ContextSelector`` chose: sent as a line, not filtered again.
        case selected(HubEntry)
        /// A line sent as context of a match (`"context":true`).
        case context(HubEntry)
        /// Between context groups that do not follow on (`{"type":"separator"}`, grep's `--`).
        case separator
        /// A line a ``ContextSelector`` records without sending it (the
        /// lines before a backlog or a resume point); only in a start plan.
        case prime(HubEntry, matched: Bool)
        /// The selector a start plan ended with: the writer goes on with it.
        case adopt(ContextSelector)
        /// Consecutive live lines of one published chunk, to be filtered by
        /// the writer (``SubscriberQueue/pushRun(_:bytes:chunk:)``): one queued item
        /// and one reference for the whole run, however many lines it holds.
        /// Only lines (no events), with rising `seq`; `bytes` is the sum of
        /// their ``HubEntry/byteCount``; `chunk`, when the lines are a slice
        /// of its ``HubChunk/lines``, has their text index.
        /// ``Subscription/nextBatch(maxBytes:readOnExecutor:keepingRuns:)``
        /// hands them on as ``entry(_:)`` items, or as they are when asked to.
        case run(ArraySlice<HubEntry>, bytes: Int, chunk: HubChunk?)

        /// The line or event this item sends, if any (nil for a run, which carries many).
        public var carried: HubEntry? {
            switch self {
            case .entry(let entry), .selected(let entry), .context(let entry): entry
            case .control, .separator, .prime, .adopt, .run: nil
            }
        }

        /// The first line or event the item carries (a run's first line).
        public var first: HubEntry? {
            if case .run(let lines, _, _) = self { return lines.first }
            return carried
        }

        /// The position of the first line or event the item carries.
        var firstPosition: UInt64? {
            if case .run(let lines, _, _) = self { return lines.first?.position }
            return carried?.position
        }
    }

    /// A `gap` caused by dropping queued lines.
    public struct Gap: Sendable, Equatable {
        public var after: UInt64
        public var next: UInt64
        public var missed: Int
    }

    public let maxLines: Int
    public let maxBytes: Int
    public let policy: SlowConsumerPolicy
    /// What a frame's budget counts (``drain(maxBytes:)``).
    public let frameMeasure: FrameMeasure

    /// What a frame's budget (the `maxBytes` of ``drain(maxBytes:)``) counts
    /// of an item. The queue's own limits always count ``size(of:)``.
    public enum FrameMeasure: Sendable, Equatable {
        /// The item's queued size (``size(of:)``): a line's JSON object and
        /// 64 bytes for the rest of the entry.
        case queued
        /// What a `format=text` frame carries of it: a line's text and its
        /// newline (a control object, counted as queued). A text line is a
        /// third of its queued size: counted as queued, a text frame held a
        /// third of what its budget allows, and a burst took three times the
        /// frames, wake-ups and writes.
        case text

        /// The measure for a subscriber's format.
        public init(_ format: SubscriptionRequest.Format) {
            self = format == .text ? .text : .queued
        }

        /// What `item` takes of a frame's budget.
        public func size(of item: Item) -> Int {
            guard self == .text else { return SubscriberQueue.size(of: item) }
            switch item {
            case .entry(let entry), .selected(let entry), .context(let entry): return size(of: entry)
            case .run(let lines, _, _): return lines.reduce(0) { $0 + size(of: $1) }
            case .control, .separator, .prime, .adopt: return SubscriberQueue.size(of: item)
            }
        }

        /// What one line or event takes of a frame's budget.
        func size(of entry: HubEntry) -> Int {
            guard self == .text else { return entry.byteCount }
            return entry.isLine ? entry.message.utf8.count + 1 : entry.json.count
        }
    }

    private var items: Deque<Item> = []
    private var lineCount = 0
    /// Control objects queued (never dropped, so bounded by their sender).
    public private(set) var controlCount = 0
    private var byteCount = 0
    private var droppedLines = 0
    /// A gap to announce before the next items (a catch-up read found lines gone).
    private var pendingGap: Gap?
    /// `seq` of the last line handed to the writer.
    public private(set) var lastDeliveredSeq: UInt64 = 0
    public private(set) var isOverflowed = false

    public init(maxLines: Int, maxBytes: Int, policy: SlowConsumerPolicy, frameMeasure: FrameMeasure = .queued) {
        precondition(maxLines > 0 && maxBytes > 0)
        self.maxLines = maxLines
        self.maxBytes = maxBytes
        self.policy = policy
        self.frameMeasure = frameMeasure
    }

    public var isEmpty: Bool { items.isEmpty && droppedLines == 0 && pendingGap == nil }
    /// Whether the next drain starts with a gap.
    public var hasGapToAnnounce: Bool { droppedLines > 0 || pendingGap != nil }
    public var count: Int { items.count }
    public var queuedBytes: Int { byteCount }

    /// Result of offering an item.
    public enum PushResult: Equatable, Sendable {
        case queued
        /// Queued after dropping this many old lines.
        case queuedAfterDropping(Int)
        /// The disconnect policy tripped; the item was not queued.
        case overflowed
        /// The catch-up policy refused a line that does not fit (nothing
        /// of its position is queued): read it from the history.
        case refused
    }

    @discardableResult
    public mutating func push(_ item: Item) -> PushResult {
        if isOverflowed { return .overflowed }
        let size = Self.size(of: item)
        let isLine = item.carried?.isLine ?? false
        var dropped = 0
        while !items.isEmpty, (isLine && lineCount + 1 > maxLines) || byteCount + size > maxBytes {
            if policy == .disconnect {
                isOverflowed = true
                return .overflowed
            }
            if policy == .catchUp {
                guard let refused = item.carried, isLine else { break }  // control objects always fit
                takeBackEvents(at: refused.position)
                return .refused
            }
            // Control objects (hello, subscribed) are never dropped: drop the oldest entry.
            guard let index = items.firstIndex(where: { $0.firstPosition != nil }) else { break }
            let old = items.remove(at: index)
            byteCount -= Self.size(of: old)
            let oldLines = Self.lines(in: old)
            lineCount -= oldLines
            dropped += oldLines
        }
        droppedLines += dropped
        items.append(item)
        byteCount += size
        lineCount += Self.lines(in: item)
        if case .control = item { controlCount += 1 }
        return dropped > 0 ? .queuedAfterDropping(dropped) : .queued
    }

    /// What ``pushRun(_:bytes:chunk:)`` did.
    public enum RunPushResult: Equatable, Sendable {
        /// Every line of the run is queued.
        case queued
        /// The lines before this index of the run are queued; the one at it
        /// did not fit (nor did any after it): read on from the history
        /// before it. Events of its position queued just before are taken
        /// back, as ``push(_:)`` does for one refused line.
        case refused(at: Int)
    }

    /// Queues consecutive lines of one published chunk as one item
    /// (``Item/run(_:bytes:chunk:)``), under ``SlowConsumerPolicy/catchUp`` only:
    /// the limits hold as if each line were pushed alone (an empty queue
    /// takes at least one line), and the part that does not fit is refused.
    /// - Parameter bytes: the lines' summed ``HubEntry/byteCount``.
    public mutating func pushRun(_ lines: ArraySlice<HubEntry>, bytes: Int, chunk: HubChunk? = nil) -> RunPushResult {
        precondition(policy == .catchUp, "runs are queued under the catch-up policy only")
        guard !lines.isEmpty else { return .queued }
        var fit = lines.count
        var fitBytes = bytes
        if !(lineCount + lines.count <= maxLines && byteCount + bytes <= maxBytes) {
            // The prefix that fits, line by line, as single pushes would have taken it.
            fit = 0
            fitBytes = 0
            for entry in lines {
                let size = entry.byteCount
                let empty = items.isEmpty && fit == 0
                if !empty, lineCount + fit + 1 > maxLines || byteCount + fitBytes + size > maxBytes { break }
                fit += 1
                fitBytes += size
            }
        }
        if fit == 0 {
            takeBackEvents(at: lines[lines.startIndex].position)
            return .refused(at: lines.startIndex)
        }
        items.append(.run(lines.prefix(fit), bytes: fitBytes, chunk: chunk))
        byteCount += fitBytes
        lineCount += fit
        return fit == lines.count ? .queued : .refused(at: lines.startIndex + fit)
    }

    /// Removes everything up to about `maxBytes` for one frame, oldest first,
    /// as ``frameMeasure`` counts them. At least one item is returned when
    /// any is queued.
    /// - Returns: the gap to announce first (when lines were dropped since the
    ///   last drain), and the items.
    public mutating func drain(maxBytes budget: Int) -> (gap: Gap?, items: [Item]) {
        var gap: Gap? = pendingGap
        pendingGap = nil
        if droppedLines > 0 {
            let next = items.lazy.compactMap { $0.firstPosition }.first ?? lastDeliveredSeq + UInt64(droppedLines) + 1
            gap = Gap(after: lastDeliveredSeq, next: next, missed: droppedLines)
            droppedLines = 0
        }
        var out: [Item] = []
        var taken = 0
        while let first = items.first {
            let size = Self.size(of: first)
            let cost = frameMeasure == .queued ? size : frameMeasure.size(of: first)
            if case .run(let lines, _, let chunk) = first, taken + cost > budget,
                let part = split(lines, room: budget - taken, atLeastOne: out.isEmpty)
            {
                // Only part of the run fits this frame: the rest stays first in line.
                items[items.startIndex] = .run(lines.dropFirst(part.count), bytes: size - part.bytes, chunk: chunk)
                byteCount -= part.bytes
                taken += part.cost
                lineCount -= part.count
                lastDeliveredSeq = lines[lines.startIndex + part.count - 1].position
                out.append(.run(lines.prefix(part.count), bytes: part.bytes, chunk: chunk))
                break
            }
            if !out.isEmpty, taken + cost > budget { break }
            items.removeFirst()
            byteCount -= size
            taken += cost
            if let entry = first.carried, entry.isLine {
                lineCount -= 1
                if entry.hasSeq { lastDeliveredSeq = entry.position }
            }
            if case .run(let lines, _, _) = first, let last = lines.last {
                lineCount -= lines.count
                lastDeliveredSeq = last.position
            }
            if case .control = first { controlCount -= 1 }
            out.append(first)
        }
        return (gap, out)
    }

    /// The longest prefix of `lines` within `room` of a frame's budget (at
    /// least one line when `atLeastOne`), with its queued bytes and what it
    /// takes of the budget; nil when it would be empty or the whole run.
    private func split(_ lines: ArraySlice<HubEntry>, room: Int, atLeastOne: Bool) -> (count: Int, bytes: Int, cost: Int)? {
        var count = 0
        var bytes = 0
        var cost = 0
        for entry in lines {
            let size = frameMeasure.size(of: entry)
            if cost + size > room, !(atLeastOne && count == 0) { break }
            count += 1
            bytes += entry.byteCount
            cost += size
        }
        return count == 0 || count == lines.count ? nil : (count, bytes, cost)
    }

    /// The lines an item counts against ``maxLines``.
    static func lines(in item: Item) -> Int {
        if case .run(let lines, _, _) = item { return lines.count }
        return item.carried?.isLine == true ? 1 : 0
    }

    /// Replaces the newest item with `json` when it is a control object that
    /// `matches`; returns whether it did.
    public mutating func replaceLastControl(where matches: ([UInt8]) -> Bool, with json: [UInt8]) -> Bool {
        guard case .control(let old) = items.last, matches(old) else { return false }
        items[items.count - 1] = .control(json)
        byteCount += json.count - old.count
        return true
    }

    /// Forgets every queued line and event (a new filter replaces the
    /// stream). Control objects stay, in order: a client must still learn why
    /// an earlier message was refused.
    public mutating func removeEntries() {
        items.removeAll { if case .control = $0 { false } else { true } }
        lineCount = 0
        byteCount = items.reduce(0) { $0 + Self.size(of: $1) }
        droppedLines = 0
        pendingGap = nil
    }

    /// Removes the source events at `position` from the end of the queue:
    /// they precede the refused line of that position, and are read again
    /// with it.
    private mutating func takeBackEvents(at position: UInt64) {
        while case .entry(let last)? = items.last, !last.isLine, last.position == position {
            items.removeLast()
            byteCount -= Self.size(of: .entry(last))
        }
    }

    /// Announces, before the next items, that the lines after `after` up to
    /// `next` are gone (a catch-up read found them no longer held).
    public mutating func announceGap(after: UInt64, next: UInt64, missed: Int) {
        pendingGap = Gap(after: after, next: next, missed: missed)
        lastDeliveredSeq = max(lastDeliveredSeq, next - 1)
    }

    /// Records that the client has seen lines up to `seq` (a resume point).
    public mutating func markDelivered(upTo seq: UInt64) {
        lastDeliveredSeq = max(lastDeliveredSeq, seq)
    }

    /// What `items` took of a drain's budget, as `measure` (the queue's
    /// ``frameMeasure``) counts: a writer's measure of whether its frame was full.
    public static func budgetBytes(of items: [Item], measure: FrameMeasure = .queued) -> Int {
        items.reduce(0) { $0 + measure.size(of: $1) }
    }

    static func size(of item: Item) -> Int {
        switch item {
        case .entry(let entry), .selected(let entry): entry.byteCount
        case .context(let entry): entry.byteCount + 16
        case .control(let bytes): bytes.count
        case .separator: 21
        case .prime, .adopt: 0
        case .run(_, let bytes, _): bytes
        }
    }
}
