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

    /// The last `seq` a reader has passed once it has read this entry: a
    /// line's own, or for an event the one before the line it precedes.
    public var lastSeqCovered: UInt64 {
        isLine ? position : position - 1
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
}
