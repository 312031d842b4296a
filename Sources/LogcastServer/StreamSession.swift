import Foundation
import HummingbirdWebSocket
import LogcastCore
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

    enum Outcome {
        case readerEnded((any Error)?)
        case writerEnded
    }

    func run(
        request: SubscriptionRequest,
        matcher: LineMatcher,
        remoteAddress: String?,
        inbound: WebSocketInboundStream,
        outbound: WebSocketOutboundWriter
    ) async throws {
        connections.opened(from: remoteAddress)
        metrics.opened(.ws)
        defer {
            connections.closed(from: remoteAddress)
            metrics.closed(.ws)
        }
        let prelude = request.format == .json ? [helloJSON(filter: matcher.filter)] : []
        let subscription = hub.subscribe(matcher: matcher, request: request, prelude: prelude)
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
            }
        }
    }

    /// Gives the peer a moment to answer a close before the reader is stopped.
    func waitForPeerClose() async {
        try? await Task.sleep(for: .seconds(2))
    }

    // MARK: Reader

    func readLoop(_ subscription: Subscription, inbound: WebSocketInboundStream) async throws {
        var limiter = RateLimiter(perSecond: configuration.clientMessagesPerSecond, burst: configuration.clientMessageBurst)
        for try await message in inbound.messages(maxSize: configuration.maxClientMessageBytes) {
            guard limiter.allow() else {
                subscription.sendControl(Self.errorJSON(
                    "too many messages: at most \(Int(configuration.clientMessagesPerSecond)) per second (bursts of \(configuration.clientMessageBurst)); this one was ignored and the filter is unchanged"
                ))
                continue
            }
            switch message {
            case .text(let text):
                handleClientMessage(text, subscription: subscription)
            case .binary:
                subscription.sendControl(Self.errorJSON("binary messages are not understood; send a JSON text message such as {\"type\":\"subscribe\",\"filter\":{}}"))
            }
        }
    }

    func handleClientMessage(_ text: String, subscription: Subscription) {
        switch ClientMessage.parse(text, knownSources: sourceNames) {
        case .failure(let error):
            subscription.sendControl(Self.errorJSON("\(error.error); \(error.hint)"))
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
                hub.resubscribe(subscription, matcher: matcher, backlog: request.backlog, reply: writer.bytes)
            } catch {
                subscription.sendControl(Self.errorJSON("\(error.error); \(error.hint)"))
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
