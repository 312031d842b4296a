/// Every object of the stream protocol (docs/PROTOCOL.md, "Objects"), and
/// its encoding: the one place that writes them.
///
/// ``encoded()`` gives the NDJSON form: one JSON object and a newline. The
/// transports only frame these bytes: a WebSocket text frame holds whole
/// lines of them, `/api/v1/lines` is a sequence of them, and `/sse` puts
/// each into a `data:` field.
public enum ProtocolObject: Sendable {
    /// A line; `seq` is its place in the stream (nil for a line read from
    /// a source's archive for a time range, which is not in the stream).
    case line(LogRecord, seq: UInt64?)
    /// A source event (`rotated`, `truncated`, `skipped` ...).
    case source(SourceEvent)
    /// A source skipped what was written while logcast was down (a `gap`
    /// with reason `downtime`): between `seq` `next - 1` and `next`.
    case downtime(SourceEvent, next: UInt64)
    /// The first object of every JSON stream. `filter` is the encoded filter
    /// object (see `Filter.encode(into:)`).
    case hello(epoch: String, host: String, sources: [String], filter: [UInt8])
    /// Lines the subscriber will not get: `missed` is nil when unknown.
    case gap(after: UInt64, next: UInt64, missed: Int?, reason: GapReason)
    /// The answer to a `subscribe` message.
    case subscribed(filter: [UInt8], backlog: Int)
    /// A read of the history stopped before its end: at its time budget
    /// (`scan-budget`), or at the most lines it may send (`limit`).
    case incomplete(examined: Int, resumeAfter: UInt64?, budgetMilliseconds: Int, reason: IncompleteReason = .scanBudget)
    /// A client message that was refused; the stream goes on unchanged.
    case error(String)

    /// Why lines are missing (`gap.reason`).
    public enum GapReason: String, Sendable {
        /// The lines were evicted from the history before the client resumed.
        case evicted
        /// The server restarted (another epoch): what came before is unknown.
        case restart
        /// The subscriber's queue overflowed and its oldest lines were dropped.
        case slowConsumer = "slow-consumer"
        /// A source had more to catch up on after a restart than `--max-catch-up-bytes`.
        case downtime
    }

    /// Why a read of the history stopped early (`incomplete.reason`).
    public enum IncompleteReason: String, Sendable {
        case scanBudget = "scan-budget"
        case limit
    }

    /// The protocol version `hello` announces.
    public static let version = 1

    /// The object's `type` field.
    public var type: String {
        switch self {
        case .line: "line"
        case .source: "source"
        case .downtime: "gap"
        case .hello: "hello"
        case .gap: "gap"
        case .subscribed: "subscribed"
        case .incomplete: "incomplete"
        case .error: "error"
        }
    }

    /// The object as one NDJSON line (ending in `\n`).
    public func encoded() -> [UInt8] {
        if case .line(let record, let seq) = self { return Self.encodedLine(record, seq: seq) }
        var writer = JSONWriter()
        writer.beginObject()
        writer.field("type", type)
        switch self {
        case .line:
            break  // encoded above (encodedLine)
        case .source(let event):
            writer.field("source", event.source)
            writer.field("event", event.kind.rawValue)
            writer.field("path", event.path)
            writer.field("reason", event.reason)
        case .downtime(let event, let next):
            writer.field("after", next - 1)
            writer.field("next", next)
            writer.field("reason", GapReason.downtime.rawValue)
            writer.field("source", event.source)
            writer.field("path", event.path)
            writer.field("skipped_bytes", event.skippedBytes)
        case .hello(let epoch, let host, let sources, let filter):
            writer.field("version", Self.version)
            writer.field("epoch", epoch)
            writer.field("server", LogcastVersion.server)
            writer.field("host", host)
            writer.field("sources", strings: sources)
            writer.rawField("filter", filter)
        case .gap(let after, let next, let missed, let reason):
            writer.field("after", after)
            writer.field("next", next)
            writer.field("missed", missed)
            writer.field("reason", reason.rawValue)
        case .subscribed(let filter, let backlog):
            writer.rawField("filter", filter)
            writer.field("backlog", backlog)
        case .incomplete(let examined, let resumeAfter, let budget, let reason):
            writer.field("reason", reason.rawValue)
            writer.field("examined", examined)
            writer.field("resume_after", resumeAfter)
            switch reason {
            case .scanBudget:
                writer.field("hint", "the filter took longer than \(budget) ms over the history; narrow it, or read on with after=")
            case .limit:
                writer.field("hint", "more lines match than one read sends; read on with after=resume_after")
            }
        case .error(let message):
            writer.field("error", message)
        }
        writer.endObject()
        writer.newline()
        return writer.bytes
    }

    /// The object a source event is sent as, at `position` (the `seq` the
    /// next line gets): a `gap` for `downtime`, else a `source` object.
    public static func entry(_ event: SourceEvent, position: UInt64) -> ProtocolObject {
        event.kind == .downtime ? .downtime(event, next: position) : .source(event)
    }

    /// The `type` of an encoded object (`{"type":"gap",...}` → `gap`), or
    /// nil when the bytes are not one of these objects.
    public static func type(of encoded: [UInt8]) -> String? {
        let prefix = #"{"type":""#.utf8
        guard encoded.starts(with: prefix) else { return nil }
        let start = encoded.index(encoded.startIndex, offsetBy: prefix.count)
        guard let end = encoded[start...].firstIndex(of: UInt8(ascii: "\"")) else { return nil }
        return String(decoding: encoded[start..<end], as: UTF8.self)
    }

    /// `{"type":"separator"}`: between context groups that do not follow on.
    public static let separator: [UInt8] = Array(#"{"type":"separator"}"#.utf8) + [UInt8(ascii: "\n")]

    /// A line object (as ``encoded()`` wrote it) sent as context is the
    /// same object with `"context":true` last: its bytes without the final
    /// `}` and newline, then these.
    public static let contextSuffix: [UInt8] = Array(#","context":true}"#.utf8) + [UInt8(ascii: "\n")]

    /// The end of an object: what follows members added after ``encoded()``.
    public static let lineEnd: [UInt8] = [UInt8(ascii: "}"), UInt8(ascii: "\n")]

    /// The body of a refused HTTP request: `{"error":"...","hint":"..."}`.
    public static func refusalBody(error: String, hint: String) -> [UInt8] {
        var writer = JSONWriter()
        writer.beginObject()
        writer.field("error", error)
        writer.field("hint", hint)
        writer.endObject()
        return writer.bytes
    }
}
