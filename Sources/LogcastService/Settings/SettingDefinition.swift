import LogcastProtocol

/// A setting's value, as the config file, the environment or a flag gives it.
public enum SettingValue: Sendable, Equatable {
    case text(String)
    case integer(Int)
    case number(Double)
    case flag(Bool)
    case list([String])

    /// The value as JSON, which is also YAML: what `--check-config` prints.
    public var json: String {
        switch self {
        case .text(let text): Self.quoted(text)
        case .integer(let value): String(value)
        case .number(let value): String(value)
        case .flag(let value): String(value)
        case .list(let items): "[" + items.map(Self.quoted).joined(separator: ", ") + "]"
        }
    }

    /// The value as a person reads it in `--help`: `10000`, `drop`, `30.0`.
    var plain: String {
        switch self {
        case .text(let text): text
        case .list(let items): items.joined(separator: ", ")
        default: json
        }
    }

    static func quoted(_ text: String) -> String {
        String(decoding: JSONWriter.quotedString(text), as: UTF8.self)
    }
}

/// What one ``SettingKey`` is: its type, default, help and check.
///
/// A definition guarantees that its default passes its own check, so only
/// given values are checked (a unit test holds every definition to that).
public struct SettingDefinition: Sendable {
    public enum Kind: Sendable {
        case text, integer, number, flag, list
    }

    public var kind: Kind
    /// The default; `nil` when the setting is unset unless given, or the
    /// default is worked out at start (see ``emptyMeans``).
    public var defaultValue: SettingValue?
    /// What an unset setting means, for help and the README (`every unit`).
    public var emptyMeans: String?
    /// The placeholder of the value in help: `N`, `SECONDS`, `HOST:PORT`.
    public var valueName: String?
    public var help: String
    /// The problem with a given value, as the end of a sentence that begins
    /// with where the value came from (`--history`, `c.yaml:3: history`):
    /// `must be at least 1 (got 0)`. `nil` when the value is good.
    public var check: @Sendable (SettingValue) -> String?

    /// A repeatable setting; each item is checked by `checkEach`.
    static func list(
        _ valueName: String,
        _ help: String,
        emptyMeans: String? = nil,
        checkEach: @escaping @Sendable (String) -> String? = { _ in nil }
    ) -> SettingDefinition {
        SettingDefinition(kind: .list, defaultValue: .list([]), emptyMeans: emptyMeans, valueName: valueName, help: help) { value in
            guard case .list(let items) = value else { return nil }
            return items.lazy.compactMap(checkEach).first
        }
    }

    /// A switch, off unless given; `--no-KEY` turns it off again.
    static func flag(_ help: String) -> SettingDefinition {
        SettingDefinition(kind: .flag, defaultValue: .flag(false), valueName: nil, help: help) { _ in nil }
    }

    static func text(
        _ valueName: String,
        _ help: String,
        default defaultValue: String? = nil,
        emptyMeans: String? = nil,
        check: @escaping @Sendable (String) -> String? = { _ in nil }
    ) -> SettingDefinition {
        SettingDefinition(
            kind: .text,
            defaultValue: defaultValue.map(SettingValue.text),
            emptyMeans: emptyMeans,
            valueName: valueName,
            help: help
        ) { value in
            guard case .text(let text) = value else { return nil }
            return check(text)
        }
    }

    /// A file or directory; unset unless given.
    static func path(
        _ valueName: String,
        _ help: String,
        emptyMeans: String,
        check: @escaping @Sendable (String) -> String? = { _ in nil }
    ) -> SettingDefinition {
        text(valueName, help, emptyMeans: emptyMeans, check: check)
    }

    /// One of a few words.
    static func choice(_ help: String, _ choices: [String], default defaultValue: String, noun: String) -> SettingDefinition {
        let listed = choices.dropLast().joined(separator: ", ") + " or " + choices.last!
        return text(choices.joined(separator: "|"), help, default: defaultValue) {
            choices.contains($0) ? nil : "'\($0)' is not a \(noun); use \(listed)"
        }
    }

    static func integer(_ valueName: String, _ help: String, default defaultValue: Int, atLeast minimum: Int) -> SettingDefinition {
        SettingDefinition(kind: .integer, defaultValue: .integer(defaultValue), valueName: valueName, help: help) { value in
            guard case .integer(let number) = value, number < minimum else { return nil }
            return minimum == 0 ? "must be 0 or more (got \(number))" : "must be at least \(minimum) (got \(number))"
        }
    }

    /// A duration in seconds, between a tenth of a second and an hour.
    static func seconds(_ help: String, default defaultValue: Duration) -> SettingDefinition {
        let seconds = Double(defaultValue.components.seconds) + Double(defaultValue.components.attoseconds) / 1e18
        return SettingDefinition(kind: .number, defaultValue: .number(seconds), valueName: "SECONDS", help: help) { value in
            guard case .number(let number) = value, !(0.1...3600).contains(number) else { return nil }
            return "must be between 0.1 and 3600 seconds (got \(number))"
        }
    }
}
