import Foundation
import LogcastCluster
import LogcastHub
import LogcastServer
import LogcastSources
import LogcastStore
import Logging

/// Everything `logcast serve` runs with, checked: the merged settings
/// (file, then environment, then flags) turned into the configurations of
/// the hub, the sources and the server.
///
/// Building one has no effect beyond reading files (the config file, the
/// token file, TLS files); ``LogcastService`` starts what it describes.
public struct ServeConfiguration: Sendable {
    /// The settings as given and defaulted, for `--check-config`.
    public let settings: ResolvedSettings
    public var logLevel: Logger.Level
    public var hub: Hub.Configuration
    public var server: ServerConfiguration
    public var sources: [SourceSpec]
    /// Existing lines (entries) of each source loaded at start.
    public var initialLines: Int
    /// What a source with a saved position reads at most of what was written while down.
    public var maxCatchUpBytes: Int64
    /// `--journal-unit`, normalised (`nginx` → `nginx.service`).
    public var journalUnits: [String]
    /// `--multiline`: the rule of each file source that joins lines into records.
    public var multiline: [String: MultilineRule] = [:]
    public var multilineTimeout: Duration = .milliseconds(500)
    /// How often every followed file is checked without an event (`--file-poll-interval`).
    public var filePollInterval: Duration = .seconds(1)
    /// The token file, also reread on SIGHUP.
    public var tokens: TokenStore?
    /// The state directory; nil keeps everything in memory (`none`).
    public var stateDirectory: String?
    /// The durable history's limits.
    public var log = SegmentLog.Configuration(directory: "")
    /// `--reset-state`.
    public var resetState: Bool
    /// `--nats` and the other cluster settings; nil without `--nats`.
    public var cluster: ClusterConfiguration?

    /// The default config file, read when present and no `--config` is given.
    public static let defaultConfigPath = "/etc/logcast/config.yaml"

    /// Reads the config file (`--config`, else the default one when it
    /// exists), the environment, and the flags, in that order of strength.
    public init(arguments: ServeArguments, environment: [String: String]) throws(ConfigurationError) {
        var merged = Settings()
        let path = arguments.configPath ?? (FileManager.default.fileExists(atPath: Self.defaultConfigPath) ? Self.defaultConfigPath : nil)
        if let path {
            guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
                let reason = FileManager.default.fileExists(atPath: path) ? "cannot be read (permissions, or not UTF-8 text)" : "does not exist"
                throw ConfigurationError("--config \(path) \(reason)")
            }
            do {
                merged = try Settings.parse(yaml: text, path: path)
            } catch {
                throw ConfigurationError(error.description)
            }
        }
        do {
            merged = merged.overridden(by: try Settings.fromEnvironment(environment))
        } catch {
            throw ConfigurationError(error.description)
        }
        try self.init(settings: ResolvedSettings(merged.overridden(by: arguments.settings)), environment: environment)
    }

    /// Turns checked settings into the parts' configurations.
    public init(settings: ResolvedSettings, environment: [String: String] = [:]) throws(ConfigurationError) {
        self.settings = settings
        let state = settings.text(.stateDirectory) ?? StateDirectory.defaultPath(environment: environment)
        stateDirectory = state == "none" ? nil : state
        log.maxBytes = Int64(settings.integer(.historyDiskBytes))
        log.maxAge = .seconds(settings.integer(.historyMaxAge))
        resetState = settings.flag(.resetState)
        logLevel = Logger.Level(rawValue: settings.text(.logLevel)!)!

        hub = Hub.Configuration()
        hub.historyLines = settings.integer(.history)
        hub.historyBytes = settings.integer(.historyBytes)
        hub.queueLines = settings.integer(.queue)
        hub.queueBytes = settings.integer(.queueBytes)
        hub.slowConsumerPolicy = SlowConsumerPolicy(rawValue: settings.text(.slowConsumer)!)!
        initialLines = settings.integer(.initialLines)
        maxCatchUpBytes = Int64(settings.integer(.maxCatchUpBytes))

        let listen = ListenAddress(parsing: settings.text(.listen)!)!
        server = ServerConfiguration(hostName: settings.text(.hostName) ?? ProcessInfo.processInfo.hostName)
        server.host = listen.host
        server.port = listen.port
        server.pingInterval = settings.duration(.pingInterval)
        server.sseHeartbeat = settings.duration(.sseHeartbeat)
        server.requestHeadTimeout = settings.duration(.requestHeadTimeout)
        server.maxSubscribers = settings.integer(.maxSubscribers)
        server.maxConnectionsPerAddress = settings.integer(.maxConnectionsPerAddress)
        server.maxConnections = settings.integer(.maxConnections)
        server.allowedHosts = settings.list(.allowHost)
        server.webRoot = settings.text(.webRoot) ?? WebRoot.installed()

        if let path = settings.text(.tokenFile) {
            do {
                tokens = try TokenStore(path: path)
            } catch {
                throw ConfigurationError("\(settings.origin(.tokenFile)): \(error.description)")
            }
        }
        server.access = AccessPolicy(tokens: tokens, allowedOrigins: settings.list(.allowOrigin))
        server.tls = try Self.tlsCredentials(settings)

        let urls = settings.list(.nats).flatMap { $0.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) } }
        if !urls.isEmpty {
            var connection = NATSConnection.Options(urls: urls)
            connection.credentialsFile = settings.text(.natsCreds)
            connection.caFile = settings.text(.natsCAFile)
            var stream = NATSConnection.StreamSettings(name: settings.text(.natsStream)!, subjects: [ClusterSubject.all])
            stream.maxAge = .seconds(settings.integer(.natsMaxAge))
            stream.maxBytes = settings.integer(.natsMaxBytes) > 0 ? Int64(settings.integer(.natsMaxBytes)) : nil
            stream.replicas = settings.integer(.natsReplicas)
            for (key, limit) in [
                (SettingKey.natsMaxAge, NATSConnection.StreamSettings.Limit.maxAge), (.natsMaxBytes, .maxBytes), (.natsReplicas, .replicas),
            ] {
                if let origin = settings.settings.origin(key) { stream.givenLimits[limit] = origin }
            }
            cluster = ClusterConfiguration(connection: connection, role: ClusterRole(rawValue: settings.text(.role)!)!, stream: stream)
        }

        journalUnits = settings.list(.journalUnit).map(Filter.normalizeUnit)
        sources = try SourceSpec.parse(settings)
        if !journalUnits.isEmpty, !sources.contains(where: \.isJournal) {
            throw ConfigurationError(
                "\(settings.origin(.journalUnit)) needs a journal source: add --journal, --journal-directory DIR or --journal-file FILE"
            )
        }
        if sources.isEmpty, cluster?.role != .gateway {
            // A gateway needs no sources of its own: it serves the stream.
            sources = SourceSpec.defaultSources()
            guard !sources.isEmpty else {
                throw ConfigurationError(
                    "nothing to follow: the system journal and /var/log/syslog and /var/log/messages are not readable here; give --file "
                        + "[NAME=]PATH, --journal, --journal-directory DIR (all repeatable) or --demo"
                )
            }
        }
        multilineTimeout = settings.duration(.multilineTimeout)
        filePollInterval = settings.duration(.filePollInterval)
        var joined: Set<String> = []
        for value in settings.list(.multiline) {
            let equals = value.firstIndex(of: "=")!  // checked with the setting
            let name = String(value[..<equals])
            guard let spec = sources.first(where: { $0.name == name }) else {
                let files = sources.filter { !$0.isJournal }.map(\.name)
                throw ConfigurationError(
                    "\(settings.origin(.multiline)): no file source is named '\(name)'"
                        + (files.isEmpty ? "; add --file \(name)=PATH" : "; file sources: \(files.joined(separator: ", "))")
                )
            }
            guard !spec.isJournal else {
                throw ConfigurationError(
                    "\(settings.origin(.multiline)): '\(name)' is a journal source; journal entries are whole messages already, only file "
                        + "sources are joined"
                )
            }
            guard joined.insert(name).inserted else {
                throw ConfigurationError("\(settings.origin(.multiline)): '\(name)' is given more than once; give one START per source")
            }
            multiline[name] = try? MultilineRule.parse(String(value[value.index(after: equals)...]))
        }
    }

    static func tlsCredentials(_ settings: ResolvedSettings) throws(ConfigurationError) -> TLSCredentials? {
        switch (settings.text(.tlsCert), settings.text(.tlsKey)) {
        case (nil, nil):
            return nil
        case (let cert?, let key?):
            do {
                return try TLSCredentials(certificatePath: cert, keyPath: key)
            } catch {
                throw ConfigurationError("\(error)")
            }
        case (nil, _):
            throw ConfigurationError("\(settings.origin(.tlsKey)) needs --tls-cert FILE (the certificate it belongs to)")
        case (_, nil):
            throw ConfigurationError("\(settings.origin(.tlsCert)) needs --tls-key FILE (its private key)")
        }
    }

    /// The effective settings as a config file that would give them, then
    /// the routes: what `--check-config` prints.
    public func report(routes: [(method: String, path: String, isProtected: Bool)]) -> String {
        var lines = ["# logcast: configuration OK (\(sources.count) source(s)); the effective settings:"]
        for key in SettingKey.allCases {
            let value: SettingValue? =
                switch key {
                case .webRoot: server.webRoot.map(SettingValue.text)
                case .hostName: .text(server.hostName)
                case .stateDirectory: .text(stateDirectory ?? "none")
                default: settings.value(key)
                }
            lines.append("\(key.rawValue): \(value?.json ?? "null")")
        }
        lines.append("# routes (everything else is the viewer's static files, open to all):")
        for route in routes {
            lines.append("# route: \(route.method) \(route.path) \(route.isProtected ? "token" : "open")")
        }
        return lines.joined(separator: "\n")
    }
}

/// A configuration that cannot run: bad flags, values or files. `logcast
/// serve` prints it and exits with ``exitCode``.
public struct ConfigurationError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The exit code of a configuration error.
    public static let exitCode: Int32 = 2

    public var description: String

    public init(_ description: String) {
        self.description = description
    }
}

/// `HOST:PORT`, `[V6]:PORT` or `:PORT` (all interfaces).
public struct ListenAddress: Sendable, Equatable {
    public var host: String
    public var port: Int

    public init?(parsing text: String) {
        guard let colon = text.lastIndex(of: ":"),
            let port = Int(text[text.index(after: colon)...]), (0...65535).contains(port)
        else { return nil }
        var host = String(text[..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        self.host = host.isEmpty ? "0.0.0.0" : host
        self.port = port
    }
}

/// Where the browser viewer is.
public enum WebRoot {
    /// Whether `directory` holds a viewer (an `index.html`).
    public static func hasViewer(_ directory: String) -> Bool {
        FileManager.default.fileExists(atPath: directory + "/index.html")
    }

    /// The installed viewer: `../share/logcast/web` beside the binary (an
    /// install), or the source tree's `web/` (a build in `.build/CONFIG/`).
    /// Never the working directory, which is not the operator's to trust.
    public static func installed() -> String? {
        let binary = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        let executable = URL(fileURLWithPath: binary).resolvingSymlinksInPath().deletingLastPathComponent()
        let candidates = [
            executable.appendingPathComponent("../share/logcast/web").standardized.path,
            executable.appendingPathComponent("../../../web").standardized.path,
        ]
        return candidates.first(where: hasViewer)
    }
}
