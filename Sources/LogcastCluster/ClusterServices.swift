import DequeModule
import Foundation
import LogcastHub
import LogcastProtocol
import Logging
import ServiceLifecycle
import Synchronization

/// What a logcast process does in a cluster (`--role`).
public enum ClusterRole: String, Sendable, CaseIterable {
    /// Publishes this host's sources into the stream; serves them locally.
    case agent
    /// Serves the merged stream of every agent.
    case gateway
    /// Both, in one process: its own lines reach its subscribers through the stream, once.
    case both

    public var publishes: Bool { self != .gateway }
    public var serves: Bool { self != .agent }
}

/// The cluster settings of `logcast serve` (`--nats` and friends).
public struct ClusterConfiguration: Sendable {
    public var connection: NATSConnection.Options
    public var role: ClusterRole
    public var stream: NATSConnection.StreamSettings

    public init(connection: NATSConnection.Options, role: ClusterRole, stream: NATSConnection.StreamSettings) {
        self.connection = connection
        self.role = role
        self.stream = stream
    }

    /// The epoch of a gateway: the stream's name and creation time, hashed
    /// (FNV-1a, 16 hex digits), the same on every gateway of the stream and
    /// new when the stream is deleted and created again.
    public static func epoch(stream: String, created: Int64) -> String {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in Array("\(stream)\u{0}\(created)".utf8) { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
        let hex = String(hash, radix: 16)
        return String(repeating: "0", count: 16 - hex.count) + hex
    }
}

/// The agent: every line of the local hub, in `seq` order, published to
/// `logcast.<host>.<source>` with `Nats-Msg-Id` `<host>/<epoch>/<seq>`
/// (stable across retries and restarts, since the epoch and seq of a line
/// never change), so the stream stores each line once.
///
/// Publishing is asynchronous: up to ``maxInFlight`` messages wait for
/// their acknowledgement at once (each at most ``maxWait``). The agent
/// counts a line published when it and every line before it are
/// acknowledged; any error (a refusal, a timeout, a lost connection)
/// starts over on a new connection after the last such line, and what the
/// stream already has is acknowledged as a duplicate (within the stream's
/// duplicate window), so a line is stored once. The connection does not
/// reconnect by itself: a line lost with a connection could otherwise be
/// overtaken by the next ones, sent on the reconnected one, and stored
/// after them; one TCP connection keeps its order. A line lost inside
/// NATS is another matter: when a replicated stream's leader changes,
/// publishes the old leader took may go unanswered while later ones are
/// stored by the new leader, and the ones published again are stored
/// after them (README, "What each guarantee rests on"). Keeping the order
/// there would take one publish in flight or several lines to a message.
///
/// It reads the hub as a subscriber that resumes: from the last line the
/// stream acknowledged (kept in `cursorPath`), served from memory or the
/// durable history. When NATS is down it waits (the sources go on, and the
/// local subscribers are served); when its queue overflows it resumes from
/// the last acknowledged line again, so nothing is lost while the history
/// holds it.
public final class AgentPublisher: Service, Sendable {
    /// Messages sent and not yet acknowledged, at most.
    public static let maxInFlight = 256
    /// How long one acknowledgement may take before the publish counts as failed.
    public static let maxWait: Duration = .seconds(5)

    let hub: Hub
    let configuration: ClusterConfiguration
    let host: String
    let cursorPath: String?
    let logger: Logger
    let state = Mutex(PublisherState())
    struct PublisherState {
        var published: UInt64 = 0
        var connected = false
        var lastError: String?
        var acknowledged: UInt64 = 0
        var acknowledgementSeconds: Double = 0
        var window = AcknowledgementWindow()
        /// Which publisher the window belongs to: answers for an older one are ignored.
        var generation = 0
        var failure: NATSError?
        var waiter: CheckedContinuation<Void, Never>?
        /// The connection publishing now, and its reading of the hub (closed on a failure, to wake it).
        var nats: NATSConnection?
        var reading: Subscription?
        /// Which connection publishes now (its disconnect matters; an earlier one's does not).
        var connection = 0
    }

    /// What `/healthz` and `/metrics` say of the agent.
    public struct Status: Sendable {
        /// The last local `seq` the stream acknowledged, with every one before it (0: none yet).
        public var published: UInt64
        public var connected: Bool
        public var lastError: String?
        /// Publishes acknowledged, and the seconds they waited for it in all.
        public var acknowledged: UInt64
        public var acknowledgementSeconds: Double
        /// Messages sent and not yet acknowledged.
        public var inFlight: Int
    }

    public init(
        hub: Hub,
        configuration: ClusterConfiguration,
        host: String,
        cursorPath: String?,
        logger: Logger
    ) {
        self.hub = hub
        self.configuration = configuration
        self.host = host
        self.cursorPath = cursorPath
        self.logger = logger
    }

    public var status: Status {
        state.withLock {
            Status(
                published: $0.published,
                connected: $0.connected && $0.failure == nil && $0.nats?.isConnected == true,
                lastError: $0.lastError ?? ($0.nats?.isConnected == false ? "the connection to NATS is lost; reconnecting" : nil),
                acknowledged: $0.acknowledged,
                acknowledgementSeconds: $0.acknowledgementSeconds,
                inFlight: $0.window.count
            )
        }
    }

    public func run() async throws {
        var cursor = readCursor()
        if let cursor { state.withLock { $0.published = cursor } }
        var connections = 0
        var wait: Duration = .milliseconds(100)
        while !Task.isShuttingDownGracefully, !Task.isCancelled {
            do {
                var options = configuration.connection
                options.reconnects = false
                connections += 1
                let token = connections
                let nats = try NATSConnection(options: options) { [self] in lost(connection: token) }
                state.withLock { $0.connection = token }
                _ = try nats.ensureStream(configuration.stream)
                state.withLock {
                    $0.connected = true
                    $0.lastError = nil
                }
                wait = .milliseconds(100)
                cursor = try await publish(through: nats, after: cursor)
            } catch {
                // Go on after what was acknowledged before the error (a repeat would be a duplicate the stream drops).
                let published = state.withLock { $0.published }
                if published > 0 { cursor = max(cursor ?? 0, published) }
                writeCursor(cursor)
                let problem = "\(error)"
                state.withLock {
                    $0.connected = false
                    $0.lastError = problem
                }
                if (error as? NATSError)?.isSettings == true {
                    logger.error("cannot publish to NATS: the stream differs from the settings; retrying", metadata: ["error": "\(problem)"])
                    wait = .seconds(5)
                } else {
                    logger.warning("cannot publish to NATS; retrying", metadata: ["error": "\(problem)"])
                }
                let pause = wait
                try? await cancelWhenGracefulShutdown { try await Task.sleep(for: pause) }
                wait = min(wait * 2, .seconds(5))
            }
        }
    }

    /// Publishes the hub's lines after `cursor` until shutdown or a NATS error; returns the new cursor.
    func publish(through nats: NATSConnection, after start: UInt64?) async throws -> UInt64? {
        let generation = state.withLock { state -> Int in
            state.generation += 1
            state.window = AcknowledgementWindow()
            state.failure = nil
            state.nats = nats
            return state.generation
        }
        defer {
            state.withLock {
                $0.nats = nil
                $0.reading = nil
            }
        }
        let publisher = try nats.asyncPublisher(maxInFlight: Self.maxInFlight, maxWait: Self.maxWait) { [self] id, result in
            acknowledge(id, result, generation: generation)
        }
        let maxPayload = nats.maxPayload
        let epoch = hub.epoch  // read once: it is behind a lock
        var cursor = start
        while !Task.isShuttingDownGracefully, !Task.isCancelled {
            let request =
                cursor.map { SubscriptionRequest(backlog: 0, after: $0, epoch: epoch) }
                ?? SubscriptionRequest(backlog: hub.configuration.historyLines)
            let matcher = try! LineMatcher(Filter())  // the empty filter always compiles
            let subscription = hub.subscribe(matcher: matcher, request: request)
            defer { hub.unsubscribe(subscription) }
            state.withLock { $0.reading = subscription }
            reading: while true {
                let batch = await cancelWhenGracefulShutdown { await subscription.nextBatch(maxBytes: 1 << 20) }
                guard case .items(let gap, let items) = batch else { break }
                if gap != nil, cursor != nil { break reading }  // lines dropped from the queue: read them again from the history
                for case .entry(let entry) in items {
                    guard entry.hasSeq, case .line(let record) = entry.payload else { continue }
                    let subject = ClusterSubject.subject(host: record.host ?? host, source: record.source)
                    let pieces = ClusterRecord.pieces(of: record, maxBytes: maxPayload - 512)
                    for (index, body) in pieces.enumerated() {
                        try await waitForRoom()
                        let id = "\(host)/\(epoch)/\(entry.position)" + (index == 0 ? "" : "/\(index)")
                        state.withLock { $0.window.sent(id, seq: entry.position, last: index == pieces.count - 1) }
                        try publisher.publish(subject: subject, body: body, messageID: id)
                    }
                    cursor = entry.position
                }
                writeCursor(state.withLock { $0.published })
            }
            if let failure = state.withLock({ $0.failure }) { throw failure }
        }
        // Shutting down: what is answered within a moment counts (off the cooperative pool: cnats blocks).
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            DispatchQueue.global().async {
                _ = publisher.waitForAcknowledgements(timeout: .seconds(2))
                continuation.resume()
            }
        }
        let published = state.withLock { $0.published }
        if published > 0 { writeCursor(max(cursor ?? 0, published)) }
        return cursor
    }

    /// Waits while ``maxInFlight`` messages are unanswered; throws the
    /// first failure of the current publisher.
    func waitForRoom() async throws {
        while true {
            if let failure = state.withLock({ $0.failure }) { throw failure }
            if state.withLock({ $0.window.count }) < Self.maxInFlight { return }
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let now = state.withLock { state -> Bool in
                    if state.failure != nil || state.window.count < Self.maxInFlight { return true }
                    state.waiter = continuation
                    return false
                }
                if now { continuation.resume() }
            }
        }
    }

    /// The publishing connection is gone (on cnats's thread): the reading
    /// loop stops and starts over on a new one, after what was acknowledged.
    func lost(connection: Int) {
        let waiter = state.withLock { state -> CheckedContinuation<Void, Never>? in
            guard state.connection == connection else { return nil }  // an earlier connection, closed since
            if state.failure == nil { state.failure = NATSError("the connection to NATS was lost") }
            state.reading?.close(code: 1011, reason: "connection lost")
            defer { state.waiter = nil }
            return state.waiter
        }
        waiter?.resume()
    }

    /// An answer from the stream (on cnats's thread).
    func acknowledge(_ id: String, _ result: Result<UInt64, NATSError>, generation: Int) {
        let waiter = state.withLock { state -> CheckedContinuation<Void, Never>? in
            guard state.generation == generation else { return nil }
            switch result {
            case .success:
                for answered in state.window.acknowledge(id, at: ContinuousClock.now) {
                    state.acknowledged += 1
                    state.acknowledgementSeconds += Double(answered.components.seconds) + Double(answered.components.attoseconds) / 1e18
                }
                if let seq = state.window.acknowledgedThrough { state.published = max(state.published, seq) }
            case .failure(let error):
                if state.failure == nil {
                    state.failure = error
                    // Wake the reading loop: it starts over after what was acknowledged.
                    state.reading?.close(code: 1011, reason: "publish failed")
                }
            }
            guard state.failure != nil || state.window.count < Self.maxInFlight / 2 else { return nil }
            defer { state.waiter = nil }
            return state.waiter
        }
        waiter?.resume()
    }

    func readCursor() -> UInt64? {
        guard let cursorPath, let text = try? String(contentsOfFile: cursorPath, encoding: .utf8) else { return nil }
        let parts = text.split(whereSeparator: \.isWhitespace)
        // A cursor of another epoch (the state was reset) means nothing.
        guard parts.count == 2, parts[0] == hub.epoch, let seq = UInt64(parts[1]), seq <= hub.lastSeq else { return nil }
        return seq
    }

    func writeCursor(_ cursor: UInt64?) {
        guard let cursorPath, let cursor, cursor > 0 else { return }
        let temporary = cursorPath + ".tmp"
        guard FileManager.default.createFile(atPath: temporary, contents: Data("\(hub.epoch) \(cursor)\n".utf8)) else { return }
        _ = rename(temporary, cursorPath)
    }
}

/// The messages an agent sent and awaits answers for, in the order sent:
/// which local `seq` the stream has acknowledged with every one before it.
/// Answers may come out of order; a line cut into pieces counts once its
/// last piece is in.
struct AcknowledgementWindow {
    struct Sent {
        var id: String
        var seq: UInt64
        var last: Bool
        var at: ContinuousClock.Instant
    }

    private var sent: Deque<Sent> = []
    /// The ids in `sent`, and those of them answered (out of order).
    private var outstanding: Set<String> = []
    private var answered: Set<String> = []
    /// The newest `seq` acknowledged with everything before it.
    private(set) var acknowledgedThrough: UInt64?

    var count: Int { sent.count }

    mutating func sent(_ id: String, seq: UInt64, last: Bool, at time: ContinuousClock.Instant = .now) {
        sent.append(Sent(id: id, seq: seq, last: last, at: time))
        outstanding.insert(id)
    }

    /// Takes an answer; returns how long each message it completes waited.
    mutating func acknowledge(_ id: String, at time: ContinuousClock.Instant) -> [Duration] {
        guard outstanding.contains(id) else { return [] }
        answered.insert(id)
        var waited: [Duration] = []
        while let first = sent.first, answered.remove(first.id) != nil {
            sent.removeFirst()
            outstanding.remove(first.id)
            waited.append(time - first.at)
            if first.last { acknowledgedThrough = first.seq }
        }
        return waited
    }
}

/// The gateway: the stream, in its order, into a hub whose `seq` is the
/// stream sequence (so every gateway numbers every line alike) and whose
/// epoch names the stream.
///
/// At start it reads the newest ``Hub/Configuration/historyLines`` of the
/// stream into memory, then follows; older lines are read from the stream
/// when a client asks for them (``StreamHistory``). When NATS cannot be
/// reached at start, the gateway retries with backoff and, meanwhile,
/// refuses streams with `503` (``waiting``).
public final class GatewayConsumer: Service, Sendable {
    let hub: Hub
    let history: StreamHistory
    let configuration: ClusterConfiguration
    let logger: Logger
    let refused = Mutex<[String: Int]>([:])
    let state: Mutex<GatewayState>
    /// A connection made at start, with its stream, used first.
    let initial: Mutex<(NATSConnection, NATSConnection.StreamInfo)?>

    struct GatewayState {
        var waiting: String?
        /// The sequence of the newest message received (a line or not).
        var received: UInt64 = 0
        /// The stream's last sequence when following began: until it is
        /// received, the hub is still filling with the newest history, and
        /// a client would get those lines as if they were live.
        var catchUpTo: UInt64 = .max
        var restarts = 0
    }

    /// How often the gateway compares what it received with the stream.
    static let watchInterval: Duration = .seconds(2)
    /// How long the stream may hold messages the gateway has not received
    /// before it makes its consumer again.
    static let stallLimit: Duration = .seconds(6)

    public init(
        hub: Hub,
        history: StreamHistory,
        configuration: ClusterConfiguration,
        logger: Logger,
        connection: (NATSConnection, NATSConnection.StreamInfo)? = nil
    ) {
        self.hub = hub
        self.history = history
        self.configuration = configuration
        self.logger = logger
        self.initial = Mutex(connection)
        self.state = Mutex(
            GatewayState(waiting: connection == nil ? "the gateway has not reached the NATS stream \(configuration.stream.name) yet" : nil)
        )
        if let connection {
            hub.adopt(epoch: ClusterConfiguration.epoch(stream: configuration.stream.name, created: connection.1.created))
        }
    }

    /// Messages on the stream that were not logcast records, by subject.
    public var refusedMessages: [String: Int] { refused.withLock { $0 } }

    /// Why the gateway serves no stream yet (nil once it follows the stream
    /// and holds its newest lines).
    public var waiting: String? {
        state.withLock { state in
            if let waiting = state.waiting { return waiting }
            guard state.received < state.catchUpTo else { return nil }
            return "the gateway is reading the newest lines of the NATS stream \(configuration.stream.name)"
                + (state.catchUpTo == .max ? "" : " (\(state.received) of \(state.catchUpTo))")
        }
    }

    /// How many times the gateway made its consumer again after it stalled.
    public var consumerRestarts: Int { state.withLock { $0.restarts } }

    public func run() async throws {
        var subscription: NATSSubscription?
        var current: NATSConnection?
        var wait: Duration = .milliseconds(200)
        while subscription == nil, !Task.isShuttingDownGracefully, !Task.isCancelled {
            do {
                let (nats, info): (NATSConnection, NATSConnection.StreamInfo)
                if let given = initial.withLock({ $0.take() }) {
                    (nats, info) = given
                } else {
                    nats = try NATSConnection(options: configuration.connection)
                    info = try nats.ensureStream(configuration.stream)
                    hub.adopt(epoch: ClusterConfiguration.epoch(stream: configuration.stream.name, created: info.created))
                }
                history.connect(nats)
                let start = Self.startSequence(info, historyLines: hub.configuration.historyLines)
                state.withLock {
                    $0.received = start - 1
                    $0.catchUpTo = info.lastSequence
                }
                subscription = try subscribe(nats, from: start)
                current = nats
                state.withLock { $0.waiting = nil }
                logger.notice("gateway of the stream", metadata: ["stream": "\(configuration.stream.name)", "epoch": "\(hub.epoch)"])
            } catch {
                let problem = "\(error)"
                state.withLock { $0.waiting = "the gateway has not reached the NATS stream \(configuration.stream.name) yet: \(problem)" }
                logger.warning("cannot read the NATS stream; retrying", metadata: ["error": "\(problem)"])
                let pause = wait
                try? await cancelWhenGracefulShutdown { try await Task.sleep(for: pause) }
                wait = min(wait * 2, .seconds(5))
            }
        }
        // cnats makes an ordered consumer again when it misses messages or heartbeats; should that
        // fail for good (the stream had no leader at that moment), the gateway does it itself.
        var stalled: (since: ContinuousClock.Instant, at: UInt64)?
        while let nats = current, !Task.isShuttingDownGracefully, !Task.isCancelled {
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: Self.watchInterval) }
            guard !Task.isShuttingDownGracefully, let info = try? nats.streamInfo(configuration.stream.name) else { continue }
            let received = state.withLock { $0.received }
            guard info.lastSequence > received else {
                stalled = nil
                state.withLock { $0.catchUpTo = 0 }  // whatever the stream held at start (it may have been purged since)
                continue
            }
            guard let since = stalled, since.at == received else {
                stalled = (.now, received)
                continue
            }
            guard ContinuousClock.now - since.since >= Self.stallLimit else { continue }
            stalled = nil
            logger.warning(
                "the gateway's consumer stalled; making it again",
                metadata: ["received": "\(received)", "stream-last": "\(info.lastSequence)"]
            )
            subscription?.cancel()
            subscription = try? subscribe(nats, from: max(received + 1, info.firstSequence))
            state.withLock { $0.restarts += 1 }
        }
        try? await gracefulShutdown()
        subscription?.cancel()
    }

    func subscribe(_ nats: NATSConnection, from start: UInt64) throws(NATSError) -> NATSSubscription {
        try nats.subscribeOrdered(stream: configuration.stream.name, subject: ClusterSubject.all, startSequence: start) { [self] message in
            receive(message)
        }
    }

    /// Where following begins: the newest `historyLines` of the stream (older ones are read on demand).
    static func startSequence(_ info: NATSConnection.StreamInfo, historyLines: Int) -> UInt64 {
        let newest = info.lastSequence >= UInt64(historyLines) ? info.lastSequence - UInt64(historyLines) + 1 : 1
        return max(info.firstSequence, newest, 1)
    }

    /// One message of the stream (on cnats's delivery thread).
    func receive(_ message: NATSConnection.Message) {
        state.withLock { $0.received = max($0.received, message.sequence) }
        switch StreamHistory.record(of: message) {
        case .success(let record):
            hub.publish(stamped: [(message.sequence, record)])
        case .failure(let error):
            let first = refused.withLock { counts -> Bool in
                counts[message.subject, default: 0] += 1
                return counts[message.subject] == 1
            }
            if first {
                logger.warning(
                    "a message on the stream is not a logcast record; skipped (logged once per subject)",
                    metadata: ["subject": "\(message.subject)", "sequence": "\(message.sequence)", "reason": "\(error)"]
                )
            }
        }
    }
}
