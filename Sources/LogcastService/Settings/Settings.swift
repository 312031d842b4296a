import Foundation
import Yams

/// The settings of `logcast serve` from a YAML config file and `LOGCAST_*`
/// environment variables; command-line flags override both, and the
/// environment overrides the file.
///
/// Keys are the long flag names (`listen`, `history`, `file`, ...); a
/// repeatable flag takes a list (or a single value). Every value remembers
/// where it came from, so a bad one is reported with its file and line
/// (`/etc/logcast/config.yaml:7: history must be at least 1 (got 0)`).
public struct Settings: Sendable, Equatable {
    public struct Entry: Sendable, Equatable {
        public var value: SettingValue
        /// `FILE:LINE: key`, `LOGCAST_KEY` or `--key`, for messages.
        public var origin: String
    }

    public private(set) var entries: [SettingKey: Entry] = [:]

    public init() {}

    /// Sets one value (the flag parser's way in).
    public mutating func set(_ key: SettingKey, _ value: SettingValue, origin: String) {
        entries[key] = Entry(value: value, origin: origin)
    }

    /// Parses a config file's text.
    /// - Throws: ``SettingsError`` naming the file, line and key.
    public static func parse(yaml: String, path: String) throws(SettingsError) -> Settings {
        let root: Node?
        do {
            root = try Yams.compose(yaml: yaml)
        } catch let error as YamlError {
            throw SettingsError("\(path): not valid YAML: \(Self.describe(error))")
        } catch {
            throw SettingsError("\(path): not valid YAML: \(error)")
        }
        var settings = Settings()
        guard let root else { return settings }  // an empty file sets nothing
        guard let mapping = root.mapping else {
            throw SettingsError("\(path):\(line(root)): the file must be a mapping of settings (key: value), e.g. 'listen: 127.0.0.1:8080'")
        }
        for (keyNode, valueNode) in mapping {
            guard let key = keyNode.scalar?.string else {
                throw SettingsError("\(path):\(line(keyNode)): setting names must be plain words")
            }
            let origin = "\(path):\(line(keyNode)): \(key)"
            guard let settingKey = SettingKey(rawValue: key) else {
                throw SettingsError(
                    "\(path):\(line(keyNode)): unknown setting '\(key)'\(suggestion(for: key)); settings are the long flags of 'logcast "
                        + "serve': \(SettingKey.allCases.map(\.rawValue).sorted().joined(separator: ", "))"
                )
            }
            let kind = settingKey.definition.kind
            if let scalar = valueNode.scalar, scalar.style == .plain, ["null", "~", "", "Null", "NULL"].contains(scalar.string) {
                continue  // `key: null` (or nothing) leaves the default
            }
            settings.entries[settingKey] = Entry(value: try value(valueNode, kind: kind, origin: origin), origin: origin)
        }
        return settings
    }

    /// Reads `LOGCAST_*` variables for every key (lists comma-separated).
    public static func fromEnvironment(_ environment: [String: String]) throws(SettingsError) -> Settings {
        var settings = Settings()
        for key in SettingKey.allCases {
            let kind = key.definition.kind
            let name = key.environmentName
            guard let text = environment[name], !text.isEmpty else { continue }
            let value: SettingValue
            switch kind {
            case .list:
                value = .list(text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty })
            default:
                value = try scalar(text, kind: kind, origin: name)
            }
            settings.entries[key] = Entry(value: value, origin: name)
        }
        return settings
    }

    /// `self`, with every value `other` has replacing this one's.
    public func overridden(by other: Settings) -> Settings {
        var merged = self
        for (key, entry) in other.entries { merged.entries[key] = entry }
        return merged
    }

    public func text(_ key: SettingKey) -> String? {
        if case .text(let value)? = entries[key]?.value { return value }
        return nil
    }

    public func integer(_ key: SettingKey) -> Int? {
        if case .integer(let value)? = entries[key]?.value { return value }
        return nil
    }

    public func number(_ key: SettingKey) -> Double? {
        switch entries[key]?.value {
        case .number(let value)?: value
        case .integer(let value)?: Double(value)
        default: nil
        }
    }

    public func flag(_ key: SettingKey) -> Bool? {
        if case .flag(let value)? = entries[key]?.value { return value }
        return nil
    }

    public func list(_ key: SettingKey) -> [String]? {
        if case .list(let value)? = entries[key]?.value { return value }
        return nil
    }

    public func origin(_ key: SettingKey) -> String? {
        entries[key]?.origin
    }

    // MARK: Values

    static func value(_ node: Node, kind: SettingDefinition.Kind, origin: String) throws(SettingsError) -> SettingValue {
        if kind == .list {
            if let sequence = node.sequence {
                var items: [String] = []
                for item in sequence {
                    guard let text = item.scalar?.string else {
                        throw SettingsError("\(origin): list items must be plain values (e.g. - app=/var/log/app.log)")
                    }
                    items.append(text)
                }
                return .list(items)
            }
            guard let text = node.scalar?.string else {
                throw SettingsError("\(origin) must be a value or a list of values")
            }
            return .list([text])
        }
        guard let scalar = node.scalar else {
            throw SettingsError("\(origin) must be a single value, not a \(node.sequence != nil ? "list" : "mapping")")
        }
        return try Self.scalar(scalar.string, kind: kind, origin: origin)
    }

    static func scalar(_ text: String, kind: SettingDefinition.Kind, origin: String) throws(SettingsError) -> SettingValue {
        switch kind {
        case .text:
            return .text(text)
        case .integer:
            guard let value = Int(text.replacingOccurrences(of: "_", with: "")) else {
                throw SettingsError("\(origin) must be a whole number (got '\(text)')")
            }
            return .integer(value)
        case .number:
            guard let value = Double(text), value.isFinite else {
                throw SettingsError("\(origin) must be a number (got '\(text)')")
            }
            return .number(value)
        case .flag:
            switch text.lowercased() {
            case "true", "yes", "on", "1": return .flag(true)
            case "false", "no", "off", "0": return .flag(false)
            default: throw SettingsError("\(origin) must be true or false (got '\(text)')")
            }
        case .list:
            return .list([text])
        }
    }

    static func line(_ node: Node) -> Int {
        (node.mark?.line ?? 0)
    }

    /// ` (did you mean 'history'?)` for a near miss.
    static func suggestion(for key: String) -> String {
        let scored: [(String, Int)] = SettingKey.allCases.map { ($0.rawValue, editDistance($0.rawValue, key)) }
        let best = scored.min { $0.1 < $1.1 || ($0.1 == $1.1 && $0.0 < $1.0) }
        guard let best, best.1 <= max(2, key.count / 3) else { return "" }
        return " (did you mean '\(best.0)'?)"
    }

    static func editDistance(_ a: String, _ b: String) -> Int {
        let a = Array(a)
        let b = Array(b)
        var previous = Array(0...b.count)
        for (i, x) in a.enumerated() {
            var current = [i + 1]
            for (j, y) in b.enumerated() {
                let deletion: Int = previous[j + 1] + 1
                let insertion: Int = current[j] + 1
                let substitution: Int = previous[j] + (x == y ? 0 : 1)
                current.append(Swift.min(deletion, insertion, substitution))
            }
            previous = current
        }
        return previous[b.count]
    }

    static func describe(_ error: YamlError) -> String {
        switch error {
        case .scanner(let context, let problem, let mark, _), .parser(let context, let problem, let mark, _):
            return "line \(mark.line), column \(mark.column): \(problem)\(context.map { " \($0.text)" } ?? "")"
        default:
            return "\(error)"
        }
    }
}

/// A config file or environment value that cannot be used.
public struct SettingsError: Error, Sendable, CustomStringConvertible {
    public var description: String
    init(_ description: String) { self.description = description }
}
