import LogcastHub
import LogcastProtocol

/// Everything the HTTP/WebSocket side needs to know, with defaults.
public struct ServerConfiguration: Sendable {
    public var host = "127.0.0.1"
    /// 0 picks a free port; the chosen address is logged.
    public var port = 8080
    /// Seconds between server pings; a connection silent for two intervals is closed.
    public var pingInterval: Duration = .seconds(30)
    /// Directory of the browser viewer; `nil` serves no static files.
    public var webRoot: String?
    /// `host` of the lines and of `hello`.
    public var hostName: String
    /// The largest client frame/message accepted; larger closes with 1009.
    public var maxClientMessageBytes = 64 * 1024
    /// About how many bytes of queued lines go into one frame. Busy
    /// writers take turns on the bulk lane frame by frame (``WriterPool``);
    /// when all writers shared one pool, 64 KiB halved a quiet subscriber's
    /// wait under a burst against 256 KiB, at the same burst rate
    /// (Benchmarks/README.md).
    public var maxBatchBytes = 64 * 1024
    /// How long shutdown waits for connections to flush before closing anyway.
    public var shutdownDrainTimeout: Duration = .seconds(5)
    /// Names besides the server's own (`localhost`, addresses, the listen
    /// address, ``hostName``) accepted in `Host` (`--allow-host`; `*` accepts any).
    public var allowedHosts: [String] = []
    /// Tokens and allowed origins, for every route but `/healthz` (see ``Endpoint``).
    public var access = AccessPolicy()
    /// A listening socket passed by systemd (socket activation); when set,
    /// `host` and `port` are not bound.
    public var activatedSocket: Int32?
    /// Serve https/wss with these (reloadable) credentials; nil serves plain http/ws.
    public var tls: TLSCredentials?
    /// Streams (all transports) served at once; more get `503` with `Retry-After`.
    public var maxSubscribers = 1024
    /// Connections of any kind open at once (also capped by the descriptor
    /// limit less ``ConnectionGate/descriptorReserve``); more are closed on accept.
    public var maxConnections = 4096
    /// How long a new connection may take to send a complete request head
    /// (TLS handshake included) before it is closed.
    public var requestHeadTimeout: Duration = .seconds(10)
    /// How long a connection may sit idle between requests (or within a
    /// request body) before it is closed; a streaming response is not idle.
    public var idleTimeout: Duration = .seconds(60)
    /// Streams one client address may hold at once; more get `429`.
    public var maxConnectionsPerAddress = 64
    /// The longest request target (path and query) accepted; longer gets `414`.
    public var maxRequestTargetBytes = 16 * 1024
    /// Client messages per second on one connection (with a burst allowance);
    /// faster ones are answered with an `error` and ignored.
    public var clientMessagesPerSecond = 10.0
    public var clientMessageBurst = 20
    /// How often an idle SSE stream gets a comment line, so proxies keep it open.
    public var sseHeartbeat: Duration = .seconds(15)

    public init(hostName: String) {
        self.hostName = hostName
    }
}
