import LogcastCore

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
    /// About how many bytes of queued lines go into one frame.
    public var maxBatchBytes = 256 * 1024
    /// How long shutdown waits for connections to flush before closing anyway.
    public var shutdownDrainTimeout: Duration = .seconds(5)
    /// Negotiate permessage-deflate when the client offers it.
    public var compression = true

    public init(hostName: String) {
        self.hostName = hostName
    }
}

/// The version the server reports in `hello` and `/healthz`.
public enum LogcastVersion {
    public static let string = "0.1.0"
    public static let server = "logcast/\(string)"
}
