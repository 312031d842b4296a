import CSystemd
import Foundation
import Logging

#if canImport(Glibc)
import Glibc
#endif

/// logcast's own log, written to the journal in its native protocol when
/// stderr is the journal (`JOURNAL_STREAM` names stderr's device and inode,
/// as systemd sets it for `StandardError=journal`): each entry gets its
/// priority (so `journalctl -u logcast -p warning` works), its code
/// location, and every metadata key as a field of its own (`ADDRESS=`,
/// `SOURCE=`, ...), searchable with `journalctl -u logcast SOURCE=app`.
///
/// `MESSAGE` is the constant text followed by the metadata as `key=value`,
/// so the usual one-line view still shows everything. An entry journald
/// does not take (its socket gone) is written to stderr instead.
struct JournalLogHandler: LogHandler {
    let label: String
    var logLevel: Logger.Level
    var metadata: Logger.Metadata = [:]
    var metadataProvider: Logger.MetadataProvider?
    /// The process name journalctl shows (`SYSLOG_IDENTIFIER`).
    let identifier: String

    init(label: String, logLevel: Logger.Level, identifier: String = JournalLogHandler.processName) {
        self.label = label
        self.logLevel = logLevel
        self.identifier = identifier
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    /// Whether stderr is a journal stream: `JOURNAL_STREAM` is `DEVICE:INODE`
    /// of the very descriptor (a child that inherited the variable but not
    /// the stream must not take it for the journal).
    static func stderrIsJournal(environment: [String: String]) -> Bool {
        guard let value = environment["JOURNAL_STREAM"] else { return false }
        let parts = value.split(separator: ":")
        guard parts.count == 2, let device = UInt64(parts[0]), let inode = UInt64(parts[1]) else { return false }
        var status = stat()
        guard fstat(STDERR_FILENO, &status) == 0 else { return false }
        return UInt64(status.st_dev) == device && UInt64(status.st_ino) == inode
    }

    static var processName: String {
        (try? String(contentsOfFile: "/proc/self/comm", encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines) ?? "logcast"
    }

    /// swift-log's levels as syslog priorities (what `journalctl -p` filters on).
    static func priority(_ level: Logger.Level) -> Int {
        switch level {
        case .trace, .debug: 7
        case .info: 6
        case .notice: 5
        case .warning: 4
        case .error: 3
        case .critical: 2
        }
    }

    /// Fields the journal gives a meaning of its own: metadata keys that
    /// would land on one get a `LOGCAST_` prefix instead.
    static let reserved: Set<String> = [
        "MESSAGE", "MESSAGE_ID", "PRIORITY", "CODE_FILE", "CODE_LINE", "CODE_FUNC", "ERRNO", "SYSLOG_FACILITY", "SYSLOG_IDENTIFIER",
        "SYSLOG_PID", "SYSLOG_TIMESTAMP", "SYSLOG_RAW", "DOCUMENTATION", "TID", "INVOCATION_ID", "UNIT", "USER_UNIT", "LOGGER",
    ]

    /// A metadata key as a journal field name: upper case, `A-Z0-9_` only
    /// (anything else becomes `_`), beginning with a letter, at most 64 bytes.
    static func fieldName(_ key: String) -> String {
        var name = String(
            key.uppercased().unicodeScalars.map { scalar -> Character in
                ("A"..."Z").contains(scalar) || ("0"..."9").contains(scalar) ? Character(scalar) : "_"
            }
        )
        if name.first.map({ !("A"..."Z").contains($0) }) ?? true { name = "LOGCAST_" + name }
        if reserved.contains(name) { name = "LOGCAST_" + name }
        return String(name.prefix(64))
    }

    /// The fields of one entry, in the order they are sent.
    func fields(
        level: Logger.Level,
        message: Logger.Message,
        metadata extra: Logger.Metadata?,
        file: String,
        function: String,
        line: UInt
    )
        -> [String]
    {
        var all = metadata
        if let provided = metadataProvider?.get() { all.merge(provided) { $1 } }
        if let extra { all.merge(extra) { $1 } }
        let sorted = all.sorted { $0.key < $1.key }
        let text = ([message.description] + sorted.map { "\($0.key)=\($0.value)" }).joined(separator: " ")
        var fields = [
            "MESSAGE=\(text)",
            "PRIORITY=\(Self.priority(level))",
            "SYSLOG_IDENTIFIER=\(identifier)",
            "LOGGER=\(label)",
            "CODE_FILE=\(file)",
            "CODE_LINE=\(line)",
            "CODE_FUNC=\(function)",
        ]
        var seen: Set<String> = []
        for (key, value) in sorted {
            var name = Self.fieldName(key)
            while !seen.insert(name).inserted { name = String((name + "_").suffix(64)) }
            fields.append("\(name)=\(value)")
        }
        return fields
    }

    func log(event: LogEvent) {
        let fields = fields(
            level: event.level,
            message: event.message,
            metadata: event.metadata,
            file: event.file,
            function: event.function,
            line: event.line
        )
        let level = event.level
        if Self.send(fields) { return }
        FileHandle.standardError.write(Data("<\(Self.priority(level))>\(fields[0].dropFirst("MESSAGE=".count))\n".utf8))
    }

    /// Sends one entry with `sd_journal_sendv` (values may hold any bytes, newlines included).
    static func send(_ fields: [String]) -> Bool {
        let buffers = fields.map { field -> UnsafeMutableBufferPointer<UInt8> in
            let bytes = Array(field.utf8)
            let buffer = UnsafeMutableBufferPointer<UInt8>.allocate(capacity: max(bytes.count, 1))
            _ = buffer.initialize(from: bytes)
            return UnsafeMutableBufferPointer(rebasing: buffer[0..<bytes.count])
        }
        defer { for buffer in buffers { UnsafeMutableBufferPointer(start: buffer.baseAddress, count: max(buffer.count, 1)).deallocate() } }
        let vectors = buffers.map { iovec(iov_base: UnsafeMutableRawPointer($0.baseAddress), iov_len: $0.count) }
        return vectors.withUnsafeBufferPointer { sd_journal_sendv($0.baseAddress, Int32($0.count)) } == 0
    }
}
