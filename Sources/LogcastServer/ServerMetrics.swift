import CoreMetrics
import LogcastHub
import LogcastProtocol
import Prometheus
import Synchronization

/// What the server records as it serves, through swift-metrics (the names
/// are in ``MetricsCatalog``), and `/metrics`: the Prometheus registry the
/// executable bootstrapped swift-metrics with, plus the values other parts
/// own, copied in when it is read (``ScrapeCollector``).
///
/// Counted per frame, chunk or read, never per line: a counter is an atomic
/// add, a histogram one short lock.
public final class ServerMetrics: Sendable {
    public enum Transport: String, Sendable, CaseIterable {
        case ws
        case sse
    }

    /// The handles of one streaming transport, made once.
    struct Stream: Sendable {
        let lines: CoreMetrics.Counter
        let bytes: CoreMetrics.Counter
        let connections: CoreMetrics.Counter
        let open: Meter
        let frameBytes: Recorder
        let latency: CoreMetrics.Timer

        init(_ transport: String) {
            let dimensions = [("transport", transport)]
            lines = CoreMetrics.Counter(label: MetricsCatalog.linesDelivered, dimensions: dimensions)
            bytes = CoreMetrics.Counter(label: MetricsCatalog.bytesSent, dimensions: dimensions)
            connections = CoreMetrics.Counter(label: MetricsCatalog.connections, dimensions: dimensions)
            open = Meter(label: MetricsCatalog.subscribers, dimensions: dimensions)
            frameBytes = Recorder(label: MetricsCatalog.frameBytes, dimensions: dimensions, aggregate: true)
            latency = CoreMetrics.Timer(label: MetricsCatalog.deliveryLatency, dimensions: dimensions)
        }
    }

    private let ws = Stream(Transport.ws.rawValue)
    private let sse = Stream(Transport.sse.rawValue)
    private let pollRequests = CoreMetrics.Counter(label: MetricsCatalog.pollRequests)
    private let pollLines = CoreMetrics.Counter(label: MetricsCatalog.linesDelivered, dimensions: [("transport", "poll")])
    private let pollBytes = CoreMetrics.Counter(label: MetricsCatalog.bytesSent, dimensions: [("transport", "poll")])
    private let slowConsumerGaps = CoreMetrics.Counter(label: MetricsCatalog.gaps, dimensions: [("reason", "slow-consumer")])
    private let slowConsumerDropped = CoreMetrics.Counter(label: MetricsCatalog.linesDropped, dimensions: [("reason", "slow-consumer")])
    private let disconnectedSlow = CoreMetrics.Counter(label: MetricsCatalog.slowDisconnects)
    let collector: ScrapeCollector

    /// - Parameter registry: the registry swift-metrics was bootstrapped
    ///   with (the executable's), which `/metrics` renders; without one
    ///   (tests), `/metrics` shows only the values copied in at scrape time.
    public init(registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry()) {
        collector = ScrapeCollector(registry: registry)
    }

    private func stream(_ transport: Transport) -> Stream {
        switch transport {
        case .ws: ws
        case .sse: sse
        }
    }

    func opened(_ transport: Transport) {
        stream(transport).connections.increment()
        stream(transport).open.increment()
    }

    func closed(_ transport: Transport) {
        stream(transport).open.decrement()
    }

    /// A frame (WebSocket) or chunk (SSE) written: its lines and bytes, its
    /// size, and the delivery latency of its oldest line that entered the
    /// hub after the subscriber started (a backlog or resume is not live).
    func sent(_ transport: Transport, lines: Int, bytes: Int, items: [SubscriberQueue.Item], subscribedAt: UInt64) {
        let handles = stream(transport)
        if lines > 0 { handles.lines.increment(by: lines) }
        handles.bytes.increment(by: bytes)
        handles.frameBytes.record(bytes)
        if let published = Self.oldestLive(items, since: subscribedAt) {
            let now = MonotonicClock.nanoseconds()
            handles.latency.recordNanoseconds(Int64(now &- min(published, now)))
        }
    }

    /// When the oldest line of `items` that entered the hub at or after `since` did.
    static func oldestLive(_ items: [SubscriberQueue.Item], since: UInt64) -> UInt64? {
        for item in items {
            guard let entry = item.first, entry.hasSeq, entry.publishedAt != 0, entry.publishedAt >= since else { continue }
            return entry.publishedAt
        }
        return nil
    }

    /// An `/api/v1/lines` read answered.
    func polled(lines: Int, bytes: Int) {
        pollRequests.increment()
        pollLines.increment(by: lines)
        pollBytes.increment(by: bytes)
    }

    func slowDisconnect() {
        disconnectedSlow.increment()
    }

    func slowConsumerGap(missed: Int) {
        slowConsumerGaps.increment()
        slowConsumerDropped.increment(by: max(missed, 0))
    }

    /// The Prometheus text exposition (version 0.0.4): the registry, with
    /// the sources', the hub's, the process's and `extra` copied in first.
    func exposition(hub: Hub, registry: SourceRegistry, uptimeSeconds: Int64, extra: [MetricSample] = []) -> [UInt8] {
        var samples: [MetricSample] = [
            MetricSample(name: "logcast_build_info", kind: .gauge, labels: [("version", LogcastVersion.string)], value: 1),
            MetricSample(name: "logcast_uptime_seconds", kind: .gauge, value: Double(uptimeSeconds)),
        ]
        for source in registry.all {
            let name = [("source", source.name)]
            samples += [
                MetricSample(name: "logcast_source_lines_read_total", kind: .counter, labels: name, value: Double(source.linesRead)),
                MetricSample(name: "logcast_source_bytes_read_total", kind: .counter, labels: name, value: Double(source.bytesRead)),
                MetricSample(name: "logcast_source_up", kind: .gauge, labels: name, value: source.state == .following ? 1 : 0),
                MetricSample(name: "logcast_source_failing", kind: .gauge, labels: name, value: source.state == .failing ? 1 : 0),
            ]
            for kind in SourceEvent.Kind.allCases {
                samples.append(
                    MetricSample(
                        name: "logcast_source_events_total",
                        kind: .counter,
                        labels: [("source", source.name), ("event", kind.rawValue)],
                        value: Double(source.events[kind.rawValue] ?? 0)
                    )
                )
            }
        }
        let statistics = hub.statistics
        samples += [
            MetricSample(name: "logcast_hub_lines_total", kind: .counter, value: Double(statistics.linesPublished)),
            MetricSample(name: "logcast_hub_history_lines", kind: .gauge, value: Double(statistics.historyLines)),
            MetricSample(name: "logcast_hub_history_bytes", kind: .gauge, value: Double(statistics.historyBytes)),
            MetricSample(name: "logcast_subscriber_queue_lines", kind: .gauge, value: Double(hub.queuedItems)),
            MetricSample(
                name: "logcast_catch_up_reads_total",
                kind: .counter,
                labels: [("from", "memory")],
                value: Double(statistics.catchUpReads - statistics.catchUpStoredReads)
            ),
            MetricSample(
                name: "logcast_catch_up_reads_total",
                kind: .counter,
                labels: [("from", "stored")],
                value: Double(statistics.catchUpStoredReads)
            ),
        ]
        samples += ProcessMetrics.current()?.samples ?? []
        return collector.render(samples + extra)
    }
}

/// A value another part owns (a source, the hub, the process, the durable
/// history, the cluster), copied into the registry when `/metrics` is read.
public struct MetricSample: Sendable {
    public var name: String
    public var help: String
    /// `.counter` or `.gauge`.
    public var kind: MetricsCatalog.Kind
    public var labels: [(String, String)]
    public var value: Double

    public init(name: String, help: String, kind: MetricsCatalog.Kind, labels: [(String, String)] = [], value: Double) {
        self.name = name
        self.help = help
        self.kind = kind
        self.labels = labels
        self.value = value
    }

    /// A sample of a family in ``MetricsCatalog``, with its help text.
    init(name: String, kind: MetricsCatalog.Kind, labels: [(String, String)] = [], value: Double) {
        self.init(name: name, help: MetricsCatalog.family(named: name)?.help ?? "", kind: kind, labels: labels, value: value)
    }
}

/// Copies values owned elsewhere into the registry, then renders it.
///
/// swift-prometheus has no collector callback (like Go's `CounterFunc`), so
/// a gauge is set, and a counter is brought up to its owner's value by
/// incrementing it by the difference. An owner whose value went down (a
/// source made anew by a reload) restarts its counter: a counter reset,
/// which `rate()` expects. Series whose owner is gone (a source removed by a
/// reload) are unregistered. Scrapes take turns (one lock).
final class ScrapeCollector: Sendable {
    struct Key: Hashable {
        var name: String
        var labels: [String]

        init(_ sample: MetricSample) {
            name = sample.name
            labels = sample.labels.flatMap { [$0.0, $0.1] }
        }
    }

    struct State {
        var counters: [Key: (counter: Prometheus.Counter, value: Double)] = [:]
        var gauges: [Key: Prometheus.Gauge] = [:]
        var buffer: [UInt8] = []
    }

    let registry: PrometheusCollectorRegistry
    private let state = Mutex(State())

    init(registry: PrometheusCollectorRegistry) {
        self.registry = registry
    }

    func render(_ samples: [MetricSample]) -> [UInt8] {
        let registry = self.registry
        return state.withLock { state in
            var seen = Set<Key>()
            for sample in samples {
                let key = Key(sample)
                seen.insert(key)
                switch sample.kind {
                case .counter:
                    let entry =
                        state.counters[key]
                        ?? (registry.makeCounter(descriptor: MetricsCatalog.descriptor(sample.name, help: sample.help), labels: sample.labels), 0)
                    if sample.value < entry.value { entry.counter.reset() }
                    let base = sample.value < entry.value ? 0 : entry.value
                    if sample.value > base { entry.counter.increment(by: sample.value - base) }
                    state.counters[key] = (entry.counter, sample.value)
                case .gauge, .histogram:
                    let gauge =
                        state.gauges[key]
                        ?? registry.makeGauge(descriptor: MetricsCatalog.descriptor(sample.name, help: sample.help), labels: sample.labels)
                    gauge.set(sample.value)
                    state.gauges[key] = gauge
                }
            }
            for (key, entry) in state.counters where !seen.contains(key) {
                registry.unregisterCounter(entry.counter)
                state.counters[key] = nil
            }
            for (key, gauge) in state.gauges where !seen.contains(key) {
                registry.unregisterGauge(gauge)
                state.gauges[key] = nil
            }
            state.buffer.removeAll(keepingCapacity: true)
            registry.emit(into: &state.buffer)
            return state.buffer
        }
    }
}
