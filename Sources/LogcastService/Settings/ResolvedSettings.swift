/// Every setting with a value: the given one (checked against its
/// definition) or the default, and where it came from for messages.
///
/// Reading a key with the wrong accessor for its kind is a programming
/// error and traps; `ResolvedSettingsTests` reads every key the right way.
public struct ResolvedSettings: Sendable {
    public let settings: Settings

    /// Checks every given value against the table.
    /// - Throws: the first bad value, in table order, as
    ///   `ORIGIN PROBLEM` (`c.yaml:3: history must be at least 1 (got 0)`).
    public init(_ settings: Settings) throws(ConfigurationError) {
        for key in SettingKey.allCases {
            guard let entry = settings.entries[key] else { continue }
            if let problem = key.definition.check(entry.value) {
                throw ConfigurationError("\(entry.origin) \(problem)")
            }
        }
        self.settings = settings
    }

    /// Where a key's value came from: `--key` for a flag or a default.
    public func origin(_ key: SettingKey) -> String {
        settings.origin(key) ?? key.flag
    }

    /// The value in effect, given or default (`nil`: unset, no default).
    public func value(_ key: SettingKey) -> SettingValue? {
        settings.entries[key]?.value ?? key.definition.defaultValue
    }

    public func integer(_ key: SettingKey) -> Int {
        precondition(key.definition.kind == .integer, "\(key) is not an integer setting")
        guard case .integer(let value)? = value(key) else { preconditionFailure("\(key) has no integer value") }
        return value
    }

    /// A number of seconds as a `Duration`.
    public func duration(_ key: SettingKey) -> Duration {
        precondition(key.definition.kind == .number, "\(key) is not a number setting")
        guard case .number(let seconds)? = value(key) else { preconditionFailure("\(key) has no number value") }
        return .milliseconds(Int((seconds * 1000).rounded()))
    }

    public func text(_ key: SettingKey) -> String? {
        precondition(key.definition.kind == .text, "\(key) is not a text setting")
        guard case .text(let value)? = value(key) else { return nil }
        return value
    }

    public func flag(_ key: SettingKey) -> Bool {
        precondition(key.definition.kind == .flag, "\(key) is not a switch")
        guard case .flag(let value)? = value(key) else { return false }
        return value
    }

    public func list(_ key: SettingKey) -> [String] {
        precondition(key.definition.kind == .list, "\(key) is not a list setting")
        guard case .list(let value)? = value(key) else { return [] }
        return value
    }
}
