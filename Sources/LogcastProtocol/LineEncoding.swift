extension ProtocolObject {
    /// A value of a `line` object's field, as ``encodedLine(_:seq:)`` lays it out.
    fileprivate enum LineValue {
        case text(String)
        case integer(Int64)
        case unsigned(UInt64)
        case timestamp(Timestamp)
        case literal(StaticString)
    }

    /// Hands each field of a line's object after `{"type":"line"` to `sink`,
    /// in the protocol's order, as a key (with its leading comma, quotes and
    /// colon) and a value; absent optional fields are left out.
    @inline(__always)
    private static func forEachLineField(_ record: LogRecord, seq: UInt64?, lines: Int, into sink: inout some LineFieldSink) {
        if let seq { sink.field(#","seq":"#, .unsigned(seq)) }
        sink.field(#","ts":"#, .timestamp(record.timestamp))
        sink.field(#","source":"#, .text(record.source))
        if let host = record.host { sink.field(#","host":"#, .text(host)) }
        if let path = record.path { sink.field(#","path":"#, .text(path)) }
        sink.field(#","msg":"#, .text(record.message))
        if lines > 1 { sink.field(#","lines":"#, .integer(Int64(lines))) }
        if record.continued { sink.field(#","continued":"#, .literal("true")) }
        if let priority = record.priority { sink.field(#","priority":"#, .integer(Int64(priority))) }
        if let unit = record.unit { sink.field(#","unit":"#, .text(unit)) }
        if let identifier = record.identifier { sink.field(#","identifier":"#, .text(identifier)) }
        if let pid = record.pid { sink.field(#","pid":"#, .integer(Int64(pid))) }
        if let cursor = record.cursor { sink.field(#","cursor":"#, .text(cursor)) }
    }

    /// What a line's fields are handed to: first to add up their size, then to write them.
    private protocol LineFieldSink {
        mutating func field(_ key: StaticString, _ value: LineValue)
    }

    /// Adds up the bytes of a line's fields.
    private struct LineSizer: LineFieldSink {
        var size = 0

        mutating func field(_ key: StaticString, _ value: LineValue) {
            size += key.utf8CodeUnitCount
            switch value {
            case .text(let text): size += ProtocolObject.withUTF8(text) { JSONEscaping.quotedCount($0) }
            case .integer(let number): size += (number < 0 ? 1 : 0) + ProtocolObject.digitCount(number.magnitude)
            case .unsigned(let number): size += ProtocolObject.digitCount(number)
            case .timestamp: size += Timestamp.rfc3339Count + 2
            case .literal(let text): size += text.utf8CodeUnitCount
            }
        }
    }

    /// Writes a line's bytes into memory sized for them: no capacity checks.
    private struct LineBytes: LineFieldSink {
        var out: UnsafeMutablePointer<UInt8>

        mutating func put(_ text: StaticString) {
            out.update(from: text.utf8Start, count: text.utf8CodeUnitCount)
            out += text.utf8CodeUnitCount
        }

        mutating func put(_ byte: UInt8) {
            out.pointee = byte
            out += 1
        }

        mutating func put(digitsOf number: UInt64) {
            let digits = ProtocolObject.digitCount(number)
            var rest = number
            for index in stride(from: digits - 1, through: 0, by: -1) {
                out[index] = UInt8(ascii: "0") &+ UInt8(truncatingIfNeeded: rest % 10)
                rest /= 10
            }
            out += digits
        }

        mutating func put(quoted utf8: UnsafeBufferPointer<UInt8>) {
            put(UInt8(ascii: "\""))
            JSONEscaping.scan(utf8) { run in
                out.update(from: run.baseAddress!, count: run.count)
                out += run.count
            } escape: { byte in
                JSONEscaping.forEachByte(escaping: byte) { put($0) }
            }
            put(UInt8(ascii: "\""))
        }

        mutating func field(_ key: StaticString, _ value: LineValue) {
            put(key)
            switch value {
            case .text(let text):
                ProtocolObject.withUTF8(text) { put(quoted: $0) }
            case .integer(let number):
                if number < 0 { put(UInt8(ascii: "-")) }
                put(digitsOf: number.magnitude)
            case .unsigned(let number):
                put(digitsOf: number)
            case .timestamp(let timestamp):
                put(UInt8(ascii: "\""))
                timestamp.writeRFC3339(to: out)
                out += Timestamp.rfc3339Count
                put(UInt8(ascii: "\""))
            case .literal(let text):
                put(text)
            }
        }
    }

    /// A `line` object as NDJSON, in one allocation of exactly its size.
    ///
    /// Every line published is encoded here once, on the publishing thread.
    /// The field sizes are added up first (strings scanned for escapes eight
    /// bytes at a time, ``JSONEscaping``), then the bytes are written with no
    /// capacity check: what ``JSONWriter`` would write field by field (tested),
    /// without its per-append checks and growth. Callers with a record in
    /// hand call this rather than `ProtocolObject.line(record, seq:).encoded()`,
    /// which copies the record (a retain and a release of each of its strings).
    public static func encodedLine(_ record: LogRecord, seq: UInt64?) -> [UInt8] {
        let lines = record.lineCount
        let head: StaticString = #"{"type":"line""#
        var sizer = LineSizer(size: head.utf8CodeUnitCount + 2)  // and "}\n"
        forEachLineField(record, seq: seq, lines: lines, into: &sizer)
        let size = sizer.size
        return [UInt8](unsafeUninitializedCapacity: size) { buffer, count in
            guard let base = buffer.baseAddress else { return }
            var bytes = LineBytes(out: base)
            bytes.put(head)
            forEachLineField(record, seq: seq, lines: lines, into: &bytes)
            bytes.put(UInt8(ascii: "}"))
            bytes.put(UInt8(ascii: "\n"))
            count = base.distance(to: bytes.out)
            precondition(count == size, "a line object's size was \(size), its bytes \(count)")
        }
    }

    /// The decimal digits of `number` (1 for 0).
    @inline(__always)
    fileprivate static func digitCount(_ number: UInt64) -> Int {
        var digits = 1
        var rest = number
        while rest >= 10 {
            rest /= 10
            digits += 1
        }
        return digits
    }

    /// `text`'s UTF-8 (a native string's own storage: no copy).
    @inline(__always)
    fileprivate static func withUTF8<Result>(_ text: String, _ body: (UnsafeBufferPointer<UInt8>) -> Result) -> Result {
        if let result = text.utf8.withContiguousStorageIfAvailable(body) { return result }
        var text = text  // bridged or not contiguous: made native
        return text.withUTF8(body)
    }
}
