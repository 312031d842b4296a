import DequeModule
import LogcastProtocol
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// The broadcast hub: every line from every source goes through here once.
///
/// Guarantees:
/// - `seq` starts at 1, rises by one per line in publishing order and never
///   repeats within an ``epoch`` (a random value per hub, i.e. per server start).
/// - Each line is encoded to JSON once; history and queues share the bytes.
/// - History keeps the newest lines within both ``Configuration/historyLines``
///   and ``Configuration/historyBytes``.
/// - Publishing never waits for a subscriber: a full queue applies its own
///   policy. Under ``SlowConsumerPolicy/catchUp`` (the default) it refuses
///   the line and the subscriber is marked behind; its writer then reads on
///   from the history (memory, then ``DurableHistory``) in its own task
///   (``catchUp(_:at:generation:)``) until it reaches the live edge, where it
///   rejoins atomically with publishing. Publishers are serialised by the
///   fan-out lock, so every subscriber sees lines in `seq` order, with source
///   events in place.
/// - No pattern runs under a hub lock: publishing only stamps, appends to
///   history and hands each subscriber the shared entries it admits (the
///   selection keys, set lookups: ``LineMatcher/admits(_:)``); each writer
///   matches the patterns of its filter when it drains (``Subscription/nextBatch(maxBytes:)``);
///   backlog, resume and `/api/v1/lines` scans copy the history's references
///   under the lock and match outside it, within a time budget
///   (``scanBudget``) after which they stop and say so (``ScanResult``).
/// - Subscribing (backlog or resume, then live lines) is atomic with
///   publishing: no line is lost or repeated at the seam (live entries that
///   arrive while the start is computed are held, then queued after it).
public final class Hub: Sendable {
    public struct Configuration: Sendable {
        public var historyLines = 10_000
        public var historyBytes = 64 * 1024 * 1024
        public var queueLines = 16_384
        public var queueBytes = 32 * 1024 * 1024
        public var slowConsumerPolicy: SlowConsumerPolicy = .catchUp
        /// Whether `seq` is a cluster stream's sequence (a gateway's hub,
        /// fed by ``Hub/publish(stamped:)``) rather than the hub's own count:
        /// - a number missing among the lines was never a line (the stream
        ///   skips messages that are not logcast lines), not a line lost (a
        ///   full disk kept it out of the stored history: an `evicted` gap);
        /// - a client may resume after a `seq` this hub has not reached yet
        ///   (it saw it on a gateway that is ahead): the lines up to it are
        ///   not sent again when they arrive.
        public var streamNumbered = false

        public init() {}
    }

    public let configuration: Configuration
    /// 16 hex digits, random per hub (or given: a gateway's names its stream).
    public var epoch: String { epochState.withLock { $0 } }
    private let epochState: Mutex<String>

    struct State: ~Copyable {
        var history = HistoryRing()
        var nextSeq: UInt64 = 1
        var subscriptions: [Int: Subscription] = [:]
        var nextSubscriptionID = 1
        var linesPublished: UInt64 = 0
        /// Each subscriber's ``LineMatcher/textKey``, and the dictionary made
        /// of them for the chunks published (made again at the next publish
        /// once they change).
        var textKeys: [Int: [UInt8]] = [:]
        var dictionary: TextDictionary?
        var dictionaryStale = false

        mutating func setTextKey(_ key: [UInt8]?, of id: Int) {
            guard textKeys[id] != key else { return }
            textKeys[id] = key
            dictionaryStale = true
        }
    }

    private let state = Mutex(State())
    /// Catch-up reads made (all, and those from the durable history), for metrics.
    let catchUpReads = Atomic<UInt64>(0)
    let catchUpStoredReads = Atomic<UInt64>(0)
    /// Serialises publishers (stamping, appending and offering), so chunks
    /// reach every subscriber in `seq` order. Readers never take it. The
    /// writers a publish made ready are woken after it is released: a
    /// wake-up may give the publisher's core to the woken thread, and every
    /// other source's lines would wait meanwhile (a quiet source's line
    /// waited for a burst's hundred wake-ups).
    private let fanout = Mutex(())

    /// Whether no publisher holds the fan-out lock now (for tests).
    var fanoutIsFree: Bool { fanout.withLockIfAvailable { _ in true } ?? false }

    /// How long one scan (a backlog, a resume, a `/api/v1/lines` read) may
    /// spend matching before it stops and reports itself incomplete.
    public static let scanBudget: Duration = .milliseconds(250)

    /// The copy of the stream beyond memory, if any.
    let durable: (any DurableHistory)?
    /// The sources' own records of their past, for `since` reads that reach before the history.
    let archives: [any SourceArchive]

    /// A hub; with `durable`, every line is stored there as it is published.
    /// - Parameters:
    ///   - epoch: the stream's epoch (a new random one when nil).
    ///   - restored: lines already stored (oldest first, ending with the last
    ///     line stored): the newest fill the history, and `seq` continues
    ///     after the last.
    ///   - lastSeq: the last `seq` stored, when `restored` is empty but lines were stored.
    ///   - archives: sources' own records of their past (the journal), read
    ///     for a `since` older than the hub's oldest line.
    public init(
        configuration: Configuration = Configuration(),
        epoch: String? = nil,
        durable: (any DurableHistory)? = nil,
        restored: [HubEntry] = [],
        lastSeq: UInt64 = 0,
        archives: [any SourceArchive] = []
    ) {
        self.configuration = configuration
        self.epochState = Mutex(epoch ?? Hub.randomEpoch())
        self.durable = durable
        self.archives = archives
        state.withLock { state in
            state.nextSeq = max(lastSeq, restored.last(where: \.isLine)?.position ?? 0) + 1
            state.history.append(Array(restored.suffix(configuration.historyLines)))
            state.history.trim(lines: configuration.historyLines, bytes: configuration.historyBytes)
        }
    }

    /// Names the stream once it is known: a gateway learns its epoch from
    /// the cluster stream, which may be reached only after the hub is made
    /// (it serves no stream until then). Call it before any line.
    public func adopt(epoch: String) {
        epochState.withLock { $0 = epoch }
    }

    /// A 16-hex-digit random epoch.
    public static func randomEpoch() -> String {
        let value = UInt64.random(in: 1...UInt64.max)
        let hex = String(value, radix: 16)
        return String(repeating: "0", count: 16 - hex.count) + hex
    }

    // MARK: Publishing

    /// The dictionary of the subscribers' text keys for a chunk about to be
    /// published (under the fan-out lock), made again when they changed.
    private func currentDictionary() -> TextDictionary? {
        let keys = state.withLock { state -> [[UInt8]]? in
            guard state.dictionaryStale else { return nil }
            state.dictionaryStale = false
            return Array(state.textKeys.values)
        }
        guard let keys else { return state.withLock { $0.dictionary } }
        // Made outside the state lock; a key that changes meanwhile marks it stale again.
        let made = TextDictionary(keys: keys)
        state.withLock { $0.dictionary = made }
        return made
    }

    /// Publishes lines in order. Called from source threads; never suspends,
    /// and never waits for a subscriber's filter.
    /// With a ``DurableHistory``, the lines (and `position`, the source's
    /// position after them) are stored before any subscriber is offered them.
    /// With no lines, only `position` is stored.
    public func publish(_ records: [LogRecord], source: String? = nil, position: SourcePosition? = nil) {
        guard !records.isEmpty else {
            if let position, let durable { fanout.withLock { _ in durable.append([], source: source, position: position) } }
            return
        }
        let waiters = fanout.withLock { _ -> [Subscription.Waiter] in
            // Only publishers (holding `fanout`) move `nextSeq`, so the numbers
            // can be encoded outside the state lock.
            let first = state.withLock { $0.nextSeq }
            let now = MonotonicClock.nanoseconds()
            var entries: [HubEntry] = []
            entries.reserveCapacity(records.count)
            for (index, record) in records.enumerated() {
                let seq = first + UInt64(index)
                let json = ProtocolObject.encodedLine(record, seq: seq)
                entries.append(HubEntry(position: seq, payload: .line(record), json: json, publishedAt: now))
            }
            durable?.append(entries, source: source, position: position)
            let bytes = entries.reduce(0) { $0 + $1.byteCount }
            let chunk = HubChunk(lines: entries, dictionary: currentDictionary())
            let subscribers = state.withLock { state -> [Subscription] in
                state.nextSeq += UInt64(entries.count)
                state.linesPublished += UInt64(entries.count)
                Self.keep(chunk, in: &state, configuration, bytes: bytes)
                return Array(state.subscriptions.values)
            }
            // One short lock, a queued run and at most one wake-up per subscriber for the whole chunk.
            return subscribers.compactMap { $0.offer(chunk, bytes: bytes) }
        }
        // Outside the fan-out lock (see `fanout`).
        for waiter in waiters { waiter.wake() }
    }

    public func publish(_ record: LogRecord) { publish([record]) }

    /// Appends a published chunk to the history and trims it to its limits (the oldest go first).
    private static func keep(_ chunk: HubChunk, in state: inout State, _ configuration: Configuration, bytes: Int? = nil) {
        state.history.append(chunk, bytes: bytes)
        state.history.trim(lines: configuration.historyLines, bytes: configuration.historyBytes)
    }

    /// Publishes lines whose `seq` was given elsewhere (a gateway: the
    /// cluster stream's sequence), in rising order; lines at or below the
    /// last `seq` published are dropped (a redelivery). Numbers may skip:
    /// the skipped ones are never lines of this hub.
    public func publish(stamped: [(seq: UInt64, record: LogRecord)]) {
        let waiters = fanout.withLock { _ -> [Subscription.Waiter] in
            var last = state.withLock { $0.nextSeq } - 1
            let now = MonotonicClock.nanoseconds()
            var entries: [HubEntry] = []
            entries.reserveCapacity(stamped.count)
            for (seq, record) in stamped where seq > last {
                let json = ProtocolObject.encodedLine(record, seq: seq)
                entries.append(HubEntry(position: seq, payload: .line(record), json: json, publishedAt: now))
                last = seq
            }
            guard !entries.isEmpty else { return [] }
            durable?.append(entries, source: nil, position: nil)
            let bytes = entries.reduce(0) { $0 + $1.byteCount }
            let chunk = HubChunk(lines: entries, dictionary: currentDictionary())
            let subscribers = state.withLock { state -> [Subscription] in
                state.nextSeq = last + 1
                state.linesPublished += UInt64(entries.count)
                Self.keep(chunk, in: &state, configuration, bytes: bytes)
                return Array(state.subscriptions.values)
            }
            return subscribers.compactMap { $0.offer(chunk, bytes: bytes) }
        }
        for waiter in waiters { waiter.wake() }
    }

    /// The `seq` of the newest line published (0: none).
    public var lastSeq: UInt64 { state.withLock { $0.nextSeq } - 1 }

    /// Publishes a source event among the lines. Events are kept in the
    /// history (and the durable history) with the lines, at the `seq` the
    /// next line gets, so a resume or a backlog carries them in place.
    public func publish(_ event: SourceEvent) {
        let waiters = fanout.withLock { _ -> [Subscription.Waiter] in
            let position = state.withLock { $0.nextSeq }
            let json = ProtocolObject.entry(event, position: position).encoded()
            let entry = HubEntry(position: position, payload: .event(event), json: json, publishedAt: MonotonicClock.nanoseconds())
            durable?.append([entry], source: nil, position: nil)
            let subscribers = state.withLock { state -> [Subscription] in
                Self.keep(HubChunk(lines: [entry], dictionary: nil), in: &state, configuration)
                return Array(state.subscriptions.values)
            }
            return subscribers.compactMap { $0.offer(CollectionOfOne(entry)) }
        }
        for waiter in waiters { waiter.wake() }
    }

    // MARK: Subscribing

    /// What a scan of the history sees: its entries and the last `seq`, as
    /// of one moment. Taken under the state lock in a few references
    /// (``HistoryRing/View``), whatever the history holds.
    struct HistorySnapshot {
        var entries: HistoryRing.View
        var lastSeq: UInt64
        var nextSeq: UInt64

        /// The index of the first entry with a position above `seq` (binary search: positions rise).
        func firstIndex(after seq: UInt64) -> Int {
            entries.firstIndex(after: seq)
        }
    }

    /// Registers a subscriber and queues, in this order: `prelude` (e.g. `hello`),
    /// then a resume `gap` if one is due, then the backlog or the missed
    /// lines, then every live line that passes its filter.
    ///
    /// The history is scanned outside the hub's lock (in the caller's task,
    /// within ``scanBudget``); live lines published meanwhile are held and
    /// queued after the scan's lines.
    public func subscribe(matcher: LineMatcher, request: SubscriptionRequest, prelude: [[UInt8]] = []) -> Subscription {
        let queue = SubscriberQueue(
            maxLines: configuration.queueLines,
            maxBytes: configuration.queueBytes,
            policy: configuration.slowConsumerPolicy,
            frameMeasure: .init(request.format)
        )
        let (subscription, snapshot) = state.withLock { state -> (Subscription, HistorySnapshot) in
            let subscription = Subscription(
                id: state.nextSubscriptionID,
                matcher: matcher,
                format: request.format,
                fields: request.fields,
                queue: queue,
                prelude: prelude,
                catchUp: { [weak self] subscription, cursor, generation in
                    self?.catchUp(subscription, at: cursor, generation: generation)
                }
            )
            state.nextSubscriptionID += 1
            state.subscriptions[subscription.id] = subscription
            state.setTextKey(matcher.textKey, of: subscription.id)
            return (subscription, Self.snapshot(of: state))
        }
        let plan = Self.startPlan(
            request: request,
            matcher: matcher,
            history: snapshot,
            epoch: epoch,
            limit: Int.max,
            durable: durable,
            durableLimit: max(0, configuration.queueLines - snapshot.entries.count),
            archives: archives,
            streamNumbered: configuration.streamNumbered
        )
        subscription.start(plan.items, after: snapshot.lastSeq, deliveredUpTo: plan.deliveredUpTo, behind: plan.behind)
        return subscription
    }

    /// Replaces a subscriber's filter (a `subscribe` message): drops the
    /// lines still queued (control replies stay), queues `reply`
    /// (`subscribed`), the backlog under the new filter, then live lines.
    public func resubscribe(_ subscription: Subscription, matcher: LineMatcher, backlog: Int, reply: [UInt8]) {
        let snapshot = state.withLock { state -> HistorySnapshot in
            subscription.restart(matcher: matcher, reply: reply)
            state.setTextKey(matcher.textKey, of: subscription.id)
            return Self.snapshot(of: state)
        }
        let plan = Self.startPlan(
            request: SubscriptionRequest(backlog: backlog),
            matcher: matcher,
            history: snapshot,
            epoch: epoch,
            limit: Int.max,
            durable: durable,
            durableLimit: max(0, configuration.queueLines - snapshot.entries.count),
            archives: archives,
            streamNumbered: configuration.streamNumbered
        )
        subscription.start(plan.items, after: snapshot.lastSeq, deliveredUpTo: nil)
    }

    // MARK: Catching up

    /// Reads on from the history for a subscriber that is behind (its queue
    /// filled under ``SlowConsumerPolicy/catchUp``), in its writer's task,
    /// from `cursor`, about ``Configuration/queueLines`` entries:
    /// - older than memory: from the durable history, a `gap` first when it
    ///   no longer holds the next lines (without one, straight to memory's
    ///   oldest line); the subscriber stays behind;
    /// - in memory: when the rest up to the newest line fits, the subscriber
    ///   goes live atomically with publishing (as a resume does); otherwise it
    ///   gets the next part and stays behind.
    ///
    /// Nothing is matched here: the writer applies its filter as for live lines.
    func catchUp(_ subscription: Subscription, at cursor: CatchUpCursor, generation: Int) {
        let room = configuration.queueLines
        let oldest = state.withLock { $0.history.first?.position ?? $0.nextSeq }
        if cursor.after + 1 < oldest {
            let part = storedPart(at: cursor, before: oldest, limit: room, filter: subscription.filter)
            catchUpReads.add(1, ordering: .relaxed)
            catchUpStoredReads.add(1, ordering: .relaxed)
            subscription.refill(part.entries, gap: part.gap, at: cursor, through: part.through, generation: generation, chunk: part.chunk)
            return
        }
        // A part that stops short of the newest line needs no fan-out lock (publishers
        // only append after it), so a hundred subscribers catching up do not hold up publishing.
        // Memory parts are slices of the chunks the lines were published in
        // (`HistoryRing.runs`): a few references taken under the lock, not a
        // copy of every entry, and a filtered writer uses the chunks' text index.
        let early = state.withLock { state -> MemoryPart in
            let start = state.history.firstIndex(after: cursor.after)
            if start == 0, let first = state.history.first, first.position > cursor.after + 1, first.lastSeqCovered > cursor.after {
                return .evicted
            }
            guard state.history.count - start > room + cursor.events else { return .reachesTheEnd }
            return .part(state.history.runs(start..<(start + room + cursor.events)))
        }
        switch early {
        case .evicted:
            return  // the next read is from the durable history
        case .part(let read):
            let runs = cursor.unseen(read)
            catchUpReads.add(1, ordering: .relaxed)
            if !runs.isEmpty {
                subscription.refill(runs, at: cursor, through: cursor.advanced(past: runs.lazy.map(\.lines).joined()), generation: generation)
            }
            return
        case .reachesTheEnd:
            break
        }
        // Under the fan-out lock no publisher is between appending and offering, so
        // the read and the switch to live lines meet exactly: nothing lost, nothing twice.
        let part = fanout.withLock { _ -> [HistoryRing.Run]? in
            let read = state.withLock { state -> (runs: [HistoryRing.Run], live: Bool)? in
                let start = state.history.firstIndex(after: cursor.after)
                if start == 0, let first = state.history.first, first.position > cursor.after + 1, first.lastSeqCovered > cursor.after {
                    return nil  // evicted meanwhile: read on from the durable history
                }
                let available = state.history.count - start
                if available <= room + cursor.events {
                    guard subscription.beginLive(at: cursor, generation: generation) else { return ([], false) }
                    return (state.history.runs(start..<state.history.count), true)
                }
                return (state.history.runs(start..<(start + room + cursor.events)), false)
            }
            guard let read else { return nil }
            let runs = cursor.unseen(read.runs)
            guard read.live else { return runs }
            // Nothing is held: no publisher offered anything since beginLive.
            subscription.goLive(runs, after: runs.last?.lines.last?.position ?? cursor.after)
            return []
        }
        guard let part else { return }
        catchUpReads.add(1, ordering: .relaxed)
        if !part.isEmpty {
            subscription.refill(part, at: cursor, through: cursor.advanced(past: part.lazy.map(\.lines).joined()), generation: generation)
        }
    }

    /// What a catch-up finds in memory before it takes the fan-out lock.
    private enum MemoryPart {
        /// The lines after the cursor have left memory meanwhile.
        case evicted
        /// The next part, which does not reach the newest line.
        case part([HistoryRing.Run])
        /// The rest fits: read it and go live under the fan-out lock.
        case reachesTheEnd
    }

    /// A part of a catch-up read from the durable history: at most one gap
    /// (before the entries), then entries without a hole between them, and
    /// the cursor after them.
    struct StoredPart {
        var gap: SubscriberQueue.Gap?
        var entries: ArraySlice<HubEntry>
        var through: CatchUpCursor
        /// The chunk the entries are a slice of: one the store shares among
        /// readers, with the text index the first filtered reader builds
        /// for all, or a read selected by host and source.
        var chunk: HubChunk? = nil
    }

    /// The shared chunks of the durable history that catch-up reads came
    /// from lately, each with its text index (``HubChunk``), so that
    /// subscribers with text filters catching up through the same chunk
    /// scan it once for all of them, as they do a published chunk. A few,
    /// the newest kept; one whose dictionary is out of date is made again.
    private let storedChunks = Mutex<[HubChunk]>([])
    static let storedChunksKept = 8

    /// The ``HubChunk`` of a shared array of the durable history.
    private func storedChunk(_ array: [HubEntry]) -> HubChunk {
        let dictionary = currentDictionary()
        func same(_ chunk: HubChunk) -> Bool {
            chunk.lines.withUnsafeBufferPointer { a in array.withUnsafeBufferPointer { b in a.baseAddress == b.baseAddress } }
        }
        return storedChunks.withLock { chunks in
            if let index = chunks.firstIndex(where: same) {
                if chunks[index].dictionary === dictionary { return chunks[index] }
                chunks.remove(at: index)
            }
            let chunk = HubChunk(lines: array, dictionary: dictionary)
            chunks.append(chunk)
            if chunks.count > Self.storedChunksKept { chunks.removeFirst() }
            return chunk
        }
    }

    func storedPart(at cursor: CatchUpCursor, before oldest: UInt64, limit: Int, filter: Filter) -> StoredPart {
        let after = cursor.after
        let toMemory = StoredPart(
            gap: SubscriberQueue.Gap(after: after, next: oldest, missed: Int(oldest - after - 1)),
            entries: [],
            through: CatchUpCursor(after: oldest - 1)
        )
        guard let durable else { return toMemory }
        let limit = limit + cursor.events
        let selection = filter.selection
        if let selected = durable.lines(after: after, before: oldest, limit: limit, host: selection?.host, source: selection?.source) {
            // The read as a chunk of its own (its parts are slices of it): one source's lines
            // are then queued and sent as runs for a filter by source alone (`LineMatcher.admits(chunk:)`).
            let chunk = HubChunk(lines: selected.entries, dictionary: nil)
            // Positions between a selection's lines are other hosts' and sources' lines, not holes.
            if selected.firstKept > after + 1 {
                let next = min(selected.firstKept, oldest)
                let gap = SubscriberQueue.Gap(after: after, next: next, missed: Int(next - after - 1))
                let kept = selected.entries.drop { $0.position < next }
                return StoredPart(gap: gap, entries: kept, through: CatchUpCursor(after: next - 1).advanced(past: kept), chunk: chunk)
            }
            let entries = cursor.unseen(selected.entries)
            if selected.entries.count < limit, selected.complete {
                return StoredPart(gap: nil, entries: entries, through: CatchUpCursor(after: oldest - 1), chunk: chunk)
            }
            // Cut by its limit, or its time: read on after it (when nothing came, the rest is gone).
            return entries.isEmpty ? toMemory : StoredPart(gap: nil, entries: entries, through: cursor.advanced(past: entries), chunk: chunk)
        }
        let read = durable.part(after: after, before: oldest, limit: limit)
        let stored = read.entries
        let unseen = cursor.unseen(stored)
        guard let first = unseen.first else { return stored.count < limit ? toMemory : StoredPart(gap: nil, entries: [], through: cursor) }
        var gap: SubscriberQueue.Gap?
        var reached = after
        if first.position > after + 1, first.lastSeqCovered > after {
            gap = SubscriberQueue.Gap(after: after, next: first.position, missed: Int(first.position - after - 1))
            reached = first.position - 1
        }
        // Up to the first hole (lines a full disk kept out): the next read begins with its gap.
        var end = unseen.endIndex
        for index in unseen.indices {
            let entry = unseen[index]
            if entry.position > reached + 1, entry.lastSeqCovered > reached {
                end = index
                break
            }
            reached = max(reached, entry.lastSeqCovered)
        }
        let entries = unseen[..<end]
        let start = gap.map { CatchUpCursor(after: $0.next - 1) } ?? cursor
        // An index is of use to a filter with text keys only.
        let chunk = read.shared && (!filter.grep.isEmpty || filter.regex != nil) ? storedChunk(read.array) : nil
        return StoredPart(gap: gap, entries: entries, through: start.advanced(past: entries), chunk: chunk)
    }

    /// Removes a subscriber; its writer gets what is queued, then the end.
    public func unsubscribe(_ subscription: Subscription) {
        state.withLock { state in
            state.subscriptions[subscription.id] = nil
            state.setTextKey(nil, of: subscription.id)
        }
        subscription.finish()
    }

    /// Ends every subscription (shutdown): writers flush what is queued, then stop.
    public func finishAll() {
        let all = state.withLock { state -> [Subscription] in
            defer {
                state.subscriptions.removeAll()
                state.textKeys.removeAll()
                state.dictionaryStale = true
            }
            return Array(state.subscriptions.values)
        }
        for subscription in all { subscription.finish() }
    }

    private static func snapshot(of state: borrowing State) -> HistorySnapshot {
        HistorySnapshot(entries: state.history.entries, lastSeq: state.nextSeq - 1, nextSeq: state.nextSeq)
    }

    /// What a start plan found.
    struct StartPlan {
        var items: [SubscriberQueue.Item]
        var deliveredUpTo: UInt64?
        var complete: Bool
        var examined: Int
        /// A stream that resumes further back than one queue holds: after
        /// `items` it reads on from the history at this cursor (catch-up),
        /// instead of jumping to memory with an `evicted` gap.
        var behind: CatchUpCursor? = nil
    }

    /// ``scanBudget`` in milliseconds, as `incomplete` objects say it.
    static var budgetMilliseconds: Int {
        Int(scanBudget.components.seconds * 1000 + scanBudget.components.attoseconds / 1_000_000_000_000_000)
    }

    /// Matches `entry`, and tells whether the scan must stop (its time is up).
    private struct ScanClock {
        let deadline = ContinuousClock.now + Hub.scanBudget
        var examined = 0
        var cutShort = false

        mutating func tick() -> Bool {
            examined += 1
            if examined % 64 == 0, ContinuousClock.now > deadline { cutShort = true }
            return !cutShort
        }
    }

    /// What a stream starting with `request` gets first: for a resume in this
    /// epoch, an `evicted` gap if needed and every retained matching line
    /// after `after`; otherwise a `restart` gap if the epoch changed, then the
    /// `backlog`. At most `limit` lines. A scan that runs out of time ends
    /// with an `incomplete` object.
    ///
    /// With context (``LineMatcher/context``), a ``ContextSelector`` chooses
    /// the lines to send among those the scan passes on, and the plan ends
    /// with it (``SubscriberQueue/Item/adopt(_:)``) for the live lines.
    static func startPlan(
        request: SubscriptionRequest,
        matcher: LineMatcher,
        history: HistorySnapshot,
        epoch: String,
        limit: Int,
        durable: (any DurableHistory)? = nil,
        durableLimit: Int = 0,
        archives: [any SourceArchive] = [],
        streamNumbered: Bool = false
    ) -> StartPlan {
        var plan = selectionPlan(
            request: request,
            matcher: matcher,
            history: history,
            epoch: epoch,
            limit: limit,
            durable: durable,
            durableLimit: durableLimit,
            archives: archives,
            streamNumbered: streamNumbered
        )
        guard !matcher.context.isEmpty else { return plan }
        var selector = ContextSelector(window: matcher.context)
        plan.items = selector.select(plan.items, matcher: matcher)
        plan.items.append(.adopt(selector))
        return plan
    }

    /// The lines before `index` a context selector records before a scan
    /// starts there: per file, the last `before + after + 1` lines that
    /// pass the selection keys (what decides which of them are still owed
    /// or kept), looking back at most ``contextLookBehind`` entries.
    /// `sent`: whether matches among them count as sent (a resume: the
    /// client has them) or only as lines (a backlog's first match gets its
    /// full context).
    static func contextPrimes<Entries: RandomAccessCollection<HubEntry>>(
        before index: Int,
        in entries: Entries,
        matcher: LineMatcher,
        sent: Bool
    ) -> [SubscriberQueue.Item] where Entries.Index == Int {
        let wanted = matcher.context.before + matcher.context.after + 1
        var perFile: [ContextSelector.Key: Int] = [:]
        var primes: [SubscriberQueue.Item] = []
        for entry in entries[max(entries.startIndex, index - contextLookBehind)..<index].reversed() {
            guard case .line(let record) = entry.payload, matcher.admits(record) else { continue }
            let key = ContextSelector.Key(source: record.source, path: record.path)
            guard perFile[key, default: 0] < wanted else { continue }
            perFile[key, default: 0] += 1
            primes.append(.prime(entry, matched: sent && matcher.matches(entry)))
        }
        return primes.reversed()
    }

    /// Where a reader that has passed `processed` (read in order, the last
    /// `seq` covered being `reached`) reads on: after `reached`, past the
    /// events of the next position it has already read.
    static func cursor(after reached: UInt64, past processed: some BidirectionalCollection<HubEntry>) -> CatchUpCursor {
        CatchUpCursor(after: reached, events: processed.reversed().prefix { !$0.isLine && $0.position == reached + 1 }.count)
    }

    /// How far back a start looks for the lines before its first one that context needs.
    static let contextLookBehind = 10_000

    private static func selectionPlan(
        request: SubscriptionRequest,
        matcher: LineMatcher,
        history: HistorySnapshot,
        epoch: String,
        limit: Int,
        durable: (any DurableHistory)? = nil,
        durableLimit: Int = 0,
        archives: [any SourceArchive] = [],
        streamNumbered: Bool = false
    ) -> StartPlan {
        var items: [SubscriberQueue.Item] = []
        var clock = ScanClock()
        let lastSeq = history.lastSeq
        let oldest = history.entries.first?.position ?? history.nextSeq
        if let after = request.after, request.epoch == nil || request.epoch == epoch {
            // What the client has: in one hub's numbering never past its last line; a gateway may lag the client.
            let delivered = streamNumbered ? after : min(after, lastSeq)
            var from = after
            if after < lastSeq, after + 1 < oldest {
                // Older than memory: from the durable history, as far as it reaches.
                var reached = after  // the last seq delivered or covered by a gap
                if let durable {
                    // One host and source: a store that selects them reads only theirs.
                    let selection = matcher.filter.selection
                    let selected = durable.lines(after: after, before: oldest, limit: durableLimit, host: selection?.host, source: selection?.source)
                    if let selected, selected.firstKept > after + 1 {
                        let next = min(selected.firstKept, oldest)
                        items.append(
                            .control(ProtocolObject.gap(after: after, next: next, missed: Int(next - after - 1), reason: .evicted).encoded())
                        )
                        reached = next - 1
                    }
                    let stored = selected?.entries ?? durable.lines(after: after, before: oldest, limit: durableLimit)
                    var processed = 0
                    for entry in stored {
                        guard clock.tick() else { break }
                        processed += 1
                        if selected == nil, entry.position > reached + 1 {
                            // A hole in the stored history (lines not stored while the disk was full).
                            let missed = Int(entry.position - reached - 1)
                            items.append(
                                .control(ProtocolObject.gap(after: reached, next: entry.position, missed: missed, reason: .evicted).encoded())
                            )
                        }
                        reached = max(reached, entry.lastSeqCovered)
                        if matcher.selects(entry) { items.append(.entry(entry)) }
                    }
                    if clock.cutShort, limit == Int.max {
                        // A stream whose start ran out of time reads on from where it stopped (catch-up).
                        let behind = Self.cursor(after: reached, past: stored.prefix(processed))
                        return StartPlan(items: items, deliveredUpTo: delivered, complete: true, examined: clock.examined, behind: behind)
                    }
                    if clock.cutShort {
                        items.append(.control(incompleteJSON(examined: clock.examined, resumeAfter: reached)))
                        return StartPlan(items: items, deliveredUpTo: delivered, complete: false, examined: clock.examined)
                    }
                    if let selected, selected.complete, stored.count < durableLimit {
                        reached = max(reached, oldest - 1)  // the selection read everything of its host and source before memory
                    }
                    if limit == Int.max, stored.count >= durableLimit, reached + 1 < oldest {
                        // A stream whose queue cannot hold the rest: it reads on from the durable history
                        // where this read stopped (catch-up), as a subscriber that fell behind does.
                        let behind = Self.cursor(after: reached, past: stored)
                        return StartPlan(items: items, deliveredUpTo: delivered, complete: true, examined: clock.examined, behind: behind)
                    }
                    if limit < Int.max, durableLimit > 0, stored.count >= durableLimit, reached + 1 < oldest {
                        // A read (`/api/v1/lines`) that its limit cuts: not a gap; read on.
                        items.append(
                            .control(
                                ProtocolObject.incomplete(examined: clock.examined, resumeAfter: reached, budgetMilliseconds: 0, reason: .limit)
                                    .encoded()
                            )
                        )
                        return StartPlan(items: items, deliveredUpTo: delivered, complete: false, examined: clock.examined)
                    }
                }
                if reached + 1 < oldest {
                    items.append(
                        .control(ProtocolObject.gap(after: reached, next: oldest, missed: Int(oldest - reached - 1), reason: .evicted).encoded())
                    )
                }
                from = oldest - 1
            }
            var resumeAfter = from
            var processed = 0..<0
            // Entries after `from`: lines, or events after the last line (a resume at the newest line gets those too).
            if history.firstIndex(after: from) < history.entries.count {
                var count = 0
                let start = history.firstIndex(after: from)
                processed = start..<start
                if !matcher.context.isEmpty {
                    items += contextPrimes(before: start, in: history.entries, matcher: matcher, sent: true)
                }
                for entry in history.entries[start...] {
                    guard clock.tick() else { break }
                    processed = start..<(processed.upperBound + 1)
                    if !streamNumbered, entry.position > resumeAfter + 1 {
                        // A hole: lines a full disk kept out of the stored history that memory was restored from.
                        let missed = Int(entry.position - resumeAfter - 1)
                        items.append(
                            .control(ProtocolObject.gap(after: resumeAfter, next: entry.position, missed: missed, reason: .evicted).encoded())
                        )
                    }
                    resumeAfter = max(resumeAfter, entry.lastSeqCovered)
                    if matcher.selects(entry) {
                        items.append(.entry(entry))
                        if entry.isLine { count += 1 }
                        if count == limit { break }
                    }
                }
            }
            if clock.cutShort, limit == Int.max {
                // A stream whose start ran out of time reads on from where it stopped (catch-up).
                let behind = Self.cursor(after: resumeAfter, past: history.entries[processed])
                return StartPlan(items: items, deliveredUpTo: delivered, complete: true, examined: clock.examined, behind: behind)
            }
            if clock.cutShort { items.append(.control(incompleteJSON(examined: clock.examined, resumeAfter: resumeAfter))) }
            return StartPlan(items: items, deliveredUpTo: delivered, complete: !clock.cutShort, examined: clock.examined)
        }
        if request.after == nil, let since = matcher.filter.since {
            return sincePlan(
                since: since,
                matcher: matcher,
                history: history,
                limit: limit,
                durable: durable,
                durableLimit: durableLimit,
                archives: archives
            )
        }
        var backlog: [HubEntry] = []
        var contextual: [SubscriberQueue.Item] = []
        let wanted = min(request.backlog, limit)
        if wanted > 0, !matcher.context.isEmpty {
            // The last `wanted` matches, and everything after the first of them that context may need.
            var lines = 0
            var first: Int?
            for index in history.entries.indices.reversed() {
                guard clock.tick() else { break }
                let entry = history.entries[index]
                guard entry.isLine, matcher.matches(entry) else { continue }
                first = index
                lines += 1
                if lines == wanted { break }
            }
            if let first {
                contextual = contextPrimes(before: first, in: history.entries, matcher: matcher, sent: false)
                for entry in history.entries[first...] where matcher.selects(entry) { contextual.append(.entry(entry)) }
                backlog = contextual.compactMap(\.carried).reversed()  // for the restart gap's `next`
            }
        } else if wanted > 0 {
            var lines = 0
            for entry in history.entries.reversed() {
                guard clock.tick() else { break }
                if matcher.matches(entry) {
                    backlog.append(entry)
                    if entry.isLine { lines += 1 }
                    if lines == wanted { break }
                }
            }
        }
        if let after = request.after {
            // The client's epoch is not ours: the server restarted.
            let next = backlog.last(where: \.isLine)?.position ?? history.nextSeq
            items.append(.control(ProtocolObject.gap(after: after, next: next, missed: nil, reason: .restart).encoded()))
        }
        if clock.cutShort { items.append(.control(incompleteJSON(examined: clock.examined, resumeAfter: nil))) }
        if matcher.context.isEmpty {
            for entry in backlog.reversed() { items.append(.entry(entry)) }
        } else {
            items += contextual
        }
        return StartPlan(items: items, deliveredUpTo: nil, complete: !clock.cutShort, examined: clock.examined)
    }

    /// `{"type":"incomplete",...}`: a scan of the history stopped at its time budget.
    static func incompleteJSON(examined: Int, resumeAfter: UInt64?) -> [UInt8] {
        ProtocolObject.incomplete(examined: examined, resumeAfter: resumeAfter, budgetMilliseconds: budgetMilliseconds).encoded()
    }

    /// A stream or read that starts at a time (`since`, without `after`):
    /// every matching line stamped since then, oldest first, at most `limit`
    /// lines (`durableLimit` of them from disk and archives):
    /// 1. from the sources' archives (the journal), the lines from before the
    ///    oldest line the hub holds, without `seq`;
    /// 2. from the durable history, then from memory.
    /// When there are more, it ends with an `incomplete` object whose
    /// `resume_after` reads on.
    static func sincePlan(
        since: Timestamp,
        matcher: LineMatcher,
        history: HistorySnapshot,
        limit: Int,
        durable: (any DurableHistory)?,
        durableLimit: Int,
        archives: [any SourceArchive] = []
    ) -> StartPlan {
        var items: [SubscriberQueue.Item] = []
        var clock = ScanClock()
        var count = 0
        var lastExamined: UInt64?
        let oldest = history.entries.first?.position ?? history.nextSeq

        let archived = archivedLines(
            since: since,
            matcher: matcher,
            history: history,
            durable: durable,
            archives: archives,
            limit: min(limit, durableLimit),
            deadline: clock.deadline
        )
        if !archived.complete {
            // The archives alone fill the read (or its time): the rest of the range comes after them.
            items = archived.lines.map { .entry(.archived($0, before: oldest)) }
            let reason: ProtocolObject.IncompleteReason = ContinuousClock.now > clock.deadline ? .scanBudget : .limit
            items.append(
                .control(
                    ProtocolObject.incomplete(
                        examined: archived.lines.count,
                        resumeAfter: nil,
                        budgetMilliseconds: budgetMilliseconds,
                        reason: reason
                    )
                    .encoded()
                )
            )
            return StartPlan(items: items, deliveredUpTo: nil, complete: false, examined: archived.lines.count)
        }
        let limit = limit - archived.lines.count
        let cap = min(limit, durableLimit - archived.lines.count)
        var full = false
        if let durable, oldest > 1, cap > 0 {
            let selection = matcher.filter.selection
            let selected = durable.lines(since: since, before: oldest, limit: cap, host: selection?.host, source: selection?.source)
            for entry in selected?.entries ?? durable.lines(since: since, before: oldest, limit: cap) {
                guard clock.tick() else { break }
                lastExamined = entry.lastSeqCovered
                if matcher.selects(entry) {
                    items.append(.entry(entry))
                    guard entry.isLine else { continue }
                    count += 1
                    if count == cap {
                        full = true
                        break
                    }
                }
            }
        }
        if !full, !clock.cutShort, limit > 0 {
            for entry in history.entries {
                guard case .line(let record) = entry.payload else {
                    // An event belongs to the range once a line of it has been seen.
                    if lastExamined != nil, matcher.matches(entry) { items.append(.entry(entry)) }
                    continue
                }
                guard since <= record.timestamp else { continue }
                guard clock.tick() else { break }
                lastExamined = entry.position
                if matcher.context.isEmpty ? matcher.matches(entry) : matcher.admits(record) {
                    items.append(.entry(entry))
                    count += 1
                    if count == limit {
                        full = entry.position < history.lastSeq
                        break
                    }
                }
            }
        }
        if clock.cutShort {
            items.append(.control(incompleteJSON(examined: clock.examined, resumeAfter: lastExamined)))
        } else if full {
            items.append(
                .control(
                    ProtocolObject.incomplete(examined: clock.examined, resumeAfter: lastExamined, budgetMilliseconds: 0, reason: .limit)
                        .encoded()
                )
            )
        }
        if !archived.lines.isEmpty {
            // A line of the hub that an archive also gave (a journal entry stamped before the hub's oldest
            // line but published after it) is sent once, as the hub's.
            var held = Set<String>()
            for case .entry(let entry) in items {
                if case .line(let record) = entry.payload, let cursor = record.cursor { held.insert(cursor) }
            }
            let first =
                items.lazy.compactMap { item -> UInt64? in
                    if case .entry(let entry) = item { return entry.position }
                    return nil
                }.first ?? history.nextSeq
            let before = archived.lines.filter { $0.cursor.map { !held.contains($0) } ?? true }.map {
                SubscriberQueue.Item.entry(.archived($0, before: first))
            }
            items = before + items
        }
        return StartPlan(items: items, deliveredUpTo: nil, complete: !clock.cutShort && !full, examined: clock.examined + archived.lines.count)
    }

    /// The lines the archives of the sources `matcher` follows hold from
    /// `since` up to the oldest line the hub holds (on disk, else in
    /// memory; all of it when the hub holds none), oldest first, at most
    /// `limit`. Not `complete` when there may be more (the limit, or the
    /// deadline).
    static func archivedLines(
        since: Timestamp,
        matcher: LineMatcher,
        history: HistorySnapshot,
        durable: (any DurableHistory)?,
        archives: [any SourceArchive],
        limit: Int,
        deadline: ContinuousClock.Instant
    ) -> (lines: [LogRecord], complete: Bool) {
        let wanted = archives.filter { matcher.follows(source: $0.source) }
        guard !wanted.isEmpty, limit > 0 else { return ([], true) }
        let inMemory = history.entries.lazy.compactMap { entry -> Timestamp? in
            if case .line(let record) = entry.payload { return record.timestamp }
            return nil
        }.first
        let boundary = durable?.oldestLineTime ?? inMemory ?? Timestamp.now()
        guard since < boundary else { return ([], true) }
        var lines: [LogRecord] = []
        var complete = true
        for archive in wanted {
            let read = archive.lines(
                since: since,
                until: matcher.filter.until,
                before: boundary,
                limit: limit,
                matching: matcher.matches,
                deadline: deadline
            )
            lines += read.lines
            complete = complete && read.complete
        }
        if wanted.count > 1 {
            // Oldest first across sources; a source's own order is kept for equal stamps.
            lines = lines.enumerated().sorted { ($0.element.timestamp, $0.offset) < ($1.element.timestamp, $1.offset) }.map(\.element)
        }
        if lines.count > limit {
            lines.removeLast(lines.count - limit)
            complete = false
        }
        return (lines, complete)
    }

    /// The result of a one-shot read (``snapshot(request:matcher:limit:)``).
    public struct ScanResult: Sendable {
        public var items: [SubscriberQueue.Item]
        /// The `seq` of the newest line in the hub when the read began.
        public var lastSeq: UInt64
        /// False when the scan stopped at ``Hub/scanBudget``.
        public var complete: Bool
    }

    /// A one-shot read with a stream's start rules (for `/api/v1/lines`):
    /// what a new stream with `request` would get first (gaps, then lines),
    /// at most `limit` lines. Scans outside the hub's lock.
    public func snapshot(request: SubscriptionRequest, matcher: LineMatcher, limit: Int) -> ScanResult {
        let history = state.withLock { Self.snapshot(of: $0) }
        let plan = Self.startPlan(
            request: request,
            matcher: matcher,
            history: history,
            epoch: epoch,
            limit: limit,
            durable: durable,
            durableLimit: limit,
            archives: archives,
            streamNumbered: configuration.streamNumbered
        )
        return ScanResult(items: plan.items, lastSeq: history.lastSeq, complete: plan.complete)
    }

    // MARK: Reading

    /// What ``around(seq:window:matcher:)`` found.
    public enum AroundResult: Sendable {
        /// The context before, the line, the context after.
        case lines([SubscriberQueue.Item])
        /// No line has that `seq` yet (the newest is `lastSeq`).
        case notYet(lastSeq: UInt64)
        /// The line is no longer held (memory and the durable history begin at `oldest`).
        case gone(oldest: UInt64)
    }

    /// How far either side of the line ``around(seq:window:matcher:)`` reads
    /// the durable history for its context.
    static let aroundReach: UInt64 = 2000

    /// The line `seq` and up to `window` lines of its own file before and
    /// after it that pass the selection keys of `matcher` (its text keys do
    /// not apply: this is "show context" for one line). From memory, else
    /// from the durable history.
    public func around(seq: UInt64, window: ContextWindow, matcher: LineMatcher) -> AroundResult {
        let history = state.withLock { Self.snapshot(of: $0) }
        guard seq >= 1, seq <= history.lastSeq else { return .notYet(lastSeq: history.lastSeq) }
        let inMemory = history.entries
        let oldest = inMemory.first?.position ?? history.nextSeq
        var entries: [HubEntry]
        if seq >= oldest, inMemory.contains(where: { $0.hasSeq && $0.position == seq }) {
            entries = Array(inMemory)
        } else {
            let from = seq > Self.aroundReach ? seq - Self.aroundReach : 0
            let before = min(oldest, seq + Self.aroundReach + 1)
            entries = durable?.lines(after: from, before: before, limit: Int(Self.aroundReach) * 2 + 2) ?? []
            if before == oldest { entries += history.entries.prefix { $0.position <= seq + Self.aroundReach } }
        }
        let index = entries.firstIndex { $0.hasSeq && $0.position == seq }
        guard let index, case .line(let target) = entries[index].payload else {
            let first = durable?.lines(after: 0, before: oldest, limit: 1).first?.position ?? oldest
            return .gone(oldest: first)
        }
        func sameFile(_ entry: HubEntry) -> Bool {
            guard entry.hasSeq, case .line(let record) = entry.payload else { return false }
            return record.source == target.source && record.path == target.path && matcher.admits(record)
        }
        // A rotation or truncation of the file between ends its context there, as in a stream.
        func endsFile(_ entry: HubEntry) -> Bool {
            guard case .event(let event) = entry.payload else { return false }
            return event.source == target.source && (event.path == nil || event.path == target.path)
        }
        var before: [SubscriberQueue.Item] = []
        for entry in entries[..<index].reversed() {
            if before.count == window.before || endsFile(entry) { break }
            if sameFile(entry) { before.append(.context(entry)) }
        }
        var after: [SubscriberQueue.Item] = []
        for entry in entries[(index + 1)...] {
            if after.count == window.after || endsFile(entry) { break }
            if sameFile(entry) { after.append(.context(entry)) }
        }
        return .lines(before.reversed() + [.selected(entries[index])] + after)
    }

    /// Retained lines that pass `matcher`: those after `after` (oldest first,
    /// at most `limit`), or the newest `limit` when `after` is nil.
    public func retainedLines(matching matcher: LineMatcher, after: UInt64?, limit: Int) -> [HubEntry] {
        let history = state.withLock { $0.history.entries }
        do {
            var out: [HubEntry] = []
            if let after {
                for entry in history where entry.position > after {
                    if entry.isLine, matcher.matches(entry) {
                        out.append(entry)
                        if out.count == limit { break }
                    }
                }
                return out
            }
            for entry in history.reversed() {
                if entry.isLine, matcher.matches(entry) {
                    out.append(entry)
                    if out.count == limit { break }
                }
            }
            return out.reversed()
        }
    }

    /// Counters for `/healthz` and metrics.
    public struct Statistics: Sendable {
        public var linesPublished: UInt64
        public var lastSeq: UInt64
        public var historyLines: Int
        public var historyBytes: Int
        public var subscribers: Int
        /// Parts read from the history for subscribers that were behind (all, and from the durable history).
        public var catchUpReads: UInt64 = 0
        public var catchUpStoredReads: UInt64 = 0
    }

    /// Items waiting in all subscriber queues (a gauge for `/metrics`).
    public var queuedItems: Int {
        let subscriptions = state.withLock { Array($0.subscriptions.values) }
        return subscriptions.reduce(0) { total, subscription in
            total + subscription.state.withLock { $0.queue.count }
        }
    }

    public var statistics: Statistics {
        state.withLock { state in
            Statistics(
                linesPublished: state.linesPublished,
                lastSeq: state.nextSeq - 1,
                historyLines: state.history.count,
                historyBytes: state.history.bytes,
                subscribers: state.subscriptions.count,
                catchUpReads: catchUpReads.load(ordering: .relaxed),
                catchUpStoredReads: catchUpStoredReads.load(ordering: .relaxed)
            )
        }
    }
}
