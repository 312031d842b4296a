import LogcastHub
import LogcastProtocol
import Testing

@testable import LogcastStore

/// How records are framed in a segment: each is appended in place after
/// what the buffer already holds, with its length and checksum before it.
@Suite struct RecordFramingTests {
    /// Splits `bytes` into framed records, checking each header.
    static func unframe(_ bytes: [UInt8]) -> [StoredRecord] {
        var records: [StoredRecord] = []
        var offset = 0
        while offset < bytes.count {
            let length = Int(Self.u32(bytes, at: offset))
            let checksum = Self.u32(bytes, at: offset + 4)
            let body = Array(bytes[(offset + StoredRecord.headerBytes)..<(offset + StoredRecord.headerBytes + length)])
            #expect(CRC32.checksum(body) == checksum, "record \(records.count): the checksum covers exactly its payload")
            if let record = body.withUnsafeBytes({ StoredRecord.decode($0) }) { records.append(record) }
            offset += StoredRecord.headerBytes + length
        }
        #expect(offset == bytes.count, "nothing between or after the records")
        return records
    }

    static func u32(_ bytes: [UInt8], at offset: Int) -> UInt32 {
        (0..<4).reduce(0) { $0 | UInt32(bytes[offset + $1]) << (8 * $1) }
    }

    static func line(_ seq: UInt64, _ message: String) -> StoredRecord {
        var record = LogRecord(timestamp: Timestamp(microseconds: 1_700_000_000_000_000 + Int64(seq)), source: "app", message: message)
        record.path = "/var/log/app.log"
        record.priority = 3
        return .line(seq: seq, record)
    }

    /// Every kind of record, and lines longer than any room reserved ahead,
    /// one after another in one buffer that held bytes before them.
    @Test(arguments: [0, 1, 100, 5000, 70000])
    func recordsAppendedOneAfterAnotherDecodeInOrder(messageBytes: Int) {
        let message = String(repeating: "é", count: messageBytes / 2) + String(repeating: "x", count: messageBytes % 2)
        let position = FilePosition(path: "/var/log/app.log", device: 1, inode: 2, offset: 3, fingerprint: 4, fingerprintLength: 5)
        let records: [StoredRecord] = [
            Self.line(1, message),
            .event(position: 2, SourceEvent(source: "app", kind: .rotated, path: "/var/log/app.log")),
            Self.line(2, message + "!"),
            .position(source: "app", .file(position)),
            .position(source: "app\u{0}/var/log/app.log", .member(position)),
            .position(source: "journal", .journal(cursor: "s=abc;i=1")),
            Self.line(3, ""),
        ]
        for start in [0, 3] {
            var bytes = [UInt8](repeating: 0xEE, count: start)
            for record in records { record.append(to: &bytes) }
            #expect(bytes.prefix(start).allSatisfy { $0 == 0xEE }, "what the buffer held is kept")
            #expect(Self.unframe(Array(bytes.dropFirst(start))) == records)
        }
    }
}
