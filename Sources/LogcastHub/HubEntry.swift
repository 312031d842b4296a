import Glibc
import LogcastProtocol
import Synchronization

/// `CLOCK_MONOTONIC` in nanoseconds: when entries enter the hub and
/// subscribers start, for the delivery latency metric.
public enum MonotonicClock {
    public static func nanoseconds() -> UInt64 {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return UInt64(now.tv_sec) * 1_000_000_000 + UInt64(now.tv_nsec)
    }
}

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
    /// A line read from a ``SourceArchive`` for a time range: it has no
    /// `seq` (`position` is that of the first line of the stream after it).
    public let isArchived: Bool
    /// When the entry entered this hub (``MonotonicClock``, read once per
    /// published chunk); 0 for entries read back from a durable or cluster
    /// history, which did not enter it live.
    public let publishedAt: UInt64
    /// A line's message (empty for an event): the record's own string,
    /// kept beside it so that the text framing and the text filters read it
    /// with one reference, not a copy of the whole record (which retains
    /// and releases each of its strings, on every line for every subscriber).
    public let message: String
    /// The source this entry belongs to, and the record's or the event's
    /// `path` (nil where it has none). Kept beside the payload for the same
    /// reason as ``message``: a context selector reads them for every line.
    public let source: String
    public let path: String?
    /// A line's own structured fields (a journal entry's), kept beside the
    /// payload like ``message``.
    private let recordFields: LineFields?
    /// The fields of a line's message, parsed the first time a filter or a
    /// `fields` request asks, then read without a lock: a hundred
    /// subscribers testing one line read it side by side, where a lock
    /// made them take turns. Two first readers at once may both parse; the
    /// first to store its result wins, the other's is dropped.
    private let parsedFields = Atomic<Unmanaged<ParsedFields>?>(nil)

    /// What ``parsedFields`` holds: a line's parsed fields, or that it has none.
    private final class ParsedFields: Sendable {
        let fields: LineFields?
        init(_ fields: LineFields?) { self.fields = fields }
    }

    public init(position: UInt64, payload: Payload, json: [UInt8], isArchived: Bool = false, publishedAt: UInt64 = 0) {
        self.position = position
        self.payload = payload
        self.json = json
        self.isArchived = isArchived
        self.publishedAt = publishedAt
        switch payload {
        case .line(let record):
            isLine = true
            message = record.message
            source = record.source
            path = record.path
            recordFields = record.fields
            byteCount = json.count + 64 + (record.fields?.storage.count ?? 0)
        case .event(let event):
            isLine = false
            message = ""
            source = event.source
            path = event.path
            recordFields = nil
            byteCount = json.count + 64
        }
    }

    deinit {
        parsedFields.load(ordering: .acquiring)?.release()
    }

    /// Calls `body` with a line's message as UTF-8 (empty for an event).
    /// Inlinable: the writers call it for every line, and unspecialized it
    /// would look up the result type's metadata each time.
    @inlinable
    public func withMessageBytes<Result>(_ body: (UnsafeRawBufferPointer) -> Result) -> Result {
        if let result = message.utf8.withContiguousStorageIfAvailable({ body(UnsafeRawBufferPointer($0)) }) {
            return result
        }
        var message = message  // bridged or small: made contiguous in a copy
        return message.withUTF8 { body(UnsafeRawBufferPointer($0)) }
    }

    /// A line read from an archive, shown before the line with `seq` `next`.
    public static func archived(_ record: LogRecord, before next: UInt64) -> HubEntry {
        HubEntry(position: next, payload: .line(record), json: ProtocolObject.encodedLine(record, seq: nil), isArchived: true)
    }

    /// A line of the stream, with its own `seq` in ``position``.
    public var hasSeq: Bool { isLine && !isArchived }

    /// Whether the entry is a line (not a source event); stored, so that
    /// the loops over every entry of a read test a flag rather than the payload.
    public let isLine: Bool

    /// The last `seq` a reader has passed once it has read this entry: a
    /// line's own, or for an event the one before the line it precedes.
    public var lastSeqCovered: UInt64 {
        hasSeq ? position : position - 1
    }

    /// What the entry costs to keep, for byte caps: its JSON, a source's
    /// fields, and 64 bytes for the rest. Computed once: queues and frames
    /// add it up per line.
    public let byteCount: Int

    /// The line's structured fields: the source's (a journal entry's), else
    /// those of its message, parsed by the first reader (by each of the
    /// first readers, when they race; one result is kept); nil for an event
    /// or a line without.
    public var fields: LineFields? {
        guard isLine else { return nil }
        if let recordFields { return recordFields }
        if let parsed = parsedFields.load(ordering: .acquiring) { return parsed.takeUnretainedValue().fields }
        let made = Unmanaged.passRetained(ParsedFields(FieldParser.fields(of: message)))
        let (stored, current) = parsedFields.compareExchange(expected: nil, desired: made, ordering: .acquiringAndReleasing)
        if stored { return made.takeUnretainedValue().fields }
        made.release()
        return current!.takeUnretainedValue().fields
    }

}
