import Foundation
import HummingbirdWebSocket
import LogcastHub
import LogcastProtocol
import Logging
import NIOCore
import NIOWebSocket

/// One WebSocket subscriber: a reader that handles client messages, in
/// the connection's task, and a writer (``SocketWriter``) that sends
/// batched frames from the subscription's queue.
///
/// The reader always drains the inbound stream (pongs are only processed
/// while it is read). The writer sends whatever is queued as one NDJSON
/// frame as soon as the socket takes it, so an idle stream sends a line at
/// once and a busy one batches. It holds no task while idle: an idle
/// subscriber's line is written from the connection's event loop, and a
/// task runs only while there is more to send (``SocketWriter``). An idle
/// connection so holds one task, parked in the reader: every task costs
/// its async frames (the Swift task allocator's slabs), which were most of
/// an idle subscriber's memory (`Benchmarks/README.md`). A slow socket only
/// makes this subscriber's queue fill; its drop policy decides the rest.
final class StreamSession: Sendable {
    let hub: Hub
    let sourceNames: [String]
    let configuration: ServerConfiguration
    let connections: ConnectionTracker
    let metrics: ServerMetrics
    let logger: Logger

    init(hub: Hub, sourceNames: [String], configuration: ServerConfiguration, connections: ConnectionTracker, metrics: ServerMetrics, logger: Logger)
    {
        self.hub = hub
        self.sourceNames = sourceNames
        self.configuration = configuration
        self.connections = connections
        self.metrics = metrics
        self.logger = logger
    }

    static let closeTryAgainLater = WebSocketErrorCode(codeNumber: 1013)
    /// The stream's token was removed from the token file (and reloaded).
    public static let closeTokenRevoked: UInt16 = 4401
    /// The client broke a rule (too many messages, replies not read): 1008.
    static let closePolicyViolation: UInt16 = 1008
    /// Rate-limited messages a connection may send before it is closed.
    static let maxRefusedMessages = 100

    /// Runs the stream until either side ends it.
    /// - Parameters:
    ///   - admitted: the stream's admitted place (released when it ends) and request.
    ///   - deflate: whether the client offered permessage-deflate (then
    ///     every frame goes through the WebSocket handler, which compresses).
    func run(
        _ admitted: ConnectionTracker.PendingUpgrade,
        remoteAddress: String?,
        channel: any Channel,
        deflate: Bool,
        inbound: WebSocketInboundStream,
        outbound: WebSocketOutboundWriter
    ) async throws {
        metrics.opened(.ws)
        defer {
            admitted.slot.release()
            metrics.closed(.ws)
        }
        let subscription = await subscribe(admitted)
        let matcher = admitted.matcher
        admitted.slot.onTokenRevoked { subscription.close(code: Self.closeTokenRevoked, reason: "token revoked") }
        logger.info(
            "subscriber connected",
            metadata: [
                "subscriber": "\(subscription.id)", "transport": "ws", "remote": "\(remoteAddress ?? "-")",
                "filter": "\(String(decoding: matcher.filter.json, as: UTF8.self))",
            ]
        )

        let writer = SocketWriter(session: self, subscription: subscription, channel: channel, outbound: outbound, directWrites: !deflate)
        writer.start()
        var readerError: (any Error)?
        do {
            try await readLoop(subscription, inbound: inbound)
        } catch {
            readerError = error
        }
        // The peer is gone, broke the protocol, or answered the writer's
        // close: the writer finishes what is queued (its writes fail once
        // the connection is closed), and the connection ends with it.
        hub.unsubscribe(subscription)
        await writer.finished()
        logger.info(
            "subscriber disconnected",
            metadata: ["subscriber": "\(subscription.id)", "reason": "\(readerError.map { "\($0)" } ?? "closed")"]
        )
        if let readerError { throw readerError }
    }

    /// The stream's subscription (the hub's lock is taken off Swift's
    /// shared pool). Apart from ``run(_:remoteAddress:channel:deflate:inbound:outbound:)``
    /// so that what it needs is not held in that function's frame for the
    /// stream's life: the async frames of an idle connection's task are
    /// most of its memory.
    private func subscribe(_ admitted: ConnectionTracker.PendingUpgrade) async -> Subscription {
        let prelude = admitted.request.format == .json ? [hello(filter: admitted.matcher.filter)] : []
        let hub = self.hub
        return await offCooperativePool { hub.subscribe(matcher: admitted.matcher, request: admitted.request, prelude: prelude) }
    }

    // MARK: Reader

    /// Reads client messages until the peer goes.
    ///
    /// Every reply is bounded: a message over the rate limit is ignored and
    /// answered with an `error`, merged into the previous one while that is
    /// still unsent; after ``maxRefusedMessages`` refused messages in a row
    /// (none accepted in between), or when the client leaves
    /// ``Subscription/maxPendingControls`` replies unread, the connection is
    /// closed with 1008. Nothing a client sends makes the server hold an
    /// unbounded number of replies.
    func readLoop(_ subscription: Subscription, inbound: WebSocketInboundStream) async throws {
        var limiter = RateLimiter(perSecond: configuration.clientMessagesPerSecond, burst: configuration.clientMessageBurst)
        var refusedInARow = 0
        for try await message in inbound.messages(maxSize: configuration.maxClientMessageBytes) {
            guard limiter.allow() else {
                refusedInARow += 1
                if refusedInARow >= Self.maxRefusedMessages {
                    subscription.close(code: Self.closePolicyViolation, reason: "too many messages over the rate limit")
                    return
                }
                let error = Self.errorJSON(
                    "\(Self.rateLimitError): at most \(Int(configuration.clientMessagesPerSecond)) per second (bursts of "
                        + "\(configuration.clientMessageBurst)); ignored, the filter is unchanged (\(refusedInARow) in a row; at "
                        + "\(Self.maxRefusedMessages) the connection is closed)"
                )
                if !subscription.sendControl(error, replacingUnsent: { $0.starts(with: Self.rateLimitPrefix) }) {
                    subscription.close(code: Self.closePolicyViolation, reason: "replies not read")
                }
                continue
            }
            refusedInARow = 0
            switch message {
            case .text(let text):
                await handleClientMessage(text, subscription: subscription)
            case .binary:
                reply(
                    Self.errorJSON("binary messages are not understood; send a JSON text message such as {\"type\":\"subscribe\",\"filter\":{}}"),
                    to: subscription
                )
            }
        }
    }

    static let rateLimitError = "too many messages"
    static let rateLimitPrefix = Array(#"{"type":"error","error":"too many messages"#.utf8)

    /// Queues a reply; a client that leaves too many unread is closed with 1008.
    func reply(_ json: [UInt8], to subscription: Subscription) {
        if !subscription.sendControl(json) {
            subscription.close(code: Self.closePolicyViolation, reason: "replies not read")
        }
    }

    func handleClientMessage(_ text: String, subscription: Subscription) async {
        switch ClientMessage.parse(text, knownSources: sourceNames) {
        case .failure(let error):
            reply(Self.errorJSON("\(error.error); \(error.hint)"), to: subscription)
        case .success(.subscribe(let request)):
            do {
                let matcher = try LineMatcher(request.filter)
                let reply = ProtocolObject.subscribed(filter: matcher.filter.json, backlog: request.backlog).encoded()
                let hub = self.hub
                await offCooperativePool { hub.resubscribe(subscription, matcher: matcher, backlog: request.backlog, reply: reply) }
            } catch {
                reply(Self.errorJSON("\(error.error); \(error.hint)"), to: subscription)
            }
        }
    }

    // MARK: Encoding

    func hello(filter: Filter) -> [UInt8] {
        ProtocolObject.hello(epoch: hub.epoch, host: configuration.hostName, sources: sourceNames, filter: filter.json).encoded()
    }

    static func errorJSON(_ message: String) -> [UInt8] {
        ProtocolObject.error(message).encoded()
    }
}
