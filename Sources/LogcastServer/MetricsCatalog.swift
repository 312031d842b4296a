import CoreMetrics
import Prometheus

/// Every metric family logcast exposes: its Prometheus name, help text and
/// buckets, in one table (the README lists the same names).
///
/// Library code records through swift-metrics with these names as labels
/// (``ServerMetrics``, Hummingbird's `MetricsMiddleware`); ``LogcastMetricsFactory``
/// looks the label up here so each family gets its help text, its
/// conventional name (Hummingbird's labels are renamed) and its buckets.
/// Values owned by other parts are copied in at scrape time
/// (``ScrapeCollector``) under names from the same table.
public enum MetricsCatalog {
    public enum Kind: String, Sendable {
        case counter
        case gauge
        case histogram
    }

    public struct Family: Sendable {
        public var name: String
        public var kind: Kind
        public var help: String
        /// Upper bounds of a histogram recorded with a swift-metrics `Timer`.
        var durationBuckets: [Duration] = []
        /// Upper bounds of a histogram recorded with an aggregating `Recorder`.
        var valueBuckets: [Double] = []

        /// The name and help, as the registry takes them.
        var descriptor: MetricNameDescriptor { MetricsCatalog.descriptor(name, help: help) }
    }

    /// A whole metric name (no parts to join) and its help.
    static func descriptor(_ name: String, help: String) -> MetricNameDescriptor {
        MetricNameDescriptor(metricName: name, unitName: "", helpText: help)
    }

    // Labels the server records under (swift-metrics labels; the same as the names).
    static let linesDelivered = "logcast_lines_delivered_total"
    static let bytesSent = "logcast_bytes_sent_total"
    static let connections = "logcast_connections_total"
    static let subscribers = "logcast_subscribers"
    static let frameBytes = "logcast_frame_bytes"
    static let deliveryLatency = "logcast_delivery_latency_seconds"
    static let pollRequests = "logcast_poll_requests_total"
    static let gaps = "logcast_gaps_total"
    static let linesDropped = "logcast_lines_dropped_total"
    static let slowDisconnects = "logcast_slow_disconnects_total"
    static let refusals = "logcast_refusals_total"
    static let connectionsDropped = "logcast_connections_dropped_total"

    /// Delivery latency buckets: 100 µs to 10 s.
    static let latencyBuckets: [Duration] = [
        .microseconds(100), .microseconds(250), .microseconds(500), .milliseconds(1), .milliseconds(2.5), .milliseconds(5),
        .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500),
        .seconds(1), .seconds(2.5), .seconds(5), .seconds(10),
    ]
    /// Frame size buckets: 128 bytes to past the largest batch (64 KiB by default: a batch may exceed it by a line).
    static let frameBuckets: [Double] = [128, 512, 1024, 4096, 16384, 65536, 262_144, 1_048_576]
    /// HTTP request duration buckets: 1 ms to 10 s (a stream's request lasts as long as the stream).
    static let requestBuckets: [Duration] = [
        .milliseconds(1), .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100),
        .milliseconds(250), .milliseconds(500), .seconds(1), .seconds(2.5), .seconds(5), .seconds(10),
    ]

    /// The families, keyed by the swift-metrics label they are recorded under.
    public static let families: [String: Family] = {
        var table: [String: Family] = [:]
        func add(_ name: String, _ kind: Kind, _ help: String, label: String? = nil, duration: [Duration] = [], value: [Double] = []) {
            table[label ?? name] = Family(name: name, kind: kind, help: help, durationBuckets: duration, valueBuckets: value)
        }
        // Recorded by the server as it serves.
        add(connections, .counter, "Streams opened, by transport.")
        add(subscribers, .gauge, "Open streams, by transport.")
        add(linesDelivered, .counter, "Lines sent to subscribers, by transport (poll: /api/v1/lines).")
        add(bytesSent, .counter, "Bytes of stream payload sent, by transport (before compression).")
        add(frameBytes, .histogram, "Size of each WebSocket frame or SSE chunk sent, in bytes, by transport.", value: frameBuckets)
        add(
            deliveryLatency,
            .histogram,
            "Time from a line entering the hub to the frame carrying it being written, once per frame for its oldest line, by transport.",
            duration: latencyBuckets
        )
        add(pollRequests, .counter, "Reads of /api/v1/lines answered.")
        add(gaps, .counter, "Gap events sent because a subscriber fell behind, by reason.")
        add(linesDropped, .counter, "Matching lines dropped from subscriber queues, by reason.")
        add(slowDisconnects, .counter, "Subscribers closed with 1013 under --slow-consumer disconnect.")
        add(refusals, .counter, "Requests and upgrades refused, by reason (see the README).")
        add(
            connectionsDropped,
            .counter,
            "Connections closed before a request was read, by reason: over-capacity (--max-connections), head-timeout (--request-head-timeout)."
        )
        // Recorded by Hummingbird's MetricsMiddleware, renamed to the Prometheus conventions.
        add("http_server_requests_total", .counter, "HTTP requests answered, by route, method and status.", label: "hb.requests")
        add(
            "http_server_request_duration_seconds",
            .histogram,
            "Time to answer an HTTP request, by route, method and status (a stream's lasts as long as the stream).",
            label: "http.server.request.duration",
            duration: requestBuckets
        )
        add(
            "http_server_request_errors_total",
            .counter,
            "HTTP requests that ended in an error, by route, method and status.",
            label: "hb.request.errors"
        )
        add("http_server_active_requests", .gauge, "HTTP requests being answered, by method.", label: "http.server.active_requests")
        // Copied in at scrape time from the parts that own them.
        add("logcast_build_info", .gauge, "Build information; the value is always 1.")
        add("logcast_uptime_seconds", .gauge, "Seconds since the server started.")
        add("logcast_source_lines_read_total", .counter, "Lines read from each source.")
        add("logcast_source_bytes_read_total", .counter, "Bytes of message text read from each source.")
        add("logcast_source_events_total", .counter, "Source events (rotated, truncated, missing, created, reopened, ...) per source.")
        add("logcast_source_up", .gauge, "1 when the source is being followed, 0 when it is waiting, failing or stopped.")
        add("logcast_source_failing", .gauge, "1 when the source cannot be read (see last_error in /api/v1/sources).")
        add("logcast_hub_lines_total", .counter, "Lines published into the hub.")
        add("logcast_hub_history_lines", .gauge, "Lines retained for backlog and resume.")
        add("logcast_hub_history_bytes", .gauge, "Bytes retained for backlog and resume.")
        add("logcast_subscriber_queue_lines", .gauge, "Items waiting in all subscriber queues.")
        add(
            "logcast_catch_up_reads_total",
            .counter,
            "Parts of the history read for subscribers that fell behind (--slow-consumer catch-up), by where they were read."
        )
        add("process_start_time_seconds", .gauge, "Start time of the process since the Unix epoch, in seconds.")
        add("process_cpu_seconds_total", .counter, "User and system CPU time spent, in seconds.")
        add("process_resident_memory_bytes", .gauge, "Resident memory size, in bytes.")
        add("process_virtual_memory_bytes", .gauge, "Virtual memory size, in bytes.")
        add("process_open_fds", .gauge, "Open file descriptors.")
        add("process_max_fds", .gauge, "Limit of open file descriptors (RLIMIT_NOFILE).")
        add("process_threads", .gauge, "Threads of the process.")
        return table
    }()

    /// The family of a Prometheus name.
    static func family(named name: String) -> Family? {
        families.values.first { $0.name == name }
    }
}

/// swift-metrics backed by a `PrometheusCollectorRegistry`, with the help
/// texts, names and buckets of ``MetricsCatalog``. Labels the catalog does
/// not know are registered as swift-prometheus's own factory would (no
/// help text, its default buckets).
///
/// The executable bootstraps it (`MetricsSystem.bootstrap`) and hands the
/// same registry to the server, whose `/metrics` renders it.
public struct LogcastMetricsFactory: MetricsFactory {
    public let registry: PrometheusCollectorRegistry
    private let plain: PrometheusMetricsFactory

    public init(registry: PrometheusCollectorRegistry) {
        self.registry = registry
        self.plain = PrometheusMetricsFactory(registry: registry)
    }

    public func makeCounter(label: String, dimensions: [(String, String)]) -> any CounterHandler {
        guard let family = MetricsCatalog.families[label] else { return plain.makeCounter(label: label, dimensions: dimensions) }
        return registry.makeCounter(descriptor: family.descriptor, labels: dimensions)
    }

    public func makeFloatingPointCounter(label: String, dimensions: [(String, String)]) -> any FloatingPointCounterHandler {
        guard let family = MetricsCatalog.families[label] else { return plain.makeFloatingPointCounter(label: label, dimensions: dimensions) }
        return registry.makeCounter(descriptor: family.descriptor, labels: dimensions)
    }

    public func makeRecorder(label: String, dimensions: [(String, String)], aggregate: Bool) -> any RecorderHandler {
        guard let family = MetricsCatalog.families[label] else {
            return plain.makeRecorder(label: label, dimensions: dimensions, aggregate: aggregate)
        }
        guard aggregate else { return registry.makeGauge(descriptor: family.descriptor, labels: dimensions) }
        return registry.makeValueHistogram(descriptor: family.descriptor, labels: dimensions, buckets: family.valueBuckets)
    }

    public func makeMeter(label: String, dimensions: [(String, String)]) -> any MeterHandler {
        guard let family = MetricsCatalog.families[label] else { return plain.makeMeter(label: label, dimensions: dimensions) }
        return registry.makeGauge(descriptor: family.descriptor, labels: dimensions)
    }

    public func makeTimer(label: String, dimensions: [(String, String)]) -> any TimerHandler {
        guard let family = MetricsCatalog.families[label] else { return plain.makeTimer(label: label, dimensions: dimensions) }
        return registry.makeDurationHistogram(descriptor: family.descriptor, labels: dimensions, buckets: family.durationBuckets)
    }

    public func destroyCounter(_ handler: any CounterHandler) { plain.destroyCounter(handler) }
    public func destroyFloatingPointCounter(_ handler: any FloatingPointCounterHandler) { plain.destroyFloatingPointCounter(handler) }
    public func destroyRecorder(_ handler: any RecorderHandler) { plain.destroyRecorder(handler) }
    public func destroyMeter(_ handler: any MeterHandler) { plain.destroyMeter(handler) }
    public func destroyTimer(_ handler: any TimerHandler) { plain.destroyTimer(handler) }
}
