#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A point in time, as microseconds since the Unix epoch (UTC).
///
/// Journal entries carry microsecond realtime stamps, and the protocol prints
/// `ts` with microseconds, so the whole project keeps time at that precision.
public struct Timestamp: Sendable, Hashable, Comparable {
    public var microseconds: Int64

    public init(microseconds: Int64) {
        self.microseconds = microseconds
    }

    /// 0001-01-01T00:00:00Z and 9999-12-31T23:59:59.999999Z, the range RFC 3339 can print.
    static let earliest: Int64 = -62_135_596_800 * 1_000_000
    static let latest: Int64 = 253_402_300_799 * 1_000_000 + 999_999

    /// The current wall-clock time.
    public static func now() -> Timestamp {
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME, &spec)
        return Timestamp(microseconds: Int64(spec.tv_sec) * 1_000_000 + Int64(spec.tv_nsec) / 1000)
    }

    public static func < (lhs: Timestamp, rhs: Timestamp) -> Bool {
        lhs.microseconds < rhs.microseconds
    }

    /// RFC 3339 in UTC with six fractional digits: `2026-11-25T09:05:29.123456Z`.
    public var rfc3339: String {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(27)
        appendRFC3339(to: &bytes)
        return String(decoding: bytes, as: UTF8.self)
    }

    /// The length of the RFC 3339 form: `2026-11-25T09:05:29.123456Z`.
    public static let rfc3339Count = 27

    /// Appends the RFC 3339 form without allocating a `String`.
    public func appendRFC3339(to out: inout [UInt8]) {
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: Self.rfc3339Count) { text in
            writeRFC3339(to: text.baseAddress!)
            out.append(contentsOf: UnsafeBufferPointer(rebasing: text[0..<Self.rfc3339Count]))
        }
    }

    /// Writes the RFC 3339 form's ``rfc3339Count`` bytes at `text`.
    public func writeRFC3339(to text: UnsafeMutablePointer<UInt8>) {
        // Years 0001...9999 only (a corrupt journal stamp must not crash the encoder).
        let micros = min(max(microseconds, Self.earliest), Self.latest)
        var seconds = micros / 1_000_000
        var fraction = micros % 1_000_000
        if fraction < 0 {
            fraction += 1_000_000
            seconds -= 1
        }
        var days = seconds / 86_400
        var secondOfDay = seconds % 86_400
        if secondOfDay < 0 {
            secondOfDay += 86_400
            days -= 1
        }
        // Civil-from-days (proleptic Gregorian), after Howard Hinnant's algorithm.
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let day = doy - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        let year = yoe + era * 400 + (month <= 2 ? 1 : 0)

        // YYYY-MM-DDTHH:MM:SS.ffffffZ
        func put(_ value: Int64, at offset: Int, digits: Int) {
            var rest = value
            for index in stride(from: offset + digits - 1, through: offset, by: -1) {
                text[index] = UInt8(ascii: "0") &+ UInt8(truncatingIfNeeded: rest % 10)
                rest /= 10
            }
        }
        put(year, at: 0, digits: 4)
        text[4] = UInt8(ascii: "-")
        put(month, at: 5, digits: 2)
        text[7] = UInt8(ascii: "-")
        put(day, at: 8, digits: 2)
        text[10] = UInt8(ascii: "T")
        put(secondOfDay / 3600, at: 11, digits: 2)
        text[13] = UInt8(ascii: ":")
        put(secondOfDay / 60 % 60, at: 14, digits: 2)
        text[16] = UInt8(ascii: ":")
        put(secondOfDay % 60, at: 17, digits: 2)
        text[19] = UInt8(ascii: ".")
        put(fraction, at: 20, digits: 6)
        text[26] = UInt8(ascii: "Z")
    }
}

/// One log line and what is known about it.
///
/// Fields that are unknown stay `nil` and are omitted from the wire form.
/// The hub assigns `seq`; sources never do.
public struct LogRecord: Sendable, Equatable {
    /// Journal realtime stamp, or the time a file line was read.
    public var timestamp: Timestamp
    /// The configured source name (`syslog`, `journal`, ...).
    public var source: String
    /// The text, valid UTF-8, without the line terminator.
    public var message: String
    public var host: String?
    /// For file sources: the file the line was read from.
    public var path: String?
    /// Syslog priority 0 (emerg) ... 7 (debug), when known.
    public var priority: Int?
    public var unit: String?
    public var identifier: String?
    public var pid: Int?
    /// For journal sources: the entry's cursor.
    public var cursor: String?
    /// For journal sources: a second unit this entry counts for in `unit`
    /// filters, as `journalctl -u` counts it (PID 1's messages about a unit,
    /// a root daemon's, a core dump's). Not sent on the wire.
    public var relatedUnit: String?
    /// A multi-line record (`--multiline`) that continues one cut at its
    /// line or byte bound (`"continued":true`).
    public var continued = false
    /// Structured fields the source gave: a journal entry's (every field
    /// but `MESSAGE` and binary ones), or a cluster peer's copy of them.
    /// Nil for file lines, whose fields are parsed from the message when a
    /// filter or a request needs them (``structuredFields``).
    public var fields: LineFields?

    /// The line's fields: those the source gave, else those of its message
    /// (``FieldParser``), parsed on every call (``HubEntry`` keeps them).
    public var structuredFields: LineFields? {
        fields ?? FieldParser.fields(of: message)
    }

    /// How many lines the message holds (`"lines"` on the wire when more than one).
    public var lineCount: Int {
        var message = message
        return message.withUTF8 { utf8 in
            guard var next = utf8.baseAddress else { return 1 }
            let end = next + utf8.count
            var count = 1
            while next < end, let found = memchr(next, Int32(UInt8(ascii: "\n")), end - next) {
                count += 1
                next = UnsafePointer(found.assumingMemoryBound(to: UInt8.self)) + 1
            }
            return count
        }
    }

    public init(
        timestamp: Timestamp,
        source: String,
        message: String,
        host: String? = nil,
        path: String? = nil,
        priority: Int? = nil,
        unit: String? = nil,
        identifier: String? = nil,
        pid: Int? = nil,
        cursor: String? = nil
    ) {
        self.timestamp = timestamp
        self.source = source
        self.message = message
        self.host = host
        self.path = path
        self.priority = priority
        self.unit = unit
        self.identifier = identifier
        self.pid = pid
        self.cursor = cursor
    }
}

/// Something that happened to a source, delivered in order with its lines.
public struct SourceEvent: Sendable, Equatable {
    /// The event names of docs/PROTOCOL.md.
    public enum Kind: String, Sendable, CaseIterable {
        /// The followed name now points at a new file; the old one was read to its end.
        case rotated
        /// The file shrank (copytruncate); reading restarted at offset 0.
        case truncated
        /// The file is gone (deleted, or absent at start); it is waited for.
        case missing
        /// The source was opened again after an error or on request.
        case reopened
        /// A file that was missing appeared, or a new file matched a glob; read from offset 0.
        case created
        /// A glob member that is not followed (compressed, not a regular file); `reason` says why.
        case skipped
        /// More was written while logcast was down than it may catch up on
        /// (`--max-catch-up-bytes`): `skippedBytes` were skipped. Sent as a
        /// `gap` with reason `downtime` (see ``ProtocolObject/entry(_:position:)``).
        case downtime
    }

    public var source: String
    public var kind: Kind
    public var path: String?
    /// Why, for `skipped`.
    public var reason: String?
    /// For `downtime`: how many bytes of the source were not read.
    public var skippedBytes: Int64?

    public init(source: String, kind: Kind, path: String? = nil, reason: String? = nil, skippedBytes: Int64? = nil) {
        self.source = source
        self.kind = kind
        self.path = path
        self.reason = reason
        self.skippedBytes = skippedBytes
    }
}
