import CSystemd
import ServiceLifecycle
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Talks to the service manager (`Type=notify` units) through `sd_notify`:
/// `READY=1` once the server listens (``ready(status:)``), `WATCHDOG=1` at
/// half of `WATCHDOG_USEC` (from READY on) while `isHealthy` says so, and `STOPPING=1` when
/// graceful shutdown begins. Outside systemd (`NOTIFY_SOCKET` unset) every
/// call is a no-op.
///
/// Run it as a service in the service group; it ends with graceful shutdown.
public struct SystemdNotifier: Service {
    let isHealthy: @Sendable () -> Bool

    /// - Parameter isHealthy: checked before each watchdog ping; a process
    ///   whose check hangs or fails stops pinging and is restarted by systemd.
    public init(isHealthy: @escaping @Sendable () -> Bool = { true }) {
        self.isHealthy = isHealthy
    }

    /// Watchdog pings start once the service said it is ready.
    static let isReady = Atomic<Bool>(false)
    /// The `STATUS=` of the last `READY=1`, said again when a reload ends.
    static let readyStatus = Mutex("")

    /// Sends `READY=1` (and a human-readable `STATUS=`).
    public static func ready(status: String) {
        readyStatus.withLock { $0 = status }
        send("READY=1\nSTATUS=\(status)")
        isReady.store(true, ordering: .releasing)
    }

    /// Sends `RELOADING=1` with `MONOTONIC_USEC` (the moment the reload
    /// began, on `CLOCK_MONOTONIC`), as `Type=notify-reload` units require;
    /// the service manager treats the unit as reloading until ``reloaded()``.
    static func reloading() {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        let microseconds = UInt64(now.tv_sec) * 1_000_000 + UInt64(now.tv_nsec) / 1000
        send("RELOADING=1\nSTATUS=reloading\nMONOTONIC_USEC=\(microseconds)")
    }

    /// Ends a reload: `READY=1` again, with the status from before it.
    static func reloaded() {
        send("READY=1\nSTATUS=\(readyStatus.withLock { $0 })")
    }

    @discardableResult
    static func send(_ state: String) -> Bool {
        sd_notify(0, state) > 0
    }

    /// The watchdog period systemd asked for, if any.
    static func watchdogInterval() -> Duration? {
        var microseconds: UInt64 = 0
        guard sd_watchdog_enabled(0, &microseconds) > 0, microseconds > 0 else { return nil }
        return .microseconds(Int64(clamping: microseconds))
    }

    public func run() async throws {
        if let interval = Self.watchdogInterval() {
            await cancelWhenGracefulShutdown {
                while !Task.isCancelled {
                    if Self.isReady.load(ordering: .acquiring), isHealthy() { Self.send("WATCHDOG=1") }
                    try? await Task.sleep(for: interval / 2)
                }
            }
        } else {
            try? await gracefulShutdown()
        }
        Self.send("STOPPING=1\nSTATUS=shutting down")
    }
}

/// Socket activation: the listening socket systemd passed (`LISTEN_FDS`,
/// `LISTEN_PID`), as a `.socket` unit with `ListenStream=` provides.
public enum SocketActivation {
    /// The first passed descriptor number (`SD_LISTEN_FDS_START`).
    public static let firstDescriptor: Int32 = 3

    /// The passed TCP listening socket, nil when the process was not socket-activated.
    /// - Throws: a message when sockets were passed but are not one listening TCP socket.
    public static func listeningSocket() throws(SocketActivationError) -> Int32? {
        let count = sd_listen_fds(1)
        if count < 0 { throw SocketActivationError(description: "LISTEN_FDS is set but unusable: \(String(cString: strerror(-count)))") }
        if count == 0 { return nil }
        guard count == 1 else {
            throw SocketActivationError(
                description: "systemd passed \(count) sockets; logcast listens on one (use a single ListenStream= in logcast.socket)"
            )
        }
        let fd = firstDescriptor
        guard sd_is_socket(fd, AF_UNSPEC, Int32(SOCK_STREAM.rawValue), 1) > 0 else {
            throw SocketActivationError(
                description: "the socket systemd passed is not a listening stream socket (ListenStream= is needed, not ListenDatagram=)"
            )
        }
        return fd
    }
}

public struct SocketActivationError: Error, Sendable, CustomStringConvertible {
    public var description: String
}
