import Foundation
import LogcastHub
import LogcastServer
import Testing

@testable import LogcastService

/// The settings table is the single source of every key: these tests hold
/// the flag parser, the checks, `--help` and the README to it.
@Suite struct SettingTableTests {
    @Test(arguments: SettingKey.allCases)
    func everyDefaultPassesItsOwnCheck(_ key: SettingKey) {
        let definition = key.definition
        if let value = definition.defaultValue {
            #expect(definition.check(value) == nil, "\(key): default \(value) fails its check")
        }
        #expect(!definition.help.isEmpty)
        #expect(definition.defaultValue != nil || definition.emptyMeans != nil, "\(key) says what unset means")
    }

    @Test(arguments: SettingKey.allCases)
    func everyKeyIsAFlagWithItsKindOfValue(_ key: SettingKey) throws {
        let sample: (arguments: [String], value: SettingValue) =
            switch key.definition.kind {
            case .flag: ([key.flag], .flag(true))
            case .list: ([key.flag, "a", key.flag + "=b"], .list(["a", "b"]))
            case .integer: ([key.flag + "=7"], .integer(7))
            case .number: ([key.flag, "2.5"], .number(2.5))
            case .text: ([key.flag, "x"], .text("x"))
            }
        let parsed = try ServeArguments(parsing: sample.arguments)
        #expect(parsed.settings.entries[key] == Settings.Entry(value: sample.value, origin: key.flag))
        #expect(parsed.settings.entries.count == 1)
    }

    @Test(arguments: SettingKey.allCases.filter { $0.definition.kind == .flag })
    func switchesTurnOffWithNo(_ key: SettingKey) throws {
        let parsed = try ServeArguments(parsing: [key.flag, "--no-" + key.rawValue])
        #expect(parsed.settings.flag(key) == false, "the last one wins")
        #expect(parsed.settings.origin(key) == "--no-\(key.rawValue)")
    }

    @Test func aFlagOverridesTheFileEvenToTurnASwitchOff() throws {
        let file = try Settings.parse(yaml: "journal: yes\ndemo: yes\n", path: "c.yaml")
        let flags = try ServeArguments(parsing: ["--no-journal"]).settings
        let merged = try ResolvedSettings(file.overridden(by: flags))
        #expect(merged.flag(.journal) == false)
        #expect(merged.flag(.demo) == true)
    }

    @Test(arguments: [
        (["--histroy", "5"], "unknown option '--histroy' (did you mean '--history'?)"),
        (["-q"], "unknown option '-q'"),
        (["--history"], "--history needs a value"),
        (["--history", "many"], "--history must be a whole number (got 'many')"),
        (["--ping-interval=soon"], "--ping-interval must be a number (got 'soon')"),
        (["--journal=perhaps"], "--journal must be true or false (got 'perhaps')"),
        (["--no-journal=yes"], "--no-journal takes no value"),
        (["--no-history"], "unknown option '--no-history'"),
        (["app.log"], "unexpected argument 'app.log'"),
        (["--config"], "--config needs a value"),
    ])
    func badCommandLinesSayWhatIsWrong(_ arguments: [String], _ expected: String) {
        #expect {
            try ServeArguments(parsing: arguments)
        } throws: { error in
            (error as? ConfigurationError)?.description.contains(expected) == true
        }
    }

    @Test func metaOptionsAreNotSettings() throws {
        let parsed = try ServeArguments(parsing: ["--check-config", "--config=/x.yaml", "-h", "--", "--queue", "3"])
        #expect(parsed.checkConfig && parsed.help && parsed.configPath == "/x.yaml")
        #expect(parsed.settings.integer(.queue) == 3)
    }

    @Test(arguments: [
        (SettingKey.history, SettingValue.integer(0), "--history must be at least 1 (got 0)"),
        (.initialLines, .integer(-1), "--initial-lines must be 0 or more (got -1)"),
        (.pingInterval, .number(0), "--ping-interval must be between 0.1 and 3600 seconds (got 0.0)"),
        (.filePollInterval, .number(3601), "--file-poll-interval must be between 0.1 and 3600 seconds (got 3601.0)"),
        (.slowConsumer, .text("panic"), "--slow-consumer 'panic' is not a policy; use catch-up, drop or disconnect"),
        (.logLevel, .text("loud"), "--log-level 'loud' is not a level; use trace, debug, info, notice, warning or error"),
        (.listen, .text("localhost"), "--listen 'localhost' is not HOST:PORT"),
        (.allowOrigin, .list(["https://ok.example", "ftp:/x"]), "--allow-origin 'ftp:/x' is not an origin"),
        (.allowHost, .list(["http://x/"]), "--allow-host 'http://x/' is not a host name"),
        (.webRoot, .text("/nonexistent"), "--web-root /nonexistent has no index.html"),
    ])
    func checksNameTheSettingAndTheValue(_ key: SettingKey, _ value: SettingValue, _ expected: String) {
        var settings = Settings()
        settings.set(key, value, origin: key.flag)
        #expect {
            try ResolvedSettings(settings)
        } throws: { error in
            (error as? ConfigurationError)?.description.hasPrefix(expected) == true
        }
    }

    @Test func theDefaultsBuildAConfiguration() throws {
        var settings = Settings()
        settings.set(.file, .list(["app=/var/log/app.log"]), origin: "--file")
        let configuration = try ServeConfiguration(settings: ResolvedSettings(settings))
        #expect(configuration.server.host == "127.0.0.1" && configuration.server.port == 8080)
        #expect(configuration.hub.historyLines == 10_000)
        #expect(configuration.sources == [SourceSpec(name: "app", kind: .file("/var/log/app.log"))])
        let report = configuration.report(routes: [])
        for key in SettingKey.allCases {
            #expect(report.contains("\n\(key.rawValue): "), "--check-config prints \(key)")
        }
    }

    @Test func helpListsEveryKey() {
        let help = ServeArguments.helpText()
        for key in SettingKey.allCases {
            #expect(help.contains("  \(key.flag)"), "--help lists \(key.flag)")
        }
        #expect(help.contains("--journal, --no-journal"))
    }

    /// The README's table of `logcast serve` flags names every key, and no
    /// key that does not exist.
    @Test func readmeListsEveryKey() throws {
        let readme = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../README.md")
        let text = try String(contentsOf: readme, encoding: .utf8)
        let start = try #require(text.range(of: "## Running"))
        let end = try #require(text.range(of: "\n## ", range: start.upperBound..<text.endIndex))
        let section = text[start.upperBound..<end.lowerBound]
        var listed = Set<String>()
        for line in section.split(separator: "\n") where line.hasPrefix("| `--") {
            let cell = line.dropFirst(2).prefix(while: { $0 != "|" })
            for flag in cell.split(separator: "`").filter({ $0.hasPrefix("--") }) {
                listed.insert(String(flag.split(separator: " ").first!.dropFirst(2)))
            }
        }
        let keys = Set(SettingKey.allCases.map(\.rawValue))
        #expect(keys.subtracting(listed).isEmpty, "missing from the README: \(keys.subtracting(listed).sorted())")
        let switchesOff = Set(SettingKey.allCases.filter { $0.definition.kind == .flag }.map { "no-" + $0.rawValue })
        let meta: Set<String> = switchesOff.union(["config", "check-config"])
        #expect(listed.subtracting(keys).subtracting(meta).isEmpty, "not settings: \(listed.subtracting(keys).sorted())")
    }
}
