import DequeModule
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
///   drop policy. Publishing is serialised by one lock, so every subscriber
///   sees lines in `seq` order, with source events in place among them.
/// - Subscribing (backlog or resume, then live lines) is atomic with
///   publishing: no line is lost or repeated at the seam.
public final class Hub: Sendable {
    public struct Configuration: Sendable {
        public var historyLines = 10_000
        public var historyBytes = 64 * 1024 * 1024
        public var queueLines = 16_384
        public var queueBytes = 32 * 1024 * 1024
        public var slowConsumerPolicy: SlowConsumerPolicy = .drop

        public init() {}
    }

    public let configuration: Configuration
    /// 16 hex digits, random per hub.
    public let epoch: String

    struct State: ~Copyable {
        var history: Deque<HubEntry> = []
        var historyBytes = 0
        var nextSeq: UInt64 = 1
        var subscriptions: [Int: Subscription] = [:]
        var nextSubscriptionID = 1
        var linesPublished: UInt64 = 0
    }

    private let state = Mutex(State())

    public init(configuration: Configuration = Configuration(), epoch: String? = nil) {
        self.configuration = configuration
        self.epoch = epoch ?? Hub.randomEpoch()
    }

    static func randomEpoch() -> String {
        let value = UInt64.random(in: 1...UInt64.max)
        let hex = String(value, radix: 16)
        return String(repeating: "0", count: 16 - hex.count) + hex
    }

    // MARK: Publishing

    /// Publishes lines in order. Called from source threads; never suspends.
    public func publish(_ records: [LogRecord]) {
        guard !records.isEmpty else { return }
        state.withLock { state in
            var entries: [HubEntry] = []
            entries.reserveCapacity(records.count)
            for record in records {
                let seq = state.nextSeq
                state.nextSeq += 1
                state.linesPublished += 1
                let entry = HubEntry(position: seq, payload: .line(record), json: HubEntry.encodeLine(record, seq: seq))
                entries.append(entry)
                state.history.append(entry)
                state.historyBytes += entry.byteCount
                while state.history.count > configuration.historyLines || state.historyBytes > configuration.historyBytes,
                    let old = state.history.popFirst()
                {
                    state.historyBytes -= old.byteCount
                }
            }
            // One lock and at most one wake-up per subscriber for the whole
            // chunk: its writer's first frame then carries the chunk, not one line.
            for subscription in state.subscriptions.values { subscription.offer(entries) }
        }
    }

    public func publish(_ record: LogRecord) { publish([record]) }

    /// Publishes a source event among the lines. Events are delivered live
    /// and are not kept in history.
    public func publish(_ event: SourceEvent) {
        state.withLock { state in
            let entry = HubEntry(position: state.nextSeq, payload: .event(event), json: HubEntry.encodeEvent(event))
            for subscription in state.subscriptions.values { subscription.offer(CollectionOfOne(entry)) }
        }
    }

    // MARK: Subscribing

    /// Registers a subscriber and queues, in this order: `prelude` (e.g. `hello`),
    /// then a resume `gap` if one is due, then the backlog or the missed
    /// lines, then every live line that passes its filter.
    public func subscribe(matcher: LineMatcher, request: SubscriptionRequest, prelude: [[UInt8]] = []) -> Subscription {
        state.withLock { state in
            let queue = SubscriberQueue(
                maxLines: configuration.queueLines,
                maxBytes: configuration.queueBytes,
                policy: configuration.slowConsumerPolicy
            )
            let subscription = Subscription(id: state.nextSubscriptionID, matcher: matcher, format: request.format, queue: queue)
            state.nextSubscriptionID += 1
            subscription.state.withLock { sub in
                for control in prelude { sub.queue.push(.control(control)) }
                Self.queueStart(&sub, request: request, matcher: matcher, hub: state, epoch: epoch)
            }
            state.subscriptions[subscription.id] = subscription
            return subscription
        }
    }

    /// Replaces a subscriber's filter (a `subscribe` message): drops what is
    /// queued, queues `reply` (`subscribed`), the backlog under the new filter,
    /// then live lines. A `subscribed` starts a new stream for the client.
    public func resubscribe(_ subscription: Subscription, matcher: LineMatcher, backlog: Int, reply: [UInt8]) {
        state.withLock { state in
            let waiter = subscription.state.withLock { sub -> CheckedContinuation<Void, Never>? in
                sub.matcher = matcher
                sub.queue.removeEntries()
                sub.queue.push(.control(reply))
                Self.queueStart(&sub, request: SubscriptionRequest(backlog: backlog), matcher: matcher, hub: state, epoch: epoch)
                return sub.take()
            }
            waiter?.resume()
        }
    }

    /// Removes a subscriber; its writer gets what is queued, then the end.
    public func unsubscribe(_ subscription: Subscription) {
        _ = state.withLock { $0.subscriptions.removeValue(forKey: subscription.id) }
        subscription.finish()
    }

    /// Ends every subscription (shutdown): writers flush what is queued, then stop.
    public func finishAll() {
        let all = state.withLock { state -> [Subscription] in
            defer { state.subscriptions.removeAll() }
            return Array(state.subscriptions.values)
        }
        for subscription in all { subscription.finish() }
    }

    private static func queueStart(
        _ sub: inout Subscription.State,
        request: SubscriptionRequest,
        matcher: LineMatcher,
        hub: borrowing State,
        epoch: String
    ) {
        let plan = startPlan(request: request, matcher: matcher, hub: hub, epoch: epoch, limit: Int.max)
        for item in plan.items { sub.queue.push(item) }
        if let delivered = plan.deliveredUpTo { sub.queue.markDelivered(upTo: delivered) }
    }

    /// What a stream starting with `request` gets first: for a resume in this
    /// epoch, an `evicted` gap if needed and every retained matching line
    /// after `after`; otherwise a `restart` gap if the epoch changed, then the
    /// `backlog`. At most `limit` lines.
    private static func startPlan(
        request: SubscriptionRequest,
        matcher: LineMatcher,
        hub: borrowing State,
        epoch: String,
        limit: Int
    ) -> (items: [SubscriberQueue.Item], deliveredUpTo: UInt64?) {
        var items: [SubscriberQueue.Item] = []
        let lastSeq = hub.nextSeq - 1
        let oldest = hub.history.first?.position ?? hub.nextSeq
        if let after = request.after, request.epoch == nil || request.epoch == epoch {
            var from = after
            if after < lastSeq, after + 1 < oldest {
                items.append(.control(Self.gapJSON(after: after, next: oldest, missed: Int(oldest - after - 1), reason: "evicted")))
                from = oldest - 1
            }
            if from < lastSeq {
                var count = 0
                for entry in hub.history where entry.position > from {
                    if case .line(let record) = entry.payload, matcher.matches(record) {
                        items.append(.entry(entry))
                        count += 1
                        if count == limit { break }
                    }
                }
            }
            return (items, min(after, lastSeq))
        }
        var backlog: [HubEntry] = []
        let wanted = min(request.backlog, limit)
        if wanted > 0 {
            for entry in hub.history.reversed() {
                if case .line(let record) = entry.payload, matcher.matches(record) {
                    backlog.append(entry)
                    if backlog.count == wanted { break }
                }
            }
        }
        if let after = request.after {
            // The client's epoch is not ours: the server restarted.
            let next = backlog.last?.position ?? hub.nextSeq
            items.append(.control(Self.gapJSON(after: after, next: next, missed: nil, reason: "restart")))
        }
        for entry in backlog.reversed() { items.append(.entry(entry)) }
        return (items, nil)
    }

    /// A one-shot read with a stream's start rules (for `/api/v1/lines`):
    /// what a new stream with `request` would get first (gaps, then lines),
    /// at most `limit` lines, and the `seq` of the newest line in the hub.
    public func snapshot(request: SubscriptionRequest, matcher: LineMatcher, limit: Int) -> (items: [SubscriberQueue.Item], lastSeq: UInt64) {
        state.withLock { state in
            let plan = Self.startPlan(request: request, matcher: matcher, hub: state, epoch: epoch, limit: limit)
            return (plan.items, state.nextSeq - 1)
        }
    }

    /// `{"type":"gap","after":A,"next":N,"missed":M,"reason":R}` plus newline.
    public static func gapJSON(after: UInt64, next: UInt64, missed: Int?, reason: String) -> [UInt8] {
        var writer = JSONWriter()
        writer.beginObject()
        writer.field("type", "gap")
        writer.field("after", after)
        writer.field("next", next)
        writer.field("missed", missed)
        writer.field("reason", reason)
        writer.endObject()
        writer.newline()
        return writer.bytes
    }

    // MARK: Reading

    /// Retained lines that pass `matcher`: those after `after` (oldest first,
    /// at most `limit`), or the newest `limit` when `after` is nil.
    public func retainedLines(matching matcher: LineMatcher, after: UInt64?, limit: Int) -> [HubEntry] {
        state.withLock { state in
            var out: [HubEntry] = []
            if let after {
                for entry in state.history where entry.position > after {
                    if case .line(let record) = entry.payload, matcher.matches(record) {
                        out.append(entry)
                        if out.count == limit { break }
                    }
                }
                return out
            }
            for entry in state.history.reversed() {
                if case .line(let record) = entry.payload, matcher.matches(record) {
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
                historyBytes: state.historyBytes,
                subscribers: state.subscriptions.count
            )
        }
    }
}
