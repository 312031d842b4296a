import LogcastHub
import LogcastProtocol
import NIOCore
import ServiceLifecycle
import Synchronization

/// Counts live streams (every transport) and knows whether the server is
/// draining.
///
/// A stream is admitted with ``admit(from:maxTotal:maxPerAddress:)``, which
/// checks both limits and counts the stream under one lock, so a burst of
/// simultaneous connects can never get past a limit. The returned ``Slot``
/// is given back exactly once, however often ``Slot/release()`` is called
/// (by the stream's end and by its connection's close, whichever is first).
public final class ConnectionTracker: Sendable {
    struct State {
        var count = 0
        var perAddress: [String: Int] = [:]
        var draining = false
        var waiters: [CheckedContinuation<Void, Never>] = []
        var slots: [Int: Slot] = [:]
        var nextSlot = 0
        /// Streams admitted on a connection whose upgrade has not run yet.
        var pending: [ObjectIdentifier: PendingUpgrade] = [:]
    }

    /// Why a stream was not admitted.
    public enum Denial: Error, Equatable, Sendable {
        case draining
        case tooMany(limit: Int)
        case tooManyFromAddress(String, limit: Int)
    }

    /// One admitted stream. ``release()`` gives its place back.
    public final class Slot: Sendable {
        let id: Int
        let address: String?
        /// The token the stream was admitted with (to close it when the token is revoked).
        let token: [UInt8]?
        private let tracker: ConnectionTracker
        private let onRevoke = Mutex<(@Sendable () -> Void)?>(nil)

        init(id: Int, address: String?, token: [UInt8]?, tracker: ConnectionTracker) {
            self.id = id
            self.address = address
            self.token = token
            self.tracker = tracker
        }

        /// What to do when the stream's token is revoked (close it).
        public func onTokenRevoked(_ action: @escaping @Sendable () -> Void) {
            onRevoke.withLock { $0 = action }
        }

        func revoke() {
            onRevoke.withLock { $0 }?()
        }

        public func release() {
            tracker.release(self)
        }
    }

    private let state = Mutex(State())

    public init() {}

    public var count: Int { state.withLock { $0.count } }
    public var isDraining: Bool { state.withLock { $0.draining } }

    /// Streams currently open from `address`.
    public func count(from address: String) -> Int {
        state.withLock { $0.perAddress[address] ?? 0 }
    }

    /// Admits and counts one stream, or says which limit refuses it.
    public func admit(from address: String?, token: [UInt8]? = nil, maxTotal: Int, maxPerAddress: Int) -> Result<Slot, Denial> {
        state.withLock { state in
            if state.draining { return .failure(.draining) }
            if state.count >= maxTotal { return .failure(.tooMany(limit: maxTotal)) }
            if let address, state.perAddress[address, default: 0] >= maxPerAddress {
                return .failure(.tooManyFromAddress(address, limit: maxPerAddress))
            }
            state.count += 1
            if let address { state.perAddress[address, default: 0] += 1 }
            state.nextSlot += 1
            let slot = Slot(id: state.nextSlot, address: address, token: token, tracker: self)
            state.slots[slot.id] = slot
            return .success(slot)
        }
    }

    fileprivate func release(_ slot: Slot) {
        let waiters = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            guard state.slots.removeValue(forKey: slot.id) != nil else { return [] }
            state.count -= 1
            if let address = slot.address {
                let left = (state.perAddress[address] ?? 1) - 1
                state.perAddress[address] = left > 0 ? left : nil
            }
            guard state.count == 0 else { return [] }
            defer { state.waiters = [] }
            return state.waiters
        }
        for waiter in waiters { waiter.resume() }
    }

    /// Closes every stream whose token `stillAccepted` no longer accepts
    /// (after the token file was reloaded). Returns how many.
    @discardableResult
    public func revokeStreams(unless stillAccepted: ([UInt8]) -> Bool) -> Int {
        let slots = state.withLock { Array($0.slots.values) }
        var revoked = 0
        for slot in slots {
            guard let token = slot.token, !stillAccepted(token) else { continue }
            slot.revoke()
            revoked += 1
        }
        return revoked
    }

    /// A stream admitted before its WebSocket upgrade: its place, and its
    /// request as parsed (and compiled) once, by the admission. A class:
    /// the connection's task holds it for the stream's life, and a
    /// reference keeps its async frames small (``StreamSession``).
    final class PendingUpgrade: Sendable {
        let slot: Slot
        let request: SubscriptionRequest
        let matcher: LineMatcher

        init(slot: Slot, request: SubscriptionRequest, matcher: LineMatcher) {
            self.slot = slot
            self.request = request
            self.matcher = matcher
        }
    }

    /// Keeps what the admission of an upgrade found until its session takes it.
    func setPending(_ upgrade: PendingUpgrade, for channel: any Channel) {
        state.withLock { $0.pending[ObjectIdentifier(channel)] = upgrade }
    }

    /// What the admission of this connection's upgrade found, once.
    func takePending(for channel: any Channel) -> PendingUpgrade? {
        state.withLock { $0.pending.removeValue(forKey: ObjectIdentifier(channel)) }
    }

    func startDraining() {
        state.withLock { $0.draining = true }
    }

    /// Returns when no connection is left.
    func waitUntilEmpty() async {
        await withCheckedContinuation { continuation in
            let now = state.withLock { state -> Bool in
                if state.count == 0 { return true }
                state.waiters.append(continuation)
                return false
            }
            if now { continuation.resume() }
        }
    }
}

/// Shuts streaming down before the HTTP server goes: on graceful shutdown
/// (SIGTERM) it refuses new streams, ends every subscription so each writer
/// flushes what is queued and closes with 1001, and waits (up to a deadline)
/// for the connections to finish.
///
/// It must come *after* the application in the service group, so that it is
/// shut down first.
public struct ShutdownDrainer: Service {
    let hub: Hub
    let connections: ConnectionTracker
    let timeout: Duration

    public func run() async throws {
        try? await gracefulShutdown()
        connections.startDraining()
        hub.finishAll()
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await connections.waitUntilEmpty() }
            group.addTask { try? await Task.sleep(for: timeout) }
            await group.next()
            group.cancelAll()
        }
    }
}
