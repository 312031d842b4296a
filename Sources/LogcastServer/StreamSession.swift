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

    enum Outcome {
        case readerEnded((any Error)?)
        case writerEnded
    }

    /// Runs the stream until either side ends it.
    /// - Parameter slot: the stream's admitted place; released when it ends.
    func run(
        request: SubscriptionRequest,
        matcher: LineMatcher,
        slot: ConnectionTracker.Slot,
        remoteAddress: String?,
        inbound: WebSocketInboundStream,
        outbound: WebSocketOutboundWriter
    ) async throws {
        metrics.opened(.ws)
        defer {
            slot.release()
            metrics.closed(.ws)
        }
        let prelude = request.format == .json ? [helloJSON(filter: matcher.filter)] : []
        let hub = self.hub
        let subscription = await offCooperativePool { hub.subscribe(matcher: matcher, request: request, prelude: prelude) }
        slot.onTokenRevoked { subscription.close(code: Self.closeTokenRevoked, reason: "token revoked") }
        logger.info("subscriber connected", metadata: ["subscriber": "\(subscription.id)", "transport": "ws", "remote": "\(remoteAddress ?? "-")", "filter": "\(String(decoding: Self.filterJSON(matcher.filter), as: UTF8.self))"])

        let readerError: (any Error)? = await withTaskGroup(of: Outcome.self) { group in
            group.addTask { await writeLoop(subscription, outbound: outbound) }
            group.addTask {
                do {
                    try await readLoop(subscription, inbound: inbound)
                    return .readerEnded(nil)
                } catch {
                    return .readerEnded(error)
                }
            }
            var readerError: (any Error)?
            while let outcome = await group.next() {
                switch outcome {
                case .readerEnded(let error):
                    readerError = error
                    // The peer is gone or broke the protocol: let the writer finish.
                    hub.unsubscribe(subscription)
                case .writerEnded:
                    // The writer closed the connection; stop waiting for the peer.
                    hub.unsubscribe(subscription)
                    group.cancelAll()
                }
            }
            return readerError
        }
        logger.info("subscriber disconnected", metadata: ["subscriber": "\(subscription.id)", "reason": "\(readerError.map { "\($0)" } ?? "closed")"])
        if let readerError { throw readerError }
    }

    // MARK: Writer

    func writeLoop(_ subscription: Subscription, outbound: WebSocketOutboundWriter) async -> Outcome {
        let allocator = ByteBufferAllocator()
        while true {
            switch await subscription.nextBatch(maxBytes: configuration.maxBatchBytes) {
            case .items(let gap, let items):
                var buffer = allocator.buffer(capacity: configuration.maxBatchBytes / 4)
                var lines = 0
                if let gap {
                    // Counted in both formats; only JSON streams carry control objects.
                    metrics.slowConsumerGap(missed: gap.missed)
                    if subscription.format == .json {
                        buffer.writeBytes(Hub.gapJSON(after: gap.after, next: gap.next, missed: gap.missed, reason: "slow-consumer"))
                    }
                }
                for item in items {
                    switch (item, subscription.format) {
                    case (.entry(let entry), .json):
                        buffer.writeBytes(entry.json)
                        if entry.isLine { lines += 1 }
                    case (.entry(let entry), .text):
                        if case .line(let record) = entry.payload {
                            buffer.writeString(record.message)
                            buffer.writeInteger(UInt8(ascii: "\n"))
                            lines += 1
                        }
                    case (.control(let json), .json):
                        buffer.writeBytes(json)
                    case (.control, .text):
                        break
                    }
                }
                guard buffer.readableBytes > 0 else { continue }
                do {
                    let bytes = buffer.readableBytes
                    try await outbound.write(.custom(WebSocketFrame(fin: true, opcode: .text, data: buffer)))
                    metrics.sent(.ws, lines: lines, bytes: bytes)
                } catch {
                    return .writerEnded
                }
            case .overflowed:
                logger.notice("closing slow subscriber", metadata: ["subscriber": "\(subscription.id)"])
                metrics.slowDisconnect()
                try? await outbound.close(Self.closeTryAgainLater, reason: "slow consumer: queue overflowed")
                await waitForPeerClose()
                return .writerEnded
            case .finished:
                guard connections.isDraining else { return .writerEnded }
                try? await outbound.close(.goingAway, reason: "server shutting down")
                await waitForPeerClose()
                return .writerEnded
            case .close(let request):
                logger.notice("closing subscriber", metadata: ["subscriber": "\(subscription.id)", "reason": "\(request.reason)"])
                try? await outbound.close(WebSocketErrorCode(codeNumber: Int(request.code)), reason: request.reason)
                await waitForPeerClose()
                return .writerEnded
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
                    "\(Self.rateLimitError): at most \(Int(configuration.clientMessagesPerSecond)) per second (bursts of \(configuration.clientMessageBurst)); ignored, the filter is unchanged (\(refusedInARow) in a row; at \(Self.maxRefusedMessages) the connection is closed)"
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
                reply(Self.errorJSON("binary messages are not understood; send a JSON text message such as {\"type\":\"subscribe\",\"filter\":{}}"), to: subscription)
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
                var writer = JSONWriter()
                writer.beginObject()
                writer.field("type", "subscribed")
                writer.rawField("filter", Self.filterJSON(matcher.filter))
                writer.field("backlog", request.backlog)
                writer.endObject()
                writer.newline()
                let (hub, reply) = (self.hub, writer.bytes)
                await offCooperativePool { hub.resubscribe(subscription, matcher: matcher, backlog: request.backlog, reply: reply) }
            } catch {
                reply(Self.errorJSON("\(error.error); \(error.hint)"), to: subscription)
            }
        }
    }

    // MARK: Encoding

    func helloJSON(filter: Filter) -> [UInt8] {
        Self.hello(hub: hub, hostName: configuration.hostName, sources: sourceNames, filter: filter)
    }

    /// The `hello` object every stream (WebSocket or SSE) starts with.
    static func hello(hub: Hub, hostName: String, sources: [String], filter: Filter) -> [UInt8] {
        var writer = JSONWriter()
        writer.beginObject()
        writer.field("type", "hello")
        writer.field("version", 1)
        writer.field("epoch", hub.epoch)
        writer.field("server", LogcastVersion.server)
        writer.field("host", hostName)
        writer.field("sources", strings: sources)
        writer.rawField("filter", filterJSON(filter))
        writer.endObject()
        writer.newline()
        return writer.bytes
    }

    static func filterJSON(_ filter: Filter) -> [UInt8] {
        var writer = JSONWriter()
        filter.encode(into: &writer)
        return writer.bytes
    }

    static func errorJSON(_ message: String) -> [UInt8] {
        var writer = JSONWriter()
        writer.beginObject()
        writer.field("type", "error")
        writer.field("error", message)
        writer.endObject()
        writer.newline()
        return writer.bytes
    }
}
