import Foundation

/// The command line of `logcast serve`, parsed from the settings table.
///
/// Every ``SettingKey`` is a long flag: `--key VALUE` or `--key=VALUE`; a
/// list setting repeats (`--file a.log --file b.log`), and the flags of a
/// list replace the list the file or the environment gave. A switch is
/// `--journal`, and `--no-journal` turns it off when the file turns it on.
/// Besides the settings: `--config FILE`, `--check-config` and `--help`.
public struct ServeArguments: Sendable, Equatable {
    /// The settings the flags give, each with its flag as origin.
    public var settings = Settings()
    /// `--config FILE`: the config file, instead of the default one.
    public var configPath: String?
    /// `--check-config`: check, print the effective settings and exit.
    public var checkConfig = false
    /// `--help` or `-h`.
    public var help = false

    public init() {}

    public init(parsing arguments: [String]) throws(ConfigurationError) {
        var lists: [SettingKey: [String]] = [:]
        var index = arguments.startIndex
        while index < arguments.endIndex {
            let argument = arguments[index]
            index += 1
            guard argument.hasPrefix("-"), argument != "-" else {
                throw ConfigurationError(
                    "unexpected argument '\(argument)'; every setting is a flag (sources are --file [NAME=]PATH); see 'logcast serve --help'"
                )
            }
            if argument == "--" { continue }
            var name = String(argument.drop(while: { $0 == "-" }))
            var inline: String?
            if let equals = name.firstIndex(of: "=") {
                inline = String(name[name.index(after: equals)...])
                name = String(name[..<equals])
            }
            /// The flag's value: after `=`, else the next argument.
            func value(for display: String) throws(ConfigurationError) -> String {
                if let inline { return inline }
                guard index < arguments.endIndex else {
                    throw ConfigurationError("\(display) needs a value; see 'logcast serve --help'")
                }
                defer { index += 1 }
                return arguments[index]
            }
            switch name {
            case "h", "help":
                help = true
                continue
            case "check-config":
                checkConfig = true
                continue
            case "config":
                configPath = try value(for: "--config")
                continue
            default:
                break
            }
            if name.hasPrefix("no-"), let key = SettingKey(rawValue: String(name.dropFirst(3))), key.definition.kind == .flag {
                guard inline == nil else { throw ConfigurationError("--\(name) takes no value (got '\(inline!)')") }
                settings.set(key, .flag(false), origin: "--\(name)")
                continue
            }
            guard let key = SettingKey(rawValue: name), argument.hasPrefix("--") else {
                throw ConfigurationError("unknown option '\(argument)'\(Self.suggestion(for: name)); see 'logcast serve --help'")
            }
            switch key.definition.kind {
            case .flag:
                if let inline {
                    do {
                        settings.set(key, try Settings.scalar(inline, kind: .flag, origin: key.flag), origin: key.flag)
                    } catch {
                        throw ConfigurationError(error.description)
                    }
                } else {
                    settings.set(key, .flag(true), origin: key.flag)
                }
            case .list:
                lists[key, default: []].append(try value(for: key.flag))
                settings.set(key, .list(lists[key]!), origin: key.flag)
            case let kind:
                let text = try value(for: key.flag)
                do {
                    settings.set(key, try Settings.scalar(text, kind: kind, origin: key.flag), origin: key.flag)
                } catch {
                    throw ConfigurationError(error.description)
                }
            }
        }
    }

    /// ` (did you mean '--history'?)` for a near miss.
    static func suggestion(for name: String) -> String {
        let near = Settings.suggestion(for: name)
        guard !near.isEmpty else { return "" }
        return near.replacingOccurrences(of: "'", with: "'--", options: [], range: near.range(of: "'"))
    }

    /// `logcast serve --help`, from the table.
    public static func helpText(width: Int = 80) -> String {
        var out = """
            USAGE: logcast serve [--file [NAME=]PATH ...] [--journal] [options]

            Follow log files and the systemd journal and serve them over WebSocket, SSE and HTTP.
            With no source given, follows the system journal if readable, else /var/log/syslog or /var/log/messages.
            Every option can also be set in the config file (its long name as the key) or as LOGCAST_NAME
            in the environment; flags beat the environment, which beats the file.
            Example: logcast serve --journal --file app=/var/log/app.log --file '/var/log/nginx/*.log'

            OPTIONS:

            """
        func entry(_ flag: String, _ text: String) {
            out += "  " + flag + "\n"
            out += wrap(text, width: width - 8).map { "        " + $0 + "\n" }.joined()
        }
        for key in SettingKey.allCases {
            let definition = key.definition
            var flag = key.flag
            if let valueName = definition.valueName { flag += " " + valueName }
            if definition.kind == .flag { flag += ", --no-" + key.rawValue }
            var text = definition.help
            if let shown = definition.defaultValue, shown != .list([]), shown != .flag(false) {
                text += " (default: \(shown.plain))"
            } else if let empty = definition.emptyMeans {
                text += " (default: \(empty))"
            }
            entry(flag, text)
        }
        entry(
            "--config FILE",
            "A YAML file setting any of these options by their long names (default: /etc/logcast/config.yaml when present)."
        )
        entry(
            "--check-config",
            "Check the configuration (file, environment and flags, sources, TLS files, token file), print the effective settings and exit: "
                + "0 when valid, 2 otherwise."
        )
        entry("-h, --help", "Show this help.")
        return out
    }

    static func wrap(_ text: String, width: Int) -> [String] {
        var lines: [String] = []
        var line = ""
        for word in text.split(separator: " ") {
            if !line.isEmpty, line.count + 1 + word.count > width {
                lines.append(line)
                line = ""
            }
            line += (line.isEmpty ? "" : " ") + word
        }
        if !line.isEmpty { lines.append(line) }
        return lines
    }
}
