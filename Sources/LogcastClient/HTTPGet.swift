import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL

/// A single HTTP/1.1 GET, for what a WebSocket client cannot see: why an
/// upgrade was refused (the server answers a plain `GET /ws` with the same
/// status and JSON body), and one-shot reads of `/api/v1/lines`.
public enum HTTPGet {
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
        maxBodyBytes: Int = 64 * 1024 * 1024
    ) async throws -> Response {
        let sslContext = try tls.map { try NIOSSLContext(configuration: $0) }
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connectTimeout(.seconds(10))
            .connect(host: host, port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let sslContext {
                        let serverName = host.first?.isNumber == true || host.contains(":") ? nil : host
                        try channel.pipeline.syncOperations.addHandler(NIOSSLClientHandler(context: sslContext, serverHostname: serverName))
                    }
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    return try NIOAsyncChannel<HTTPClientResponsePart, HTTPClientRequestPart>(wrappingChannelSynchronously: channel)
                }
            }
        return try await channel.executeThenClose { inbound, outbound in
            var head = HTTPRequestHead(version: .http1_1, method: .GET, uri: target)
            head.headers.add(name: "Host", value: host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)")
            head.headers.add(name: "Connection", value: "close")
            for (name, value) in headers { head.headers.add(name: name, value: value) }
            try await outbound.write(.head(head))
            try await outbound.write(.end(nil))
            var response = Response(status: 0, headers: [], body: [])
            for try await part in inbound {
                switch part {
                case .head(let head):
                    response.status = Int(head.status.code)
                    response.headers = head.headers.map { ($0.name, $0.value) }
                case .body(let buffer):
                    if response.body.count + buffer.readableBytes <= maxBodyBytes {
                        response.body += buffer.readableBytesView
                    }
                case .end:
                    return response
                }
            }
            return response
        }
    }
}
