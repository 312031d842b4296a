import Foundation
import LogcastHub
import LogcastProtocol
import Synchronization

/// Counters of what the server delivered, by transport, for `/metrics`.
///
/// Lock-free (atomics); writers count after each frame or event they send.
public final class ServerMetrics: Sendable {
    public enum Transport: String, Sendable, CaseIterable {
        case ws
        case sse
    }

    struct PerTransport: ~Copyable, Sendable {
        let linesSent = Atomic<UInt64>(0)
        let bytesSent = Atomic<UInt64>(0)
        let connections = Atomic<UInt64>(0)
        let open = Atomic<Int>(0)
    }

    private let ws = PerTransport()
    private let sse = PerTransport()
    /// Gaps sent, by reason.
    let slowConsumerGaps = Atomic<UInt64>(0)
    /// Lines dropped from slow subscribers' queues (the `missed` of their gaps).
    let slowConsumerDropped = Atomic<UInt64>(0)
    let disconnectedSlow = Atomic<UInt64>(0)

    public init() {}

    func opened(_ transport: Transport) {
        counters(transport) {
            $0.connections.add(1, ordering: .relaxed)
            $0.open.add(1, ordering: .relaxed)
        }
    }

    func closed(_ transport: Transport) {
        counters(transport) { $0.open.subtract(1, ordering: .relaxed) }
    }

    func sent(_ transport: Transport, lines: Int, bytes: Int) {
        counters(transport) {
            $0.linesSent.add(UInt64(lines), ordering: .relaxed)
            $0.bytesSent.add(UInt64(bytes), ordering: .relaxed)
        }
    }

    func slowDisconnect() {
        disconnectedSlow.add(1, ordering: .relaxed)
    }

    func slowConsumerGap(missed: Int) {
        slowConsumerGaps.add(1, ordering: .relaxed)
        slowConsumerDropped.add(UInt64(max(missed, 0)), ordering: .relaxed)
    }

    private func counters(_ transport: Transport, _ body: (borrowing PerTransport) -> Void) {
        switch transport {
        case .ws: body(ws)
        case .sse: body(sse)
        }
    }

    func snapshot(_ transport: Transport) -> (lines: UInt64, bytes: UInt64, connections: UInt64, open: Int) {
        var result: (UInt64, UInt64, UInt64, Int) = (0, 0, 0, 0)
        counters(transport) {
            result = (
                $0.linesSent.load(ordering: .relaxed), $0.bytesSent.load(ordering: .relaxed),
                $0.connections.load(ordering: .relaxed), $0.open.load(ordering: .relaxed)
            )
        }
        return result
    }

    /// The Prometheus text exposition (version 0.0.4) of everything logcast counts.
    func exposition(hub: Hub, registry: SourceRegistry, uptimeSeconds: Int64, extra: [MetricSample] = []) -> String {
        var out = PrometheusText()
        out.metric("logcast_build_info", help: "Build information; the value is always 1.", type: "gauge")
        out.sample("logcast_build_info", ["version": LogcastVersion.string], 1)
        out.metric("logcast_uptime_seconds", help: "Seconds since the server started.", type: "gauge")
        out.sample("logcast_uptime_seconds", [:], Double(uptimeSeconds))

        let sources = registry.all
        out.metric("logcast_source_lines_read_total", help: "Lines read from each source.", type: "counter")
        for source in sources { out.sample("logcast_source_lines_read_total", ["source": source.name], Double(source.linesRead)) }
        out.metric("logcast_source_bytes_read_total", help: "Bytes of message text read from each source.", type: "counter")
        for source in sources { out.sample("logcast_source_bytes_read_total", ["source": source.name], Double(source.bytesRead)) }
        out.metric("logcast_source_events_total", help: "Source events (rotated, truncated, missing, created, reopened) per source.", type: "counter")
        for source in sources {
            for kind in SourceEvent.Kind.allCases {
                out.sample("logcast_source_events_total", ["source": source.name, "event": kind.rawValue], Double(source.events[kind.rawValue] ?? 0))
            }
        }
        out.metric("logcast_source_up", help: "1 when the source is being followed, 0 when it is waiting, failing or stopped.", type: "gauge")
        for source in sources { out.sample("logcast_source_up", ["source": source.name], source.state == .following ? 1 : 0) }
        out.metric("logcast_source_failing", help: "1 when the source cannot be read (see last_error in /api/v1/sources).", type: "gauge")
        for source in sources { out.sample("logcast_source_failing", ["source": source.name], source.state == .failing ? 1 : 0) }

        let statistics = hub.statistics
        out.metric("logcast_hub_lines_total", help: "Lines published into the hub.", type: "counter")
        out.sample("logcast_hub_lines_total", [:], Double(statistics.linesPublished))
        out.metric("logcast_hub_history_lines", help: "Lines retained for backlog and resume.", type: "gauge")
        out.sample("logcast_hub_history_lines", [:], Double(statistics.historyLines))
        out.metric("logcast_hub_history_bytes", help: "Bytes retained for backlog and resume.", type: "gauge")
        out.sample("logcast_hub_history_bytes", [:], Double(statistics.historyBytes))
        out.metric("logcast_subscriber_queue_lines", help: "Items waiting in all subscriber queues.", type: "gauge")
        out.sample("logcast_subscriber_queue_lines", [:], Double(hub.queuedItems))
        out.metric(
            "logcast_catch_up_reads_total",
            help: "Parts of the history read for subscribers that fell behind (--slow-consumer catch-up), by where they were read.",
            type: "counter"
        )
        out.sample("logcast_catch_up_reads_total", ["from": "memory"], Double(statistics.catchUpReads - statistics.catchUpStoredReads))
        out.sample("logcast_catch_up_reads_total", ["from": "stored"], Double(statistics.catchUpStoredReads))

        out.metric("logcast_subscribers", help: "Open streams, by transport.", type: "gauge")
        for transport in Transport.allCases { out.sample("logcast_subscribers", ["transport": transport.rawValue], Double(snapshot(transport).open)) }
        out.metric("logcast_connections_total", help: "Streams opened, by transport.", type: "counter")
        for transport in Transport.allCases {
            out.sample("logcast_connections_total", ["transport": transport.rawValue], Double(snapshot(transport).connections))
        }
        out.metric("logcast_lines_delivered_total", help: "Lines sent to subscribers, by transport.", type: "counter")
        for transport in Transport.allCases {
            out.sample("logcast_lines_delivered_total", ["transport": transport.rawValue], Double(snapshot(transport).lines))
        }
        out.metric("logcast_bytes_sent_total", help: "Bytes of stream payload sent, by transport (before compression).", type: "counter")
        for transport in Transport.allCases {
            out.sample("logcast_bytes_sent_total", ["transport": transport.rawValue], Double(snapshot(transport).bytes))
        }
        out.metric("logcast_gaps_total", help: "Gap events sent because a subscriber fell behind, by reason.", type: "counter")
        out.sample("logcast_gaps_total", ["reason": "slow-consumer"], Double(slowConsumerGaps.load(ordering: .relaxed)))
        out.metric("logcast_lines_dropped_total", help: "Matching lines dropped from subscriber queues, by reason.", type: "counter")
        out.sample("logcast_lines_dropped_total", ["reason": "slow-consumer"], Double(slowConsumerDropped.load(ordering: .relaxed)))
        out.metric("logcast_slow_disconnects_total", help: "Subscribers closed with 1013 under --slow-consumer disconnect.", type: "counter")
        out.sample("logcast_slow_disconnects_total", [:], Double(disconnectedSlow.load(ordering: .relaxed)))
        for sample in extra {
            out.metric(sample.name, help: sample.help, type: sample.type)
            out.sample(sample.name, [:], sample.value)
        }
        return out.text
    }
}

/// Builds Prometheus text: `# HELP`, `# TYPE`, then samples with escaped labels.
/// A metric a part outside the server reports (the durable history), with its help.
public struct MetricSample: Sendable {
    public var name: String
    public var help: String
    /// `counter` or `gauge`.
    public var type: String
    public var value: Double

    public init(name: String, help: String, type: String, value: Double) {
        self.name = name
        self.help = help
        self.type = type
        self.value = value
    }
}

struct PrometheusText {
    var text = ""

    mutating func metric(_ name: String, help: String, type: String) {
        text += "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n"
    }

    mutating func sample(_ name: String, _ labels: [String: String], _ value: Double) {
        text += name
        if !labels.isEmpty {
            let rendered = labels.sorted(by: { $0.key < $1.key }).map { key, value in
                let escaped = value.replacingOccurrences(of: "\\", with: "\\\\")
                    .replacingOccurrences(of: "\"", with: "\\\"")
                    .replacingOccurrences(of: "\n", with: "\\n")
                return "\(key)=\"\(escaped)\""
            }
            text += "{" + rendered.joined(separator: ",") + "}"
        }
        let formatted = value == value.rounded() && abs(value) < 1e15 ? String(Int64(value)) : String(value)
        text += " \(formatted)\n"
    }
}
