import LogcastProtocol

/// A line or source event as the hub holds it: stamped and encoded once.
///
/// Entries are immutable and shared by reference: the history ring and every
/// subscriber queue that holds a line point at the same bytes, so a thousand
/// subscribers cost a thousand references per line, not a thousand copies.
public final class HubEntry: Sendable {
    public enum Payload: Sendable {
        case line(LogRecord)
        case event(SourceEvent)
    }

    /// For a line, its `seq`. For an event, the `seq` the next line will get
    /// (so `position` orders events among lines).
    public let position: UInt64
    public let payload: Payload
    /// The NDJSON form: one JSON object followed by `\n`.
    public let json: [UInt8]

    public init(position: UInt64, payload: Payload, json: [UInt8]) {
        self.position = position
        self.payload = payload
        self.json = json
    }

    public var isLine: Bool {
        if case .line = payload { return true }
        return false
    }

    /// What the entry costs to keep, for byte caps.
    public var byteCount: Int { json.count + 64 }

    /// The source this entry belongs to.
    public var source: String {
        switch payload {
        case .line(let record): record.source
        case .event(let event): event.source
        }
    }

    /// Encodes a line as its `{"type":"line",...}` object.
    public static func encodeLine(_ record: LogRecord, seq: UInt64) -> [UInt8] {
        var writer = JSONWriter(capacity: record.message.utf8.count + 160)
        writer.beginObject()
        writer.field("type", "line")
        writer.field("seq", seq)
        writer.key("ts")
        writer.appendRawQuoted { record.timestamp.appendRFC3339(to: &$0) }
        writer.field("source", record.source)
        writer.field("host", record.host)
        writer.field("path", record.path)
        writer.field("msg", record.message)
        writer.field("priority", record.priority)
        writer.field("unit", record.unit)
        writer.field("identifier", record.identifier)
        writer.field("pid", record.pid)
        writer.field("cursor", record.cursor)
        writer.endObject()
        writer.newline()
        return writer.bytes
    }

    /// Encodes a source event as its `{"type":"source",...}` object.
    public static func encodeEvent(_ event: SourceEvent) -> [UInt8] {
        var writer = JSONWriter()
        writer.beginObject()
        writer.field("type", "source")
        writer.field("source", event.source)
        writer.field("event", event.kind.rawValue)
        writer.field("path", event.path)
        writer.field("reason", event.reason)
        writer.endObject()
        writer.newline()
        return writer.bytes
    }
}

extension JSONWriter {
    /// Writes a string value whose bytes need no escaping, produced by `body`.
    mutating func appendRawQuoted(_ body: (inout [UInt8]) -> Void) {
        var scratch: [UInt8] = [UInt8(ascii: "\"")]
        body(&scratch)
        scratch.append(UInt8(ascii: "\""))
        appendRawValue(scratch)
    }
}
