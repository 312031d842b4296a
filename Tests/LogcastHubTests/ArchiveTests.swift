import LogcastProtocol
import Synchronization
import Testing

@testable import LogcastHub

/// A source archive of fixed lines, counting its reads.
final class FixedArchive: SourceArchive {
    let source: String
    let records: [LogRecord]
    let reads = Mutex(0)

    init(source: String, records: [LogRecord]) {
        self.source = source
        self.records = records
    }

    func lines(
        since: Timestamp,
        until: Timestamp?,
        before: Timestamp,
        limit: Int,
        matching: (LogRecord) -> Bool,
        deadline: ContinuousClock.Instant
    ) -> (lines: [LogRecord], complete: Bool) {
        reads.withLock { $0 += 1 }
        let wanted = records.filter { record in
            since <= record.timestamp && record.timestamp < before && (until.map { record.timestamp <= $0 } ?? true) && matching(record)
        }
        return wanted.count > limit ? (Array(wanted.prefix(limit)), false) : (wanted, true)
    }
}

@Suite struct ArchiveTests {
    static let epoch = "00000000000000aa"

    func journal(_ message: String, second: Int64, cursor: String) -> LogRecord {
        TestSupport.record(message, source: "journal", micros: second * 1_000_000, cursor: cursor)
    }

    func summary(_ result: Hub.ScanResult) -> [String] {
        result.items.map { item in
            switch item {
            case .entry(let entry):
                guard case .line(let record) = entry.payload else { return "event" }
                return entry.hasSeq ? "\(entry.position):\(record.message)" : "-:\(record.message)"
            case .control(let json):
                return ProtocolObject.type(of: json) ?? "?"
            case .selected, .context, .separator, .prime, .adopt, .run:
                return "\(item)"
            }
        }
    }

    @Test func aSinceOlderThanTheHistoryReadsTheArchiveFirstWithoutSeqAndEachLineOnce() throws {
        let archive = FixedArchive(
            source: "journal",
            records: [
                journal("old 1", second: 100, cursor: "c1"), journal("old 2", second: 101, cursor: "c2"),
                // Stamped before the hub's oldest line, but also in the hub (an entry published late): sent once.
                journal("both", second: 150, cursor: "c3"),
            ]
        )
        let hub = Hub(epoch: Self.epoch, archives: [archive])
        hub.publish([journal("kept", second: 200, cursor: "c4"), journal("both", second: 150, cursor: "c3")])
        var filter = Filter()
        filter.since = Timestamp(microseconds: 0)
        let result = hub.snapshot(request: SubscriptionRequest(filter: filter), matcher: try LineMatcher(filter), limit: 100)
        #expect(summary(result) == ["-:old 1", "-:old 2", "1:kept", "2:both"])
        #expect(result.complete)

        // A since the history covers, and a filter on another source, do not read the archive.
        filter.since = Timestamp(microseconds: 300 * 1_000_000)
        _ = hub.snapshot(request: SubscriptionRequest(filter: filter), matcher: try LineMatcher(filter), limit: 100)
        filter.since = Timestamp(microseconds: 0)
        filter.sources = ["app"]
        _ = hub.snapshot(request: SubscriptionRequest(filter: filter), matcher: try LineMatcher(filter), limit: 100)
        #expect(archive.reads.withLock { $0 } == 1)
    }

    @Test func anArchiveThatFillsTheReadEndsItWithIncomplete() throws {
        let archive = FixedArchive(source: "journal", records: (0..<10).map { journal("old \($0)", second: Int64($0), cursor: "c\($0)") })
        let hub = Hub(epoch: Self.epoch, archives: [archive])
        hub.publish([journal("kept", second: 200, cursor: "k")])
        var filter = Filter()
        filter.since = Timestamp(microseconds: 0)
        let result = hub.snapshot(request: SubscriptionRequest(filter: filter), matcher: try LineMatcher(filter), limit: 3)
        #expect(summary(result) == ["-:old 0", "-:old 1", "-:old 2", "incomplete"])
        #expect(!result.complete)
    }

    @Test func archivedLinesDoNotMoveTheDeliveredSeq() {
        var queue = SubscriberQueue(maxLines: 10, maxBytes: 1 << 20, policy: .drop)
        _ = queue.push(.entry(.archived(journal("old", second: 1, cursor: "c"), before: 5)))
        let (_, items) = queue.drain(maxBytes: .max)
        #expect(items.count == 1)
        #expect(queue.lastDeliveredSeq == 0)
        #expect(
            String(decoding: HubEntry.archived(journal("old", second: 1, cursor: "c"), before: 5).json, as: UTF8.self).contains("\"seq\"") == false
        )
    }
}
