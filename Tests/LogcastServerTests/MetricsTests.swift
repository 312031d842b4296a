import CoreMetrics
import HTTPTypes
import LogcastHub
import LogcastProtocol
import Prometheus
import Testing

@testable import LogcastServer

/// The pieces behind `/metrics`: the factory that gives swift-metrics
/// labels their Prometheus names, help and buckets; the collector that
/// copies owned values in; `/proc` parsing; which lines count for latency.
@Suite struct MetricsTests {
    static func text(_ registry: PrometheusCollectorRegistry) -> String { registry.emitToString() }

    // MARK: Factory

    @Test func catalogLabelsGetTheirHelpAndConventionalNames() {
        let registry = PrometheusCollectorRegistry()
        let factory = LogcastMetricsFactory(registry: registry)
        let counter = factory.makeCounter(label: MetricsCatalog.linesDelivered, dimensions: [("transport", "ws")])
        counter.increment(by: 3)
        // Hummingbird's labels, renamed; its dotted dimension names made valid.
        let requests = factory.makeCounter(label: "hb.requests", dimensions: [("http.route", "/ws")])
        requests.increment(by: 1)
        let text = Self.text(registry)
        #expect(text.contains("# HELP logcast_lines_delivered_total Lines sent to subscribers"))
        #expect(text.contains(#"logcast_lines_delivered_total{transport="ws"} 3"#))
        #expect(text.contains("# HELP http_server_requests_total "))
        #expect(text.contains(#"http_server_requests_total{http_route="/ws"} 1"#))
        #expect(!text.contains("hb_requests"))
    }

    @Test func everyCatalogFamilyHasHelpAndHistogramsHaveBuckets() {
        for (label, family) in MetricsCatalog.families {
            #expect(!family.help.isEmpty, "\(label)")
            #expect(family.name.allSatisfy { $0.isLetter || $0.isNumber || $0 == "_" }, "\(family.name)")
            if family.kind == .counter { #expect(family.name.hasSuffix("_total"), "\(family.name)") }
            if family.kind == .histogram { #expect(!family.durationBuckets.isEmpty || !family.valueBuckets.isEmpty, "\(family.name)") }
        }
        #expect(Set(MetricsCatalog.families.values.map(\.name)).count == MetricsCatalog.families.count, "names are unique")
    }

    @Test func timersAndRecordersUseTheCatalogsBuckets() {
        let registry = PrometheusCollectorRegistry()
        let factory = LogcastMetricsFactory(registry: registry)
        factory.makeTimer(label: MetricsCatalog.deliveryLatency, dimensions: [("transport", "sse")]).recordNanoseconds(300_000)
        factory.makeRecorder(label: MetricsCatalog.frameBytes, dimensions: [("transport", "sse")], aggregate: true).record(Int64(700))
        let text = Self.text(registry)
        // 300 µs lands in the 500 µs bucket, not the 250 µs one.
        #expect(text.contains(#"logcast_delivery_latency_seconds_bucket{transport="sse",le="0.00025"} 0"#))
        #expect(text.contains(#"logcast_delivery_latency_seconds_bucket{transport="sse",le="0.0005"} 1"#))
        #expect(text.contains(#"logcast_frame_bytes_bucket{transport="sse",le="512.0"} 0"#))
        #expect(text.contains(#"logcast_frame_bytes_bucket{transport="sse",le="1024.0"} 1"#))
        #expect(text.contains("# TYPE logcast_frame_bytes histogram"))
    }

    @Test func unknownLabelsAreRegisteredPlainlyAndDestroyedHandlersLeave() {
        let registry = PrometheusCollectorRegistry()
        let factory = LogcastMetricsFactory(registry: registry)
        let counter = factory.makeCounter(label: "somebody_elses_total", dimensions: [])
        counter.increment(by: 2)
        #expect(Self.text(registry).contains("somebody_elses_total 2"))
        #expect(!Self.text(registry).contains("# HELP somebody_elses_total"))
        factory.destroyCounter(counter)
        #expect(!Self.text(registry).contains("somebody_elses_total"))
    }

    // MARK: Scrape collector

    @Test func countersFollowTheirOwnersValueAndRestartWhenItGoesDown() {
        let registry = PrometheusCollectorRegistry()
        let collector = ScrapeCollector(registry: registry)
        func scrape(_ value: Double) -> String {
            let sample = MetricSample(name: "logcast_hub_lines_total", kind: .counter, value: value)
            return String(decoding: collector.render([sample]), as: UTF8.self)
        }
        #expect(scrape(5).contains("logcast_hub_lines_total 5"))
        #expect(scrape(12).contains("logcast_hub_lines_total 12"))
        #expect(scrape(12).contains("logcast_hub_lines_total 12"))
        // The owner started over (a source made anew): the counter resets to its value.
        #expect(scrape(3).contains("logcast_hub_lines_total 3"))
        #expect(scrape(4).contains("logcast_hub_lines_total 4"))
        #expect(scrape(4).contains("# HELP logcast_hub_lines_total Lines published into the hub."))
    }

    @Test func gaugesAreSetAndSeriesWhoseOwnerIsGoneLeave() {
        let registry = PrometheusCollectorRegistry()
        let collector = ScrapeCollector(registry: registry)
        let both = ["app", "db"].flatMap { name in
            [
                MetricSample(name: "logcast_source_up", kind: .gauge, labels: [("source", name)], value: 1),
                MetricSample(name: "logcast_source_lines_read_total", kind: .counter, labels: [("source", name)], value: 7),
            ]
        }
        let first = String(decoding: collector.render(both), as: UTF8.self)
        #expect(first.contains(#"logcast_source_up{source="db"} 1"#))
        #expect(first.contains(#"logcast_source_lines_read_total{source="db"} 7"#))
        let onlyApp = both.filter { $0.labels.first?.1 == "app" }
        let second = String(decoding: collector.render(onlyApp), as: UTF8.self)
        #expect(second.contains(#"logcast_source_up{source="app"} 1"#))
        #expect(!second.contains(#"source="db""#))
        // And a source that comes back starts from its value again.
        let third = String(decoding: collector.render(both), as: UTF8.self)
        #expect(third.contains(#"logcast_source_lines_read_total{source="db"} 7"#))
    }

    // MARK: /proc

    @Test func procStatIsReadAfterTheLastParenthesisOfTheName() throws {
        // A command name with spaces and parentheses, as a process may give itself.
        let line =
            "4242 (log (cast) x) S 1 4242 4242 0 -1 4194560 1500 0 3 0 250 50 0 0 20 0 7 0 123400 795000000 11000 "
            + "18446744073709551615 1 1 0 0 0 0 0 4096 0 0 0 17 1 0 0 0 0 0\n"
        let stat = try #require(ProcessMetrics.Stat(line))
        #expect(stat.utime == 250)
        #expect(stat.stime == 50)
        #expect(stat.threads == 7)
        #expect(stat.startTicks == 123_400)
        #expect(stat.virtualBytes == 795_000_000)
        #expect(stat.residentPages == 11000)
        let metrics = ProcessMetrics(
            stat: stat,
            bootTime: 1_700_000_000,
            ticksPerSecond: 100,
            pageSize: 4096,
            openDescriptors: 12,
            maxDescriptors: 20000
        )
        #expect(metrics.cpuSeconds == 3.0)
        #expect(metrics.startTimeSeconds == 1_700_001_234)
        #expect(metrics.residentBytes == 11000 * 4096)
        #expect(metrics.maxDescriptors == 20000)
        #expect(metrics.samples.map(\.name).contains("process_open_fds"))
    }

    @Test func unreadableProcTextGivesNothing() {
        #expect(ProcessMetrics.Stat("") == nil)
        #expect(ProcessMetrics.Stat("4242 (short) S 1 2 3") == nil)
        #expect(ProcessMetrics.Stat("4242 (x) S 1 1 1 0 -1 0 0 0 0 0 abc 50 0 0 20 0 7 0 1 2 3") == nil)
        #expect(ProcessMetrics.bootTime(procStat: "cpu 1 2 3\nbtime 1700000000\nprocesses 9\n") == 1_700_000_000)
        #expect(ProcessMetrics.bootTime(procStat: "cpu 1 2 3\n") == nil)
    }

    @Test func thisProcessCanBeRead() throws {
        let metrics = try #require(ProcessMetrics.current())
        #expect(metrics.residentBytes > 0)
        #expect(metrics.threads >= 1)
        #expect((metrics.openDescriptors ?? 0) >= 3)
        #expect((metrics.maxDescriptors ?? 0) >= (metrics.openDescriptors ?? 0))
    }

    // MARK: Latency and refusals

    @Test func latencyIsTakenFromTheOldestLineThatEnteredTheHubAfterTheStart() {
        func line(_ seq: UInt64, at published: UInt64) -> SubscriberQueue.Item {
            let record = LogRecord(timestamp: Timestamp(microseconds: 0), source: "app", message: "m")
            return .entry(HubEntry(position: seq, payload: .line(record), json: [], publishedAt: published))
        }
        let start: UInt64 = 1000
        // A backlog line (before the start), a stored line (no stamp), then live lines.
        let items: [SubscriberQueue.Item] = [.control([]), line(1, at: 500), line(2, at: 0), line(3, at: 1200), line(4, at: 1300)]
        #expect(ServerMetrics.oldestLive(items, since: start) == 1200)
        #expect(ServerMetrics.oldestLive(Array(items.prefix(3)), since: start) == nil)
        let event = SourceEvent(source: "app", kind: .rotated)
        #expect(ServerMetrics.oldestLive([.entry(HubEntry(position: 5, payload: .event(event), json: [], publishedAt: 2000))], since: start) == nil)
        // A run (an unfiltered writer's whole chunk) counts from its first line.
        let chunk = [1400, 1400].enumerated().map { index, published in
            HubEntry(
                position: 6 + UInt64(index),
                payload: .line(LogRecord(timestamp: Timestamp(microseconds: 0), source: "app", message: "m")),
                json: [],
                publishedAt: UInt64(published)
            )
        }
        #expect(ServerMetrics.oldestLive([.control([]), .run(chunk[...], bytes: 0, chunk: nil)], since: start) == 1400)
    }

    @Test func refusalsHaveAReasonByStatusUnlessTheyName() {
        #expect(Refusal(.unauthorized, "no token", hint: "").reason == "unauthorized")
        #expect(Refusal(.misdirectedRequest, "host", hint: "").reason == "unknown-host")
        #expect(Refusal(.serviceUnavailable, "busy", hint: "", reason: "too-many-reads").reason == "too-many-reads")
        #expect(Refusal.reason(of: .init(code: 418)) == "418")
    }
}
