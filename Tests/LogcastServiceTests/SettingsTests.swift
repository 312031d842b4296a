import Testing

@testable import LogcastService

@Suite struct SettingsTests {
    @Test func parsesEveryKindWithItsOrigin() throws {
        let yaml = """
            # comment
            listen: 0.0.0.0:80
            history: 1_000
            ping-interval: 2.5
            journal: yes
            file:
              - app=/var/log/app.log
              - /var/log/syslog
            allow-origin: https://a.example
            token-file:
            """
        let settings = try Settings.parse(yaml: yaml, path: "c.yaml")
        #expect(settings.text(.listen) == "0.0.0.0:80")
        #expect(settings.integer(.history) == 1000)
        #expect(settings.number(.pingInterval) == 2.5)
        #expect(settings.flag(.journal) == true)
        #expect(settings.list(.file) == ["app=/var/log/app.log", "/var/log/syslog"])
        #expect(settings.list(.allowOrigin) == ["https://a.example"], "a single value is a one-item list")
        #expect(settings.text(.tokenFile) == nil, "an empty value leaves the default")
        #expect(settings.origin(.history) == "c.yaml:3: history")
    }

    @Test func integersAreNumbersToo() throws {
        #expect(try Settings.parse(yaml: "sse-heartbeat: 3", path: "c").number(.sseHeartbeat) == 3)
    }

    @Test func anEmptyFileSetsNothing() throws {
        #expect(try Settings.parse(yaml: "", path: "c").entries.isEmpty)
        #expect(try Settings.parse(yaml: "# only a comment\n", path: "c").entries.isEmpty)
    }

    @Test(arguments: [
        ("histroy: 1", "c.yaml:1: unknown setting 'histroy' (did you mean 'history'?)"),
        ("history: ten", "c.yaml:1: history must be a whole number (got 'ten')"),
        ("journal: maybe", "c.yaml:1: journal must be true or false (got 'maybe')"),
        ("listen:\n  host: x", "c.yaml:1: listen must be a single value, not a mapping"),
        ("[1, 2]", "c.yaml:1: the file must be a mapping"),
        ("history: 1\nhistory: 2", "duplicated key(s): 'history'"),
    ])
    func badFilesNameFileLineAndKey(_ text: String, _ expected: String) {
        do {
            _ = try Settings.parse(yaml: text, path: "c.yaml")
            Issue.record("accepted \(text)")
        } catch {
            #expect(error.description.contains(expected), "\(error.description)")
        }
    }

    @Test func environmentVariablesUseTheKeyNames() throws {
        #expect(SettingKey.maxConnectionsPerAddress.environmentName == "LOGCAST_MAX_CONNECTIONS_PER_ADDRESS")
        let settings = try Settings.fromEnvironment(["LOGCAST_QUEUE": "5", "LOGCAST_FILE": "a=/x, b=/y", "LOGCAST_DEMO": "true", "OTHER": "1"])
        #expect(settings.integer(.queue) == 5)
        #expect(settings.list(.file) == ["a=/x", "b=/y"])
        #expect(settings.flag(.demo) == true)
        #expect(settings.origin(.queue) == "LOGCAST_QUEUE")
        #expect(throws: SettingsError.self) { try Settings.fromEnvironment(["LOGCAST_QUEUE": "many"]) }
    }

    @Test func laterSourcesOverrideEarlierOnes() throws {
        let file = try Settings.parse(yaml: "queue: 1\nhistory: 2", path: "c")
        let environment = try Settings.fromEnvironment(["LOGCAST_QUEUE": "3"])
        let merged = file.overridden(by: environment)
        #expect(merged.integer(.queue) == 3 && merged.integer(.history) == 2)
    }

    @Test func suggestionsOnlyForNearMisses() {
        #expect(Settings.suggestion(for: "histroy") == " (did you mean 'history'?)")
        #expect(Settings.suggestion(for: "completely-unrelated-thing") == "")
    }
}
