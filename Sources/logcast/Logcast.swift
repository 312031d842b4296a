import ArgumentParser
import Foundation
import LogcastCore
import LogcastServer
import Logging
import NIOSSL
import ServiceLifecycle
import UnixSignals

#if canImport(Glibc)
import Glibc
#endif

@main
struct Logcast: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "logcast",
        abstract: "Real-time log tailing over WebSocket: follows files like tail -F and the journal like journalctl -f, and streams them to subscribers.",
        version: LogcastVersion.string,
        subcommands: [Serve.self, Tail.self]
    )
}

/// Exit code for configuration errors (bad flags, nothing to follow).
let configurationErrorExitCode: Int32 = 2

struct ConfigurationError: Error, CustomStringConvertible {
    var description: String
}

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Follow log files and the systemd journal and serve them over WebSocket.",
        discussion: """
            With no source given, follows the system journal if readable, else /var/log/syslog or /var/log/messages.
            Example: logcast serve --journal --file app=/var/log/app.log --file '/var/log/nginx/*.log'
            """
    )

    @Option(name: .customLong("file"), help: ArgumentHelp("A file to follow, as [NAME=]PATH; PATH may be a glob like '/var/log/nginx/*.log'. Repeatable.", valueName: "[NAME=]PATH"))
    var files: [String] = []

    @Flag(help: "Follow the local systemd journal (source 'journal'), like journalctl -f. Needs membership in the systemd-journal or adm group.")
    var journal = false

    @Option(name: .customLong("journal-directory"), help: ArgumentHelp("Follow the journal files in a directory, as [NAME=]DIR (like journalctl --directory; NAME defaults to 'journal'). Repeatable.", valueName: "[NAME=]DIR"))
    var journalDirectories: [String] = []

    @Option(name: .customLong("journal-file"), help: ArgumentHelp("Follow a journal file, as [NAME=]FILE (like journalctl --file; NAME defaults to 'journal'; files with the same NAME form one source). Repeatable.", valueName: "[NAME=]FILE"))
    var journalFiles: [String] = []

    @Option(name: .customLong("journal-unit"), help: ArgumentHelp("Read only this unit's entries from the journal sources, like journalctl -u ('nginx' means nginx.service). Repeatable.", valueName: "UNIT"))
    var journalUnits: [String] = []

    @Flag(help: "Add a 'demo' source that writes a realistic mixed-level log, to see logcast working at once.")
    var demo = false

    @Option(help: ArgumentHelp("Address to listen on; port 0 picks a free port (default: 127.0.0.1:8080).", valueName: "HOST:PORT"))
    var listen: String?

    @Option(help: "Lines kept for backlog and resume, also capped at --history-bytes (default: 10000).")
    var history: Int?

    @Option(help: "Bytes of history kept at most (default: 67108864).")
    var historyBytes: Int?

    @Option(help: "Existing lines of each file (entries of each journal) loaded into history at start, like tail -n (default: 10).")
    var initialLines: Int?

    @Option(help: "Lines each subscriber's queue holds, also capped at --queue-bytes (default: 16384).")
    var queue: Int?

    @Option(help: "Bytes each subscriber's queue holds at most (default: 33554432).")
    var queueBytes: Int?

    @Option(help: ArgumentHelp("What to do with a subscriber whose queue is full: drop (oldest lines, with a gap event; the default) or disconnect (close 1013).", valueName: "drop|disconnect"))
    var slowConsumer: String?

    @Option(help: "Seconds between WebSocket pings; silent connections are closed after two (default: 30).")
    var pingInterval: Double?

    @Option(help: "Directory of the browser viewer (default: the installed ../share/logcast/web beside the binary, or the source tree's web/ for a build; never the working directory).")
    var webRoot: String?

    @Option(help: "Seconds between comment lines on an idle /sse stream, so proxies keep it open (default: 15).")
    var sseHeartbeat: Double?

    @Option(help: ArgumentHelp("Require a bearer token on every route but /healthz and the viewer's files: a file with one token per line.", valueName: "FILE"))
    var tokenFile: String?

    @Option(name: .customLong("allow-origin"), help: ArgumentHelp("Let pages from this origin connect, besides the server's own (e.g. https://logs.example.com; '*' allows every origin). Repeatable.", valueName: "ORIGIN"))
    var allowedOrigins: [String] = []

    @Option(name: .customLong("allow-host"), help: ArgumentHelp("Answer requests whose Host header is this name, besides the server's own (localhost, IP addresses, the listen address, --host-name); others get 421, against DNS rebinding. '*' accepts any. Repeatable.", valueName: "NAME"))
    var allowedHosts: [String] = []

    @Option(help: "Streams served at once; more are refused with 503 and Retry-After (default: 1024).")
    var maxSubscribers: Int?

    @Option(help: "Streams one client address may hold at once; more are refused with 429 (default: 64).")
    var maxConnectionsPerAddress: Int?

    @Option(help: "Connections of any kind open at once, also capped at the descriptor limit less 128 kept for the sources; more are closed when accepted (default: 4096).")
    var maxConnections: Int?

    @Option(help: "Seconds a new connection may take to send a complete request head (TLS handshake included) before it is closed (default: 10).")
    var requestHeadTimeout: Double?

    @Option(help: ArgumentHelp("Serve https and wss with this PEM certificate (chain); needs --tls-key.", valueName: "FILE"))
    var tlsCert: String?

    @Option(help: ArgumentHelp("The PEM private key of --tls-cert.", valueName: "FILE"))
    var tlsKey: String?

    @Option(help: ArgumentHelp("A YAML file setting any of these options by their long names (default: /etc/logcast/config.yaml when present). Flags override it; LOGCAST_* environment variables too.", valueName: "FILE"))
    var config: String?

    @Flag(help: "Check the configuration (file, environment and flags, sources, TLS files, token file), print a summary and exit: 0 when valid, 2 otherwise.")
    var checkConfig = false

    @Option(help: "Host name reported in lines and hello (default: this machine's).")
    var hostName: String?

    @Option(help: ArgumentHelp("Log level of logcast's own log on stderr (default: info).", valueName: "trace|debug|info|notice|warning|error"))
    var logLevel: String?

    func run() async throws {
        do {
            try await serve()
        } catch let error as ConfigurationError {
            FileHandle.standardError.write(Data("logcast: \(error.description)\n".utf8))
            throw ExitCode(configurationErrorExitCode)
        }
    }

    /// The default config file, read when present and no --config is given.
    static let defaultConfigPath = "/etc/logcast/config.yaml"

    /// The config file (if any) overridden by the environment.
    func loadSettings() throws -> Settings {
        var file = Settings()
        let path = config ?? (FileManager.default.fileExists(atPath: Self.defaultConfigPath) ? Self.defaultConfigPath : nil)
        if let path {
            guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
                let reason = FileManager.default.fileExists(atPath: path) ? "cannot be read (permissions, or not UTF-8 text)" : "does not exist"
                throw ConfigurationError(description: "--config \(path) \(reason)")
            }
            do {
                file = try Settings.parse(yaml: text, path: path)
            } catch {
                throw ConfigurationError(description: error.description)
            }
        }
        do {
            return file.overridden(by: try Settings.fromEnvironment(ProcessInfo.processInfo.environment))
        } catch {
            throw ConfigurationError(description: error.description)
        }
    }

    func serve() async throws {
        let settings = try loadSettings()
        /// A value from the flag, else the environment or file, else the default; and the name to blame in messages.
        func pick<T>(_ key: String, _ flag: T?, _ read: (String) -> T?, _ fallback: T) -> (T, String) {
            if let flag { return (flag, "--\(key)") }
            if let value = read(key), let origin = settings.origin(key) { return (value, origin) }
            return (fallback, "--\(key)")
        }
        func pickOptional(_ key: String, _ flag: String?) -> (String?, String) {
            if let flag { return (flag, "--\(key)") }
            if let value = settings.text(key), let origin = settings.origin(key) { return (value, origin) }
            return (nil, "--\(key)")
        }
        func pickList(_ key: String, _ flag: [String]) -> (values: [String], label: String) {
            if !flag.isEmpty { return (flag, "--\(key)") }
            return (settings.list(key) ?? [], settings.origin(key) ?? "--\(key)")
        }
        let (logLevel, logLevelName) = pick("log-level", self.logLevel, settings.text, "info")
        let (listen, listenName) = pick("listen", self.listen, settings.text, "127.0.0.1:8080")
        let (history, historyName) = pick("history", self.history, settings.integer, 10_000)
        let (historyBytes, historyBytesName) = pick("history-bytes", self.historyBytes, settings.integer, 64 * 1024 * 1024)
        let (initialLines, initialLinesName) = pick("initial-lines", self.initialLines, settings.integer, 10)
        let (queue, queueName) = pick("queue", self.queue, settings.integer, 16_384)
        let (queueBytes, queueBytesName) = pick("queue-bytes", self.queueBytes, settings.integer, 32 * 1024 * 1024)
        let (slowConsumer, slowConsumerName) = pick("slow-consumer", self.slowConsumer, settings.text, "drop")
        let (pingInterval, pingIntervalName) = pick("ping-interval", self.pingInterval, settings.number, 30)
        let (sseHeartbeat, sseHeartbeatName) = pick("sse-heartbeat", self.sseHeartbeat, settings.number, 15)
        let (maxSubscribers, maxSubscribersName) = pick("max-subscribers", self.maxSubscribers, settings.integer, 1024)
        let (maxConnectionsPerAddress, maxConnectionsName) = pick("max-connections-per-address", self.maxConnectionsPerAddress, settings.integer, 64)
        let (maxConnections, maxConnectionsTotalName) = pick("max-connections", self.maxConnections, settings.integer, 4096)
        let (requestHeadTimeout, requestHeadTimeoutName) = pick("request-head-timeout", self.requestHeadTimeout, settings.number, 10)
        let (tokenFile, tokenFileName) = pickOptional("token-file", self.tokenFile)
        let (tlsCert, tlsCertName) = pickOptional("tls-cert", self.tlsCert)
        let (tlsKey, tlsKeyName) = pickOptional("tls-key", self.tlsKey)
        let (webRoot, webRootName) = pickOptional("web-root", self.webRoot)
        let (hostNameSetting, _) = pickOptional("host-name", self.hostName)
        let files = pickList("file", self.files)
        let journalDirectories = pickList("journal-directory", self.journalDirectories)
        let journalFiles = pickList("journal-file", self.journalFiles)
        let journalUnits = pickList("journal-unit", self.journalUnits)
        let allowedOrigins = pickList("allow-origin", self.allowedOrigins)
        let allowedHosts = pickList("allow-host", self.allowedHosts)
        let journal = self.journal || (settings.flag("journal") ?? false)
        let demo = self.demo || (settings.flag("demo") ?? false)

        guard let level = Logger.Level(rawValue: logLevel) else {
            throw ConfigurationError(description: "\(logLevelName) '\(logLevel)' is not a level; use trace, debug, info, notice, warning or error")
        }
        if !checkConfig {
            LoggingSystem.bootstrap { label in
                var handler = StreamLogHandler.standardError(label: label)
                handler.logLevel = level
                return handler
            }
        }
        let logger = Logger(label: "logcast")

        let (host, port) = try Self.parseListen(listen, name: listenName)
        guard history > 0 else { throw ConfigurationError(description: "\(historyName) must be at least 1 (got \(history))") }
        guard historyBytes >= 1024 else { throw ConfigurationError(description: "\(historyBytesName) must be at least 1024 (got \(historyBytes))") }
        guard initialLines >= 0 else { throw ConfigurationError(description: "\(initialLinesName) must be 0 or more (got \(initialLines))") }
        guard queue > 0 else { throw ConfigurationError(description: "\(queueName) must be at least 1 (got \(queue))") }
        guard queueBytes >= 1024 else { throw ConfigurationError(description: "\(queueBytesName) must be at least 1024 (got \(queueBytes))") }
        guard let policy = SlowConsumerPolicy(rawValue: slowConsumer) else {
            throw ConfigurationError(description: "\(slowConsumerName) '\(slowConsumer)' is not a policy; use drop or disconnect")
        }
        guard pingInterval >= 0.1, pingInterval <= 3600 else {
            throw ConfigurationError(description: "\(pingIntervalName) must be between 0.1 and 3600 seconds (got \(pingInterval))")
        }
        guard sseHeartbeat >= 0.1, sseHeartbeat <= 3600 else {
            throw ConfigurationError(description: "\(sseHeartbeatName) must be between 0.1 and 3600 seconds (got \(sseHeartbeat))")
        }
        guard maxSubscribers >= 1 else { throw ConfigurationError(description: "\(maxSubscribersName) must be at least 1 (got \(maxSubscribers))") }
        guard maxConnectionsPerAddress >= 1 else {
            throw ConfigurationError(description: "\(maxConnectionsName) must be at least 1 (got \(maxConnectionsPerAddress))")
        }
        guard maxConnections >= 1 else { throw ConfigurationError(description: "\(maxConnectionsTotalName) must be at least 1 (got \(maxConnections))") }
        guard requestHeadTimeout >= 0.1, requestHeadTimeout <= 3600 else {
            throw ConfigurationError(description: "\(requestHeadTimeoutName) must be between 0.1 and 3600 seconds (got \(requestHeadTimeout))")
        }
        var tokens: TokenStore?
        if let path = tokenFile {
            do {
                tokens = try TokenStore(path: path)
            } catch {
                throw ConfigurationError(description: "\(tokenFileName): \(error.description)")
            }
        }
        for origin in allowedOrigins.values where origin != "*" && AccessPolicy.normalizedOrigin(origin) == nil {
            throw ConfigurationError(description: "\(allowedOrigins.label) '\(origin)' is not an origin; use scheme://host[:port], e.g. https://logs.example.com")
        }
        for name in allowedHosts.values where name != "*" && HostPolicy.name(ofHostHeader: name) == nil {
            throw ConfigurationError(description: "\(allowedHosts.label) '\(name)' is not a host name; give a name such as logs.example.com (no scheme, no path)")
        }
        var tlsContext: NIOSSLContext?
        switch (tlsCert, tlsKey) {
        case (nil, nil):
            break
        case (let cert?, let key?):
            do {
                tlsContext = try makeTLSContext(certificatePath: cert, keyPath: key)
            } catch let error as ServerSetupError {
                throw ConfigurationError(description: error.description)
            }
        case (nil, _):
            throw ConfigurationError(description: "\(tlsKeyName) needs --tls-cert FILE (the certificate it belongs to)")
        case (_, nil):
            throw ConfigurationError(description: "\(tlsCertName) needs --tls-key FILE (its private key)")
        }

        var specs = try files.values.map { try Self.parseSource($0, label: files.label) }
        var services: [any Service] = []
        if demo {
            // A private directory of our own (mkdtemp: 0700, unpredictable name), never one that exists.
            var template = Array((NSTemporaryDirectory() + "logcast-demo-XXXXXX").utf8CString)
            guard let made = mkdtemp(&template) else {
                throw ConfigurationError(description: "--demo: cannot create a temporary directory in \(NSTemporaryDirectory()): \(String(cString: strerror(errno)))")
            }
            let directory = String(cString: made)
            let path = directory + "/demo.log"
            services.append(DemoLogWriter(path: path))
            specs.append(SourceSpec(name: "demo", kind: .demo(path)))
        }
        if journal { specs.append(SourceSpec(name: "journal", kind: .journal(.local))) }
        for text in journalDirectories.values {
            let (name, path) = try Self.parseNamed(text, flag: journalDirectories.label, defaultName: "journal")
            specs.append(SourceSpec(name: name, kind: .journal(.directory(path))))
        }
        var fileGroups: [(name: String, paths: [String])] = []
        for text in journalFiles.values {
            let (name, path) = try Self.parseNamed(text, flag: journalFiles.label, defaultName: "journal")
            if let index = fileGroups.firstIndex(where: { $0.name == name }) {
                fileGroups[index].paths.append(path)
            } else {
                fileGroups.append((name, [path]))
            }
        }
        specs += fileGroups.map { SourceSpec(name: $0.name, kind: .journal(.files($0.paths))) }
        let units = journalUnits.values.map(Filter.normalizeUnit)
        if !units.isEmpty, !specs.contains(where: \.isJournal) {
            throw ConfigurationError(description: "--journal-unit needs a journal source: add --journal, --journal-directory DIR or --journal-file FILE")
        }
        if specs.isEmpty {
            specs = Self.defaultSources()
        }
        guard !specs.isEmpty else {
            throw ConfigurationError(description: "nothing to follow: the system journal and /var/log/syslog and /var/log/messages are not readable here; give --file [NAME=]PATH, --journal, --journal-directory DIR (all repeatable) or --demo")
        }
        var seen: [String: String] = [:]
        for spec in specs {
            if let other = seen[spec.name] {
                throw ConfigurationError(description: "two sources are named '\(spec.name)': \(other) and \(spec.pattern); name them apart with NAME=PATH")
            }
            seen[spec.name] = spec.pattern
        }

        let hostName = hostNameSetting ?? ProcessInfo.processInfo.hostName
        var hubConfiguration = Hub.Configuration()
        hubConfiguration.historyLines = history
        hubConfiguration.historyBytes = historyBytes
        hubConfiguration.queueLines = queue
        hubConfiguration.queueBytes = queueBytes
        hubConfiguration.slowConsumerPolicy = policy
        let hub = Hub(configuration: hubConfiguration)
        let registry = SourceRegistry(specs.map { SourceStatus(name: $0.name, kind: $0.kindName, pattern: $0.pattern) })

        var fileTailers: [FileTailer] = []
        var journalTailers: [JournalTailer] = []
        for spec in specs {
            let sink = SourceSink.hub(hub, registry: registry, name: spec.name)
            switch spec.kind {
            case .file(let pattern), .demo(let pattern):
                var tailerConfiguration = FileTailer.Configuration(name: spec.name, pattern: pattern)
                tailerConfiguration.initialLines = initialLines
                tailerConfiguration.hostName = hostName
                let tailer = FileTailer(configuration: tailerConfiguration, sink: sink, logger: logger)
                fileTailers.append(tailer)
                services.append(tailer)
            case .journal(let location):
                var tailerConfiguration = JournalTailer.Configuration(name: spec.name, location: location)
                tailerConfiguration.initialLines = initialLines
                tailerConfiguration.units = units
                let tailer = JournalTailer(configuration: tailerConfiguration, sink: sink, logger: logger)
                journalTailers.append(tailer)
                services.append(tailer)
            }
        }

        var serverConfiguration = ServerConfiguration(hostName: hostName)
        serverConfiguration.host = host
        serverConfiguration.port = port
        serverConfiguration.pingInterval = .milliseconds(Int(pingInterval * 1000))
        serverConfiguration.access = AccessPolicy(tokens: tokens, allowedOrigins: allowedOrigins.values)
        serverConfiguration.allowedHosts = allowedHosts.values
        serverConfiguration.tlsContext = tlsContext
        do {
            serverConfiguration.activatedSocket = try SocketActivation.listeningSocket()
        } catch {
            throw ConfigurationError(description: "socket activation: \(error.description)")
        }
        serverConfiguration.maxSubscribers = maxSubscribers
        serverConfiguration.sseHeartbeat = .milliseconds(Int(sseHeartbeat * 1000))
        serverConfiguration.maxConnectionsPerAddress = maxConnectionsPerAddress
        serverConfiguration.maxConnections = maxConnections
        serverConfiguration.requestHeadTimeout = .milliseconds(Int(requestHeadTimeout * 1000))
        serverConfiguration.webRoot = webRoot ?? Self.defaultWebRoot()
        if let root = serverConfiguration.webRoot, !FileManager.default.fileExists(atPath: root + "/index.html") {
            if webRoot != nil { throw ConfigurationError(description: "\(webRootName) \(root) has no index.html") }
            serverConfiguration.webRoot = nil
        }

        if checkConfig {
            // The effective configuration, as a config file that would give it.
            let quoted = { (text: String) -> String in String(decoding: JSONWriter.quotedString(text), as: UTF8.self) }
            let list = { (items: [String]) -> String in "[" + items.map(quoted).joined(separator: ", ") + "]" }
            var lines = ["# logcast: configuration OK (\(specs.count) source(s)); the effective settings:"]
            lines.append("listen: \(quoted(listen))")
            lines.append("file: \(list(files.values))")
            lines.append("journal: \(journal)")
            lines.append("journal-directory: \(list(journalDirectories.values))")
            lines.append("journal-file: \(list(journalFiles.values))")
            lines.append("journal-unit: \(list(journalUnits.values))")
            lines.append("demo: \(demo)")
            lines.append("history: \(history)")
            lines.append("history-bytes: \(historyBytes)")
            lines.append("initial-lines: \(initialLines)")
            lines.append("queue: \(queue)")
            lines.append("queue-bytes: \(queueBytes)")
            lines.append("slow-consumer: \(quoted(slowConsumer))")
            lines.append("ping-interval: \(pingInterval)")
            lines.append("sse-heartbeat: \(sseHeartbeat)")
            lines.append("max-subscribers: \(maxSubscribers)")
            lines.append("max-connections-per-address: \(maxConnectionsPerAddress)")
            lines.append("max-connections: \(maxConnections)")
            lines.append("request-head-timeout: \(requestHeadTimeout)")
            lines.append("allow-origin: \(list(allowedOrigins.values))")
            lines.append("allow-host: \(list(allowedHosts.values))")
            for (key, value) in [("token-file", tokenFile), ("tls-cert", tlsCert), ("tls-key", tlsKey), ("web-root", serverConfiguration.webRoot)] {
                lines.append("\(key): \(value.map(quoted) ?? "null")")
            }
            lines.append("host-name: \(quoted(hostName))")
            lines.append("log-level: \(quoted(logLevel))")
            let app = LogcastApplication(configuration: serverConfiguration, hub: hub, registry: registry, logger: logger)
            lines.append("# routes (everything else is the viewer's static files, open to all):")
            for route in app.routes {
                lines.append("# route: \(route.method) \(route.path) \(route.isProtected ? "token" : "open")")
            }
            print(lines.joined(separator: "\n"))
            return
        }

        if let root = serverConfiguration.webRoot {
            logger.notice("serving the viewer", metadata: ["web-root": "\(root)"])
        } else {
            logger.notice("no viewer to serve: none is installed beside the binary; give --web-root DIR")
        }
        let sourceCount = specs.count
        let app = LogcastApplication(configuration: serverConfiguration, hub: hub, registry: registry, logger: logger)
        let (application, drainer) = app.build(
            onListening: { port in
                SystemdNotifier.ready(status: "listening on \(host):\(port), following \(sourceCount) source(s)")
            }
        )
        services.append(Reloader(tokens: tokens, connections: app.connections, fileTailers: fileTailers, journalTailers: journalTailers, logger: logger))
        // Watchdog pings prove the hub is not wedged: taking its lock must succeed.
        services.append(SystemdNotifier(isHealthy: { _ = hub.statistics; return true }))
        logger.info("starting", metadata: ["epoch": "\(hub.epoch)", "sources": "\(specs.map { "\($0.name)=\($0.pattern)" }.joined(separator: ", "))"])
        let group = ServiceGroup(
            configuration: .init(
                services: services.map { .init(service: $0) } + [.init(service: application), .init(service: drainer)],
                gracefulShutdownSignals: [.sigterm, .sigint],
                logger: logger
            )
        )
        try await group.run()
    }

    /// `HOST:PORT`, `[V6]:PORT` or `:PORT` (all interfaces).
    static func parseListen(_ text: String, name: String = "--listen") throws -> (String, Int) {
        let problem = ConfigurationError(description: "\(name) '\(text)' is not HOST:PORT (e.g. 127.0.0.1:8080, [::1]:8080, 0.0.0.0:0)")
        guard let colon = text.lastIndex(of: ":") else { throw problem }
        var host = String(text[..<colon])
        guard let port = Int(text[text.index(after: colon)...]), (0...65535).contains(port) else { throw problem }
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        if host.isEmpty { host = "0.0.0.0" }
        return (host, port)
    }

    /// A configured source before it starts.
    struct SourceSpec {
        enum Kind {
            case file(String)
            case demo(String)
            case journal(JournalTailer.Location)
        }

        var name: String
        var kind: Kind

        var pattern: String {
            switch kind {
            case .file(let pattern), .demo(let pattern): pattern
            case .journal(let location): location.description
            }
        }

        var kindName: String {
            switch kind {
            case .file: "file"
            case .demo: "demo"
            case .journal: "journal"
            }
        }

        var isJournal: Bool {
            if case .journal = kind { return true }
            return false
        }
    }

    /// With no source given: the system journal when readable, else the
    /// classic syslog file.
    static func defaultSources() -> [SourceSpec] {
        if JournalTailer.localJournalProblem() == nil {
            return [SourceSpec(name: "journal", kind: .journal(.local))]
        }
        for candidate in ["/var/log/syslog", "/var/log/messages"] where FileManager.default.isReadableFile(atPath: candidate) {
            return [SourceSpec(name: (candidate as NSString).lastPathComponent, kind: .file(candidate))]
        }
        return []
    }

    /// `[NAME=]PATH` for `--file`. NAME defaults to the file's base name (for a glob, its directory's).
    static func parseSource(_ text: String, label: String = "--file") throws -> SourceSpec {
        let (explicitName, path) = splitName(text)
        guard !path.isEmpty else { throw ConfigurationError(description: "\(label) '\(text)' has no path; use --file [NAME=]PATH") }
        if let problem = FileTailer.validate(pattern: path) { throw ConfigurationError(description: "\(label) \(problem)") }
        let nsPath = path as NSString
        let isGlob = nsPath.lastPathComponent.contains(where: { "*?[".contains($0) })
        let name = explicitName ?? (isGlob ? (nsPath.deletingLastPathComponent as NSString).lastPathComponent : nsPath.lastPathComponent)
        try validateName(name, text: text, flag: label)
        return SourceSpec(name: name, kind: .file(path))
    }

    /// `[NAME=]PATH` for the journal flags; NAME defaults to `defaultName`.
    static func parseNamed(_ text: String, flag: String, defaultName: String) throws -> (String, String) {
        let (explicitName, path) = splitName(text)
        guard !path.isEmpty else { throw ConfigurationError(description: "\(flag) '\(text)' has no path; use \(flag) [NAME=]PATH") }
        let name = explicitName ?? defaultName
        try validateName(name, text: text, flag: flag)
        return (name, path)
    }

    /// `NAME=PATH` → (NAME, PATH); a `=` after a `/` belongs to the path.
    static func splitName(_ text: String) -> (String?, String) {
        if let equals = text.firstIndex(of: "="), !text[..<equals].contains("/") {
            return (String(text[..<equals]), String(text[text.index(after: equals)...]))
        }
        return (nil, text)
    }

    static func validateName(_ name: String, text: String, flag: String) throws {
        let allowed = CharacterSet.alphanumerics.union(CharacterSet(charactersIn: "._-@"))
        guard !name.isEmpty, name.unicodeScalars.allSatisfy({ allowed.contains($0) }) else {
            throw ConfigurationError(description: "\(flag) '\(text)': source name '\(name)' may hold only letters, digits and . _ - @; name it with NAME=PATH")
        }
    }

    /// The installed viewer: `../share/logcast/web` beside the binary (an
    /// install), or the source tree's `web/` (a build in `.build/CONFIG/`).
    /// Never the working directory, which is not the operator's to trust.
    static func defaultWebRoot() -> String? {
        let binary = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        let executable = URL(fileURLWithPath: binary).resolvingSymlinksInPath().deletingLastPathComponent()
        let candidates = [
            executable.appendingPathComponent("../share/logcast/web").standardized.path,
            executable.appendingPathComponent("../../../web").standardized.path,
        ]
        return candidates.first { FileManager.default.fileExists(atPath: $0 + "/index.html") }
    }
}
