import Foundation
import LogcastProtocol
import NIOCore
import Testing

@testable import LogcastHub
@testable import LogcastServer

@Suite struct StreamFramingTests {
    static func entry(_ seq: UInt64, _ message: String) -> SubscriberQueue.Item {
        let record = LogRecord(
            timestamp: Timestamp(microseconds: 1_764_000_000_000_000),
            source: "app",
            message: message,
            host: "h",
            path: "/var/log/app.log"
        )
        return .entry(HubEntry(position: seq, payload: .line(record), json: ProtocolObject.line(record, seq: seq).encoded()))
    }

    static let batches: [(SubscriberQueue.Gap?, [SubscriberQueue.Item])] = [
        (nil, [entry(1, "one line")]),
        (nil, (1...300).map { entry($0, String(repeating: "x", count: Int($0) % 97) + " \"quoted\" \u{1}") }),
        (SubscriberQueue.Gap(after: 4, next: 9, missed: 4), [entry(9, "after a gap"), .control(Array(#"{"type":"subscribed"}"#.utf8) + [10])]),
        (nil, [.control([])]),
        (nil, []),
    ]

    /// A run (a published chunk handed on whole to an unfiltered writer)
    /// is framed exactly as its lines one by one, in every framing, format
    /// and `fields` choice (NDJSON JSON without `fields` copies the objects
    /// in one go), and counts its lines.
    @Test func aRunIsFramedAsItsLinesOneByOne() {
        let lines = (1...50).map { seq -> HubEntry in
            guard case .entry(let entry) = Self.entry(UInt64(seq), "line \(seq) status=\(seq % 3 == 0 ? "500" : "200") \"q\"") else {
                fatalError("entry(_:_:) makes entries")
            }
            return entry
        }
        let run = SubscriberQueue.Item.run(lines[10..<45], bytes: 0, chunk: nil)
        let kinds: [StreamFraming.Kind] = [.ndjson, .sse(epoch: "0123456789abcdef")]
        for kind in kinds {
            for format in [SubscriptionRequest.Format.json, .text] {
                for fields in [nil, FieldSelection.names(["status"])] {
                    let framing = StreamFraming(kind: kind, format: format, fields: fields)
                    var whole = ByteBuffer()
                    var single = ByteBuffer()
                    #expect(framing.append(gap: nil, items: [run], to: &whole) == 35)
                    #expect(framing.append(gap: nil, items: lines[10..<45].map { .entry($0) }, to: &single) == 35)
                    #expect(whole == single, "\(kind) \(format) \(fields.map { "\($0)" } ?? "no fields")")
                    // (`fields` members are not in the estimate: such a buffer grows.)
                    if fields == nil { #expect(framing.capacity(gap: nil, items: [run]) >= whole.readableBytes) }
                }
            }
        }
    }

    /// `format=text` over NDJSON: each message, every newline in it
    /// followed by a tab, then a newline; the same whether the lines come as
    /// a run (copied in one reservation, a message with a newline taken
    /// aside) or one by one, with multi-line messages anywhere in the run:
    /// first, last, side by side, every one, a message that is only
    /// newlines, an empty message.
    @Test func textLinesTabTheirInnerNewlinesInARunAsOneByOne() {
        let messages = [
            "plain", "two\nlines", "", "\n", "\n\n", "ends with a newline\n", "\nstarts with one",
            "a\nb\nc", "tab\talready", String(repeating: "y", count: 5000), "caf\u{e9} \u{1F600}\nnext",
        ]
        let patterns: [[Int]] = [
            Array(messages.indices),
            [1, 0, 0, 0],
            [0, 0, 0, 1],
            [1, 7, 4, 3],
            [0, 1, 0, 1, 0, 1, 0],
            [2, 2, 2],
            [9, 5, 9, 0],
        ]
        let framing = StreamFraming(kind: .ndjson, format: .text)
        for pattern in patterns {
            let lines = pattern.enumerated().map { offset, index -> HubEntry in
                guard case .entry(let entry) = Self.entry(UInt64(offset + 1), messages[index]) else { fatalError("an entry") }
                return entry
            }
            let expected = pattern.map { messages[$0].replacingOccurrences(of: "\n", with: "\n\t") + "\n" }.joined()
            var run = ByteBuffer()
            var single = ByteBuffer()
            #expect(framing.append(gap: nil, items: [.run(lines[...], bytes: 0, chunk: nil)], to: &run) == lines.count)
            #expect(framing.append(gap: nil, items: lines.map { .entry($0) }, to: &single) == lines.count)
            #expect(String(buffer: run) == expected, "\(pattern)")
            #expect(String(buffer: single) == expected, "\(pattern)")
        }
    }

    /// The writers allocate `capacity` up front: it must hold the whole
    /// batch (no growth) and not be the old fixed 64 KiB for a single line.
    @Test func capacityHoldsWhatIsWrittenForEveryFramingAndFormat() {
        let kinds: [StreamFraming.Kind] = [.ndjson, .sse(epoch: "0123456789abcdef")]
        for kind in kinds {
            for format in [SubscriptionRequest.Format.json, .text] {
                let framing = StreamFraming(kind: kind, format: format)
                for (gap, items) in Self.batches {
                    var buffer = ByteBuffer()
                    _ = framing.append(gap: gap, items: items, to: &buffer)
                    let capacity = framing.capacity(gap: gap, items: items)
                    #expect(capacity >= buffer.readableBytes, "\(kind) \(format): \(capacity) < \(buffer.readableBytes)")
                    // JSON: close to the bytes written (text needs less than the JSON it is estimated by).
                    if format == .json {
                        #expect(capacity <= buffer.readableBytes + 100 + 64 * items.count, "\(kind): \(capacity) for \(buffer.readableBytes) bytes")
                    }
                }
            }
        }
    }

    @Test func fieldsAreAddedToLineObjectsBeforeContext() throws {
        let json = StreamFraming(kind: .ndjson, format: .json, fields: .names(["status", "user"]))
        var buffer = ByteBuffer()
        let structured = Self.entry(1, #"{"status":503,"user":"bob","x":1}"#)
        guard case .entry(let entry) = structured else { return }
        let lines = json.append(gap: nil, items: [structured, .context(entry), Self.entry(2, "plain text")], to: &buffer)
        #expect(lines == 3)
        let text = String(buffer: buffer)
        let objects = text.split(separator: "\n").map(String.init)
        #expect(objects.count == 3)
        #expect(objects[0].hasSuffix(#","fields":{"status":"503","user":"bob"}}"#), "\(objects[0])")
        #expect(objects[1].hasSuffix(#","fields":{"status":"503","user":"bob"},"context":true}"#), "\(objects[1])")
        #expect(!objects[2].contains("fields"), "a line without the fields is sent as it is")
        for object in objects {
            #expect((try? JSONSerialization.jsonObject(with: Data(object.utf8))) is [String: Any], "\(object)")
        }
    }
}
