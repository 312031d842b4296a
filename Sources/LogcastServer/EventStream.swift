import Foundation
import HTTPTypes
import Hummingbird
import LogcastCore
import Logging
import NIOCore

extension LogcastApplication {
    /// `GET /sse`: the stream as Server-Sent Events, for `curl -N` and
    /// `EventSource`.
    ///
    /// Each line is an event with `id: <seq>` and `data: <the JSON object>`
    /// (or the raw message, split into `data:` lines, with `format=text`);
    /// control objects are events named by their type (`event: hello`,
    /// `event: gap`, `event: source`). `Last-Event-ID` resumes like `after`.
    /// A comment line every ``ServerConfiguration/sseHeartbeat`` keeps
    /// proxies from closing an idle stream. Same hub, queue and drop policy
    /// as `/ws`; on shutdown the queued events are flushed, then the stream ends.
    func eventStream(_ request: Request) -> Response {
        if connections.isDraining {
            return jsonResponse(.serviceUnavailable, FilterError("server is shutting down", hint: "reconnect in a few seconds").json, extra: [.retryAfter: "5"])
        }
        if connections.count >= configuration.maxSubscribers {
            return jsonResponse(
                .serviceUnavailable,
                FilterError("too many subscribers (\(configuration.maxSubscribers))", hint: "try again later; the limit is --max-subscribers").json,
                extra: [.retryAfter: "10"]
            )
        }
        var items = QueryString.parse(QueryString.query(ofTarget: request.uri.description))
        if let lastEventID = request.headers[Self.lastEventID], !items.contains(where: { $0.key == "after" }) {
            items.append((key: "after", value: lastEventID.trimmingCharacters(in: .whitespaces)))
        }
        let parsed: SubscriptionRequest
        let matcher: LineMatcher
        switch streamRequest(items: items) {
        case .success(let stream): (parsed, matcher) = (stream.request, stream.matcher)
        case .failure(let error): return jsonResponse(.badRequest, error.json)
        }
        let hello = StreamSession.hello(hub: hub, hostName: configuration.hostName, sources: registry.names, filter: matcher.filter)
        let subscription = hub.subscribe(matcher: matcher, request: parsed, prelude: parsed.format == .json ? [hello] : [])
        let app = self
        let headers: HTTPFields = [
            .contentType: "text/event-stream; charset=utf-8",
            .cacheControl: "no-store",
            HTTPField.Name("X-Accel-Buffering")!: "no",
        ]
        return Response(status: .ok, headers: headers, body: ResponseBody { writer in
            app.connections.opened(from: nil)
            app.metrics.opened(.sse)
            app.logger.info("subscriber connected", metadata: ["subscriber": "\(subscription.id)", "transport": "sse"])
            defer {
                app.hub.unsubscribe(subscription)
                app.connections.closed(from: nil)
                app.metrics.closed(.sse)
            }
            let heartbeat = Task {
                while !Task.isCancelled {
                    try? await Task.sleep(for: app.configuration.sseHeartbeat)
                    if !Task.isCancelled { subscription.sendControl([]) }
                }
            }
            defer { heartbeat.cancel() }
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
                        lines += Self.writeItem(&buffer, item, format: subscription.format)
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
                }
            }
            app.logger.info("subscriber disconnected", metadata: ["subscriber": "\(subscription.id)", "transport": "sse", "reason": "\(reason)"])
            try? await writer.finish(nil)
        })
    }

    static var lastEventID: HTTPField.Name { HTTPField.Name("Last-Event-ID")! }

    /// Writes one queued item; returns 1 for a line, else 0.
    static func writeItem(_ buffer: inout ByteBuffer, _ item: SubscriberQueue.Item, format: SubscriptionRequest.Format) -> Int {
        switch item {
        case .entry(let entry):
            guard case .line(let record) = entry.payload else {
                if format == .json { writeEvent(&buffer, name: "source", data: entry.json) }
                return 0
            }
            buffer.writeString("id: \(entry.position)\n")
            if format == .json {
                buffer.writeString("data: ")
                buffer.writeBytes(entry.json)  // ends with "\n"
            } else {
                for line in record.message.split(separator: "\n", omittingEmptySubsequences: false) {
                    buffer.writeString("data: \(line)\n")
                }
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
