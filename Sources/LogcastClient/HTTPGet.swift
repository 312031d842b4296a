import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// A single HTTP/1.1 GET, for what a WebSocket client cannot see: why an
/// upgrade was refused (the server answers a plain `GET /ws` with the same
/// status and JSON body), and one-shot reads of `/api/v1/lines`.
///
/// Bounded in every way a server can stall or flood it: connecting within
/// 10 s, the whole exchange within `timeout` (a server that accepts and
/// never answers, or answers forever, is closed), and a body over
/// `maxBodyBytes` is an error rather than a shortened body. TLS sends the
/// host name (SNI) for every host that is not an IP address.
public enum HTTPGet {
    public enum Failure: Error, Sendable, Equatable, CustomStringConvertible {
        case timedOut(Duration)
        case bodyTooLarge(limit: Int)
        case incomplete

        public var description: String {
            switch self {
            case .timedOut(let limit): "no complete answer within \(limit)"
            case .bodyTooLarge(let limit): "the answer is larger than \(limit / 1024) KiB, the most this client reads"
            case .incomplete: "the server closed the connection before the answer was complete"
            }
        }
    }

    public struct Response: Sendable {
        public var status: Int
        public var headers: [(String, String)]
        public var body: [UInt8]

        public var text: String { String(decoding: body, as: UTF8.self) }
    }

    /// - Throws: connection and TLS errors as NIO reports them.
    public static func fetch(
        host: String,
        port: Int,
        target: String,
        headers: [(String, String)],
        tls: TLSConfiguration?,
        maxBodyBytes: Int = 64 * 1024 * 1024,
        timeout: Duration = .seconds(30)
    ) async throws -> Response {
        let sslContext = try tls.map { try NIOSSLContext(configuration: $0) }
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connectTimeout(.seconds(10))
            .connect(host: host, port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let sslContext {
                        let serverName = serverNameIndication(for: host)
                        try channel.pipeline.syncOperations.addHandler(NIOSSLClientHandler(context: sslContext, serverHostname: serverName))
                    }
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    return try NIOAsyncChannel<HTTPClientResponsePart, HTTPClientRequestPart>(wrappingChannelSynchronously: channel)
                }
            }
        let timedOut = Flag()
        let underlying = channel.channel
        let deadline = underlying.eventLoop.scheduleTask(in: TimeAmount(timeout)) {
            timedOut.value.withLock { $0 = true }
            underlying.close(promise: nil)
        }
        defer { deadline.cancel() }
        do {
            return try await exchange(channel, host: host, port: port, target: target, headers: headers, maxBodyBytes: maxBodyBytes)
        } catch {
            if timedOut.value.withLock({ $0 }) { throw Failure.timedOut(timeout) }
            throw error
        }
    }

    private final class Flag: Sendable {
        let value = Mutex(false)
    }

    /// The name to send as SNI: the host, unless it is an IPv4 or IPv6
    /// address (RFC 6066 allows only names). A name may begin with a digit
    /// (`1password.example`, `3com.example`).
    static func serverNameIndication(for host: String) -> String? {
        var v4 = in_addr()
        var v6 = in6_addr()
        if inet_pton(AF_INET, host, &v4) == 1 || inet_pton(AF_INET6, host, &v6) == 1 { return nil }
        return host.isEmpty ? nil : host
    }

    static func exchange(
        _ channel: NIOAsyncChannel<HTTPClientResponsePart, HTTPClientRequestPart>,
        host: String,
        port: Int,
        target: String,
        headers: [(String, String)],
        maxBodyBytes: Int
    ) async throws -> Response {
        try await channel.executeThenClose { inbound, outbound in
            var head = HTTPRequestHead(version: .http1_1, method: .GET, uri: target)
            head.headers.add(name: "Host", value: host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)")
            head.headers.add(name: "Connection", value: "close")
            for (name, value) in headers { head.headers.add(name: name, value: value) }
            // One write, one flush: a server that answers on the head and closes
            // must not find a second write of this request still to come.
            try await outbound.write(contentsOf: [.head(head), .end(nil)])
            var response = Response(status: 0, headers: [], body: [])
            for try await part in inbound {
                switch part {
                case .head(let head):
                    response.status = Int(head.status.code)
                    response.headers = head.headers.map { ($0.name, $0.value) }
                case .body(let buffer):
                    guard response.body.count + buffer.readableBytes <= maxBodyBytes else { throw Failure.bodyTooLarge(limit: maxBodyBytes) }
                    response.body += buffer.readableBytesView
                case .end:
                    return response
                }
            }
            throw Failure.incomplete
        }
    }
}
