import Foundation

/// How `logcast tail` prints lines.
public enum OutputMode: String, Sendable, CaseIterable {
    /// Time, host, source (and identifier[pid]), message; level-coloured.
    case short
    /// Each line object exactly as the server sent it.
    case json
    /// The message only.
    case cat
}

/// Turns the server's NDJSON objects into terminal output: lines for
/// stdout, notices (gaps, source events, errors) for stderr.
///
/// A pure value: tests feed it objects and compare strings.
public struct LineFormatter: Sendable {
    public var mode: OutputMode
    public var color: Bool

    public init(mode: OutputMode, color: Bool) {
        self.mode = mode
        self.color = color
    }

    /// What one received object means for the terminal.
    public enum Output: Equatable, Sendable {
        case line(seq: UInt64, text: String)
        case notice(String)
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
            guard let seq = (object["seq"] as? NSNumber)?.uint64Value else { return .ignored }
            return .line(seq: seq, text: lineText(object, raw: raw))
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
            default:
                return .notice("logcast: gap (\(reason))")
            }
        case "source":
            let source = object["source"] as? String ?? "?"
            let event = object["event"] as? String ?? "?"
            let path = (object["path"] as? String).map { " (\($0))" } ?? ""
            return .notice("logcast: — \(source) \(event)\(path) —")
        case "error":
            let hint = (object["hint"] as? String).map { " (\($0))" } ?? ""
            return .notice("logcast: server says: \(object["error"] as? String ?? "error")\(hint)")
        default:
            return .ignored
        }
    }

    func lineText(_ object: [String: Any], raw: Substring) -> String {
        let message = object["msg"] as? String ?? ""
        switch mode {
        case .json:
            return String(raw)
        case .cat:
            return message
        case .short:
            var text = ""
            let timestamp = Self.shortTime(object["ts"] as? String ?? "")
            text += paint(timestamp, "2")
            if let host = object["host"] as? String { text += " " + host }
            text += " " + paint(object["source"] as? String ?? "?", "36")
            if let identifier = object["identifier"] as? String {
                let pid = (object["pid"] as? NSNumber).map { "[\($0)]" } ?? ""
                text += " " + identifier + pid
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
