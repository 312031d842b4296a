import Glibc
import LogcastHub
import LogcastProtocol
import NIOCore

/// Turns what a subscription hands out (encoded entries and control
/// objects) into a transport's bytes; the one place that does, for `/ws`,
/// `/sse` and `/api/v1/lines`.
///
/// The objects themselves are encoded once, by ``ProtocolObject``; a
/// framing only places them:
/// - ``Kind/ndjson`` (a WebSocket frame, an `/api/v1/lines` body): the
///   objects one per line; with `format=text`, only the lines' messages,
///   one per line, and no control objects.
/// - ``Kind/sse``: a line is an event with `id: EPOCH-SEQ` and its object
///   (or, with `format=text`, its message cut into `data:` lines at every
///   CR, LF and CRLF, so no message can end a field or start another); a
///   control object or source event is an event named by its type
///   (`event: gap`). A slow-consumer or downtime `gap` is sent in both
///   formats, other controls only in JSON; an empty control is a heartbeat
///   comment.
///
/// With `fields` (JSON only), a line's object gets `"fields":{...}` before
/// its closing brace (and before `"context":true`), from its fields parsed
/// once per entry (``HubEntry/fields``); a line without any of them is sent
/// as it is.
///
/// Public for the hot-path benchmarks (`Benchmarks/HotPath`), which frame
/// what a subscription hands out as the writers do.
public struct StreamFraming: Sendable {
    public enum Kind: Sendable {
        case ndjson
        case sse(epoch: String)
    }

    public let kind: Kind
    public let format: SubscriptionRequest.Format
    public var fields: FieldSelection? = nil

    public init(kind: Kind, format: SubscriptionRequest.Format, fields: FieldSelection? = nil) {
        self.kind = kind
        self.format = format
        self.fields = fields
    }

    /// The bytes a batch takes in this framing (JSON sizes plus each
    /// framing's overhead), so a writer allocates what the batch needs: one
    /// line to an idle subscriber costs a buffer of its size, not one sized
    /// for the largest batch. Exact or above for JSON and for NDJSON text (a
    /// message is never longer than its JSON); an SSE text message cut into
    /// many `data:` lines may need more, and the buffer then grows.
    public func capacity(gap: SubscriberQueue.Gap?, items: [SubscriberQueue.Item]) -> Int {
        let perItem: Int
        switch kind {
        case .ndjson: perItem = 1
        case .sse(let epoch): perItem = epoch.utf8.count + 48
        }
        var total = gap == nil ? 0 : 160
        for item in items {
            switch item {
            case .entry(let entry), .selected(let entry): total += entry.json.count + perItem
            case .context(let entry): total += entry.json.count + perItem + 16
            case .control(let json): total += json.count + perItem + 32
            case .separator: total += ProtocolObject.separator.count + perItem + 32
            case .run(let lines, _, _): for entry in lines { total += entry.json.count + perItem }
            case .prime, .adopt: break
            }
        }
        return total
    }

    /// Appends a batch, after the slow-consumer gap in front of it if any.
    /// - Returns: the number of lines appended.
    public func append(gap: SubscriberQueue.Gap?, items: [SubscriberQueue.Item], to buffer: inout ByteBuffer) -> Int {
        if let gap {
            let object = ProtocolObject.gap(after: gap.after, next: gap.next, missed: gap.missed, reason: .slowConsumer).encoded()
            switch kind {
            case .ndjson where format == .json: buffer.writeBytes(object)
            case .ndjson: break
            case .sse: Self.writeEvent(&buffer, name: "gap", data: object)
            }
        }
        var lines = 0
        for item in items {
            lines += append(item, to: &buffer)
        }
        return lines
    }

    /// Appends one item. - Returns: 1 for a line, else 0.
    func append(_ item: SubscriberQueue.Item, to buffer: inout ByteBuffer) -> Int {
        switch item {
        case .entry(let entry), .selected(let entry): return append(entry, context: false, to: &buffer)
        case .context(let entry): return append(entry, context: true, to: &buffer)
        case .control(let json): append(control: json, to: &buffer)
        case .separator:
            switch (kind, format) {
            case (.ndjson, .json): buffer.writeBytes(ProtocolObject.separator)
            case (.ndjson, .text): buffer.writeString("--\n")
            case (.sse, .json): Self.writeEvent(&buffer, name: "separator", data: ProtocolObject.separator)
            case (.sse, .text): buffer.writeString("event: separator\ndata: --\n\n")
            }
        case .run(let lines, _, _):
            if case .ndjson = kind {
                if format == .text {
                    Self.writeTexts(of: lines, to: &buffer)
                    return lines.count
                }
                if fields == nil {
                    Self.writeObjects(of: lines, to: &buffer)
                    return lines.count
                }
            }
            return lines.reduce(0) { $0 + append($1, context: false, to: &buffer) }
        case .prime, .adopt: break
        }
        return 0
    }

    /// The line's object (`"context":true` for a context line), or its
    /// text. - Returns: 1 for a line, 0 for an event.
    private func append(_ entry: HubEntry, context: Bool, to buffer: inout ByteBuffer) -> Int {
        func writeJSON() {
            let member = entry.isLine ? fields?.member(entry.fields) : nil
            guard context || member != nil else {
                buffer.writeBytes(entry.json)
                return
            }
            buffer.writeBytes(entry.json.dropLast(2))  // `}` and the newline
            if let member { buffer.writeBytes(member) }
            if context {
                buffer.writeBytes(ProtocolObject.contextSuffix)
            } else {
                buffer.writeBytes(ProtocolObject.lineEnd)
            }
        }
        switch kind {
        case .ndjson:
            guard format == .text else {
                writeJSON()
                return entry.isLine ? 1 : 0
            }
            guard entry.isLine else { return 0 }
            entry.withMessageBytes { Self.writeText(&buffer, $0) }
            return 1
        case .sse(let epoch):
            guard entry.isLine else {
                // A source event, or a `downtime` gap (sent in both formats, as a slow-consumer gap is).
                let name = ProtocolObject.type(of: entry.json) ?? "source"
                if format == .json || name == "gap" { Self.writeEvent(&buffer, name: name, data: entry.json) }
                return 0
            }
            // A line from an archive has no seq, so no id: the client's last id stays.
            if entry.hasSeq { buffer.writeString("id: \(epoch)-\(entry.position)\n") }
            if format == .json {
                buffer.writeString("data: ")
                writeJSON()  // ends with "\n"; JSON escapes CR and LF
            } else {
                Self.writeDataLines(&buffer, entry.message)
            }
            buffer.writeString("\n")
            return 1
        }
    }

    private func append(control json: [UInt8], to buffer: inout ByteBuffer) {
        switch kind {
        case .ndjson:
            if format == .json { buffer.writeBytes(json) }
        case .sse:
            if json.isEmpty {
                buffer.writeString(": heartbeat\n\n")
            } else if format == .json {
                Self.writeEvent(&buffer, name: ProtocolObject.type(of: json) ?? "message", data: json)
            }
        }
    }

    /// A run's objects as they are (NDJSON, no `fields`): one reservation
    /// and one copy per line, the unfiltered subscriber's whole cost of a line.
    static func writeObjects(of lines: ArraySlice<HubEntry>, to buffer: inout ByteBuffer) {
        let total = lines.reduce(0) { $0 + $1.json.count }
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: total) { out in
            var offset = 0
            for entry in lines {
                entry.json.withUnsafeBytes { json in
                    UnsafeMutableRawBufferPointer(rebasing: out[offset..<(offset + json.count)]).copyMemory(from: json)
                }
                offset += entry.json.count
            }
            return offset
        }
    }

    /// A run's messages as text lines (NDJSON framing, `format=text`): one
    /// reservation for the run, and per line one copy and a `memchr` for a
    /// newline; a message that has one goes through ``writeText(_:_:)``.
    static func writeTexts(of lines: ArraySlice<HubEntry>, to buffer: inout ByteBuffer) {
        var next = lines.startIndex
        // What the lines from `next` on take without their tabs (computed once: a run of
        // multi-line messages must not be summed again after each of them).
        var remaining = lines.reduce(0) { $0 + $1.message.utf8.count + 1 }
        while next < lines.endIndex {
            buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: remaining) { out in
                var offset = 0
                while next < lines.endIndex {
                    let copied = lines[next].withMessageBytes { message -> Bool in
                        if let base = message.baseAddress, memchr(base, Int32(UInt8(ascii: "\n")), message.count) != nil {
                            return false
                        }
                        UnsafeMutableRawBufferPointer(rebasing: out[offset..<(offset + message.count)]).copyMemory(from: message)
                        out[offset + message.count] = UInt8(ascii: "\n")
                        offset += message.count + 1
                        return true
                    }
                    guard copied else { break }
                    next += 1
                }
                remaining -= offset
                return offset
            }
            if next < lines.endIndex {
                lines[next].withMessageBytes { writeText(&buffer, $0) }
                remaining -= lines[next].message.utf8.count + 1
                next += 1
            }
        }
    }

    /// A message as a text line: a multi-line record's lines after the
    /// first each start with a tab (as `journalctl` indents them), so that
    /// a line starting with a tab continues the record before it.
    /// The newlines are found with `memchr` (most messages have none).
    static func writeText(_ buffer: inout ByteBuffer, _ bytes: UnsafeRawBufferPointer) {
        var rest = bytes
        while let base = rest.baseAddress, let found = memchr(base, Int32(UInt8(ascii: "\n")), rest.count) {
            let through = base.distance(to: UnsafeRawPointer(found)) + 1
            buffer.writeBytes(UnsafeRawBufferPointer(rebasing: rest[..<through]))
            buffer.writeInteger(UInt8(ascii: "\t"))
            rest = UnsafeRawBufferPointer(rebasing: rest[through...])
        }
        buffer.writeBytes(rest)
        buffer.writeInteger(UInt8(ascii: "\n"))
    }

    /// `data: ` lines for `text`, cut at every CR, LF and CRLF (the SSE
    /// line ends), so none of its bytes can end a field or start another.
    static func writeDataLines(_ buffer: inout ByteBuffer, _ text: String) {
        var line: [UInt8] = []
        var previousWasCR = false
        func flush() {
            buffer.writeString("data: ")
            buffer.writeBytes(line)
            buffer.writeInteger(UInt8(ascii: "\n"))
            line.removeAll(keepingCapacity: true)
        }
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "\r"):
                flush()
                previousWasCR = true
            case UInt8(ascii: "\n"):
                if !previousWasCR { flush() }
                previousWasCR = false
            default:
                line.append(byte)
                previousWasCR = false
            }
        }
        flush()
    }

    /// `event: NAME`, `data: JSON` (which ends with a newline), blank line.
    static func writeEvent(_ buffer: inout ByteBuffer, name: String, data: [UInt8]) {
        buffer.writeString("event: \(name)\ndata: ")
        buffer.writeBytes(data)
        if data.last != UInt8(ascii: "\n") { buffer.writeString("\n") }
        buffer.writeString("\n")
    }
}
