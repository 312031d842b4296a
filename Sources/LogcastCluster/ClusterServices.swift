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
/// It reads the hub as a subscriber that resumes: from the last line the
/// stream acknowledged (kept in `cursorPath`), served from memory or the
/// durable history. When NATS is down it waits (the sources go on, and the
/// local subscribers are served); when its queue overflows it resumes from
/// the last acknowledged line again, so nothing is lost while the history
/// holds it.
public final class AgentPublisher: Service, Sendable {
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
    }

    /// What `/healthz` and `/metrics` say of the agent.
    public struct Status: Sendable {
        /// The last local `seq` the stream acknowledged (0: none yet).
        public var published: UInt64
        public var connected: Bool
        public var lastError: String?
        /// Publishes acknowledged, and the seconds they waited for it in all.
        public var acknowledged: UInt64
        public var acknowledgementSeconds: Double
    }

    public init(hub: Hub, configuration: ClusterConfiguration, host: String, cursorPath: String?, logger: Logger) {
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
                connected: $0.connected,
                lastError: $0.lastError,
                acknowledged: $0.acknowledged,
                acknowledgementSeconds: $0.acknowledgementSeconds
            )
        }
    }

    public func run() async throws {
        var cursor = readCursor()
        var wait: Duration = .milliseconds(100)
        while !Task.isShuttingDownGracefully, !Task.isCancelled {
            do {
                let nats = try NATSConnection(options: configuration.connection)
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
                let problem = "\(error)"
                state.withLock {
                    $0.connected = false
                    $0.lastError = problem
                }
                logger.warning("cannot publish to NATS; retrying", metadata: ["error": "\(problem)"])
                let pause = wait
                try? await cancelWhenGracefulShutdown { try await Task.sleep(for: pause) }
                wait = min(wait * 2, .seconds(5))
            }
        }
    }

    /// Publishes the hub's lines after `cursor` until shutdown or a NATS error; returns the new cursor.
    func publish(through nats: NATSConnection, after start: UInt64?) async throws(NATSError) -> UInt64? {
        var cursor = start
        while !Task.isShuttingDownGracefully, !Task.isCancelled {
            let request =
                cursor.map { SubscriptionRequest(backlog: 0, after: $0, epoch: hub.epoch) }
                ?? SubscriptionRequest(backlog: hub.configuration.historyLines)
            let matcher = try! LineMatcher(Filter())  // the empty filter always compiles
            let subscription = hub.subscribe(matcher: matcher, request: request)
            defer { hub.unsubscribe(subscription) }
            reading: while true {
                let batch = await cancelWhenGracefulShutdown { await subscription.nextBatch(maxBytes: 1 << 20) }
                guard case .items(let gap, let items) = batch else { return cursor }
                if gap != nil, cursor != nil { break reading }  // lines dropped from the queue: read them again from the history
                for case .entry(let entry) in items {
                    guard entry.hasSeq, case .line(let record) = entry.payload else { continue }
                    let subject = ClusterSubject.subject(host: record.host ?? host, source: record.source)
                    let started = ContinuousClock.now
                    _ = try nats.publish(subject: subject, body: ClusterRecord.encode(record), messageID: "\(host)/\(hub.epoch)/\(entry.position)")
                    let waited = ContinuousClock.now - started
                    cursor = entry.position
                    state.withLock {
                        $0.published = entry.position
                        $0.acknowledged += 1
                        $0.acknowledgementSeconds += Double(waited.components.seconds) + Double(waited.components.attoseconds) / 1e18
                    }
                }
                writeCursor(cursor)
            }
        }
        return cursor
    }

    func readCursor() -> UInt64? {
        guard let cursorPath, let text = try? String(contentsOfFile: cursorPath, encoding: .utf8) else { return nil }
        let parts = text.split(whereSeparator: \.isWhitespace)
        // A cursor of another epoch (the state was reset) means nothing.
        guard parts.count == 2, parts[0] == hub.epoch, let seq = UInt64(parts[1]), seq <= hub.lastSeq else { return nil }
        return seq
    }

    func writeCursor(_ cursor: UInt64?) {
        guard let cursorPath, let cursor else { return }
        let temporary = cursorPath + ".tmp"
        guard FileManager.default.createFile(atPath: temporary, contents: Data("\(hub.epoch) \(cursor)\n".utf8)) else { return }
        _ = rename(temporary, cursorPath)
    }
}

/// The gateway: the whole stream, in its order, into a hub whose `seq` is
/// the stream sequence (so every gateway numbers every line alike).
public final class GatewayConsumer: Service, Sendable {
    let hub: Hub
    let nats: NATSConnection
    let stream: String
    let logger: Logger
    let refused = Mutex<[String: Int]>([:])

    public init(hub: Hub, nats: NATSConnection, stream: String, logger: Logger) {
        self.hub = hub
        self.nats = nats
        self.stream = stream
        self.logger = logger
    }

    /// Messages on the stream that were not logcast records, by subject.
    public var refusedMessages: [String: Int] { refused.withLock { $0 } }

    public func run() async throws {
        let hub = self.hub
        let subscription = try nats.subscribeOrdered(stream: stream, subject: ClusterSubject.all, startSequence: hub.lastSeq + 1) {
            [self] message in
            let names = ClusterSubject.parse(message.subject)
            do {
                let record = try ClusterRecord.decode(message.body, host: names?.host, source: names?.source)
                hub.publish(stamped: [(message.sequence, record)])
            } catch {
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
        try? await gracefulShutdown()
        subscription.cancel()
    }
}
