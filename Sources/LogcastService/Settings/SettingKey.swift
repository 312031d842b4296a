import Foundation
import LogcastHub
import LogcastServer
import LogcastSources
import LogcastStore

/// Every setting of `logcast serve`: the one table the flag parser, the
/// `LOGCAST_*` environment, the config file, `--check-config`, `--help` and
/// the README's flag table follow from.
///
/// The raw value is the key everywhere: the long flag (`--max-subscribers`),
/// the config file key (`max-subscribers:`) and, upper-cased, the
/// environment variable (`LOGCAST_MAX_SUBSCRIBERS`). The order of the cases
/// is the order of `--help` and `--check-config`.
///
/// Adding a setting means adding a case here and its ``definition`` below
/// (the compiler insists on both), then reading it where it is used,
/// usually in ``ServeConfiguration``.
public enum SettingKey: String, CaseIterable, Sendable, Comparable {
    case file
    case journal
    case journalDirectory = "journal-directory"
    case journalFile = "journal-file"
    case journalUnit = "journal-unit"
    case multiline
    case multilineTimeout = "multiline-timeout"
    case filePollInterval = "file-poll-interval"
    case demo
    case listen
    case history
    case historyBytes = "history-bytes"
    case initialLines = "initial-lines"
    case queue
    case queueBytes = "queue-bytes"
    case slowConsumer = "slow-consumer"
    case pingInterval = "ping-interval"
    case sseHeartbeat = "sse-heartbeat"
    case webRoot = "web-root"
    case tokenFile = "token-file"
    case allowOrigin = "allow-origin"
    case allowHost = "allow-host"
    case maxSubscribers = "max-subscribers"
    case maxConnectionsPerAddress = "max-connections-per-address"
    case maxConnections = "max-connections"
    case requestHeadTimeout = "request-head-timeout"
    case tlsCert = "tls-cert"
    case tlsKey = "tls-key"
    case hostName = "host-name"
    case logLevel = "log-level"
    case stateDirectory = "state-directory"
    case historyDiskBytes = "history-disk-bytes"
    case historyMaxAge = "history-max-age"
    case maxCatchUpBytes = "max-catch-up-bytes"
    case resetState = "reset-state"
    case nats
    case natsCreds = "nats-creds"
    case natsCAFile = "nats-ca-file"
    case role
    case natsStream = "nats-stream"
    case natsMaxAge = "nats-max-age"
    case natsMaxBytes = "nats-max-bytes"
    case natsReplicas = "nats-replicas"

    public static func < (lhs: SettingKey, rhs: SettingKey) -> Bool {
        allCases.firstIndex(of: lhs)! < allCases.firstIndex(of: rhs)!
    }

    /// The environment variable: `max-subscribers` → `LOGCAST_MAX_SUBSCRIBERS`.
    public var environmentName: String {
        "LOGCAST_" + rawValue.uppercased().replacingOccurrences(of: "-", with: "_")
    }

    /// The flag: `--max-subscribers`.
    public var flag: String { "--" + rawValue }

    // The defaults are read off the configuration types that use them, so
    // each is written once, where it takes effect.
    private static let server = ServerConfiguration(hostName: "")
    private static let hub = Hub.Configuration()
    private static let tailer = FileTailer.Configuration(name: "", pattern: "")
    private static let log = SegmentLog.Configuration(directory: "")

    /// The key's type, default, help and check.
    public var definition: SettingDefinition {
        let server = Self.server
        let hub = Self.hub
        switch self {
        case .file:
            return .list(
                "[NAME=]PATH",
                "A file to follow; PATH may be a glob like '/var/log/nginx/*.log'. NAME defaults to the file's base name (for a glob, its "
                    + "directory's). Repeatable.",
                emptyMeans: "none; with no source at all, the journal if readable, else /var/log/syslog or /var/log/messages"
            )
        case .journal:
            return .flag(
                "Follow the local systemd journal (source 'journal'), like journalctl -f. Needs membership in the systemd-journal or adm group."
            )
        case .journalDirectory:
            return .list(
                "[NAME=]DIR",
                "Follow the journal files in a directory, like journalctl --directory (NAME defaults to 'journal'). Repeatable."
            )
        case .journalFile:
            return .list(
                "[NAME=]FILE",
                "Follow a journal file, like journalctl --file (NAME defaults to 'journal'; files with the same NAME form one source). Repeatable."
            )
        case .journalUnit:
            return .list(
                "UNIT",
                "Read only this unit's entries from the journal sources, like journalctl -u ('nginx' means nginx.service). Repeatable.",
                emptyMeans: "every unit"
            )
        case .multiline:
            return .list(
                "SOURCE=START",
                "Join the lines of a file source into multi-line records (a stack trace is one line object): a line matching the PCRE2 "
                    + "pattern START begins a record, the others continue it; START 'indented' (continuation lines are indented, or "
                    + "Caused by:/Traceback follow-ups: Java, Python, Go) or 'none'. Repeatable.",
                emptyMeans: "each line is a record",
                checkEach: { value in
                    guard let equals = value.firstIndex(of: "="), equals != value.startIndex, value.index(after: equals) != value.endIndex else {
                        return "'\(value)' is not SOURCE=START; e.g. app=indented or app='^\\d{4}-\\d{2}-\\d{2}'"
                    }
                    do throws(PatternError) {
                        _ = try MultilineRule.parse(String(value[value.index(after: equals)...]))
                        return nil
                    } catch {
                        return "'\(value)': bad START pattern: \(error.message) at offset \(error.offset)"
                    }
                }
            )
        case .multilineTimeout:
            return .seconds(
                "Seconds a multi-line record waits for a continuation line before it is published.",
                default: Self.tailer.multilineTimeout
            )
        case .filePollInterval:
            return .seconds(
                "Seconds between checks of every followed file without an event "
                    + "(inotify sends none for NFS, FUSE, or a symbolic link's target in another directory).",
                default: Self.tailer.pollInterval
            )
        case .demo:
            return .flag("Add a 'demo' source that writes a realistic mixed-level log, to see logcast working at once.")
        case .listen:
            return .text(
                "HOST:PORT",
                "Address to listen on; port 0 picks a free port (the chosen address is logged).",
                default: "\(server.host):\(server.port)",
                check: { ListenAddress(parsing: $0) == nil ? "'\($0)' is not HOST:PORT (e.g. 127.0.0.1:8080, [::1]:8080, 0.0.0.0:0)" : nil }
            )
        case .history:
            return .integer("N", "Lines kept for backlog and resume, also capped at --history-bytes.", default: hub.historyLines, atLeast: 1)
        case .historyBytes:
            return .integer("N", "Bytes of history kept at most.", default: hub.historyBytes, atLeast: 1024)
        case .initialLines:
            return .integer(
                "N",
                "Existing lines of each file (entries of each journal) loaded into history at start, like tail -n.",
                default: Self.tailer.initialLines,
                atLeast: 0
            )
        case .queue:
            return .integer("N", "Lines each subscriber's queue holds, also capped at --queue-bytes.", default: hub.queueLines, atLeast: 1)
        case .queueBytes:
            return .integer("N", "Bytes each subscriber's queue holds at most.", default: hub.queueBytes, atLeast: 1024)
        case .slowConsumer:
            return .choice(
                "What to do with a subscriber whose queue is full: catch-up (read on from the history where it is; "
                    + "a gap only for lines no longer held), drop (the oldest queued lines, with a gap event) "
                    + "or disconnect (close 1013).",
                SlowConsumerPolicy.allCases.map(\.rawValue),
                default: hub.slowConsumerPolicy.rawValue,
                noun: "policy"
            )
        case .pingInterval:
            return .seconds("Seconds between WebSocket pings; silent connections are closed after two.", default: server.pingInterval)
        case .sseHeartbeat:
            return .seconds("Seconds between comment lines on an idle /sse stream, so proxies keep it open.", default: server.sseHeartbeat)
        case .webRoot:
            return .path(
                "DIR",
                "Directory of the browser viewer.",
                emptyMeans:
                    "the installed ../share/logcast/web beside the binary, or the source tree's web/ for a build; never the working directory",
                check: { WebRoot.hasViewer($0) ? nil : "\($0) has no index.html" }
            )
        case .tokenFile:
            return .path(
                "FILE",
                "Require a bearer token on every route but /healthz and the viewer's files: a file with one token per line.",
                emptyMeans: "no token required"
            )
        case .allowOrigin:
            return .list(
                "ORIGIN",
                "Let pages from this origin connect and read /sse and /api/* (CORS), besides the server's own "
                    + "(e.g. https://logs.example.com; '*' allows every origin). Repeatable.",
                emptyMeans: "the server's own",
                checkEach: {
                    $0 == "*" || AccessPolicy.normalizedOrigin($0) != nil
                        ? nil : "'\($0)' is not an origin; use scheme://host[:port], e.g. https://logs.example.com"
                }
            )
        case .allowHost:
            return .list(
                "NAME",
                "Answer requests whose Host header is this name, besides the server's own (localhost, IP addresses, the listen address, "
                    + "--host-name); others get 421, against DNS rebinding. '*' accepts any. Repeatable.",
                emptyMeans: "the server's own names",
                checkEach: {
                    $0 == "*" || HostPolicy.name(ofHostHeader: $0) != nil
                        ? nil : "'\($0)' is not a host name; give a name such as logs.example.com (no scheme, no path)"
                }
            )
        case .maxSubscribers:
            return .integer("N", "Streams served at once; more are refused with 503 and Retry-After.", default: server.maxSubscribers, atLeast: 1)
        case .maxConnectionsPerAddress:
            return .integer(
                "N",
                "Streams one client address may hold at once; more are refused with 429.",
                default: server.maxConnectionsPerAddress,
                atLeast: 1
            )
        case .maxConnections:
            return .integer(
                "N",
                "Connections of any kind open at once, also capped at the descriptor limit less 128 kept for the sources; more are closed "
                    + "when accepted.",
                default: server.maxConnections,
                atLeast: 1
            )
        case .requestHeadTimeout:
            return .seconds(
                "Seconds a new connection may take to send a complete request head (TLS handshake included) before it is closed.",
                default: server.requestHeadTimeout
            )
        case .tlsCert:
            return .path("FILE", "Serve https and wss with this PEM certificate (chain); needs --tls-key.", emptyMeans: "plain HTTP")
        case .tlsKey:
            return .path("FILE", "The PEM private key of --tls-cert.", emptyMeans: "plain HTTP")
        case .hostName:
            return .text("NAME", "Host name reported in lines and hello.", emptyMeans: "this machine's")
        case .stateDirectory:
            return .path(
                "DIR",
                "Where the history, the epoch and the sources' positions are kept across restarts; 'none' keeps them in memory only.",
                emptyMeans: "$STATE_DIRECTORY (systemd's StateDirectory=), else $XDG_STATE_HOME/logcast or ~/.local/state/logcast"
            )
        case .historyDiskBytes:
            return .integer("N", "Bytes of history kept in the state directory at most.", default: Int(Self.log.maxBytes), atLeast: 1 << 20)
        case .historyMaxAge:
            return .integer(
                "SECONDS",
                "Lines older than this are deleted from the state directory's history.",
                default: Int(Self.log.maxAge.components.seconds),
                atLeast: 60
            )
        case .maxCatchUpBytes:
            return .integer(
                "N",
                "Bytes of each source written while logcast was down that are read at start, at most; the older rest is skipped "
                    + "with a downtime gap.",
                default: Int(Self.tailer.maxCatchUpBytes),
                atLeast: 0
            )
        case .nats:
            return .list(
                "URL",
                "A NATS server of the cluster to publish to or read from (nats://HOST:PORT or tls://HOST:PORT; repeatable or "
                    + "comma-separated). With it, logcast is an agent, a gateway or both (--role).",
                emptyMeans: "no cluster: this host only",
                checkEach: { url in
                    url.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.first { part in
                        let lowered = part.lowercased()
                        return !(lowered.hasPrefix("nats://") || lowered.hasPrefix("tls://")) || part.count <= 7
                    }.map { "'\($0)' is not a NATS URL; use nats://HOST:PORT or tls://HOST:PORT" }
                }
            )
        case .natsCreds:
            return .path("FILE", "A NATS credentials file (.creds: JWT and seed).", emptyMeans: "no credentials")
        case .natsCAFile:
            return .path("FILE", "CA certificates (PEM) for tls:// NATS servers signed by a private CA.", emptyMeans: "the system's")
        case .role:
            return .choice(
                "With --nats: agent (publish this host's sources), gateway (serve the merged stream of every agent), or both.",
                ["agent", "gateway", "both"],
                default: "both",
                noun: "role"
            )
        case .natsStream:
            return .text("NAME", "The JetStream stream of the cluster (created when missing).", default: "LOGCAST") { name in
                name.isEmpty || name.contains(where: { " .*>\t".contains($0) })
                    ? "'\(name)' is not a stream name (no spaces, dots or wildcards)" : nil
            }
        case .natsMaxAge:
            return .integer("SECONDS", "A new stream deletes lines older than this.", default: 7 * 24 * 3600, atLeast: 60)
        case .natsMaxBytes:
            return .integer("N", "A new stream keeps at most this many bytes (0: the server's limit).", default: 0, atLeast: 0)
        case .natsReplicas:
            return .integer("N", "Copies of a new stream in the NATS cluster (1, or 3 for a cluster of three).", default: 1, atLeast: 1)
        case .resetState:
            return .flag("Start over: delete the stored history and take a new epoch (subscribers get a restart gap).")
        case .logLevel:
            return .choice(
                "Log level of logcast's own log on stderr.",
                ["trace", "debug", "info", "notice", "warning", "error"],
                default: "info",
                noun: "level"
            )
        }
    }
}
