import LogcastHub
import LogcastProtocol

/// CRC-32 (IEEE 802.3, as zlib computes it) of a record's payload.
///
/// Slicing-by-8: eight tables, so one step consumes eight bytes with eight
/// independent lookups instead of eight dependent ones. On 200-byte
/// records (a log line's size) it checks about 1.1 GB/s where the
/// byte-at-a-time loop checked 0.25 GB/s (release build, this project's
/// 2-core machine); ``bytewise(_:)`` keeps that loop as the reference.
enum CRC32 {
    /// `tables[0]` is the classic byte table; `tables[k][i]` is the CRC of
    /// byte `i` followed by `k` zero bytes.
    static let tables: [UInt32] = {
        var tables = [UInt32](repeating: 0, count: 8 * 256)
        for index in 0..<256 {
            var value = UInt32(index)
            for _ in 0..<8 { value = value & 1 == 1 ? 0xEDB8_8320 ^ (value >> 1) : value >> 1 }
            tables[index] = value
        }
        for slice in 1..<8 {
            for index in 0..<256 {
                let previous = tables[(slice - 1) * 256 + index]
                tables[slice * 256 + index] = (previous >> 8) ^ tables[Int(previous & 0xFF)]
            }
        }
        return tables
    }()

    static func checksum(_ bytes: UnsafeRawBufferPointer) -> UInt32 {
        guard let base = bytes.baseAddress else { return 0 }
        var crc: UInt32 = 0xFFFF_FFFF
        var offset = 0
        let count = bytes.count
        tables.withUnsafeBufferPointer { table in
            let t = table.baseAddress!
            while offset + 8 <= count {
                let low = UInt32(littleEndian: base.loadUnaligned(fromByteOffset: offset, as: UInt32.self)) ^ crc
                let high = UInt32(littleEndian: base.loadUnaligned(fromByteOffset: offset + 4, as: UInt32.self))
                crc =
                    t[7 * 256 + Int(low & 0xFF)] ^ t[6 * 256 + Int((low >> 8) & 0xFF)]
                    ^ t[5 * 256 + Int((low >> 16) & 0xFF)] ^ t[4 * 256 + Int(low >> 24)]
                    ^ t[3 * 256 + Int(high & 0xFF)] ^ t[2 * 256 + Int((high >> 8) & 0xFF)]
                    ^ t[1 * 256 + Int((high >> 16) & 0xFF)] ^ t[Int(high >> 24)]
                offset += 8
            }
            while offset < count {
                crc = t[Int((crc ^ UInt32(base.load(fromByteOffset: offset, as: UInt8.self))) & 0xFF)] ^ (crc >> 8)
                offset += 1
            }
        }
        return crc ^ 0xFFFF_FFFF
    }

    static func checksum(_ bytes: [UInt8]) -> UInt32 {
        bytes.withUnsafeBytes { checksum($0) }
    }

    /// One byte at a time: the definition the fast form is tested against.
    static func bytewise(_ bytes: [UInt8]) -> UInt32 {
        var crc: UInt32 = 0xFFFF_FFFF
        for byte in bytes { crc = tables[Int((crc ^ UInt32(byte)) & 0xFF)] ^ (crc >> 8) }
        return crc ^ 0xFFFF_FFFF
    }
}

/// The records of the segment log, and their bytes.
///
/// On disk a record is its payload's length (`UInt32`, little-endian), the
/// payload's CRC-32, then the payload; the payload's first byte is its kind.
/// A record whose length runs past the end of the file, or whose checksum
/// does not match, ends what can be trusted of a segment.
enum StoredRecord: Equatable {
    /// A line, with its `seq`.
    case line(seq: UInt64, LogRecord)
    /// A source's position after the lines before it.
    case position(source: String, SourcePosition)
    /// A line whose fields were not decoded (a scan that needs only `seq`).
    case lineSeq(UInt64)
    /// A source event, at the `seq` of the line after it.
    case event(position: UInt64, SourceEvent)

    static let headerBytes = 8
    /// The largest payload accepted when reading (a line is at most 64 KiB of
    /// message plus its fields; anything near this is damage).
    static let maxPayloadBytes = 4 * 1024 * 1024

    enum Kind: UInt8 {
        case line = 1
        case position = 2
        case event = 3
    }

    /// Appends the framed record to `out`, in place (``framed(into:reserving:_:)``);
    /// a line through ``appendLine(seq:_:to:)``.
    func append(to out: inout [UInt8]) {
        if case .line(let seq, let record) = self { return Self.appendLine(seq: seq, record, to: &out) }
        Self.framed(into: &out, reserving: 0) { payload in
            switch self {
            case .line, .lineSeq:
                preconditionFailure("a line is written by appendLine; one read without its fields is not written back")
            case .event(let position, let event):
                payload.byte(Kind.event.rawValue)
                payload.u64(position)
                payload.string(event.source)
                payload.string(event.kind.rawValue)
                var flags: UInt8 = 0
                if event.path != nil { flags |= 1 }
                if event.reason != nil { flags |= 2 }
                if event.skippedBytes != nil { flags |= 4 }
                payload.byte(flags)
                if let path = event.path { payload.string(path) }
                if let reason = event.reason { payload.string(reason) }
                if let skipped = event.skippedBytes { payload.u64(UInt64(bitPattern: skipped)) }
            case .position(let source, let position):
                payload.byte(Kind.position.rawValue)
                payload.string(source)
                switch position {
                case .file(let file), .member(let file):
                    if case .member = position { payload.byte(3) } else { payload.byte(1) }
                    payload.string(file.path)
                    payload.u64(file.device)
                    payload.u64(file.inode)
                    payload.u64(UInt64(bitPattern: file.offset))
                    payload.u64(file.fingerprint)
                    payload.u64(UInt64(file.fingerprintLength))
                case .journal(let cursor):
                    payload.byte(2)
                    payload.string(cursor)
                }
            }
        }
    }

    /// Appends a framed `line` record to `out`, straight from `record`, not
    /// through a ``StoredRecord`` (a copy of the record): the durable history
    /// writes every line published through here, before the line is sent.
    static func appendLine(seq: UInt64, _ record: LogRecord, to out: inout [UInt8]) {
        framed(into: &out, reserving: record.message.utf8.count + 96) { payload in
            payload.byte(Kind.line.rawValue)
            payload.u64(seq)
            payload.u64(UInt64(bitPattern: record.timestamp.microseconds))
            payload.string(record.source)
            payload.string(record.message)
            var flags: UInt8 = 0
            if record.host != nil { flags |= 1 }
            if record.path != nil { flags |= 2 }
            if record.priority != nil { flags |= 4 }
            if record.unit != nil { flags |= 8 }
            if record.identifier != nil { flags |= 16 }
            if record.pid != nil { flags |= 32 }
            if record.cursor != nil { flags |= 64 }
            if record.relatedUnit != nil { flags |= 128 }
            payload.byte(flags)
            if let host = record.host { payload.string(host) }
            if let path = record.path { payload.string(path) }
            if let priority = record.priority { payload.byte(UInt8(clamping: priority)) }
            if let unit = record.unit { payload.string(unit) }
            if let identifier = record.identifier { payload.string(identifier) }
            if let pid = record.pid { payload.u64(UInt64(bitPattern: Int64(pid))) }
            if let cursor = record.cursor { payload.string(cursor) }
            if let relatedUnit = record.relatedUnit { payload.string(relatedUnit) }
            // More flags, after the fields: a record written before them ends
            // here (none set). 1: continued; 2: the source's structured fields follow.
            if record.continued || record.fields != nil {
                payload.byte((record.continued ? 1 : 0) | (record.fields != nil ? 2 : 0))
                if let fields = record.fields { payload.bytes(fields.storage) }
            }
        }
    }

    /// Appends to `out` a header (the payload's length and checksum, filled
    /// in last) and the payload `body` writes, in place: no buffer of its own.
    private static func framed(into out: inout [UInt8], reserving: Int, _ body: (inout RecordWriter) -> Void) {
        var payload = RecordWriter()
        swap(&payload.bytes, &out)
        defer { swap(&payload.bytes, &out) }
        let start = payload.bytes.count
        let needed = start + Self.headerBytes + reserving
        // Geometrically, when it must grow at all: a batch appends one record after another.
        if payload.bytes.capacity < needed { payload.bytes.reserveCapacity(max(needed, 2 * payload.bytes.capacity)) }
        payload.u64(0)  // the header, below
        body(&payload)
        payload.bytes.withUnsafeMutableBytes { bytes in
            let body = UnsafeRawBufferPointer(rebasing: bytes[(start + Self.headerBytes)...])
            bytes.storeBytes(of: UInt32(body.count).littleEndian, toByteOffset: start, as: UInt32.self)
            bytes.storeBytes(of: CRC32.checksum(body).littleEndian, toByteOffset: start + 4, as: UInt32.self)
        }
    }

    /// Decodes a payload (already checked against its checksum); nil for a
    /// kind this version does not know or a payload that does not parse.
    static func decode(_ payload: UnsafeRawBufferPointer) -> StoredRecord? {
        var reader = RecordReader(payload)
        guard let kind = reader.byte().flatMap(Kind.init(rawValue:)) else { return nil }
        switch kind {
        case .line:
            guard let seq = reader.u64(), let micros = reader.u64(), let source = reader.string(), let message = reader.string(),
                let flags = reader.byte()
            else { return nil }
            var record = LogRecord(timestamp: Timestamp(microseconds: Int64(bitPattern: micros)), source: source, message: message)
            if flags & 1 != 0 { record.host = reader.string() }
            if flags & 2 != 0 { record.path = reader.string() }
            if flags & 4 != 0 { record.priority = reader.byte().map(Int.init) }
            if flags & 8 != 0 { record.unit = reader.string() }
            if flags & 16 != 0 { record.identifier = reader.string() }
            if flags & 32 != 0 { record.pid = reader.u64().map { Int(Int64(bitPattern: $0)) } }
            if flags & 64 != 0 { record.cursor = reader.string() }
            if flags & 128 != 0 { record.relatedUnit = reader.string() }
            if !reader.failed, reader.remaining > 0, let more = reader.byte() {
                record.continued = more & 1 != 0
                if more & 2 != 0 {
                    guard let storage = reader.bytes(), let fields = LineFields(storage: storage) else { return nil }
                    record.fields = fields
                }
            }
            guard !reader.failed else { return nil }
            return .line(seq: seq, record)
        case .position:
            guard let source = reader.string(), let form = reader.byte() else { return nil }
            switch form {
            case 1, 3:
                guard let path = reader.string(), let device = reader.u64(), let inode = reader.u64(), let offset = reader.u64(),
                    let fingerprint = reader.u64(), let length = reader.u64()
                else { return nil }
                let position = FilePosition(
                    path: path,
                    device: device,
                    inode: inode,
                    offset: Int64(bitPattern: offset),
                    fingerprint: fingerprint,
                    fingerprintLength: Int(clamping: length)
                )
                return .position(source: source, form == 1 ? .file(position) : .member(position))
            case 2:
                guard let cursor = reader.string() else { return nil }
                return .position(source: source, .journal(cursor: cursor))
            default:
                return nil
            }
        case .event:
            guard let position = reader.u64(), let source = reader.string(), let name = reader.string(), let flags = reader.byte() else {
                return nil
            }
            guard let kind = SourceEvent.Kind(rawValue: name) else { return nil }
            var event = SourceEvent(source: source, kind: kind)
            if flags & 1 != 0 { event.path = reader.string() }
            if flags & 2 != 0 { event.reason = reader.string() }
            if flags & 4 != 0 { event.skippedBytes = reader.u64().map { Int64(bitPattern: $0) } }
            guard !reader.failed else { return nil }
            return .event(position: position, event)
        }
    }

    /// Whether the record is a line or an event (what the hub's history holds).
    var isEntry: Bool {
        switch self {
        case .line, .event: true
        case .position, .lineSeq: false
        }
    }

    /// The hub's form of a line or an event.
    var hubEntry: HubEntry? {
        switch self {
        case .line(let seq, let record):
            HubEntry(position: seq, payload: .line(record), json: ProtocolObject.encodedLine(record, seq: seq))
        case .event(let position, let event):
            HubEntry(position: position, payload: .event(event), json: ProtocolObject.entry(event, position: position).encoded())
        case .position, .lineSeq:
            nil
        }
    }

    /// The `seq` of a line payload, read without decoding the rest.
    static func lineSeq(_ payload: UnsafeRawBufferPointer) -> UInt64? {
        guard payload.count >= 9, payload[0] == Kind.line.rawValue else { return nil }
        var reader = RecordReader(UnsafeRawBufferPointer(rebasing: payload[1...]))
        return reader.u64()
    }
}

struct RecordWriter {
    var bytes: [UInt8] = []

    mutating func byte(_ value: UInt8) { bytes.append(value) }

    mutating func u32(_ value: UInt32) {
        withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) }
    }

    mutating func u64(_ value: UInt64) {
        withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) }
    }

    /// A length (`UInt32`) and the text's UTF-8 bytes.
    mutating func string(_ text: String) {
        // A native string's bytes in place; a copy of the string only for a bridged one.
        let done: Void? = text.utf8.withContiguousStorageIfAvailable { utf8 in
            u32(UInt32(utf8.count))
            bytes.append(contentsOf: utf8)
        }
        guard done == nil else { return }
        var text = text
        text.withUTF8 { utf8 in
            u32(UInt32(utf8.count))
            bytes.append(contentsOf: utf8)
        }
    }

    /// A length (`UInt32`) and the bytes.
    mutating func bytes(_ value: [UInt8]) {
        u32(UInt32(value.count))
        bytes += value
    }
}

struct RecordReader {
    let buffer: UnsafeRawBufferPointer
    var offset = 0
    var failed = false

    init(_ buffer: UnsafeRawBufferPointer) {
        self.buffer = buffer
    }

    mutating func take(_ count: Int) -> UnsafeRawBufferPointer? {
        guard !failed, count >= 0, buffer.count - offset >= count else {
            failed = true
            return nil
        }
        defer { offset += count }
        return UnsafeRawBufferPointer(rebasing: buffer[offset..<offset + count])
    }

    mutating func byte() -> UInt8? { take(1)?[0] }

    /// Bytes not read yet.
    var remaining: Int { buffer.count - offset }

    mutating func u32() -> UInt32? {
        guard let bytes = take(4) else { return nil }
        return bytes.reversed().reduce(0) { $0 << 8 | UInt32($1) }
    }

    mutating func u64() -> UInt64? {
        guard let bytes = take(8) else { return nil }
        return bytes.reversed().reduce(0) { $0 << 8 | UInt64($1) }
    }

    mutating func string() -> String? {
        lengthPrefixed().map { String(decoding: $0, as: UTF8.self) }
    }

    mutating func bytes() -> [UInt8]? {
        lengthPrefixed().map { Array($0) }
    }

    /// A length (`UInt32`) and that many bytes.
    private mutating func lengthPrefixed() -> UnsafeRawBufferPointer? {
        guard let count = u32() else { return nil }
        return take(Int(count))
    }
}
