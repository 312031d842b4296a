import Foundation
import LogcastCluster
import LogcastHub
import LogcastProtocol
import LogcastServer
import LogcastSources
import LogcastStore
import Logging
import Prometheus
import ServiceLifecycle
import UnixSignals

#if canImport(Glibc)
import Glibc
#endif

/// `logcast serve` as a library: the hub, the sources feeding it and the
/// server in front of it, wired into one `ServiceGroup`.
///
/// The executable parses its arguments into ``ServeArguments`` and calls
/// ``main(arguments:environment:)``; tests and embedders can build a
/// ``ServeConfiguration`` and call ``makeServiceGroup(_:logger:metrics:)``.
public enum LogcastService {
    /// Runs `logcast serve` with these arguments to the end, printing
    /// problems on stderr.
    /// - Parameter metrics: the registry swift-metrics was bootstrapped with
    ///   (by the executable), which `/metrics` renders.
    /// - Returns: the exit code: 0, or ``ConfigurationError/exitCode``.
    public static func main(
        arguments: [String],
        environment: [String: String],
        metrics: PrometheusCollectorRegistry = PrometheusCollectorRegistry()
    ) async throws -> Int32 {
        do {
            let arguments = try ServeArguments(parsing: arguments)
            if arguments.help {
                print(ServeArguments.helpText(), terminator: "")
                return 0
            }
            let configuration = try ServeConfiguration(arguments: arguments, environment: environment)
            if arguments.checkConfig {
                let app = LogcastApplication(
                    configuration: configuration.server,
                    hub: Hub(configuration: configuration.hub),
                    registry: SourceRegistry([]),
                    logger: Logger(label: "logcast")
                )
                var report = configuration.report(routes: app.routes)
                if let path = configuration.stateDirectory {
                    do {
                        report += "\n# state directory: " + (try StateDirectory.inspect(path: path))
                    } catch {
                        throw ConfigurationError("\(configuration.settings.origin(.stateDirectory)): \(error.description)")
                    }
                } else {
                    report += "\n# state directory: none (the history is kept in memory only)"
                }
                print(report)
                return 0
            }
            let level = configuration.logLevel
            // Under systemd, entries go to the journal natively (priority and fields); elsewhere, lines on stderr.
            let toJournal = JournalLogHandler.stderrIsJournal(environment: environment)
            LoggingSystem.bootstrap { label in
                if toJournal { return JournalLogHandler(label: label, logLevel: level) }
                var handler = StreamLogHandler.standardError(label: label)
                handler.logLevel = level
                return handler
            }
            try await makeServiceGroup(configuration, logger: Logger(label: "logcast"), metrics: metrics).run()
            return 0
        } catch let error as ConfigurationError {
            FileHandle.standardError.write(Data("logcast: \(error.description)\n".utf8))
            return ConfigurationError.exitCode
        }
    }

    /// The running service: every source, the server, SIGHUP handling and
    /// systemd notification, in shutdown order.
    ///
    /// `ServiceGroup` shuts services down in reverse order, one at a time,
    /// so the list runs from what must stop last to what must stop first:
    /// the sources (they feed everyone), the reloader, the HTTP server, the
    /// drainer (which ends every stream and waits for the writers to
    /// flush), and the systemd notifier, which says `STOPPING=1` the moment
    /// shutdown begins.
    /// - Throws: ``ConfigurationError`` when the demo directory or a socket
    ///   passed by systemd cannot be used.
    public static func makeServiceGroup(
        _ configuration: ServeConfiguration,
        logger: Logger,
        metrics: PrometheusCollectorRegistry = PrometheusCollectorRegistry()
    ) throws(ConfigurationError) -> ServiceGroup {
        var server = configuration.server
        do {
            server.activatedSocket = try SocketActivation.listeningSocket()
        } catch {
            throw ConfigurationError("socket activation: \(error.description)")
        }
        if let root = server.webRoot {
            logger.notice("serving the viewer", metadata: ["web-root": "\(root)"])
        } else {
            logger.notice("no viewer to serve: none is installed beside the binary; give --web-root DIR")
        }

        let (hub, store) = try openHub(configuration, logger: logger)
        let positions = store?.log.recovery.positions ?? [:]
        var sourceServices: [any Service] = store.map { [$0] } ?? []
        var statuses: [SourceStatus] = []
        var tailers: [(name: String, tailer: FileTailer.Configuration)] = []
        var journals: [JournalTailer.Configuration] = []
        for spec in configuration.sources {
            switch spec.kind {
            case .file(let pattern):
                var tailer = FileTailer.Configuration(name: spec.name, pattern: pattern)
                // Continue only a position of this file (or of a rotated generation of it, beside it): a
                // source given another path since is a new file, started from its tail.
                if case .file(let saved)? = positions[spec.name], !tailer.isGlob, Self.isGeneration(saved.path, of: pattern) {
                    tailer.resumeFrom = saved
                }
                if tailer.isGlob {
                    // Each member's position, kept under its own key; only files the glob still matches.
                    let prefix = SourcePosition.memberKeyPrefix(spec.name)
                    let members = positions.filter { $0.key.hasPrefix(prefix) }.sorted { $0.key < $1.key }.compactMap { entry -> FilePosition? in
                        guard case .member(let file) = entry.value, Self.isMember(file.path, of: pattern) else { return nil }
                        return file
                    }
                    if !members.isEmpty { tailer.resumeMembers = members }
                }
                tailers.append((spec.name, tailer))
                statuses.append(SourceStatus(name: spec.name, kind: spec.kindName, pattern: pattern))
            case .demo:
                let path = try makeDemoDirectory() + "/demo.log"
                sourceServices.append(DemoLogWriter(path: path))
                tailers.append((spec.name, FileTailer.Configuration(name: spec.name, pattern: path)))
                statuses.append(SourceStatus(name: spec.name, kind: spec.kindName, pattern: path))
            case .journal(let location):
                var journal = JournalTailer.Configuration(name: spec.name, location: location)
                journal.initialLines = configuration.initialLines
                journal.maxCatchUpBytes = configuration.maxCatchUpBytes
                journal.units = configuration.journalUnits
                if case .journal(let cursor)? = positions[spec.name] { journal.resumeCursor = cursor }
                journals.append(journal)
                statuses.append(SourceStatus(name: spec.name, kind: spec.kindName, pattern: spec.pattern))
            }
        }
        let registry = SourceRegistry(statuses)
        let fileTailers = tailers.map { name, tailer in
            var tailer = tailer
            tailer.initialLines = configuration.initialLines
            tailer.maxCatchUpBytes = configuration.maxCatchUpBytes
            tailer.hostName = server.hostName
            tailer.multiline = configuration.multiline[name]
            tailer.multilineTimeout = configuration.multilineTimeout
            tailer.pollInterval = configuration.filePollInterval
            return FileTailer(configuration: tailer, sink: .hub(hub, registry: registry, name: name), logger: logger)
        }
        let journalTailers = journals.map {
            JournalTailer(configuration: $0, sink: .hub(hub, registry: registry, name: $0.name), logger: logger)
        }
        sourceServices += fileTailers as [any Service]
        sourceServices += journalTailers as [any Service]

        // In a cluster: the agent publishes the local hub; a gateway serves the stream's hub instead.
        var served = hub
        var clusterServices: [any Service] = []
        var publisher: AgentPublisher?
        var consumer: GatewayConsumer?
        if let cluster = configuration.cluster {
            // One connection at start: what NATS refuses in the settings (credentials, a stream that
            // differs from them) stops the start; NATS that cannot be reached does not.
            var probe: (NATSConnection, NATSConnection.StreamInfo)?
            do {
                let nats = try NATSConnection(options: cluster.connection)
                probe = (nats, try nats.ensureStream(cluster.stream))
            } catch {
                if error.isSettings {
                    throw ConfigurationError(error.description.hasPrefix("cannot connect") ? "--nats: \(error)" : error.description)
                }
                logger.warning("NATS cannot be reached at start; retrying in the background", metadata: ["error": "\(error)"])
            }
            if cluster.role.publishes {
                let cursor = store.map { $0.state.path + "/nats-published" }
                publisher = AgentPublisher(
                    hub: hub,
                    configuration: cluster,
                    host: server.hostName,
                    cursorPath: cursor,
                    logger: logger
                )
                clusterServices.append(publisher!)
            }
            if cluster.role.serves {
                let history = StreamHistory(stream: cluster.stream.name)
                var hub = configuration.hub
                hub.streamNumbered = true  // seq is the stream's sequence
                served = Hub(configuration: hub, durable: history)
                consumer = GatewayConsumer(hub: served, history: history, configuration: cluster, logger: logger, connection: probe)
                clusterServices.append(consumer!)
            }
        }

        let log = store?.log
        let app = LogcastApplication(
            configuration: server,
            hub: served,
            registry: registry,
            logger: logger,
            degradation: { [publisher] in
                var problems = log?.problem.map { [$0] } ?? []
                if let status = publisher?.status, !status.connected {
                    problems.append("not publishing to NATS: \(status.lastError ?? "connecting"); lines wait in the history")
                }
                return problems
            },
            extraMetrics: { [publisher, consumer, hub, served] in
                Self.clusterMetrics(publisher: publisher, consumer: consumer, local: hub, served: served) + Self.historyMetrics(log)
            },
            unavailable: { [consumer] in consumer?.waiting },
            metrics: ServerMetrics(registry: metrics)
        )
        let sourceCount = configuration.sources.count
        let host = server.host
        let (application, drainer) = app.build(onListening: { port in
            SystemdNotifier.ready(status: "listening on \(host):\(port), following \(sourceCount) source(s)")
        })
        let reloader = Reloader(
            tokens: configuration.tokens,
            tls: server.tls,
            connections: app.connections,
            fileTailers: fileTailers,
            journalTailers: journalTailers,
            logger: logger
        )
        // Watchdog pings prove the hub is not wedged: taking its lock must succeed.
        let notifier = SystemdNotifier(isHealthy: {
            _ = hub.statistics
            return true
        })
        logger.info(
            "starting",
            metadata: ["epoch": "\(hub.epoch)", "sources": "\(statuses.map { "\($0.name)=\($0.pattern)" }.joined(separator: ", "))"]
        )
        let services: [any Service] = sourceServices + clusterServices + [reloader, application, drainer, notifier]
        return ServiceGroup(
            configuration: .init(
                services: services.map { .init(service: $0) },
                gracefulShutdownSignals: [.sigterm, .sigint],
                logger: logger
            )
        )
    }

    /// The durable history's gauges and counters, when there is one.
    static func historyMetrics(_ log: SegmentLog?) -> [MetricSample] {
        guard let statistics = log?.statistics else { return [] }
        return [
            MetricSample(
                name: "logcast_history_stored_bytes",
                help: "Bytes of the durable history in the state directory.",
                kind: .gauge,
                value: Double(statistics.bytes)
            ),
            MetricSample(
                name: "logcast_history_segments",
                help: "Segment files of the durable history.",
                kind: .gauge,
                value: Double(statistics.segments)
            ),
            MetricSample(
                name: "logcast_history_write_errors_total",
                help: "Writes of the durable history that failed (a full disk); those lines are served from memory only.",
                kind: .counter,
                value: Double(statistics.writeErrors)
            ),
            MetricSample(
                name: "logcast_history_damaged_segments",
                help: "Segments found damaged at start; the records after the damage were skipped.",
                kind: .gauge,
                value: Double(statistics.damagedSegments)
            ),
        ]
    }

    /// The cluster's: the agent's connection, backlog and acknowledgement
    /// times, and the gateway's place in the stream.
    static func clusterMetrics(publisher: AgentPublisher?, consumer: GatewayConsumer?, local: Hub, served: Hub) -> [MetricSample] {
        var samples: [MetricSample] = []
        if let status = publisher?.status {
            samples += [
                MetricSample(
                    name: "logcast_nats_connected",
                    help: "1 when the agent can publish to NATS.",
                    kind: .gauge,
                    value: status.connected ? 1 : 0
                ),
                MetricSample(
                    name: "logcast_nats_publish_backlog_lines",
                    help: "Lines of this host not yet acknowledged by the stream.",
                    kind: .gauge,
                    value: Double(local.lastSeq - min(local.lastSeq, status.published))
                ),
                MetricSample(
                    name: "logcast_nats_publish_in_flight",
                    help: "Messages sent to the stream and not yet acknowledged.",
                    kind: .gauge,
                    value: Double(status.inFlight)
                ),
                MetricSample(
                    name: "logcast_nats_acknowledged_total",
                    help: "Lines the stream acknowledged.",
                    kind: .counter,
                    value: Double(status.acknowledged)
                ),
                MetricSample(
                    name: "logcast_nats_acknowledgement_seconds_total",
                    help: "Seconds the acknowledged lines waited for their acknowledgement, in all (divide by logcast_nats_acknowledged_total).",
                    kind: .counter,
                    value: status.acknowledgementSeconds
                ),
            ]
        }
        if let consumer {
            samples += [
                MetricSample(
                    name: "logcast_nats_gateway_following",
                    help: "1 when the gateway follows the stream (0: it has not reached it yet and refuses streams).",
                    kind: .gauge,
                    value: consumer.waiting == nil ? 1 : 0
                ),
                MetricSample(
                    name: "logcast_nats_consumer_restarts_total",
                    help: "Times the gateway made its consumer of the stream again after it stopped receiving.",
                    kind: .counter,
                    value: Double(consumer.consumerRestarts)
                ),
                MetricSample(
                    name: "logcast_nats_stream_seq",
                    help: "The stream sequence of the newest line the gateway has.",
                    kind: .gauge,
                    value: Double(served.lastSeq)
                ),
                MetricSample(
                    name: "logcast_nats_refused_messages_total",
                    help: "Messages on the stream that were not logcast records (skipped).",
                    kind: .counter,
                    value: Double(consumer.refusedMessages.values.reduce(0, +))
                ),
            ]
        }
        return samples
    }

    /// The journal sources as archives: `since` reads older than the history are read from the journal itself.
    static func archives(_ configuration: ServeConfiguration) -> [any SourceArchive] {
        configuration.sources.compactMap { spec in
            guard case .journal(let location) = spec.kind else { return nil }
            var journal = JournalTailer.Configuration(name: spec.name, location: location)
            journal.units = configuration.journalUnits
            return JournalArchive(configuration: journal)
        }
    }

    /// The hub, continuing the stored history when there is a state directory.
    static func openHub(_ configuration: ServeConfiguration, logger: Logger) throws(ConfigurationError) -> (Hub, HistoryKeeper?) {
        guard let path = configuration.stateDirectory else {
            return (Hub(configuration: configuration.hub, archives: archives(configuration)), nil)
        }
        do {
            let state = try StateDirectory(path: path, reset: configuration.resetState)
            var logConfiguration = configuration.log
            logConfiguration.directory = state.historyPath
            let started = ContinuousClock.now
            let log = try SegmentLog(
                configuration: logConfiguration,
                tailLines: configuration.hub.historyLines,
                tailBytes: configuration.hub.historyBytes
            )
            let recovery = log.recovery
            logger.notice(
                "state directory opened",
                metadata: [
                    "path": "\(path)", "epoch": "\(state.epoch)", "last-seq": "\(recovery.lastSeq)",
                    "stored-bytes": "\(recovery.storedBytes)", "sources": "\(recovery.positions.count)",
                    "took": "\(ContinuousClock.now - started)",
                ]
            )
            if recovery.tornBytes > 0 {
                logger.warning(
                    "cut a torn record off the end of the history (the last run ended mid-write)",
                    metadata: ["bytes": "\(recovery.tornBytes)"]
                )
            }
            for segment in recovery.damagedSegments {
                logger.error("a history segment is damaged; the lines after the damage in it are skipped", metadata: ["segment": "\(segment)"])
            }
            let hub = Hub(
                configuration: configuration.hub,
                epoch: state.epoch,
                durable: log,
                restored: recovery.tail,
                lastSeq: recovery.lastSeq,
                archives: archives(configuration)
            )
            return (hub, HistoryKeeper(state: state, log: log, logger: logger))
        } catch {
            throw ConfigurationError(error.description)
        }
    }

    /// Whether `path` is `pattern` or a rotated name of it beside it (`app.log.1`, `app.log-20261201`).
    /// Whether `path` is a file the glob `pattern` matches.
    static func isMember(_ path: String, of pattern: String) -> Bool {
        let (file, glob) = (path as NSString, pattern as NSString)
        return file.deletingLastPathComponent == glob.deletingLastPathComponent && fnmatch(glob.lastPathComponent, file.lastPathComponent, 0) == 0
    }

    static func isGeneration(_ path: String, of pattern: String) -> Bool {
        let (saved, configured) = (path as NSString, pattern as NSString)
        return path == pattern
            || (saved.deletingLastPathComponent == configured.deletingLastPathComponent
                && saved.lastPathComponent.hasPrefix(configured.lastPathComponent))
    }

    /// A private directory for the demo log (mkdtemp: mode 0700, an
    /// unpredictable name), never one that exists already.
    static func makeDemoDirectory() throws(ConfigurationError) -> String {
        var template = Array((NSTemporaryDirectory() + "logcast-demo-XXXXXX").utf8CString)
        guard let made = mkdtemp(&template) else {
            throw ConfigurationError(
                "--demo: cannot create a temporary directory in \(NSTemporaryDirectory()): \(String(cString: strerror(errno)))"
            )
        }
        return String(cString: made)
    }
}
