import Foundation
import LogcastProtocol

/// The body of a message on the cluster stream: one line, as the protocol's
/// `line` object without `seq` (the stream sequence is the gateway's `seq`).
///
/// Agents write it with ``encode(_:)``; gateways read it with
/// ``decode(_:host:source:)``, which refuses anything else (a message some
/// other program put on a `logcast.` subject).
public enum ClusterRecord {
    /// The message body for `record`; a journal line's fields go with it
    /// as `"fields":{...}` (the last value of each name).
    public static func encode(_ record: LogRecord) -> [UInt8] {
        var bytes = ProtocolObject.encodedLine(record, seq: nil)
        bytes.removeLast()  // the NDJSON newline
        if let member = record.fields?.member(selecting: nil) {
            bytes.removeLast()  // `}`
            bytes += member + [UInt8(ascii: "}")]
        }
        return bytes
    }

    /// The message bodies for `record`: one, or, when its body is longer
    /// than `maxBytes` (the server's `max_payload` less room for headers),
    /// the message cut into pieces that fit, each a record of its own, cut
    /// at UTF-8 character boundaries like long lines are cut when read.
    public static func pieces(of record: LogRecord, maxBytes: Int) -> [[UInt8]] {
        let whole = encode(record)
        guard whole.count > maxBytes else { return [whole] }
        var shell = record
        shell.message = ""
        // JSON escapes a byte into at most 6 (\u00XX): a piece of this many bytes always fits.
        let room = max(4, (maxBytes - encode(shell).count) / 6)
        var bodies: [[UInt8]] = []
        let bytes = Array(record.message.utf8)
        var start = 0
        while start < bytes.count {
            var end = min(bytes.count, start + room)
            // Back to the start of a character (not a continuation byte 10xxxxxx).
            while end < bytes.count, end > start + 1, bytes[end] & 0xC0 == 0x80 { end -= 1 }
            var piece = record
            piece.message = String(decoding: bytes[start..<end], as: UTF8.self)
            bodies.append(encode(piece))
            start = end
        }
        return bodies
    }

    /// Why a message is not a logcast record.
    public struct Refusal: Error, Equatable, CustomStringConvertible {
        public var description: String
    }

    /// The record in a message body. `host` and `source` come from the
    /// subject when the body has none.
    public static func decode(_ body: some Collection<UInt8>, host: String?, source: String?) throws(Refusal) -> LogRecord {
        guard let object = (try? JSONSerialization.jsonObject(with: Data(body))) as? [String: Any] else {
            throw Refusal(description: "not a JSON object")
        }
        guard object["type"] as? String == "line" else { throw Refusal(description: "not a line object (type is not \"line\")") }
        guard let message = object["msg"] as? String else { throw Refusal(description: "no msg") }
        guard let text = object["ts"] as? String, let timestamp = TimeBound.parse(text), !text.hasPrefix("-") else {
            throw Refusal(description: "no ts, or not an RFC 3339 time")
        }
        guard let source = object["source"] as? String ?? source else { throw Refusal(description: "no source") }
        func int(_ key: String) -> Int? { (object[key] as? NSNumber).map(\.intValue) }
        var record = LogRecord(
            timestamp: timestamp,
            source: source,
            message: message,
            host: object["host"] as? String ?? host,
            path: object["path"] as? String,
            priority: int("priority").flatMap { (0...7).contains($0) ? $0 : nil },
            unit: object["unit"] as? String,
            identifier: object["identifier"] as? String,
            pid: int("pid"),
            cursor: object["cursor"] as? String
        )
        record.continued = object["continued"] as? Bool ?? false
        if let given = object["fields"] as? [String: Any] {
            // A JSON object has no order: by name.
            var fields = LineFields()
            for name in given.keys.sorted() {
                if let value = given[name] as? String { fields.append(name: name, value: value) }
            }
            if !fields.isEmpty { record.fields = fields }
        }
        return record
    }
}
