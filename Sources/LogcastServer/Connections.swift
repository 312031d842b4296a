import LogcastCore
import ServiceLifecycle
import Synchronization

/// Counts live streaming connections and knows whether the server is draining.
public final class ConnectionTracker: Sendable {
    struct State {
        var count = 0
        var perAddress: [String: Int] = [:]
        var draining = false
        var waiters: [CheckedContinuation<Void, Never>] = []
    }

    private let state = Mutex(State())

    public init() {}

    public var count: Int { state.withLock { $0.count } }
    public var isDraining: Bool { state.withLock { $0.draining } }

    /// Streams currently open from `address`.
    public func count(from address: String) -> Int {
        state.withLock { $0.perAddress[address] ?? 0 }
    }

    func opened(from address: String?) {
        state.withLock { state in
            state.count += 1
            if let address { state.perAddress[address, default: 0] += 1 }
        }
    }

    func closed(from address: String?) {
        let waiters = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            state.count -= 1
            if let address {
                let left = (state.perAddress[address] ?? 1) - 1
                state.perAddress[address] = left > 0 ? left : nil
            }
            guard state.count == 0 else { return [] }
            defer { state.waiters = [] }
            return state.waiters
        }
        for waiter in waiters { waiter.resume() }
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
