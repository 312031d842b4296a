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
    /// Each line is an event with `id: EPOCH-SEQ` and `data: <the JSON
    /// object>` (or, with `format=text`, the message split into `data:`
    /// lines at every CR, LF or CRLF, so no message can start a field of its
    /// own); control objects are events named by their type (`event: hello`,
    /// `event: gap`, `event: source`). `Last-Event-ID` resumes like `after`
    /// and `epoch` and wins over them in the URL (a reconnecting
    /// `EventSource` repeats the URL it started with); a different epoch gets
    /// a `restart` gap. A comment line every
    /// ``ServerConfiguration/sseHeartbeat`` keeps proxies from closing an idle
    /// stream. Admitted like `/ws` (limits per server and per address, counted
    /// at once); the subscription exists only while the body runs, and the
    /// stream's place is given back when it ends or its connection closes.
    func eventStream(_ request: Request, context: LogcastRequestContext) async -> Response {
        var attempt = StreamAttempt(request, remoteAddress: context.remoteAddress)
        if let lastEventID = request.headers[Self.lastEventID] {
            guard let position = Self.eventPosition(lastEventID) else {
                return jsonResponse(.badRequest, FilterError(
                    "Last-Event-ID '\(String(lastEventID.prefix(100)))' is not an id this server sent",
                    hint: "ids look like EPOCH-SEQ (e.g. 5f0c2a9e41d7b3aa-1042); omit the header to start from the backlog"
                ).json)
            }
            attempt.items.removeAll { $0.key == "after" || $0.key == "epoch" }
            attempt.items.append((key: "after", value: String(position.seq)))
            if let epoch = position.epoch { attempt.items.append((key: "epoch", value: epoch)) }
        }
        let admission: Admission
        switch admit(attempt, at: .events, as: .events) {
        case .success(let admitted): admission = admitted
        case .failure(let refusal):
            return jsonResponse(HTTPResponse.Status(code: Int(refusal.status.code)), refusal.body, extra: refusal.httpFields)
        }
        let slot = admission.slot
        let channel = context.channel
        let (parsed, matcher) = (admission.stream.request, admission.stream.matcher)
        let app = self
        // Subscribed before the response head goes out: a client that has the
        // head misses no line published after it.
        let hello = StreamSession.hello(hub: hub, hostName: configuration.hostName, sources: registry.names, filter: matcher.filter)
        let hub = self.hub
        let subscription = await offCooperativePool { hub.subscribe(matcher: matcher, request: parsed, prelude: parsed.format == .json ? [hello] : []) }
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
        return Response(status: .ok, headers: headers, body: ResponseBody { writer in
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
            let epoch = app.hub.epoch
            var reason = "closed"
            loop: while true {
                switch await subscription.nextBatch(maxBytes: app.configuration.maxBatchBytes) {
                case .items(let gap, let batch):
                    var buffer = ByteBuffer()
                    var lines = 0
                    if let gap {
                        app.metrics.slowConsumerGap(missed: gap.missed)
                        Self.writeEvent(&buffer, name: "gap", data: Hub.gapJSON(after: gap.after, next: gap.next, missed: gap.missed, reason: "slow-consumer"))
                    }
                    for item in batch {
                        lines += Self.writeItem(&buffer, item, format: subscription.format, epoch: epoch)
                    }
                    let bytes = buffer.readableBytes
                    do {
                        try await writer.write(buffer)
                    } catch {
                        reason = "peer gone"
                        break loop
                    }
                    app.metrics.sent(.sse, lines: lines, bytes: bytes)
                case .overflowed:
                    app.metrics.slowDisconnect()
                    reason = "slow consumer: queue overflowed"
                    break loop
                case .finished:
                    reason = app.connections.isDraining ? "server shutting down" : "finished"
                    break loop
                case .close(let request):
                    reason = request.reason
                    break loop
                }
            }
            app.logger.info("subscriber disconnected", metadata: ["subscriber": "\(subscription.id)", "transport": "sse", "reason": "\(reason)"])
            try? await writer.finish(nil)
        })
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

    /// Writes one queued item; returns 1 for a line, else 0.
    static func writeItem(_ buffer: inout ByteBuffer, _ item: SubscriberQueue.Item, format: SubscriptionRequest.Format, epoch: String) -> Int {
        switch item {
        case .entry(let entry):
            guard case .line(let record) = entry.payload else {
                if format == .json { writeEvent(&buffer, name: "source", data: entry.json) }
                return 0
            }
            buffer.writeString("id: \(epoch)-\(entry.position)\n")
            if format == .json {
                buffer.writeString("data: ")
                buffer.writeBytes(entry.json)  // ends with "\n"; JSON escapes CR and LF
            } else {
                writeDataLines(&buffer, record.message)
            }
            buffer.writeString("\n")
            return 1
        case .control(let json):
            if json.isEmpty {
                buffer.writeString(": heartbeat\n\n")
            } else if format == .json {
                writeEvent(&buffer, name: controlType(json), data: json)
            }
            return 0
        }
    }

    /// `data: ` lines for `text`, cut at every CR, LF and CRLF (the SSE
    /// line ends), so none of its bytes can end a field or start another.
    static func writeDataLines(_ buffer: inout ByteBuffer, _ text: String) {
        var line: [UInt8] = []
        var previousWasCR = false
        func flush() {
            buffer.writeString("data: ")
            buffer.writeBytes(line)
            buffer.writeInteger(UInt8(ascii: "\n"))
            line.removeAll(keepingCapacity: true)
        }
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "\r"):
                flush()
                previousWasCR = true
            case UInt8(ascii: "\n"):
                if !previousWasCR { flush() }
                previousWasCR = false
            default:
                line.append(byte)
                previousWasCR = false
            }
        }
        flush()
    }

    /// `event: NAME`, `data: JSON` (which ends with a newline), blank line.
    static func writeEvent(_ buffer: inout ByteBuffer, name: String, data: [UInt8]) {
        buffer.writeString("event: \(name)\ndata: ")
        buffer.writeBytes(data)
        if data.last != UInt8(ascii: "\n") { buffer.writeString("\n") }
        buffer.writeString("\n")
    }

    /// The `type` of an encoded control object (`{"type":"gap",...}` → `gap`).
    static func controlType(_ json: [UInt8]) -> String {
        let prefix = Array(#"{"type":""#.utf8)
        guard json.starts(with: prefix), let end = json[prefix.count...].firstIndex(of: UInt8(ascii: "\"")) else { return "message" }
        return String(decoding: json[prefix.count..<end], as: UTF8.self)
    }
}
