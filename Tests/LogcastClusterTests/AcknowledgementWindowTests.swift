import LogcastHub
import LogcastProtocol
import Testing

@testable import LogcastCluster

@Suite struct AcknowledgementWindowTests {
    let start = ContinuousClock.now

    @Test func aLineCountsWhenItAndEveryOneBeforeItAreAcknowledged() {
        var window = AcknowledgementWindow()
        for seq in 1...4 as ClosedRange<UInt64> { window.sent("h/e/\(seq)", seq: seq, last: true, at: start) }
        #expect(window.count == 4 && window.acknowledgedThrough == nil)
        #expect(window.acknowledge("h/e/2", at: start + .milliseconds(5)).isEmpty, "2 is in, but 1 is not yet")
        #expect(window.acknowledgedThrough == nil)
        #expect(window.acknowledge("h/e/1", at: start + .milliseconds(7)) == [.milliseconds(7), .milliseconds(7)])
        #expect(window.acknowledgedThrough == 2 && window.count == 2)
        _ = window.acknowledge("h/e/4", at: start)
        #expect(window.acknowledgedThrough == 2, "3 is still out")
        _ = window.acknowledge("h/e/3", at: start)
        #expect(window.acknowledgedThrough == 4 && window.count == 0)
    }

    @Test func aLineInPiecesCountsOnceItsLastPieceIsIn() {
        var window = AcknowledgementWindow()
        window.sent("h/e/7", seq: 7, last: false, at: start)
        window.sent("h/e/7/1", seq: 7, last: false, at: start)
        window.sent("h/e/7/2", seq: 7, last: true, at: start)
        _ = window.acknowledge("h/e/7", at: start)
        _ = window.acknowledge("h/e/7/1", at: start)
        #expect(window.acknowledgedThrough == nil)
        _ = window.acknowledge("h/e/7/2", at: start)
        #expect(window.acknowledgedThrough == 7)
    }

    @Test func answersForMessagesNotSentAreIgnored() {
        var window = AcknowledgementWindow()
        window.sent("h/e/1", seq: 1, last: true, at: start)
        #expect(window.acknowledge("h/e/99", at: start).isEmpty)
        #expect(window.count == 1 && window.acknowledgedThrough == nil)
    }
}

@Suite struct ClusterPiecesTests {
    func record(_ message: String) -> LogRecord {
        LogRecord(timestamp: Timestamp(microseconds: 1_764_579_929_000_000), source: "app", message: message, host: "web1")
    }

    @Test func aRecordThatFitsIsOneMessage() {
        #expect(ClusterRecord.pieces(of: record("short"), maxBytes: 1024) == [ClusterRecord.encode(record("short"))])
    }

    @Test(arguments: ["a", "é", "日", "🙂", "\u{1}", "\""])
    func aLongRecordIsCutIntoPiecesThatFitAndJoinToTheWhole(unit: String) throws {
        let message = String(repeating: unit, count: 3000) + "end"
        let pieces = ClusterRecord.pieces(of: record(message), maxBytes: 2048)
        #expect(pieces.count > 1)
        #expect(pieces.allSatisfy { $0.count <= 2048 })
        let decoded = try pieces.map { try ClusterRecord.decode($0, host: nil, source: nil) }
        #expect(decoded.map(\.message).joined() == message, "cut at character boundaries, nothing lost")
        #expect(decoded.allSatisfy { $0.host == "web1" && $0.source == "app" })
    }
}

@Suite struct GatewayStartTests {
    func info(first: UInt64, last: UInt64) -> NATSConnection.StreamInfo {
        NATSConnection.StreamInfo(created: 1, firstSequence: first, lastSequence: last, firstTime: 0)
    }

    @Test func aGatewayFollowsFromTheNewestHistory() {
        #expect(GatewayConsumer.startSequence(info(first: 1, last: 0), historyLines: 100) == 1, "an empty stream")
        #expect(GatewayConsumer.startSequence(info(first: 1, last: 50), historyLines: 100) == 1)
        #expect(GatewayConsumer.startSequence(info(first: 1, last: 1000), historyLines: 100) == 901)
        #expect(GatewayConsumer.startSequence(info(first: 950, last: 1000), historyLines: 100) == 950, "not before what the stream keeps")
        #expect(GatewayConsumer.startSequence(info(first: 1001, last: 1000), historyLines: 100) == 1001, "a purged stream")
    }
}
