import Foundation
import HTTPTypes
import Hummingbird
import LogcastHub
import LogcastProtocol
import Logging
import NIOCore
import NIOHTTP1

extension LogcastApplication {
    /// `GET /sse`: the stream as Server-Sent Events, for `curl -N` and
    /// `EventSource`.
    ///
    /// Each line is an event with `id: EPOCH-SEQ`, control objects are
    /// events named by their type (``StreamFraming`` frames them). `Last-Event-ID` resumes like `after`
    /// and `epoch` and wins over them in the URL (a reconnecting
    /// `EventSource` repeats the URL it started with); a different epoch gets
    /// a `restart` gap. A comment line every
    /// ``ServerConfiguration/sseHeartbeat`` keeps proxies from closing an idle
    /// stream. Admitted like `/ws` (limits per server and per address, counted
    /// at once); the subscription exists only while the body runs, and the
    /// stream's place is given back when it ends or its connection closes.
    func eventStream(_ request: Request, context: LogcastRequestContext) async throws(Refusal) -> Response {
        var attempt = StreamAttempt(request, remoteAddress: context.remoteAddress)
        if let lastEventID = request.headers[Self.lastEventID] {
            guard let position = Self.eventPosition(lastEventID) else {
                throw Refusal(
                    .badRequest,
                    FilterError(
                        "Last-Event-ID '\(String(lastEventID.prefix(100)))' is not an id this server sent",
                        hint: "ids look like EPOCH-SEQ (e.g. 5f0c2a9e41d7b3aa-1042); omit the header to start from the backlog"
                    )
                )
            }
            attempt.items.removeAll { $0.key == "after" || $0.key == "epoch" }
            attempt.items.append((key: "after", value: String(position.seq)))
            if let epoch = position.epoch { attempt.items.append((key: "epoch", value: epoch)) }
        }
        let admission: Admission
        switch admit(attempt, at: .events, as: .events) {
        case .success(let admitted): admission = admitted
        case .failure(let refusal):
            throw refusal
        }
        let slot = admission.slot
        let channel = context.channel
        let (parsed, matcher) = (admission.stream.request, admission.stream.matcher)
        let app = self
        // Subscribed before the response head goes out: a client that has the
        // head misses no line published after it.
        let hello = helloObject(filter: matcher.filter)
        let hub = self.hub
        let subscription = await offCooperativePool {
            hub.subscribe(matcher: matcher, request: parsed, prelude: parsed.format == .json ? [hello] : [])
        }
        slot.onTokenRevoked { subscription.close(code: StreamSession.closeTokenRevoked, reason: "token revoked") }
        // A client that goes away (even before the body runs) gives back its
        // place and its subscription: an idle stream would notice only at its next write.
        channel.closeFuture.whenComplete { _ in
            hub.unsubscribe(subscription)
            slot.release()
        }
        UpgradeRefusalHandler.whenInputClosed(on: channel) {
            subscription.close(code: 1001, reason: "peer gone")
            hub.unsubscribe(subscription)
        }
        let headers: HTTPFields = [
            .contentType: "text/event-stream; charset=utf-8",
            .cacheControl: "no-store",
            HTTPField.Name("X-Accel-Buffering")!: "no",
        ]
        return Response(
            status: .ok,
            headers: headers,
            body: ResponseBody { writer in
                defer { slot.release() }
                app.metrics.opened(.sse)
                app.logger.info("subscriber connected", metadata: ["subscriber": "\(subscription.id)", "transport": "sse"])
                defer {
                    app.hub.unsubscribe(subscription)
                    app.metrics.closed(.sse)
                }
                let heartbeat = Task {
                    while !Task.isCancelled {
                        try? await Task.sleep(for: app.configuration.sseHeartbeat)
                        if !Task.isCancelled { subscription.sendControl([], replacingUnsent: { $0.isEmpty }) }
                    }
                }
                defer { heartbeat.cancel() }
                let framing = StreamFraming(kind: .sse(epoch: app.hub.epoch), format: subscription.format, fields: subscription.fields)
                var reason = "closed"
                // As a `/ws` writer: on the connection's event loop while it keeps up.
                await WriterPool.shared.drive(subscription, prompt: EventLoopTaskExecutor(channel.eventLoop)) {
                    switch await subscription.nextBatch(
                        maxBytes: app.configuration.maxBatchBytes,
                        readOnExecutor: WriterPool.shared.bulk,
                        keepingRuns: true
                    ) {
                    case .items(let gap, let batch):
                        var buffer = ByteBufferAllocator().buffer(capacity: framing.capacity(gap: gap, items: batch))
                        if let gap { app.metrics.slowConsumerGap(missed: gap.missed) }
                        let lines = framing.append(gap: gap, items: batch, to: &buffer)
                        let bytes = buffer.readableBytes
                        do {
                            try await writer.write(buffer)
                        } catch {
                            reason = "peer gone"
                            return .finished
                        }
                        app.metrics.sent(.sse, lines: lines, bytes: bytes, items: batch, subscribedAt: subscription.startedAt)
                        return WriterPool.step(sent: batch, of: app.configuration.maxBatchBytes, subscription)
                    case .overflowed:
                        app.metrics.slowDisconnect()
                        reason = "slow consumer: queue overflowed"
                        return .finished
                    case .finished:
                        reason = app.connections.isDraining ? "server shutting down" : "finished"
                        return .finished
                    case .close(let request):
                        reason = request.reason
                        return .finished
                    }
                }
                app.logger.info("subscriber disconnected", metadata: ["subscriber": "\(subscription.id)", "transport": "sse", "reason": "\(reason)"])
                try? await writer.finish(nil)
            }
        )
    }

    /// The position in an SSE id: `EPOCH-SEQ`, or a bare `SEQ` (no epoch).
    static func eventPosition(_ id: String) -> (epoch: String?, seq: UInt64)? {
        let text = id.trimmingCharacters(in: .whitespaces)
        guard let dash = text.lastIndex(of: "-") else { return UInt64(text).map { (nil, $0) } }
        let epoch = String(text[..<dash])
        guard let seq = UInt64(text[text.index(after: dash)...]), !epoch.isEmpty, epoch.utf8.count <= 64,
            epoch.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber) })
        else { return nil }
        return (epoch, seq)
    }

    static var lastEventID: HTTPField.Name { HTTPField.Name("Last-Event-ID")! }
}
