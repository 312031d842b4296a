import LogcastProtocol
import Synchronization

/// Where a subscriber that is behind reads on: after the line `after`,
/// and past the first `events` source events of the position after it
/// (events are kept before the line whose `seq` they carry as position).
struct CatchUpCursor: Equatable, Sendable {
    var after: UInt64
    var events = 0

    /// The cursor after `entries`, read in order from this one.
    func advanced(past entries: some BidirectionalCollection<HubEntry>) -> CatchUpCursor {
        guard let last = entries.last else { return self }
        if last.isLine { return CatchUpCursor(after: last.position) }
        let trailing = entries.reversed().prefix { !$0.isLine && $0.position == last.position }.count
        let carried = trailing == entries.count && after + 1 == last.position ? events : 0
        return CatchUpCursor(after: last.position - 1, events: trailing + carried)
    }

    /// `entries` (read after ``after``) without the events already passed.
    func unseen(_ entries: [HubEntry]) -> ArraySlice<HubEntry> {
        unseen(entries[...])
    }

    func unseen(_ entries: ArraySlice<HubEntry>) -> ArraySlice<HubEntry> {
        entries.dropFirst(passedEvents(atStartOf: entries))
    }

    /// `runs` (read after ``after``) without the events already passed.
    func unseen(_ runs: [HistoryRing.Run]) -> [HistoryRing.Run] {
        var skip = passedEvents(atStartOf: runs.lazy.flatMap(\.lines))
        var rest = runs[...]
        while skip > 0, let first = rest.first {
            let dropped = min(skip, first.lines.count)
            skip -= dropped
            if dropped == first.lines.count {
                rest = rest.dropFirst()
            } else {
                rest[rest.startIndex] = HistoryRing.Run(lines: first.lines.dropFirst(dropped), chunk: first.chunk)
            }
        }
        return Array(rest)
    }

    /// How many entries at the start of `entries` are events this cursor has passed.
    private func passedEvents(atStartOf entries: some Sequence<HubEntry>) -> Int {
        var count = 0
        for entry in entries {
            guard count < events, !entry.isLine, entry.position == after + 1 else { break }
            count += 1
        }
        return count
    }
}

/// One subscriber's end of the hub: its filter, its bounded queue, and the
/// wake-up of its writer.
///
/// The hub pushes from publishing threads without ever waiting; the writer
/// (one task per connection) awaits ``nextBatch(maxBytes:)``. Items come out
/// in the order the hub pushed them.
public final class Subscription: Sendable {
    public let id: Int
    /// When the subscription began (``MonotonicClock``): lines that entered
    /// the hub before it (a backlog, a resume) are not counted in the
    /// delivery latency.
    public let startedAt = MonotonicClock.nanoseconds()
    public let format: SubscriptionRequest.Format
    /// What a frame's budget counts for this subscriber (its queue's too).
    public var frameMeasure: SubscriberQueue.FrameMeasure { .init(format) }
    /// The structured fields sent with each line (`fields`), if asked for.
    public let fields: FieldSelection?

    struct State: ~Copyable {
        var matcher: LineMatcher
        var queue: SubscriberQueue
        var waiter: Waiter?
        var finished = false
        /// Set by ``close(code:reason:)``: the writer closes with it at once.
        var closeRequest: CloseRequest?
        /// While the hub computes a start (backlog or resume), live entries wait here.
        var starting = true
        var held: [HubEntry] = []
        /// Lines up to this `seq` the client already has: a gateway's client
        /// may resume after a line this gateway has not received yet.
        var deliveredThrough: UInt64 = 0
        /// Set while the subscriber is behind (``SlowConsumerPolicy/catchUp``):
        /// live entries are not queued, and once the queue has drained the
        /// writer reads on from the hub's history after this position.
        var behind: CatchUpCursor?
        /// Counts starts (a `subscribe` message begins a new one), so that a
        /// catch-up read made for an earlier start is discarded.
        var generation = 0
        /// For a filter with context: which lines are sent. The writer takes
        /// it out while it filters a batch (outside the lock) and puts it
        /// back unless a new start has begun meanwhile.
        var context: ContextSelector?
    }

    /// A request to end the stream now, with a WebSocket close code.
    public struct CloseRequest: Sendable, Equatable {
        public var code: UInt16
        public var reason: String
    }

    let state: Mutex<State>
    /// Reads on from the history for a subscriber that is behind: queues
    /// the next part with ``refill(_:gap:through:generation:)`` or goes live
    /// with ``beginLive(generation:)`` (the hub, which holds the history).
    let catchUp: (@Sendable (Subscription, CatchUpCursor, _ generation: Int) -> Void)?

    init(
        id: Int,
        matcher: LineMatcher,
        format: SubscriptionRequest.Format,
        fields: FieldSelection? = nil,
        queue: SubscriberQueue,
        prelude: [[UInt8]] = [],
        catchUp: (@Sendable (Subscription, CatchUpCursor, Int) -> Void)? = nil
    ) {
        self.id = id
        self.format = format
        self.fields = fields
        self.catchUp = catchUp
        var queue = queue
        for control in prelude { queue.push(.control(control)) }
        var state = State(matcher: matcher, queue: queue)
        state.context = matcher.context.isEmpty ? nil : ContextSelector(window: matcher.context)
        self.state = Mutex(state)
    }

    /// Ends a start (see ``Hub/subscribe(matcher:request:prelude:)``): queues
    /// `items` (gap, backlog), then the live entries held meanwhile that are
    /// newer than `after` (the last `seq` the start saw), and lets live
    /// entries flow.
    /// - Parameter behind: where a resume too long for one queue reads on
    ///   from the history once `items` are sent (the held entries are then
    ///   read from there too).
    func start(_ items: [SubscriberQueue.Item], after: UInt64, deliveredUpTo: UInt64?, behind: CatchUpCursor? = nil) {
        finishStart(after: after) { state in
            for item in items {
                guard state.behind == nil else { break }  // the rest is read from the history
                if state.queue.push(item) == .refused, let entry = item.carried { state.behind = CatchUpCursor(after: entry.position - 1) }
            }
            if let deliveredUpTo {
                state.queue.markDelivered(upTo: deliveredUpTo)
                state.deliveredThrough = deliveredUpTo
            }
            if state.behind == nil, let behind { state.behind = behind }
        }
    }

    /// Ends a catch-up that reached the newest line (after
    /// ``beginLive(at:generation:)``), as ``start(_:after:deliveredUpTo:behind:)``
    /// does: queues the rest of the history, `runs` of its published chunks
    /// (each run with its chunk's text index), then the entries held meanwhile.
    func goLive(_ runs: [HistoryRing.Run], after: UInt64) {
        finishStart(after: after) { state in
            for run in runs {
                guard state.queueRuns(run.lines, chunk: run.chunk) else { break }  // the rest is read from the history
            }
        }
    }

    /// What every start ends with: `queue` the start's own items, then
    /// the entries held since the start began (those after `after`), and
    /// wake the writer.
    private func finishStart(after: UInt64, _ queue: (inout State) -> Void) {
        let waiter = state.withLock { state -> Subscription.Waiter? in
            queue(&state)
            for entry in state.held where entry.position > after && !(entry.hasSeq && entry.position <= state.deliveredThrough) {
                guard state.behind == nil else { break }
                guard state.matcher.admitsEverything || state.matcher.admits(entry) else { continue }
                if state.queue.push(.entry(entry)) == .refused { state.behind = CatchUpCursor(after: entry.position - 1) }
            }
            state.held = []
            state.starting = false
            return state.take()
        }
        waiter?.wake()
    }

    /// Begins a new start with a new filter (a `subscribe` message): drops
    /// the queued lines (control replies stay), queues `reply`, and holds
    /// live entries until ``start(_:after:deliveredUpTo:)``.
    func restart(matcher: LineMatcher, reply: [UInt8]) {
        state.withLock { state in
            state.matcher = matcher
            state.queue.removeEntries()
            state.queue.push(.control(reply))
            state.held = []
            state.starting = true
            state.behind = nil
            state.generation += 1
            state.context = matcher.context.isEmpty ? nil : ContextSelector(window: matcher.context)
        }
    }

    /// Queues the next part of a catch-up read (for the start `generation`,
    /// made at `cursor`): `gap` first if lines are gone, then `entries`; the
    /// subscriber stays behind, at `through` (or before the first line that
    /// did not fit). Discarded when a new start has begun. `chunk`: the
    /// shared chunk `entries` are a slice of, with its text index.
    func refill(
        _ entries: ArraySlice<HubEntry>,
        gap: SubscriberQueue.Gap?,
        at cursor: CatchUpCursor,
        through: CatchUpCursor,
        generation: Int,
        chunk: HubChunk? = nil
    ) {
        refill(at: cursor, through: through, generation: generation) { state in
            if let gap { state.queue.announceGap(after: gap.after, next: gap.next, missed: gap.missed) }
            state.queueRuns(entries, chunk: chunk)
        }
    }

    /// Queues the next part of a catch-up read from memory: `runs` of the
    /// history's published chunks, as ``refill(_:gap:at:through:generation:chunk:)``
    /// queues a part of one chunk.
    func refill(_ runs: [HistoryRing.Run], at cursor: CatchUpCursor, through: CatchUpCursor, generation: Int) {
        refill(at: cursor, through: through, generation: generation) { state in
            for run in runs {
                guard state.queueRuns(run.lines, chunk: run.chunk) else { break }  // behind before `through`
            }
        }
    }

    private func refill(at cursor: CatchUpCursor, through: CatchUpCursor, generation: Int, _ queue: (inout State) -> Void) {
        let waiter = state.withLock { state -> Subscription.Waiter? in
            guard state.generation == generation, state.behind == cursor, !state.finished else { return nil }
            state.behind = through
            queue(&state)
            return state.take()
        }
        waiter?.wake()
    }

    /// Ends a catch-up, called under the hub's lock with its history read
    /// to the newest entry: live entries are held from now on, until
    /// ``start(_:after:deliveredUpTo:)`` queues the read's rest and them.
    /// - Returns: false when the read is stale (a new start, or finished).
    func beginLive(at cursor: CatchUpCursor, generation: Int) -> Bool {
        state.withLock { state in
            guard state.generation == generation, state.behind == cursor, !state.finished else { return false }
            state.behind = nil
            state.starting = true
            state.held = []
            return true
        }
    }

    /// Whether more is waiting for the writer (queued, or to read from the history).
    public var hasMore: Bool { state.withLock { !$0.queue.isEmpty || $0.behind != nil } }

    /// Whether the subscriber is behind (reading from the history), for metrics.
    public var isBehind: Bool { state.withLock { $0.behind != nil } }

    /// The filter currently applied.
    public var filter: Filter { state.withLock { $0.matcher.filter } }

    /// Offers entries in order. They are queued as they are (the writer
    /// applies the filter when it drains), so the publisher never runs a
    /// subscriber's filter. Never blocks beyond the subscriber's own short lock.
    /// - Returns: the writer to wake (``Waiter/wake()``), if it waits. The
    ///   publisher wakes it once it has released the hub's fan-out lock: a
    ///   wake-up can hand the publisher's core to the woken thread, and every
    ///   other publisher would wait for it meanwhile.
    func offer(_ entries: some Collection<HubEntry>) -> Waiter? {
        offer(entries) { $0.queueEach(entries) }
    }

    /// Offers one published chunk of lines (no events; `bytes` is their
    /// summed ``HubEntry/byteCount``), as ``offer(_:)`` does, but under
    /// ``SlowConsumerPolicy/catchUp`` as runs (``SubscriberQueue/Item/run(_:bytes:chunk:)``):
    /// one queued item per run of lines the selection keys admit (the whole
    /// chunk for a filter without them), so a subscriber costs the publisher
    /// one short lock and a few references per chunk, not a queued item per line.
    func offer(_ chunk: HubChunk, bytes: Int) -> Waiter? {
        let entries = chunk.lines
        return offer(entries) { state in
            guard state.queue.policy == .catchUp, let first = entries.first, first.position > state.deliveredThrough else {
                state.queueEach(entries)
                return
            }
            switch state.matcher.admits(chunk: chunk) {
            case true?: state.queueRun(entries[...], bytes: bytes, chunk: chunk)
            case false?: break  // none of it is for this subscriber
            case nil: state.queueRuns(entries[...], chunk: chunk)
            }
        }
    }

    /// What every offer does: hold the entries while a start is computed,
    /// leave them to the history while the subscriber is behind, else
    /// `queue` them, and take the writer's waiter if that gave it something
    /// to do (woken at most once).
    private func offer(_ entries: some Collection<HubEntry>, queue: (inout State) -> Void) -> Waiter? {
        state.withLock { state in
            guard !state.finished else { return nil }
            if state.starting {
                state.held.append(contentsOf: entries)
                return nil
            }
            guard state.behind == nil else { return nil }  // it reads them from the history
            queue(&state)
            // A writer is woken only for something to do: an offer whose lines the
            // selection keys all left out (another source's burst) leaves it waiting.
            return state.isReady(catchingUp: catchUp != nil) ? state.take() : nil
        }
    }

    /// Control objects a subscriber may leave unread; a client that lets
    /// more pile up is not reading its replies.
    public static let maxPendingControls = 64

    /// Queues a pre-encoded control object (an `error` reply, say).
    /// - Returns: false, queuing nothing, when ``maxPendingControls`` are
    ///   already waiting (or the stream has finished).
    /// - Parameter replacingUnsent: when the newest queued item is a control
    ///   object for which this holds, `json` replaces it instead of queuing
    ///   another (repeated errors are merged while the client has not read them).
    @discardableResult
    public func sendControl(_ json: [UInt8], replacingUnsent: (([UInt8]) -> Bool)? = nil) -> Bool {
        let (queued, waiter) = state.withLock { state -> (Bool, Waiter?) in
            guard !state.finished else { return (false, nil) }
            if let replacingUnsent, state.queue.replaceLastControl(where: replacingUnsent, with: json) { return (true, nil) }
            guard state.queue.controlCount < Self.maxPendingControls else { return (false, nil) }
            state.queue.push(.control(json))
            return (true, state.take())
        }
        waiter?.wake()
        return queued
    }

    /// Ends the stream: the writer gets what is still queued, then `nil`.
    public func finish() {
        let waiter = state.withLock { state -> Subscription.Waiter? in
            state.finished = true
            return state.take()
        }
        waiter?.wake()
    }

    /// Ends the stream at once, without flushing what is queued: the writer
    /// gets ``Batch/close(_:)`` next (a revoked token, a client that does
    /// not read its replies).
    public func close(code: UInt16, reason: String) {
        let waiter = state.withLock { state -> Subscription.Waiter? in
            if state.closeRequest == nil { state.closeRequest = CloseRequest(code: code, reason: reason) }
            return state.take()
        }
        waiter?.wake()
    }

    /// What the writer gets: items for one frame, or the reason to stop.
    public enum Batch: Sendable {
        case items(gap: SubscriberQueue.Gap?, [SubscriberQueue.Item])
        /// The queue overflowed under the disconnect policy.
        case overflowed
        /// ``finish()`` was called and everything queued was handed out.
        case finished
        /// ``close(code:reason:)`` was called.
        case close(CloseRequest)
    }

    /// Waits until something is queued, then takes up to about `maxBytes` of it.
    ///
    /// Suspends while the queue is empty; returns at once otherwise, so a
    /// line that arrives while the writer is idle goes out immediately.
    /// Cancellation makes it return ``Batch/finished``.
    /// - Parameters:
    ///   - readOnExecutor: where a subscriber that is behind reads on from
    ///     the history (the read may wait for the disk); nil: where the
    ///     caller runs.
    ///   - keepingRuns: for a subscriber without a filter or context, hand
    ///     queued runs on as they are (one ``SubscriberQueue/Item/run(_:bytes:chunk:)``
    ///     item per published chunk) instead of one ``SubscriberQueue/Item/entry(_:)``
    ///     item per line: for a writer that frames runs whole (``StreamFraming``),
    ///     so a line costs it no item of its own. Filtered and context
    ///     batches always hold single items.
    public func nextBatch(maxBytes: Int, readOnExecutor: (any TaskExecutor)? = nil, keepingRuns: Bool = false) async -> Batch {
        while true {
            if let batch = await takeBatch(maxBytes: maxBytes, readOnExecutor: readOnExecutor, keepingRuns: keepingRuns) { return batch }
            await withTaskCancellationHandler {
                await withCheckedContinuation { continuation in
                    let resumeNow = state.withLock { state -> Bool in
                        if state.isReady(catchingUp: catchUp != nil) || Task.isCancelled { return true }
                        state.waiter = .task(continuation)
                        return false
                    }
                    if resumeNow { continuation.resume() }
                }
            } onCancel: {
                let waiter = state.withLock { $0.take() }
                waiter?.wake()
            }
        }
    }

    /// Takes up to about `maxBytes` of what is queued, as
    /// ``nextBatch(maxBytes:readOnExecutor:keepingRuns:)`` does, but returns
    /// nil instead of waiting when nothing is (lines a filter drops are
    /// taken and dropped). A writer that does not keep a task waiting for
    /// each subscriber calls this, and ``whenReady(_:)`` once it gets nil.
    public func takeBatch(maxBytes: Int, readOnExecutor: (any TaskExecutor)? = nil, keepingRuns: Bool = false) async -> Batch? {
        while true {
            switch take(maxBytes: maxBytes, keepingRuns: keepingRuns) {
            case .batch(let batch):
                return batch
            case .empty:
                return nil
            case .read(let cursor, let generation):
                guard let catchUp else { return nil }
                // Behind, and everything queued is sent: read on from the history, in this task.
                await withTaskExecutorPreference(readOnExecutor) { catchUp(self, cursor, generation) }
                // A read is up to a queue's worth of lines: let other tasks (pings, other writers) run between reads.
                await Task.yield()
            }
        }
    }

    /// What ``takeBatchNow(maxBytes:keepingRuns:)`` found.
    public enum Taken: Sendable {
        /// Items for one frame, or the reason to stop.
        case batch(Batch)
        /// Nothing is queued.
        case empty
        /// Nothing is queued, and the subscriber is behind: the next lines
        /// are read from the history, which only the task-based calls do
        /// (``takeBatch(maxBytes:readOnExecutor:keepingRuns:)``), since the
        /// read may wait for the disk.
        case behind
    }

    /// ``takeBatch(maxBytes:readOnExecutor:keepingRuns:)`` without a task:
    /// what is queued now, never waiting and never reading the history (a
    /// writer on an event loop, which must not block).
    public func takeBatchNow(maxBytes: Int, keepingRuns: Bool = false) -> Taken {
        switch take(maxBytes: maxBytes, keepingRuns: keepingRuns) {
        case .batch(let batch): .batch(batch)
        case .empty: .empty
        case .read: .behind
        }
    }

    /// One try of the take functions: a batch, nothing, or a history read due.
    private enum Take {
        case batch(Batch)
        case empty
        case read(CatchUpCursor, generation: Int)
    }

    private func take(maxBytes: Int, keepingRuns: Bool) -> Take {
        while true {
            var readOn: (cursor: CatchUpCursor, generation: Int)?
            var context: (selector: ContextSelector, generation: Int)?
            var generation = 0
            let drained: (batch: Batch?, matcher: LineMatcher?) = state.withLock { state in
                if let request = state.closeRequest { return (.close(request), nil) }
                if state.queue.isOverflowed { return (.overflowed, nil) }
                if !state.queue.isEmpty {
                    generation = state.generation
                    let (gap, items) = state.queue.drain(maxBytes: maxBytes)
                    if let selector = state.context {
                        context = (selector, state.generation)
                        state.context = nil
                    }
                    return (.items(gap: gap, items), state.matcher)
                }
                if state.finished || Task.isCancelled { return (.finished, nil) }
                if let behind = state.behind, !state.starting, catchUp != nil { readOn = (behind, state.generation) }
                return (nil, nil)
            }
            if let readOn { return .read(readOn.cursor, generation: readOn.generation) }
            if case .items(let gap, let items)? = drained.batch, let matcher = drained.matcher, var selector = context?.selector {
                // Context: the selector chooses, in the writer, outside every lock.
                if gap != nil { selector.reset() }
                let chosen = filled(from: items, maxBytes: maxBytes, generation: generation) {
                    selector.select($0, matcher: matcher)
                }
                state.withLock { state in
                    if state.generation == context?.generation, state.context == nil { state.context = selector }
                }
                if chosen.isEmpty && gap == nil { continue }
                return .batch(.items(gap: gap, chosen))
            }
            if case .items(let gap, let items)? = drained.batch, let matcher = drained.matcher, !matcher.passesEverything {
                // The filter runs here, in the writer, outside every lock.
                let passing = filled(from: items, maxBytes: maxBytes, generation: generation) {
                    Self.flatten($0, filter: matcher, keepingRuns: keepingRuns)
                }
                if passing.isEmpty && gap == nil { continue }
                return .batch(.items(gap: gap, passing))
            }
            if case .items(let gap, let items)? = drained.batch {
                return .batch(.items(gap: gap, keepingRuns ? items : Self.flatten(items, filter: nil)))
            }
            return drained.batch.map { .batch($0) } ?? .empty
        }
    }

    /// Calls `action` once something is ready for the writer (lines or
    /// replies queued, a part of the history to read, the end or a close),
    /// at once if something already is. A subscription has one writer, so
    /// one waiter at a time: this replaces one set before. The action runs
    /// on the thread that made the subscription ready (a publisher's, under
    /// no lock), so it should only start the writer, not write.
    public func whenReady(_ action: @escaping @Sendable () -> Void) {
        let now = state.withLock { state -> Bool in
            if state.isReady(catchingUp: catchUp != nil) { return true }
            state.waiter = .callback(action)
            return false
        }
        if now { action() }
    }

    /// Who waits for a subscription to become ready: a writer's task
    /// (``nextBatch(maxBytes:readOnExecutor:keepingRuns:)``) or an action
    /// that starts a writer (``whenReady(_:)``).
    enum Waiter: Sendable {
        case task(CheckedContinuation<Void, Never>)
        case callback(@Sendable () -> Void)

        /// Resumes the task or calls the action: once, outside every lock.
        func wake() {
            switch self {
            case .task(let continuation): continuation.resume()
            case .callback(let action): action()
            }
        }
    }

    /// How many queue drains one filtered frame may gather.
    static let maxFilteredDrains = 16

    /// What `pick` keeps of `drained`, and, while that is under half of
    /// `maxBytes`, of more of the queue (``drainMore(maxBytes:generation:)``,
    /// at most ``maxFilteredDrains`` drains in all). A sparse filter's frame
    /// (whose budget counts the lines before filtering) is so filled: fewer,
    /// fuller frames and fewer wake-ups.
    private func filled(
        from drained: [SubscriberQueue.Item],
        maxBytes: Int,
        generation: Int,
        pick: ([SubscriberQueue.Item]) -> [SubscriberQueue.Item]
    ) -> [SubscriberQueue.Item] {
        var out = pick(drained)
        var sent = SubscriberQueue.budgetBytes(of: out, measure: frameMeasure)
        var drains = 1
        while sent < maxBytes / 2, drains < Self.maxFilteredDrains, let more = drainMore(maxBytes: maxBytes, generation: generation) {
            let extra = pick(more)
            sent += SubscriberQueue.budgetBytes(of: extra, measure: frameMeasure)
            out += extra
            drains += 1
        }
        return out
    }

    /// The next part of the queue for a frame being filled, while nothing
    /// else is due first: no gap to announce, no close, the same start.
    private func drainMore(maxBytes: Int, generation: Int) -> [SubscriberQueue.Item]? {
        state.withLock { state in
            guard state.closeRequest == nil, !state.queue.isOverflowed, state.generation == generation, state.queue.count > 0,
                !state.queue.hasGapToAnnounce
            else { return nil }
            return state.queue.drain(maxBytes: maxBytes).items
        }
    }

    /// `items` with every run (``SubscriberQueue/Item/run(_:bytes:chunk:)``)
    /// laid out as ``SubscriberQueue/Item/entry(_:)`` items, keeping only
    /// the entries (of runs and alone) that pass `filter` (all when nil);
    /// other items stay. A run whose chunk has a text index for the
    /// filter's ``LineMatcher/textKey`` is matched only on the lines that
    /// contain the key; one whose chunk the filter decides whole
    /// (``LineMatcher/matches(chunk:)``) is kept or dropped whole, and with
    /// `keepingRuns` kept as the run it is.
    static func flatten(_ items: [SubscriberQueue.Item], filter: LineMatcher?, keepingRuns: Bool = false) -> [SubscriberQueue.Item] {
        if filter == nil, !items.contains(where: { if case .run = $0 { true } else { false } }) { return items }
        var out: [SubscriberQueue.Item] = []
        out.reserveCapacity(filter == nil ? items.reduce(0) { $0 + max(1, SubscriberQueue.lines(in: $1)) } : items.count)
        for item in items {
            switch item {
            case .run(let lines, _, let chunk):
                guard let filter else {
                    for entry in lines { out.append(.entry(entry)) }
                    continue
                }
                if let chunk, let every = filter.matches(chunk: chunk) {
                    // Decided for the whole chunk (one source's lines, a filter by source alone).
                    if every, keepingRuns {
                        out.append(item)
                    } else if every {
                        for entry in lines { out.append(.entry(entry)) }
                    }
                    continue
                }
                if keepingRuns, filter.matchesBySourceAlone, lines.allSatisfy(filter.matches) {
                    // A stretch of lines the selection admitted (one source's, out of a mixed part
                    // of the durable history): each passes with a comparison, and the run is sent whole.
                    out.append(item)
                    continue
                }
                if let key = filter.textKey, let chunk, let candidates = chunk.candidates(for: key, in: lines.indices) {
                    for index in candidates {
                        let entry = chunk.lines[Int(index)]
                        if filter.matches(entry) { out.append(.entry(entry)) }
                    }
                    continue
                }
                for entry in lines where filter.matches(entry) { out.append(.entry(entry)) }
            case .entry(let entry):
                if filter?.matches(entry) ?? true { out.append(item) }
            case .control, .selected, .context, .separator, .prime, .adopt:
                out.append(item)
            }
        }
        return out
    }

    /// Lines and bytes waiting in the queue, for metrics.
    public var queueDepth: (items: Int, bytes: Int) {
        state.withLock { ($0.queue.count, $0.queue.queuedBytes) }
    }
}

extension Subscription.State {
    mutating func take() -> Subscription.Waiter? {
        defer { waiter = nil }
        return waiter
    }

    /// Whether the writer has something to do: lines or replies queued,
    /// the end, a close, or (when it can) a part of the history to read.
    func isReady(catchingUp: Bool) -> Bool {
        !queue.isEmpty || finished || queue.isOverflowed || closeRequest != nil || (behind != nil && !starting && catchingUp)
    }

    /// Queues live entries one by one: those the client has not had and
    /// the selection keys admit (cheap set lookups, so that only lines that
    /// may match take room). A refused line makes the subscriber behind.
    /// - Returns: false when not all were queued (the subscriber became
    ///   behind, or its queue overflowed).
    @discardableResult
    mutating func queueEach(_ entries: some Collection<HubEntry>) -> Bool {
        let admitsEverything = matcher.admitsEverything
        for entry in entries {
            guard !queue.isOverflowed else { return false }
            if entry.position <= deliveredThrough, entry.hasSeq { continue }
            if !admitsEverything, !matcher.admits(entry) { continue }
            if queue.push(.entry(entry)) == .refused {
                behind = CatchUpCursor(after: entry.position - 1)
                return false
            }
        }
        return true
    }

    /// Queues entries in order as ``queueEach(_:)`` does, but, under
    /// ``SlowConsumerPolicy/catchUp``, each stretch of consecutive lines that
    /// are new to the client and admitted as one run (events and lines from
    /// an archive alone); stops where the subscriber becomes behind.
    /// - Returns: false when it stopped there (or the queue overflowed).
    @discardableResult
    mutating func queueRuns(_ entries: ArraySlice<HubEntry>, chunk: HubChunk? = nil) -> Bool {
        guard queue.policy == .catchUp else { return queueEach(entries) }
        let admitsEverything = matcher.admitsEverything
        if !admitsEverything, let chunk, let first = entries.first, first.position > deliveredThrough,
            let whole = matcher.admits(chunk: chunk)
        {
            // One source's lines, for a filter that selects by source alone: all or none of them, decided once.
            guard whole else { return true }
            return queueRun(entries, bytes: entries.reduce(0) { $0 + $1.byteCount }, chunk: chunk)
        }
        if admitsEverything, let first = entries.first, first.position > deliveredThrough {
            // A catch-up part of lines only, unfiltered: one run, as a live chunk is queued.
            var bytes = 0
            var onlyLines = true
            for entry in entries {
                guard entry.hasSeq else {
                    onlyLines = false
                    break
                }
                bytes += entry.byteCount
            }
            if onlyLines { return queueRun(entries, bytes: bytes, chunk: chunk) }
        }
        var start: Int?
        var runBytes = 0
        for index in entries.indices {
            let entry = entries[index]
            if entry.hasSeq, entry.position > deliveredThrough, admitsEverything || matcher.admits(entry) {
                if start == nil {
                    start = index
                    runBytes = 0
                }
                runBytes += entry.byteCount
                continue
            }
            if let from = start {
                start = nil
                guard queueRun(entries[from..<index], bytes: runBytes, chunk: chunk) else { return false }
            }
            if entry.hasSeq, entry.position <= deliveredThrough { continue }
            if !admitsEverything, !matcher.admits(entry) { continue }
            if queue.push(.entry(entry)) == .refused {
                behind = CatchUpCursor(after: entry.position - 1)
                return false
            }
        }
        if let from = start { return queueRun(entries[from...], bytes: runBytes, chunk: chunk) }
        return true
    }

    /// Queues a run of live lines; where it does not fit the subscriber
    /// becomes behind. - Returns: whether all of it was queued.
    @discardableResult
    mutating func queueRun(_ lines: ArraySlice<HubEntry>, bytes: Int, chunk: HubChunk? = nil) -> Bool {
        guard case .refused(let index) = queue.pushRun(lines, bytes: bytes, chunk: chunk) else { return true }
        behind = CatchUpCursor(after: lines[index].position - 1)
        return false
    }
}
