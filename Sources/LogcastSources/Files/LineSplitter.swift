import LogcastHub
import LogcastProtocol

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Cuts a byte stream into log lines.
///
/// Guarantees:
/// - A line is complete only when its `\n` has arrived; the rest is held
///   until more bytes come or ``flushPartial()`` is called.
/// - A trailing `\r` is dropped (CRLF files).
/// - Invalid UTF-8 becomes U+FFFD; the result is always valid UTF-8.
/// - A line longer than ``maxLineBytes`` is split into pieces of at most that
///   many bytes (cut at a character boundary); nothing is dropped.
public struct LineSplitter: Sendable {
    /// The longest line emitted as one piece, in bytes.
    public let maxLineBytes: Int
    private var pending: [UInt8] = []

    public init(maxLineBytes: Int = 64 * 1024) {
        precondition(maxLineBytes >= 4, "a line cap must hold one UTF-8 character")
        self.maxLineBytes = maxLineBytes
    }

    /// Whether bytes of an unfinished line are held.
    public var hasPartialLine: Bool { !pending.isEmpty }

    /// Bytes taken in but not yet given out as a line (the partial line).
    public var pendingByteCount: Int { pending.count }

    /// Feeds bytes; calls `emit` for each complete line, in order.
    public mutating func append(_ chunk: UnsafeRawBufferPointer, emit: (String) -> Void) {
        appendSized(chunk, emit: { line, _ in emit(line) })
    }

    /// Feeds bytes; calls `emit` for each complete line, in order, with the
    /// bytes of the file it took (its line end included): what a saved
    /// position must count once the line is published.
    public mutating func appendSized(_ chunk: UnsafeRawBufferPointer, emit: (_ line: String, _ fileBytes: Int) -> Void) {
        guard let base = chunk.baseAddress, chunk.count > 0 else { return }
        var start = 0
        while start < chunk.count {
            let remaining = chunk.count - start
            let found = memchr(base + start, 0x0A, remaining)
            if let found {
                let end = base.distance(to: UnsafeRawPointer(found))
                let piece = UnsafeRawBufferPointer(start: base + start, count: end - start)
                if pending.isEmpty {
                    emitLine(piece, terminator: 1, emit: emit)
                } else {
                    pending.append(contentsOf: piece)
                    pending.withUnsafeBytes { emitLine($0, terminator: 1, emit: emit) }
                    pending.removeAll(keepingCapacity: true)
                }
                start = end + 1
            } else {
                pending.append(contentsOf: UnsafeRawBufferPointer(start: base + start, count: remaining))
                start = chunk.count
                splitOverlongPending(emit: emit)
            }
        }
    }

    /// Convenience for tests and small inputs.
    public mutating func append(_ bytes: [UInt8], emit: (String) -> Void) {
        bytes.withUnsafeBytes { append($0, emit: emit) }
    }

    /// Emits the held partial line, if any (after a quiet period, or at end of a file that is being left).
    public mutating func flushPartial(emit: (String) -> Void) {
        flushPartialSized(emit: { line, _ in emit(line) })
    }

    /// ``flushPartial(emit:)``, with the line's bytes of the file.
    public mutating func flushPartialSized(emit: (_ line: String, _ fileBytes: Int) -> Void) {
        guard !pending.isEmpty else { return }
        pending.withUnsafeBytes { emitLine($0, terminator: 0, emit: emit) }
        pending.removeAll(keepingCapacity: true)
    }

    /// Forgets the held partial line (the file it came from was truncated).
    public mutating func reset() {
        pending.removeAll(keepingCapacity: false)
    }

    private mutating func splitOverlongPending(emit: (String, Int) -> Void) {
        // A trailing `\r` is held back: its `\n` may be in the next read, and then it is a line ending.
        while pending.count - (pending.last == 0x0D ? 1 : 0) > maxLineBytes {
            let cut = Self.characterBoundary(in: pending, atMost: maxLineBytes)
            pending.withUnsafeBytes { emitPiece(UnsafeRawBufferPointer(rebasing: $0[0..<cut]), fileBytes: cut, emit: emit) }
            pending.removeFirst(cut)
        }
    }

    /// `terminator`: the bytes of the line end after `line` in the file (1 for `\n`, 0 for a partial line).
    private func emitLine(_ line: UnsafeRawBufferPointer, terminator: Int, emit: (String, Int) -> Void) {
        var line = line
        var ending = terminator
        if let last = line.last, last == 0x0D {
            line = UnsafeRawBufferPointer(rebasing: line[0..<(line.count - 1)])
            ending += 1
        }
        if line.count <= maxLineBytes {
            emitPiece(line, fileBytes: line.count + ending, emit: emit)
            return
        }
        var start = 0
        while line.count - start > maxLineBytes {
            let rest = UnsafeRawBufferPointer(rebasing: line[start...])
            let cut = Self.characterBoundary(in: rest, atMost: maxLineBytes)
            emitPiece(UnsafeRawBufferPointer(rebasing: rest[0..<cut]), fileBytes: cut, emit: emit)
            start += cut
        }
        emitPiece(UnsafeRawBufferPointer(rebasing: line[start...]), fileBytes: line.count - start + ending, emit: emit)
    }

    private func emitPiece(_ bytes: UnsafeRawBufferPointer, fileBytes: Int, emit: (String, Int) -> Void) {
        emit(String(decoding: bytes, as: UTF8.self), fileBytes)
    }

    /// The largest cut at or below `limit` that does not split a UTF-8 sequence
    /// (or `limit` itself when the bytes there are not valid UTF-8 anyway).
    static func characterBoundary<C: Collection<UInt8>>(in bytes: C, atMost limit: Int) -> Int where C.Index == Int {
        let base = bytes.startIndex
        var cut = limit
        // Step back over at most three continuation bytes (10xxxxxx).
        while cut > limit - 3, cut > 0, bytes[base + cut] & 0xC0 == 0x80 {
            cut -= 1
        }
        return cut > 0 && bytes[base + cut] & 0xC0 != 0x80 ? cut : limit
    }
}
