import Foundation
import HummingbirdWebSocket
import LogcastHub
import LogcastProtocol
import Logging
import NIOCore
import NIOWebSocket

/// One WebSocket subscriber: a writer that sends batched frames from the
/// subscription's queue, and a reader that handles client messages.
///
/// The reader always drains the inbound stream (pongs are only processed
/// while it is read). The writer sends whatever is queued as one NDJSON
/// frame as soon as the socket takes it, so an idle stream sends a line at
/// once and a busy one batches. A slow socket only makes this subscriber's
/// queue fill; its drop policy decides the rest.
struct StreamSession {
    let hub: Hub
    let sourceNames: [String]
    let configuration: ServerConfiguration
    let connections: ConnectionTracker
    let metrics: ServerMetrics
    let logger: Logger

    static let closeTryAgainLater = WebSocketErrorCode(codeNumber: 1013)
    /// The stream's token was removed from the token file (and reloaded).
    public static let closeTokenRevoked: UInt16 = 4401
    /// The client broke a rule (too many messages, replies not read): 1008.
    static let closePolicyViolation: UInt16 = 1008
    /// Rate-limited messages a connection may send before it is closed.
    static let maxRefusedMessages = 100

    /// Runs the stream until either side ends it.
    /// - Parameter slot: the stream's admitted place; released when it ends.
    func run(
        request: SubscriptionRequest,
        matcher: LineMatcher,
        slot: ConnectionTracker.Slot,
        remoteAddress: String?,
        eventLoop: (any EventLoop)? = nil,
        inbound: WebSocketInboundStream,
        outbound: WebSocketOutboundWriter
    ) async throws {
        metrics.opened(.ws)
        defer {
            slot.release()
            metrics.closed(.ws)
        }
        let prelude = request.format == .json ? [hello(filter: matcher.filter)] : []
        let hub = self.hub
        let subscription = await offCooperativePool { hub.subscribe(matcher: matcher, request: request, prelude: prelude) }
        slot.onTokenRevoked { subscription.close(code: Self.closeTokenRevoked, reason: "token revoked") }
        logger.info(
            "subscriber connected",
            metadata: [
                "subscriber": "\(subscription.id)", "transport": "ws", "remote": "\(remoteAddress ?? "-")",
                "filter": "\(String(decoding: matcher.filter.json, as: UTF8.self))",
            ]
        )

        // The writer runs in this task and the reader in one child: every
        // task of an idle connection costs its async frames (about a third
        // of an idle subscriber's memory was a second child task).
        let readerError: (any Error)? = await withTaskGroup(of: (any Error)?.self) { group in
            group.addTask {
                defer {
                    // The peer is gone or broke the protocol: the writer finishes what is queued.
                    hub.unsubscribe(subscription)
                }
                do {
                    try await readLoop(subscription, inbound: inbound)
                    return nil
                } catch {
                    return error
                }
            }
            await writeLoop(subscription, eventLoop: eventLoop, outbound: outbound)
            // The writer ended (closed the connection, or finished): stop waiting for the peer.
            hub.unsubscribe(subscription)
            group.cancelAll()
            return await group.next() ?? nil
        }
        logger.info(
            "subscriber disconnected",
            metadata: ["subscriber": "\(subscription.id)", "reason": "\(readerError.map { "\($0)" } ?? "closed")"]
        )
        if let readerError { throw readerError }
    }

    // MARK: Writer

    /// Sends batches until the subscription ends or the socket does.
    ///
    /// While it keeps up, the writer runs on the connection's `eventLoop`
    /// (when given): a frame is written to the socket where it is built,
    /// without another thread's wake-up in between.
    func writeLoop(_ subscription: Subscription, eventLoop: (any EventLoop)? = nil, outbound: WebSocketOutboundWriter) async {
        let allocator = ByteBufferAllocator()
        let framing = StreamFraming(kind: .ndjson, format: subscription.format, fields: subscription.fields)
        let prompt = eventLoop.map { EventLoopTaskExecutor($0) }
        await WriterPool.shared.drive(subscription, prompt: prompt) {
            switch await subscription.nextBatch(maxBytes: configuration.maxBatchBytes, readOnExecutor: WriterPool.shared.bulk, keepingRuns: true) {
            case .items(let gap, let items):
                var buffer = allocator.buffer(capacity: framing.capacity(gap: gap, items: items))
                // Counted in both formats; only JSON streams carry control objects.
                if let gap { metrics.slowConsumerGap(missed: gap.missed) }
                let lines = framing.append(gap: gap, items: items, to: &buffer)
                guard buffer.readableBytes > 0 else { return .sent }
                do {
                    let bytes = buffer.readableBytes
                    try await outbound.write(.custom(WebSocketFrame(fin: true, opcode: .text, data: buffer)))
                    metrics.sent(.ws, lines: lines, bytes: bytes, items: items, subscribedAt: subscription.startedAt)
                    return WriterPool.step(sent: bytes, of: configuration.maxBatchBytes, subscription)
                } catch {
                    return .finished
                }
            case .overflowed:
                logger.notice("closing slow subscriber", metadata: ["subscriber": "\(subscription.id)"])
                metrics.slowDisconnect()
                try? await outbound.close(Self.closeTryAgainLater, reason: "slow consumer: queue overflowed")
                await waitForPeerClose()
                return .finished
            case .finished:
                guard connections.isDraining else { return .finished }
                try? await outbound.close(.goingAway, reason: "server shutting down")
                await waitForPeerClose()
                return .finished
            case .close(let request):
                logger.notice("closing subscriber", metadata: ["subscriber": "\(subscription.id)", "reason": "\(request.reason)"])
                try? await outbound.close(WebSocketErrorCode(codeNumber: Int(request.code)), reason: request.reason)
                await waitForPeerClose()
                return .finished
            }
        }
    }

    /// Gives the peer a moment to answer a close before the reader is stopped.
    func waitForPeerClose() async {
        try? await Task.sleep(for: .seconds(2))
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
