import Foundation
import LogcastProtocol

/// How `logcast tail` prints lines. The `short-*` and `with-unit` modes
/// print as `journalctl -o` does under the same names (local time, as the
/// `TZ` the process has); `short` is logcast's own.
public enum OutputMode: String, Sendable, CaseIterable {
    /// logcast's own: UTC time to the millisecond, host, source (and
    /// identifier[pid]), message; level-coloured. Not journalctl's `short`,
    /// which has neither the source nor the milliseconds.
    case short
    /// journalctl's: `2026-12-03T10:08:48+0000 host identifier[pid]: message`.
    case shortISO = "short-iso"
    /// journalctl's: `Dec 03 10:08:48.254194 host identifier[pid]: message`.
    case shortPrecise = "short-precise"
    /// journalctl's: `Thu 2026-12-03 10:08:48 UTC host identifier[pid]: message`.
    case shortFull = "short-full"
    /// journalctl's: as `short-full`, with the unit (when the line has one)
    /// in place of the identifier: `unit[pid]`.
    case withUnit = "with-unit"
    /// Each line object exactly as the server sent it (not journalctl's
    /// `json`, which prints journal fields).
    case json
    /// The message only.
    case cat
}

/// What `logcast tail` does with control characters in what the server sends.
public enum ControlCharacters: String, Sendable, CaseIterable {
    /// Shown visibly (`\x1b`, `\r`, `\x07`...): a log line cannot retitle,
    /// clear or rewrite the terminal. The default.
    case escape
    /// As `escape`, but SGR colour sequences (`ESC [ ... m`) in messages are
    /// kept, so coloured logs stay coloured.
    case color
    /// Every byte passed through as it came.
    case raw
}

/// Turns the server's NDJSON objects into terminal output: lines for
/// stdout, notices (gaps, source events, errors) for stderr.
///
/// Everything from the server that reaches the terminal in `short` and
/// `cat` output (messages, host, source, identifier, paths, error texts)
/// has its control characters made visible unless ``controls`` is `raw`;
/// tab and newline stay. A pure value: tests feed it objects and compare strings.
public struct LineFormatter: Sendable {
    public var mode: OutputMode
    public var color: Bool
    public var controls: ControlCharacters

    public init(mode: OutputMode, color: Bool, controls: ControlCharacters = .escape) {
        self.mode = mode
        self.color = color
        self.controls = controls
    }

    /// `text` with control characters made visible (see ``ControlCharacters``).
    public static func visible(_ text: String, keepSGR: Bool = false) -> String {
        guard text.unicodeScalars.contains(where: isControl) else { return text }
        var out = ""
        let scalars = Array(text.unicodeScalars)
        var index = 0
        while index < scalars.count {
            let scalar = scalars[index]
            if keepSGR, scalar == "\u{1B}", let end = sgrEnd(scalars, from: index) {
                out.unicodeScalars.append(contentsOf: scalars[index..<end])
                index = end
                continue
            }
            if isControl(scalar) {
                switch scalar {
                case "\r": out += "\\r"
                default: out += "\\x" + String(format: scalar.value < 0x100 ? "%02x" : "%04x", scalar.value)
                }
            } else {
                out.unicodeScalars.append(scalar)
            }
            index += 1
        }
        return out
    }

    /// C0 controls but tab and newline, DEL, C1 controls, and the bidi overrides.
    static func isControl(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0x09, 0x0A: false
        case 0x00...0x1F, 0x7F...0x9F: true
        case 0x202A...0x202E, 0x2066...0x2069: true
        default: false
        }
    }

    /// The end of an SGR sequence `ESC [ digits/;/: m` starting at `start`, if it is one.
    static func sgrEnd(_ scalars: [Unicode.Scalar], from start: Int) -> Int? {
        guard start + 2 < scalars.count, scalars[start + 1] == "[" else { return nil }
        var index = start + 2
        while index < scalars.count, index - start < 64 {
            let scalar = scalars[index]
            if scalar == "m" { return index + 1 }
            guard ("0"..."9").contains(scalar) || scalar == ";" || scalar == ":" else { return nil }
            index += 1
        }
        return nil
    }

    /// Server text on its way to the terminal.
    func shown(_ text: String, isMessage: Bool = false) -> String {
        switch controls {
        case .raw: text
        case .color: Self.visible(text, keepSGR: isMessage)
        case .escape: Self.visible(text)
        }
    }

    /// What one received object means for the terminal.
    public enum Output: Equatable, Sendable {
        /// A line; `seq` is nil for a line read from a source's archive (the
        /// journal) for a time range, which is not part of the stream.
        case line(seq: UInt64?, text: String)
        /// A line sent as context of a match (`"context":true`).
        case contextLine(seq: UInt64?, text: String)
        /// Between context groups that do not follow on: `--`, as grep prints.
        case separator(String)
        /// A warning or error for stderr: a gap, an error reply, something unreadable.
        case notice(String)
        /// Information for stderr that `-q` leaves out: a source event.
        case event(String)
        case hello(epoch: String)
        case restart(next: UInt64?, notice: String)
        case ignored
    }

    /// Interprets one NDJSON object (`raw` is its exact text).
    public func format(raw: Substring) -> Output {
        guard let data = raw.data(using: .utf8),
            let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
            let type = object["type"] as? String
        else { return .notice("logcast: the server sent something that is not a JSON object: \(raw.prefix(200))") }
        switch type {
        case "line":
            let seq = (object["seq"] as? NSNumber)?.uint64Value
            if object["context"] as? Bool == true { return .contextLine(seq: seq, text: lineText(object, raw: raw)) }
            return .line(seq: seq, text: lineText(object, raw: raw))
        case "separator":
            return .separator(mode == .json ? String(raw) : paint("--", "2"))
        case "hello":
            return .hello(epoch: object["epoch"] as? String ?? "")
        case "gap":
            let reason = object["reason"] as? String ?? "unknown"
            let missed = (object["missed"] as? NSNumber)?.intValue
            let next = (object["next"] as? NSNumber)?.uint64Value
            switch reason {
            case "slow-consumer":
                return .notice("logcast: \(missed ?? 0) lines skipped: this connection was too slow (the server dropped them)")
            case "evicted":
                return .notice("logcast: \(missed ?? 0) lines missed while disconnected: they left the server's history before the reconnect")
            case "restart":
                return .restart(next: next, notice: "logcast: the server restarted; lines written while it was down may be missing")
            case "downtime":
                let source = shown(object["source"] as? String ?? "?")
                let path = (object["path"] as? String).map { " (\(shown($0)))" } ?? ""
                let bytes = (object["skipped_bytes"] as? NSNumber)?.int64Value ?? 0
                return .notice(
                    "logcast: \(bytes) bytes of \(source)\(path) skipped: written while the server was down, more than it catches up on"
                )
            default:
                return .notice("logcast: gap (\(reason))")
            }
        case "source":
            let source = object["source"] as? String ?? "?"
            let event = object["event"] as? String ?? "?"
            let path = (object["path"] as? String).map { " (\(shown($0)))" } ?? ""
            let reason = (object["reason"] as? String).map { ": \(shown($0))" } ?? ""
            return .event("logcast: — \(shown(source)) \(shown(event))\(path)\(reason) —")
        case "error":
            let hint = (object["hint"] as? String).map { " (\(shown($0)))" } ?? ""
            return .notice("logcast: server says: \(shown(object["error"] as? String ?? "error"))\(hint)")
        default:
            return .ignored
        }
    }

    func lineText(_ object: [String: Any], raw: Substring) -> String {
        let message = shown(object["msg"] as? String ?? "", isMessage: true)
        switch mode {
        case .json:
            return String(raw)
        case .cat:
            return message
        case .shortISO, .shortPrecise, .shortFull, .withUnit:
            // As journalctl prints: a line without an identifier (a file's) shows its source in that place.
            var text = paint(Self.journalTime(object["ts"] as? String ?? "", mode: mode), "2")
            if let host = object["host"] as? String { text += " " + shown(host) }
            let pid = (object["pid"] as? NSNumber).map { "[\($0)]" } ?? ""
            if mode == .withUnit, let unit = object["unit"] as? String {
                text += " " + shown(unit) + pid
            } else if let identifier = object["identifier"] as? String {
                text += " " + shown(identifier) + pid
            } else {
                text += " " + shown(object["source"] as? String ?? "?")
            }
            return text + ": " + paint(message, Self.style(priority: (object["priority"] as? NSNumber)?.intValue))
        case .short:
            var text = ""
            let timestamp = Self.shortTime(object["ts"] as? String ?? "")
            text += paint(timestamp, "2")
            if let host = object["host"] as? String { text += " " + shown(host) }
            text += " " + paint(shown(object["source"] as? String ?? "?"), "36")
            if let identifier = object["identifier"] as? String {
                let pid = (object["pid"] as? NSNumber).map { "[\($0)]" } ?? ""
                text += " " + shown(identifier) + pid
            }
            text += ": "
            let priority = (object["priority"] as? NSNumber)?.intValue
            text += paint(message, Self.style(priority: priority))
            return text
        }
    }

    /// `2026-11-25T09:05:29.123456Z` → `2026-11-25T09:05:29.123Z`
    static func shortTime(_ ts: String) -> String {
        guard ts.count == 27, ts.hasSuffix("Z") else { return ts }
        return String(ts.prefix(23)) + "Z"
    }

    /// The time as `journalctl -o MODE` prints it, in local time (`ts` as
    /// it came when it is not a time).
    static func journalTime(_ ts: String, mode: OutputMode) -> String {
        guard let time = TimeBound.parse(ts), !ts.hasPrefix("-"), ts != "now" else { return ts }
        var seconds = time_t(time.microseconds / 1_000_000)
        var fraction = time.microseconds % 1_000_000
        if fraction < 0 {
            fraction += 1_000_000
            seconds -= 1
        }
        var parts = tm()
        guard localtime_r(&seconds, &parts) != nil else { return ts }
        let format: String
        switch mode {
        case .shortISO: format = "%Y-%m-%dT%H:%M:%S%z"
        case .shortPrecise: format = "%b %d %H:%M:%S"
        default: format = "%a %Y-%m-%d %H:%M:%S %Z"
        }
        var buffer = [CChar](repeating: 0, count: 64)
        let count = strftime(&buffer, buffer.count, format, &parts)
        let text = String(decoding: buffer[0..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return mode == .shortPrecise ? text + String(format: ".%06d", Int(fraction)) : text
    }

    /// journalctl's colours: emerg..err bold red, warning yellow, notice bold, debug grey.
    static func style(priority: Int?) -> String? {
        switch priority {
        case 0, 1, 2, 3: "1;31"
        case 4: "33"
        case 5: "1"
        case 7: "2"
        default: nil
        }
    }

    func paint(_ text: String, _ style: String?) -> String {
        guard color, let style else { return text }
        return "\u{1B}[\(style)m\(text)\u{1B}[0m"
    }
}
