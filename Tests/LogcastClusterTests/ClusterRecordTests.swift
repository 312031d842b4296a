import LogcastProtocol
import Testing

@testable import LogcastCluster

@Suite struct ClusterRecordTests {
    @Test func aRecordRoundTripsWithEveryField() throws {
        var record = LogRecord(
            timestamp: Timestamp(microseconds: 1_764_579_929_123_456),
            source: "journal",
            message: "ünïcødé \"quoted\"\n\ttab",
            host: "web1",
            path: "/var/log/x",
            priority: 3,
            unit: "nginx.service",
            identifier: "nginx",
            pid: 42,
            cursor: "s=1;i=2"
        )
        var fields = LineFields()
        fields.append(name: "A_FIELD", value: "x \"y\"")
        fields.append(name: "_PID", value: "42")
        record.fields = fields
        let body = ClusterRecord.encode(record)
        #expect(body.last != UInt8(ascii: "\n"))
        #expect(!String(decoding: body, as: UTF8.self).contains("\"seq\""))
        #expect(try ClusterRecord.decode(body, host: nil, source: nil) == record)
    }

    @Test func hostAndSourceComeFromTheSubjectWhenTheBodyHasNone() throws {
        let body = Array(#"{"type":"line","ts":"2026-12-01T10:00:00Z","msg":"m"}"#.utf8)
        let record = try ClusterRecord.decode(body, host: "h", source: "s")
        #expect(record.host == "h" && record.source == "s" && record.message == "m")
    }

    @Test(arguments: [
        ("", "not a JSON object"),
        ("[1]", "not a JSON object"),
        (#"{"type":"gap"}"#, "not a line"),
        (#"{"type":"line","ts":"2026-12-01T10:00:00Z"}"#, "no msg"),
        (#"{"type":"line","msg":"m"}"#, "no ts"),
        (#"{"type":"line","msg":"m","ts":"-1h"}"#, "no ts"),
    ])
    func anythingElseIsRefusedWithAReason(_ body: String, _ reason: String) {
        #expect(throws: ClusterRecord.Refusal.self) { try ClusterRecord.decode(Array(body.utf8), host: nil, source: "s") }
        do {
            _ = try ClusterRecord.decode(Array(body.utf8), host: nil, source: "s")
        } catch {
            #expect(error.description.contains(reason), "\(error.description)")
        }
    }
}
