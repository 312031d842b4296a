import Foundation
import LogcastHub
import LogcastProtocol
import LogcastServer
import LogcastSources
import NIOCore

/// One step of the hot path, run over a fixed corpus of log lines.
///
/// Each run processes ``lines`` lines and returns a number derived from its
/// results (lines kept, bytes framed ...), which the caller consumes so the
/// optimizer cannot drop the work. A workload holds state between runs (a
/// splitter's buffer, a hub and its subscribers), so it is run by one task
/// at a time: that is what `@unchecked Sendable` promises here.
public final class Workload: @unchecked Sendable {
    /// The name the benchmark and `hotpath-count` know it by.
    public let name: String
    /// What it measures, in a few words (printed beside the figures).
    public let summary: String
    /// The logcast workload this one is the peer of (the same work done
    /// the way a Swift program would do it without logcast's code), or nil
    /// for logcast's own.
    public let peerOf: String?
    /// Lines processed by one ``run()``.
    public let lines: Int
    private let body: () async -> Int

    init(name: String, summary: String, peerOf: String? = nil, lines: Int, body: @escaping () async -> Int) {
        self.name = name
        self.summary = summary
        self.peerOf = peerOf
        self.lines = lines
        self.body = body
    }

    /// Runs the workload once over its corpus.
    public func run() async -> Int { await body() }
}

/// The corpus: log lines of the shapes logcast meets (an access log, an
/// application log with levels, JSON lines, syslog with a `<N>` prefix,
/// classic syslog), with numbers varied by a fixed generator, so every run
/// on every machine processes the same bytes.
public struct Corpus: Sendable {
    public let lines: [String]
    /// The lines as a file holds them: each followed by `\n`.
    public let bytes: [UInt8]

    public init(count: Int = 10_000) {
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        func next(_ bound: Int) -> Int {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return Int((state >> 33) % UInt64(bound))
        }
        var lines: [String] = []
        lines.reserveCapacity(count)
        for index in 0..<count {
            let item = next(100_000)
            let ms = next(2_000)
            let line: String
            switch index % 6 {
            case 0:
                let client = next(255)
                line =
                    #"10.0.3.\#(client) - - [07/Dec/2026:08:26:19 +0000] "GET /api/v1/items/\#(item) HTTP/1.1""#
                    + #" 200 \#(next(9_000)) "-" "curl/8.5.0""#
            case 1:
                let millisecond = next(1000)
                line =
                    "2026-12-07 08:26:19,\(millisecond) INFO  [worker-\(next(8))] request served"
                    + " path=/api/v1/items/\(item) status=200 duration_ms=\(ms)"
            case 2:
                line =
                    #"{"level":"warn","ts":"2026-12-07T08:26:19.\#(next(1000))Z","msg":"slow query","#
                    + #""duration_ms":\#(ms),"table":"orders","id":\#(item)}"#
            case 3:
                line = "<3>kernel: ERROR usb 1-\(next(4)): device descriptor read/64, error -71 (port \(next(16)))"
            case 4:
                line = "Dec  7 08:26:19 web-1 sshd[\(next(30_000))]: Connection closed by 192.0.2.\(next(255)) port \(next(65_000)) [preauth]"
            default:
                let millisecond = next(1000)
                let worker = next(8)
                line =
                    "2026-12-07 08:26:19,\(millisecond) ERROR [worker-\(worker)] upstream Timeout after \(ms) ms"
                    + " status=50\(next(5)) path=/api/v1/checkout/\(item)"
            }
            lines.append(line)
        }
        self.lines = lines
        var bytes: [UInt8] = []
        bytes.reserveCapacity(lines.reduce(0) { $0 + $1.utf8.count + 1 })
        for line in lines {
            bytes.append(contentsOf: line.utf8)
            bytes.append(UInt8(ascii: "\n"))
        }
        self.bytes = bytes
    }

    /// The lines as records of one file source, with the priority the file
    /// tailer would have detected.
    public func records(source: String = "app") -> [LogRecord] {
        let start = Timestamp(microseconds: 1_796_631_979_000_000)
        return lines.enumerated().map { index, line in
            LogRecord(
                timestamp: Timestamp(microseconds: start.microseconds + Int64(index)),
                source: source,
                message: line,
                path: "/var/log/app.log",
                priority: PriorityDetector.detect(line)
            )
        }
    }
}

/// Every workload, logcast's own each followed by its peer.
public enum HotPath {
    /// The lines in a chunk that the file tailer publishes at once under load
    /// (what one 64 KiB read of 150-byte lines holds is about 430; a
    /// following tailer that keeps up publishes a few at a time).
    public static let chunkLines = 64

    public static func workloads(corpus: Corpus = Corpus()) -> [Workload] {
        splitting(corpus) + [priority(corpus)] + encoding(corpus) + matching(corpus) + fanout(corpus)
    }

    // MARK: The file tailer

    static func splitting(_ corpus: Corpus) -> [Workload] {
        var splitter = LineSplitter()
        let logcast = Workload(
            name: "split",
            summary: "LineSplitter: 64 KiB reads into lines (String each)",
            lines: corpus.lines.count
        ) {
            var bytes = 0
            corpus.bytes.withUnsafeBytes { all in
                var offset = 0
                while offset < all.count {
                    let end = min(offset + 64 * 1024, all.count)
                    splitter.append(UnsafeRawBufferPointer(rebasing: all[offset..<end])) { bytes &+= $0.utf8.count }
                    offset = end
                }
            }
            return bytes
        }
        var pending: [UInt8] = []
        let peer = Workload(
            name: "split-peer",
            summary: "the same reads split with Array.split and String(decoding:)",
            peerOf: "split",
            lines: corpus.lines.count
        ) {
            var bytes = 0
            var offset = 0
            while offset < corpus.bytes.count {
                let end = min(offset + 64 * 1024, corpus.bytes.count)
                pending += corpus.bytes[offset..<end]
                let lastNewline = pending.lastIndex(of: UInt8(ascii: "\n"))
                if let lastNewline {
                    for piece in pending[...lastNewline].split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false).dropLast() {
                        bytes &+= String(decoding: piece, as: UTF8.self).utf8.count
                    }
                    pending.removeSubrange(...lastNewline)
                }
                offset = end
            }
            return bytes
        }
        return [logcast, peer]
    }

    static func priority(_ corpus: Corpus) -> Workload {
        Workload(name: "priority", summary: "PriorityDetector: a line's level word, <N> prefix or JSON level", lines: corpus.lines.count) {
            var sum = 0
            for line in corpus.lines { sum &+= PriorityDetector.detect(line) ?? 9 }
            return sum
        }
    }

    // MARK: The hub

    /// The fields of a `line` object, for the peer's JSONEncoder.
    struct LineObject: Encodable {
        var type = "line"
        var seq: UInt64
        var ts: String
        var source: String
        var path: String?
        var priority: Int?
        var message: String
    }

    static func encoding(_ corpus: Corpus) -> [Workload] {
        let records = corpus.records()
        let logcast = Workload(
            name: "encode",
            summary: "a line's JSON object, encoded once for every subscriber",
            lines: records.count
        ) {
            var bytes = 0
            for (index, record) in records.enumerated() {
                bytes &+= ProtocolObject.line(record, seq: UInt64(index + 1)).encoded().count
            }
            return bytes
        }
        let encoder = JSONEncoder()
        let peer = Workload(
            name: "encode-peer",
            summary: "the same object through Foundation's JSONEncoder",
            peerOf: "encode",
            lines: records.count
        ) {
            var bytes = 0
            for (index, record) in records.enumerated() {
                let object = LineObject(
                    seq: UInt64(index + 1),
                    ts: record.timestamp.rfc3339,
                    source: record.source,
                    path: record.path,
                    priority: record.priority,
                    message: record.message
                )
                bytes &+= ((try? encoder.encode(object))?.count ?? 0) + 1
            }
            return bytes
        }
        return [logcast, peer]
    }

    static func matching(_ corpus: Corpus) -> [Workload] {
        let records = corpus.records()
        func matcher(grep: [String] = [], regex: String? = nil) -> LineMatcher {
            var filter = Filter()
            filter.grep = grep
            filter.regex = regex
            // The patterns are fixed and valid.
            return try! LineMatcher(filter)
        }
        func count(_ matches: (LogRecord) -> Bool) -> Int {
            var kept = 0
            for record in records where matches(record) { kept += 1 }
            return kept
        }
        let fixed = matcher(grep: ["ERROR"])
        let caseless = matcher(grep: ["timeout"])
        let regex = matcher(regex: #"status=5\d\d"#)
        let swiftRegex = try! Regex(#"status=5\d\d"#)
        let n = records.count
        return [
            Workload(name: "grep", summary: "grep=ERROR (case-sensitive: memmem)", lines: n) { count(fixed.matches) },
            Workload(name: "grep-peer", summary: "String.contains(\"ERROR\")", peerOf: "grep", lines: n) {
                count { $0.message.contains("ERROR") }
            },
            Workload(name: "grep-caseless", summary: "grep=timeout (smart case: caseless, PCRE2)", lines: n) { count(caseless.matches) },
            Workload(
                name: "grep-caseless-peer",
                summary: "Foundation's range(of:options: .caseInsensitive)",
                peerOf: "grep-caseless",
                lines: n
            ) {
                count { $0.message.range(of: "timeout", options: .caseInsensitive) != nil }
            },
            Workload(name: "regex", summary: #"regex=status=5\d\d (PCRE2, JIT)"#, lines: n) { count(regex.matches) },
            Workload(name: "regex-peer", summary: "the same pattern as a Swift Regex", peerOf: "regex", lines: n) {
                count { $0.message.contains(swiftRegex) }
            },
        ]
    }

    // MARK: Fan-out: publish, queue, drain, frame

    /// Publishes the corpus in chunks of ``chunkLines`` lines to a hub with
    /// `subscribers` unfiltered JSON subscribers, and after each chunk has
    /// every subscriber's writer take its batch and frame it into a buffer
    /// as `/ws` does (everything but the socket write). Per line published:
    /// one JSON encoding, the history, one offer per subscriber, and each
    /// writer's share of a frame.
    static func fanout(_ corpus: Corpus) -> [Workload] {
        let unfiltered = [0, 1, 100].map { subscribers in
            let records = corpus.records()
            // The chunks are made here: a source makes its array of records before it publishes.
            let chunks = stride(from: 0, to: records.count, by: chunkLines).map { Array(records[$0..<min($0 + chunkLines, records.count)]) }
            let hub = Hub()
            let subscriptions = (0..<subscribers).map { _ in
                hub.subscribe(matcher: try! LineMatcher(Filter()), request: SubscriptionRequest(backlog: 0))
            }
            return Workload(
                name: "fanout-\(subscribers)",
                summary: subscribers == 0
                    ? "Hub.publish with no subscriber: encoding and history"
                    : "publish to \(subscribers) unfiltered subscriber\(subscribers == 1 ? "" : "s"), each writer's batch framed",
                lines: records.count
            ) {
                var framed = 0
                for chunk in chunks {
                    hub.publish(chunk, source: "app")
                    for subscription in subscriptions { framed &+= await frameNextBatch(of: subscription) }
                }
                return framed
            }
        }
        return unfiltered + [filteredFanout(corpus)]
    }

    /// What a `/ws` writer does with its next batch, but the socket write:
    /// takes it (whole runs) and frames it into a buffer of the size it
    /// needs. - Returns: the lines framed.
    static func frameNextBatch(of subscription: Subscription) async -> Int {
        // Up to 1 MiB: a drain takes all that a workload queued between two (a drain that found no match would wait).
        guard case .items(let gap, let items) = await subscription.nextBatch(maxBytes: 1 << 20, keepingRuns: true) else {
            fatalError("a subscriber of the benchmark hub stopped")
        }
        let framing = StreamFraming(kind: .ndjson, format: .json)
        var buffer = ByteBufferAllocator().buffer(capacity: framing.capacity(gap: gap, items: items))
        return framing.append(gap: gap, items: items, to: &buffer)
    }

    /// As ``fanout(_:)`` with 100 subscribers, each with its own `grep`
    /// (`item=N.` for a different N, a text one line in 100 holds, as in
    /// the filtered scenario of `Benchmarks/fanout.py`): the shared text
    /// index is built once per chunk, and each writer matches only the
    /// lines that hold its text. Ten chunks of 100 lines are published
    /// before the writers drain, so that each drain finds ten matches (a
    /// drain that found none would wait for more).
    static func filteredFanout(_ corpus: Corpus) -> Workload {
        // Each line gets a group, as fanout.py's lines do: "item=G" with G the line's index mod 100.
        let records = corpus.records().enumerated().map { index, record in
            var record = record
            record.message += " item=\(index % 100)."
            return record
        }
        let chunks = stride(from: 0, to: records.count, by: 100).map { Array(records[$0..<min($0 + 100, records.count)]) }
        let hub = Hub()
        let subscriptions = (0..<100).map { group in
            var filter = Filter()
            filter.grep = ["item=\(group)."]
            return hub.subscribe(matcher: try! LineMatcher(filter), request: SubscriptionRequest(backlog: 0))
        }
        return Workload(
            name: "fanout-100-grep",
            summary: "publish to 100 subscribers with 100 different greps, each writer's matches framed",
            lines: records.count
        ) {
            var framed = 0
            for (index, chunk) in chunks.enumerated() {
                hub.publish(chunk, source: "app")
                guard index % 10 == 9 else { continue }
                for subscription in subscriptions where subscription.hasMore { framed &+= await frameNextBatch(of: subscription) }
            }
            return framed
        }
    }
}
