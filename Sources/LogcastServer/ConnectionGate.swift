import CoreMetrics
import HummingbirdCore
import Logging
import NIOCore
import NIOPosix
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Caps the connections open at once (of any kind: streams, requests,
/// half-sent requests), so that descriptors never run out: the sources must
/// always be able to open a rotated file.
///
/// The cap is the smaller of the configured one and the process's
/// descriptor limit minus ``descriptorReserve``. A connection over the cap is
/// closed as soon as it is accepted. Safe from any thread.
public final class ConnectionGate: Sendable {
    /// Descriptors kept free for the sources, the journal and the process itself.
    public static let descriptorReserve = 128

    public var limit: Int { open.limit }
    private let open: InFlightLimit
    private let overCapacity = CoreMetrics.Counter(label: MetricsCatalog.connectionsDropped, dimensions: [("reason", "over-capacity")])
    let headTimeouts = CoreMetrics.Counter(label: MetricsCatalog.connectionsDropped, dimensions: [("reason", "head-timeout")])
    /// At most one log entry every 10 s about connections closed at the cap.
    private let overCapacityNotice = Mutex(RateLimiter(perSecond: 0.1, burst: 1))

    public init(maxConnections: Int) {
        open = InFlightLimit(max(1, min(maxConnections, Self.descriptorLimit() - Self.descriptorReserve)))
    }

    /// Counts a new connection; false (counting nothing) when at the cap.
    func enter() -> Bool { open.tryEnter() }

    /// A connection was closed at accept because the cap was reached:
    /// counted, and logged at most every 10 s (a flood must not flood the log).
    func refused(remote: String?, logger: Logger) {
        overCapacity.increment()
        guard overCapacityNotice.withLock({ $0.allow() }) else { return }
        logger.warning(
            "closing connections over the connection limit",
            metadata: [
                "limit": "\(limit)", "remote": "\(remote ?? "-")",
                "hint": "raise --max-connections (and the descriptor limit), or see logcast_connections_dropped_total",
            ]
        )
    }

    func leave() { open.leave() }

    /// The soft descriptor limit, raised to the hard one first (as servers do:
    /// systemd starts services with a soft limit of 1024).
    static func descriptorLimit() -> Int {
        var limits = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limits) == 0 else { return 1024 }
        if limits.rlim_cur < limits.rlim_max {
            var raised = limits
            raised.rlim_cur = limits.rlim_max
            if setrlimit(Int32(RLIMIT_NOFILE.rawValue), &raised) == 0 { limits = raised }
        }
        return limits.rlim_cur > rlim_t(Int32.max) ? Int(Int32.max) : Int(limits.rlim_cur)
    }
}

/// Puts the connection gate and the request-head timeout in front of a
/// child channel: a connection over the cap is closed at once, and one
/// that has not sent a complete request head within `headTimeout` of being
/// accepted (TLS handshake included) is closed.
struct GuardedChildChannel<Base: ServerChildChannel>: ServerChildChannel {
    typealias Value = Base.Value

    let base: Base
    let gate: ConnectionGate
    let headTimeout: TimeAmount

    struct OverCapacity: Error {}

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        guard gate.enter() else {
            gate.refused(remote: channel.remoteAddress?.description, logger: logger)
            channel.close(promise: nil)
            return channel.eventLoop.makeFailedFuture(OverCapacity())
        }
        let gate = self.gate
        channel.closeFuture.whenComplete { _ in gate.leave() }
        // Each connection keeps its last receive buffer for the next read:
        // start it small (a request head, a client message), not at NIO's 2 KiB.
        try? channel.syncOptions?.setOption(ChannelOptions.recvAllocator, value: connectionReceiveBuffers)
        let timeout = channel.eventLoop.scheduleTask(in: headTimeout) {
            gate.headTimeouts.increment()
            logger.debug(
                "closing a connection that sent no complete request head",
                metadata: ["remote": "\(channel.remoteAddress?.description ?? "-")"]
            )
            channel.close(promise: nil)
        }
        // A connection its client closed is not a timeout.
        channel.closeFuture.whenComplete { _ in timeout.cancel() }
        return base.setup(channel: channel, logger: logger).flatMapThrowing { value in
            let handler = try channel.pipeline.syncOperations.handler(type: UpgradeRefusalHandler.self)
            handler.onFirstHead = { timeout.cancel() }
            return value
        }
    }

    func handle(value: Value, logger: Logger) async {
        await base.handle(value: value, logger: logger)
    }
}

/// At most `limit` of something at once (a counter, safe from any thread).
final class InFlightLimit: Sendable {
    let limit: Int
    private let count = Atomic<Int>(0)

    init(_ limit: Int) { self.limit = limit }

    func tryEnter() -> Bool {
        while true {
            let current = count.load(ordering: .relaxed)
            if current >= limit { return false }
            if count.compareExchange(expected: current, desired: current + 1, ordering: .relaxed).exchanged { return true }
        }
    }

    func leave() { count.subtract(1, ordering: .relaxed) }
}

/// Runs a scan of the history (a backlog, a resume, an `/api/v1/lines`
/// read) off Swift's cooperative pool, on NIO's blocking-work thread pool.
///
/// The cooperative pool has one thread per core; a scan with a slow filter
/// (up to ``Hub/scanBudget``) on one of them would hold up the writers of
/// every other subscriber. On its own thread the scan is one more thread for
/// the operating system to share the cores with. Suspends until it is done.
func offCooperativePool<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T {
    (try? await NIOThreadPool.singleton.runIfActive(body)) ?? body()
}

/// Receive buffers of each connection: from 512 bytes, growing while reads fill them.
let connectionReceiveBuffers = AdaptiveRecvByteBufferAllocator(minimum: 64, initial: 512, maximum: 65536)
