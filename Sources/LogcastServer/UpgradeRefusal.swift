import HTTPTypes
import HummingbirdCore
import LogcastHub
import LogcastProtocol
import Logging
import NIOCore
import NIOHTTP1

/// Answers refused WebSocket upgrade requests, and requests the HTTP
/// decoder cannot parse, with the right HTTP status.
///
/// Hummingbird's upgrade path answers every refusal with a bare `400` and
/// never shows the request to the router. This handler sits right after the
/// HTTP decoder, ahead of the upgrader: for a request that asks to upgrade
/// and that `decide` refuses, it swallows the request, writes the refusal
/// (`Connection: close`) and closes; a parse error gets `400` and the
/// connection is closed. Every other request passes untouched.
/// Runs on the channel's event loop.
final class UpgradeRefusalHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    let decide: @Sendable (HTTPRequestHead, any Channel) -> Refusal?
    private var refusing: Refusal?
    private var passingUpgrade = false
    private var answeredParseError = false
    /// Called once, when the first request head arrives (the head timeout ends).
    var onFirstHead: (() -> Void)?
    private var inputClosed = false
    private var onInputClosed: [@Sendable () -> Void] = []

    /// Calls `action` (on the event loop) once the client has closed its
    /// sending side, or at once if it already has. A streaming response uses
    /// this to notice a client that left: the server allows half-closed
    /// connections, so such a connection is not closed until written to.
    func whenInputClosed(_ action: @escaping @Sendable () -> Void) {
        if inputClosed { action() } else { onInputClosed.append(action) }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, event == .inputClosed {
            inputClosed = true
            let actions = onInputClosed
            onInputClosed = []
            for action in actions { action() }
        }
        context.fireUserInboundEventTriggered(event)
    }

    /// Calls `action` when the client of `channel` closes its sending side
    /// (see ``whenInputClosed(_:)``); a connection without this handler is ignored.
    static func whenInputClosed(on channel: any Channel, _ action: @escaping @Sendable () -> Void) {
        channel.eventLoop.execute {
            if let handler = try? channel.pipeline.syncOperations.handler(type: UpgradeRefusalHandler.self) {
                handler.whenInputClosed(action)
            }
        }
    }

    init(decide: @escaping @Sendable (HTTPRequestHead, any Channel) -> Refusal?) {
        self.decide = decide
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            if let first = onFirstHead {
                onFirstHead = nil
                first()
            }
            if Self.isUpgrade(head) {
                if let refusal = decide(head, context.channel) {
                    refusing = refusal
                    return
                }
                passingUpgrade = true
            }
            context.fireChannelRead(data)
        case .body:
            if refusing == nil { context.fireChannelRead(data) }
        case .end:
            guard let refusal = refusing else {
                context.fireChannelRead(data)
                if passingUpgrade {
                    // The connection becomes a WebSocket: what follows are frames, not HTTP.
                    context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
                }
                return
            }
            refusing = nil
            respond(context: context, with: refusal)
        }
    }

    /// A request the HTTP decoder cannot parse: answer `400` and close.
    /// (Hummingbird turns NIO's protocol error handler off, so without this
    /// such a connection would be left open, unanswered, for ever.)
    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if answeredParseError, error is ByteToMessageDecoderError {
            return  // more of the same unparsable input, while the answer lingers
        }
        guard error is HTTPParserError, !answeredParseError else {
            context.fireErrorCaught(error)
            return
        }
        answeredParseError = true
        respond(
            context: context,
            with: Refusal(
                .badRequest,
                "malformed HTTP request (\(error))",
                hint: "send an HTTP/1.1 request such as 'GET /healthz HTTP/1.1' with a Host header"
            )
        )
    }

    /// Writes `refusal` as a complete response, then closes the connection:
    /// first the sending side, so that input the client is still sending
    /// is read and dropped (closing with unread input would reset the
    /// connection and could destroy the answer before the client reads it),
    /// then the whole connection when the client closes or after
    /// ``lingerTime``.
    private func respond(context: ChannelHandlerContext, with refusal: Refusal) {
        refusal.count()
        let body = refusal.body
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: "application/json")
        headers.add(name: "Content-Length", value: String(body.count))
        headers.add(name: "Connection", value: "close")
        for field in refusal.headers { headers.add(name: field.name.rawName, value: field.value) }
        let status = HTTPResponseStatus(statusCode: refusal.status.code, reasonPhrase: refusal.status.reasonPhrase)
        let head = HTTPResponseHead(version: .http1_1, status: status, headers: headers)
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(bytes: body)))), promise: nil)
        let loopBound = NIOLoopBound(context, eventLoop: context.eventLoop)
        context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in
            let context = loopBound.value
            context.close(mode: .output, promise: nil)
            context.eventLoop.scheduleTask(in: Self.lingerTime) { loopBound.value.close(promise: nil) }
        }
    }

    /// How long a refused connection may go on sending before it is closed.
    static let lingerTime: TimeAmount = .seconds(2)

    static func isUpgrade(_ head: HTTPRequestHead) -> Bool {
        head.headers["upgrade"].contains { $0.lowercased().contains("websocket") }
    }
}

/// Wraps a child channel (the stock WebSocket upgrade channel) and inserts
/// ``UpgradeRefusalHandler`` after its HTTP decoder.
struct RefusingChildChannel<Inner: ServerChildChannel>: ServerChildChannel {
    typealias Value = Inner.Value

    let inner: Inner
    let decide: @Sendable (HTTPRequestHead, any Channel) -> Refusal?

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        inner.setup(channel: channel, logger: logger).flatMapThrowing { value in
            let decoder = try channel.pipeline.syncOperations.handler(type: ByteToMessageHandler<HTTPRequestDecoder>.self)
            try channel.pipeline.syncOperations.addHandler(UpgradeRefusalHandler(decide: decide), position: .after(decoder))
            return value
        }
    }

    func handle(value: Value, logger: Logger) async {
        await inner.handle(value: value, logger: logger)
    }
}
