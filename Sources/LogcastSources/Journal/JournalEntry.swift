import LogcastHub
import LogcastProtocol

/// The fields of one journal entry that logcast uses, collected from the
/// `FIELD=value` data items sd-journal enumerates.
///
/// A pure value: the ``JournalTailer`` feeds it raw items, tests feed it
/// bytes, and ``record(source:timestamp:cursor:)`` turns it into a line with
/// the protocol's fields (`msg`, `priority`, `unit`, `identifier`, `pid`,
/// `host`). Unknown fields are ignored; a field seen twice keeps its last value.
public struct JournalEntry: Sendable, Equatable {
    /// MESSAGE, as stored: it may be binary or invalid UTF-8.
    public var message: [UInt8]?
    public var priority: Int?
    /// `_SYSTEMD_UNIT`
    public var systemUnit: String?
    /// `_SYSTEMD_USER_UNIT`
    public var userUnit: String?
    /// `SYSLOG_IDENTIFIER`
    public var identifier: String?
    /// `_HOSTNAME`
    public var hostName: String?
    /// `_PID`
    public var pid: Int?
    /// `_UID`
    public var uid: Int?
    /// `_BOOT_ID`
    public var bootID: String?
    /// `_SYSTEMD_INVOCATION_ID`
    public var invocationID: String?
    /// `_COMM`: the name of the process that wrote the entry.
    public var command: String?
    /// `UNIT`: the unit a message of PID 1 is about.
    public var subjectUnit: String?
    /// `OBJECT_SYSTEMD_UNIT`: the unit a message of a privileged daemon is about.
    public var objectUnit: String?
    /// `COREDUMP_UNIT`: the unit whose process dumped core.
    public var coredumpUnit: String?
    /// Every field of the entry but `MESSAGE` (which is `msg`) and binary
    /// ones (not valid UTF-8, or holding a control character other than tab
    /// and newline, as `journalctl -o json` tells them), in the order
    /// sd-journal gave them: what `field` filters and `fields` see.
    public var fields = LineFields()

    public init() {}

    private enum Field: CaseIterable {
        case message, priority, systemUnit, userUnit, identifier, hostName, pid, uid, bootID, invocationID, command
        case subjectUnit, objectUnit, coredumpUnit

        var name: [UInt8] {
            switch self {
            case .message: Array("MESSAGE".utf8)
            case .priority: Array("PRIORITY".utf8)
            case .systemUnit: Array("_SYSTEMD_UNIT".utf8)
            case .userUnit: Array("_SYSTEMD_USER_UNIT".utf8)
            case .identifier: Array("SYSLOG_IDENTIFIER".utf8)
            case .hostName: Array("_HOSTNAME".utf8)
            case .pid: Array("_PID".utf8)
            case .uid: Array("_UID".utf8)
            case .bootID: Array("_BOOT_ID".utf8)
            case .invocationID: Array("_SYSTEMD_INVOCATION_ID".utf8)
            case .command: Array("_COMM".utf8)
            case .subjectUnit: Array("UNIT".utf8)
            case .objectUnit: Array("OBJECT_SYSTEMD_UNIT".utf8)
            case .coredumpUnit: Array("COREDUMP_UNIT".utf8)
            }
        }
    }

    /// Field names by length, so most items are rejected by one comparison.
    private static let fieldsByLength: [Int: [(Field, [UInt8])]] = Dictionary(
        grouping: Field.allCases.map { ($0, $0.name) },
        by: { $0.1.count }
    )

    /// Takes one `FIELD=value` item; items without `=` are ignored.
    public mutating func add(_ item: UnsafeRawBufferPointer) {
        guard let equals = item.firstIndex(of: UInt8(ascii: "=")) else { return }
        let name = UnsafeRawBufferPointer(rebasing: item[..<equals])
        let value = UnsafeRawBufferPointer(rebasing: item[(equals + 1)...])
        if !(equals == 7 && name.elementsEqual("MESSAGE".utf8)), !Self.isBinary(value) {
            fields.append(name: name, value: value)
        }
        guard let candidates = Self.fieldsByLength[equals],
            let field = candidates.first(where: { $0.1.elementsEqual(name) })?.0
        else { return }
        func text() -> String { String(decoding: value, as: UTF8.self) }
        func number() -> Int? { Int(text()) }
        switch field {
        case .message: message = Array(value)
        case .priority: priority = number().flatMap { (0...7).contains($0) ? $0 : nil }
        case .systemUnit: systemUnit = text()
        case .userUnit: userUnit = text()
        case .identifier: identifier = text()
        case .hostName: hostName = text()
        case .pid: pid = number()
        case .uid: uid = number()
        case .bootID: bootID = text()
        case .invocationID: invocationID = text()
        case .command: command = text()
        case .subjectUnit: subjectUnit = text()
        case .objectUnit: objectUnit = text()
        case .coredumpUnit: coredumpUnit = text()
        }
    }

    /// Whether a value is binary data rather than text.
    static func isBinary(_ value: UnsafeRawBufferPointer) -> Bool {
        var ascii = true
        for byte in value {
            if byte < 0x20, byte != 0x09, byte != 0x0A { return true }
            if byte == 0x7F { return true }
            if byte >= 0x80 { ascii = false }
        }
        return !ascii && !LineFields.isValidUTF8(value)
    }

    /// Convenience for tests and literals: `add("PRIORITY=3")`.
    public mutating func add(_ item: String) {
        var bytes = Array(item.utf8)
        bytes.withUnsafeMutableBytes { add(UnsafeRawBufferPointer($0)) }
    }

    /// The unit the entry came from: `_SYSTEMD_UNIT`, else `_SYSTEMD_USER_UNIT`.
    public var unit: String? { systemUnit ?? userUnit }

    /// Another unit the entry belongs to for `unit` filters, as `journalctl -u`
    /// counts it: the unit PID 1 reports on (`UNIT`), the unit a root daemon
    /// reports on (`OBJECT_SYSTEMD_UNIT`) or that dumped core
    /// (`COREDUMP_UNIT`); for a user service, its user unit.
    public var relatedUnit: String? {
        if pid == 1, let subjectUnit { return subjectUnit }
        if uid == 0, let objectUnit { return objectUnit }
        if uid == 0, let coredumpUnit { return coredumpUnit }
        return systemUnit != nil ? userUnit : nil
    }

    /// The line for this entry. A binary or non-UTF-8 `MESSAGE` is decoded
    /// with U+FFFD for invalid bytes; line breaks inside it are kept (one
    /// entry is one record).
    public func record(source: String, timestamp: Timestamp, cursor: String?) -> LogRecord {
        var record = LogRecord(
            timestamp: timestamp,
            source: source,
            message: message.map { String(decoding: $0, as: UTF8.self) } ?? "",
            host: hostName,
            priority: priority,
            unit: unit,
            identifier: identifier,
            pid: pid,
            cursor: cursor
        )
        record.relatedUnit = relatedUnit
        if !fields.isEmpty { record.fields = fields }
        return record
    }
}
