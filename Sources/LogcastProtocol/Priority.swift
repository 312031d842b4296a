/// Syslog priority levels, with the names `journalctl -p` accepts.
public enum Priority {
    /// Level names by number: `emerg` (0) ... `debug` (7).
    public static let names = ["emerg", "alert", "crit", "err", "warning", "notice", "info", "debug"]

    /// Parses one level: a name, an alias (`error`, `warn`, `panic`), or a digit `0`-`7`.
    public static func level(named text: String) -> Int? {
        let lower = text.lowercased()
        if let index = names.firstIndex(of: lower) { return index }
        switch lower {
        case "panic", "emergency": return 0
        case "critical": return 2
        case "error": return 3
        case "warn": return 4
        case "information": return 6
        default: break
        }
        if lower.count == 1, let digit = Int(lower), (0...7).contains(digit) { return digit }
        return nil
    }
}
