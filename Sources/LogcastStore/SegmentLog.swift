import DequeModule
import Foundation
import LogcastHub
import LogcastProtocol
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// The durable history: an append-only log of every line the hub stamps,
/// with the source positions those lines reach, in numbered segment files.
///
/// Guarantees:
/// - Lines are appended in `seq` order before subscribers are offered them,
///   each followed (in the same write) by the position of its source after
///   it, so a stored position never runs ahead of the stored lines.
/// - A write reaches the kernel (`write(2)`) before ``append`` returns, so a
///   crash of the process (`kill -9`) loses nothing appended; ``sync()``
///   (`fdatasync`, once a second from the service) bounds what a power loss
///   can cost. The flush runs outside the lock that ``append`` takes, so a
///   slow disk never holds up the lines being published meanwhile.
/// - On open, a torn record at the end of the newest segment is cut off; a
///   damaged record in an older segment ends what is read of that segment,
///   is logged and counted, and is never a crash.
/// - A write that fails (a full disk) is undone (`ftruncate` to where it
///   began), reported by ``problem`` and counted; the stream goes on from
///   memory, and writing resumes with the next append that succeeds.
/// - Segments are deleted oldest first once the log is over
///   ``Configuration/maxBytes``, or once their newest line is older than
///   ``Configuration/maxAge``; the segment being written is never deleted.
public final class SegmentLog: DurableHistory, Sendable {
    public struct Configuration: Sendable {
        /// The folder of the segment files.
        public var directory: String
        public var maxBytes: Int64 = 1 << 30
        public var maxAge: Duration = .seconds(7 * 24 * 3600)
        /// A segment is closed and a new one begun past this size.
        public var segmentBytes: Int64 = 64 << 20
        /// About how many bytes lie between two seek marks of a segment
        /// (``Mark``): a read from a position decodes at most this much
        /// before the first record it wants. (32 KiB instead made no
        /// difference to the journal ingest benchmark, where subscribers
        /// read from marks near the newest chunk all the time.)
        public var markBytes: Int64 = 256 << 10
        /// Positions in one chunk of the read cache (``ChunkCache``).
        public var chunkPositions: UInt64 = 4096
        /// Chunks the read cache keeps, newest used first; 0 turns it off.
        public var cachedChunks = 32

        public init(directory: String) {
            self.directory = directory
        }
    }

    /// What the log held when it was opened.
    public struct Recovery: Sendable {
        /// The last `seq` stored (0 when none).
        public var lastSeq: UInt64 = 0
        /// The newest lines, oldest first: what the in-memory history starts with.
        public var tail: [HubEntry] = []
        /// Each source's last stored position (a glob's members each under
        /// their own key, ``SourcePosition/key(source:_:)``).
        public var positions: [String: SourcePosition] = [:]
        /// Bytes of a torn last record cut off the newest segment.
        public var tornBytes = 0
        /// Segments whose damaged records were skipped.
        public var damagedSegments: [String] = []
        public var storedBytes: Int64 = 0
    }

    struct Segment {
        var firstSeq: UInt64
        var path: String
        var bytes: Int64
        var lastWrite: ContinuousClock.Instant?
        /// Where a read from a position may begin, oldest first.
        var marks: [Mark] = []

        /// The offset to begin reading at for records with a position above `after`.
        func start(after: UInt64) -> Int64 {
            // The last mark that skips nothing wanted (marks rise in both fields).
            var low = 0
            var high = marks.count
            while low < high {
                let middle = (low + high) / 2
                if marks[middle].through <= after { low = middle + 1 } else { high = middle }
            }
            return low == 0 ? 0 : marks[low - 1].offset
        }
    }

    /// A seek mark: every record of the segment before `offset` (a record
    /// boundary) has a position (a line's `seq`, an event's position) of at
    /// most `through`. A read for positions above `through` may begin at
    /// `offset`; without marks every read from a position would decode the
    /// segment from its start (64 MiB), once per catch-up read.
    struct Mark: Equatable {
        var offset: Int64
        var through: UInt64
    }

    struct State {
        var segments: [Segment] = []
        var descriptor: Int32 = -1
        /// Descriptors of segments written to the end, for the next ``sync()`` to flush and close.
        var retired: [Int32] = []
        var nextSeq: UInt64 = 1
        var positions: [String: SourcePosition] = [:]
        var dirty = false
        var problem: String?
        var writeErrors = 0
        var damagedRecords = 0
        /// The highest position written (for the marks of the newest segment and the read cache).
        var lastPosition: UInt64 = 0
    }

    public let configuration: Configuration
    public let recovery: Recovery
    private let state: Mutex<State>
    private let cache: Mutex<ChunkCache>
    /// Flushes one descriptor to the disk (`fdatasync`; tests watch it).
    let flush: @Sendable (Int32) -> Void

    /// Opens (or creates) the log and reads what it holds.
    /// - Parameters:
    ///   - tailLines: how many of the newest lines to keep for the in-memory history.
    ///   - tailBytes: and at most this many bytes of them.
    public convenience init(configuration: Configuration, tailLines: Int, tailBytes: Int) throws(StoreError) {
        try self.init(configuration: configuration, tailLines: tailLines, tailBytes: tailBytes, flush: { _ = fdatasync($0) })
    }

    init(configuration: Configuration, tailLines: Int, tailBytes: Int, flush: @escaping @Sendable (Int32) -> Void) throws(StoreError) {
        self.configuration = configuration
        self.flush = flush
        let directory = configuration.directory
        if mkdir(directory, 0o700) != 0, errno != EEXIST {
            throw StoreError("cannot create \(directory): \(String(cString: strerror(errno)))")
        }
        var recovery = Recovery()
        var segments: [Segment] = []
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []).filter { $0.hasSuffix(".seg") }.sorted()
        // Pass 1: every record's checksum, the last seq, the positions, and
        // how many lines each segment holds (lines are not decoded).
        var lineCounts: [Int] = []
        var lastPosition: UInt64 = 0
        for (index, name) in names.enumerated() {
            guard let firstSeq = UInt64(name.dropLast(4)) else { continue }
            let path = directory + "/" + name
            let isNewest = index == names.count - 1
            var lines = 0
            let scan = try Self.scan(path: path, decodeLines: false, markEvery: configuration.markBytes) { record, _ in
                switch record {
                case .lineSeq(let seq), .line(let seq, _):
                    recovery.lastSeq = max(recovery.lastSeq, seq)
                    lines += 1
                case .position(let source, let position):
                    recovery.positions[source] = position
                case .event:
                    break
                }
                return true
            }
            if scan.validBytes < scan.fileBytes {
                if isNewest {
                    // A torn last record (the process died mid-write): cut it off.
                    guard truncate(path, off_t(scan.validBytes)) == 0 else {
                        throw StoreError("cannot cut the torn end off \(path): \(String(cString: strerror(errno)))")
                    }
                    recovery.tornBytes = Int(scan.fileBytes - scan.validBytes)
                } else {
                    recovery.damagedSegments.append(path)
                }
            }
            segments.append(Segment(firstSeq: firstSeq, path: path, bytes: scan.validBytes, lastWrite: nil, marks: scan.marks))
            if isNewest { lastPosition = scan.lastPosition }
            lineCounts.append(lines)
            recovery.storedBytes += scan.validBytes
        }
        // Pass 2: decode the newest lines, from the few segments that hold them.
        var start = segments.count
        var counted = 0
        while start > 0, counted < tailLines {
            start -= 1
            counted += lineCounts[start]
        }
        var tail = Deque<(record: StoredRecord, bytes: Int)>()
        var tailTotal = 0
        for segment in segments[start...] {
            _ = try? Self.scan(path: segment.path, upTo: segment.bytes) { record, size in
                guard record.isEntry else { return true }
                tail.append((record, size))
                tailTotal += size
                while tail.count > tailLines || tailTotal > tailBytes, let old = tail.popFirst() { tailTotal -= old.bytes }
                return true
            }
        }
        recovery.tail = tail.compactMap { $0.record.hubEntry }
        self.recovery = recovery
        var initial = State()
        initial.segments = segments
        initial.nextSeq = recovery.lastSeq + 1
        initial.positions = recovery.positions
        initial.damagedRecords = recovery.damagedSegments.count
        initial.lastPosition = lastPosition
        state = Mutex(initial)
        cache = Mutex(ChunkCache(capacity: configuration.cachedChunks))
        try state.withLock { state throws(StoreError) in
            if let newest = state.segments.last, newest.bytes < configuration.segmentBytes {
                let fd = open(newest.path, O_WRONLY | O_APPEND | O_CLOEXEC)
                guard fd >= 0 else { throw StoreError("cannot open \(newest.path): \(String(cString: strerror(errno)))") }
                state.descriptor = fd
            } else {
                try Self.startSegment(&state, configuration: configuration)
            }
        }
    }

    deinit {
        state.withLock { state in
            for fd in state.retired + (state.descriptor >= 0 ? [state.descriptor] : []) {
                _ = fdatasync(fd)
                close(fd)
            }
        }
    }

    // MARK: Writing

    public func append(_ entries: [HubEntry], source: String?, position: SourcePosition?) {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(entries.reduce(0) { $0 + $1.json.count } + 64)
        var highest: UInt64 = 0
        for entry in entries {
            highest = max(highest, entry.position)
            switch entry.payload {
            case .line(let record): StoredRecord.appendLine(seq: entry.position, record, to: &bytes)
            case .event(let event): StoredRecord.event(position: entry.position, event).append(to: &bytes)
            }
        }
        let key = source.flatMap { source in position.map { SourcePosition.key(source: source, $0) } }
        if let key, let position { StoredRecord.position(source: key, position).append(to: &bytes) }
        guard !bytes.isEmpty else { return }
        state.withLock { state in
            if let last = state.segments.last, last.bytes >= configuration.segmentBytes, let first = entries.first?.position {
                state.nextSeq = first
                do {
                    try Self.startSegment(&state, configuration: configuration)
                } catch {
                    state.problem = "\(error)"
                    state.writeErrors += 1
                    return
                }
            }
            guard state.descriptor >= 0, !state.segments.isEmpty else { return }
            let before = state.segments[state.segments.count - 1].bytes
            if let problem = Self.writeAll(state.descriptor, bytes) {
                // Undo a part written, so the file ends with a whole record.
                _ = ftruncate(state.descriptor, off_t(before))
                state.problem = "cannot write the history to \(configuration.directory): \(problem); serving from memory"
                state.writeErrors += 1
                return
            }
            state.problem = nil
            let newest = state.segments.count - 1
            let lastMark = state.segments[newest].marks.last?.offset ?? 0
            if before - lastMark >= configuration.markBytes {
                state.segments[newest].marks.append(Mark(offset: before, through: state.lastPosition))
            }
            state.lastPosition = max(state.lastPosition, highest)
            state.segments[state.segments.count - 1].bytes += Int64(bytes.count)
            state.segments[state.segments.count - 1].lastWrite = .now
            state.dirty = true
            if let last = entries.last(where: \.isLine) { state.nextSeq = last.position + 1 }
            if let key, let position { state.positions[key] = position }
        }
    }

    static func writeAll(_ fd: Int32, _ bytes: [UInt8]) -> String? {
        bytes.withUnsafeBytes { buffer -> String? in
            var offset = 0
            while offset < buffer.count {
                let written = write(fd, buffer.baseAddress! + offset, buffer.count - offset)
                if written < 0 {
                    if errno == EINTR { continue }
                    return String(cString: strerror(errno))
                }
                offset += written
            }
            return nil
        }
    }

    /// Closes the segment being written and begins one named after the next
    /// `seq`, which starts with every source's position (so deleting older
    /// segments never loses a position); then applies the retention.
    private static func startSegment(_ state: inout State, configuration: Configuration) throws(StoreError) {
        if state.descriptor >= 0 {
            // Flushed and closed by the next `sync()`, not here under the lock.
            state.retired.append(state.descriptor)
            state.dirty = true
            state.descriptor = -1
        }
        let name = String(state.nextSeq)
        let path = configuration.directory + "/" + String(repeating: "0", count: max(0, 20 - name.count)) + name + ".seg"
        let fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw StoreError("cannot create \(path): \(String(cString: strerror(errno)))") }
        var checkpoint: [UInt8] = []
        for (source, position) in state.positions.sorted(by: { $0.key < $1.key }) {
            StoredRecord.position(source: source, position).append(to: &checkpoint)
        }
        if !checkpoint.isEmpty, writeAll(fd, checkpoint) != nil { _ = ftruncate(fd, 0) }
        let bytes = Int64(lseek(fd, 0, SEEK_END))
        if let index = state.segments.firstIndex(where: { $0.path == path }) {
            state.segments[index].bytes = bytes
            state.segments[index].marks.removeAll { $0.offset > bytes }
        } else {
            state.segments.append(Segment(firstSeq: state.nextSeq, path: path, bytes: bytes, lastWrite: .now))
        }
        state.descriptor = fd
        applyRetention(&state, configuration: configuration)
    }

    private static func applyRetention(_ state: inout State, configuration: Configuration) {
        func total() -> Int64 { state.segments.reduce(0) { $0 + $1.bytes } }
        while state.segments.count > 1 {
            let oldest = state.segments[0]
            let tooOld = Self.age(of: oldest) > configuration.maxAge
            guard total() > configuration.maxBytes || tooOld else { break }
            unlink(oldest.path)
            state.segments.removeFirst()
        }
    }

    /// How long ago a segment was last written (its file's time, for segments of an earlier run).
    private static func age(of segment: Segment) -> Duration {
        if let lastWrite = segment.lastWrite { return .now - lastWrite }
        var info = stat()
        guard stat(segment.path, &info) == 0 else { return .zero }
        let seconds = Date().timeIntervalSince1970 - (Double(info.st_mtim.tv_sec) + Double(info.st_mtim.tv_nsec) / 1e9)
        return .milliseconds(Int64(max(0, seconds) * 1000))
    }

    /// Flushes what was written to the disk (`fdatasync`), and applies the
    /// age limit. The service calls it once a second and at shutdown.
    ///
    /// The flush itself runs outside the lock: appends go on while the disk
    /// catches up (an `fdatasync` behind tens of megabytes of a burst can
    /// take a tenth of a second, and every publish waited for it).
    public func sync() {
        let pending = state.withLock { state -> [Int32] in
            var pending = state.retired
            state.retired = []
            if state.dirty, state.descriptor >= 0 {
                // A second descriptor of the same file: a rotation may close
                // the segment's own while this one is being flushed. Without
                // a descriptor to spare, flush here as before.
                let copy = dup(state.descriptor)
                if copy >= 0 { pending.append(copy) } else { flush(state.descriptor) }
            }
            state.dirty = false
            Self.applyRetention(&state, configuration: configuration)
            return pending
        }
        for fd in pending {
            flush(fd)
            close(fd)
        }
    }

    /// Descriptors of finished segments that the next ``sync()`` flushes and closes (for tests).
    var retiredDescriptors: [Int32] { state.withLock { $0.retired } }

    /// Chunks in the read cache (for tests).
    var cachedChunkCount: Int { cache.withLock { $0.count } }

    /// Each segment's seek marks, oldest segment first (for tests).
    var marks: [[Mark]] { state.withLock { $0.segments.map(\.marks) } }

    /// Where a read of positions above `after` begins in the segment that holds them (for tests).
    func readStart(after: UInt64) -> Int64 {
        Self.readStart(state.withLock { $0.segments }, after: after).offset
    }

    /// The segment a read of positions above `after` begins in (the last
    /// that begins at or before the first wanted), and the offset in it
    /// (its last mark before them).
    static func readStart(_ segments: [Segment], after: UInt64) -> (index: Int, offset: Int64) {
        guard let index = segments.lastIndex(where: { $0.firstSeq <= after + 1 }) else { return (0, 0) }
        return (index, segments[index].start(after: after))
    }

    /// The descriptor of the segment being written (for tests that make writes fail).
    var activeDescriptor: Int32 { state.withLock { $0.descriptor } }

    /// Why the history is not being written, when it is not.
    public var problem: String? { state.withLock { $0.problem } }

    public struct Statistics: Sendable {
        public var segments: Int
        public var bytes: Int64
        public var writeErrors: Int
        public var damagedSegments: Int
    }

    public var statistics: Statistics {
        state.withLock { state in
            Statistics(
                segments: state.segments.count,
                bytes: state.segments.reduce(0) { $0 + $1.bytes },
                writeErrors: state.writeErrors,
                damagedSegments: state.damagedRecords
            )
        }
    }

    // MARK: Reading

    public func lines(after: UInt64, before: UInt64, limit: Int) -> [HubEntry] {
        guard limit > 0, after + 1 < before else { return [] }
        guard configuration.cachedChunks > 0 else { return read(after: after, before: before, limit: limit) }
        // Whole chunks come from the cache, decoded once for every reader
        // (a hundred subscribers catching up read the same positions); the
        // newest chunk, still being written, and what is past it are read.
        var out: [HubEntry] = []
        var first = after + 1
        let size = configuration.chunkPositions
        while out.count < limit, first < before {
            let index = (first - 1) / size
            guard let chunk = chunk(index) else { break }
            for entry in chunk where entry.position >= first {
                guard entry.position < before, out.count < limit else { return out }
                out.append(entry)
            }
            first = (index + 1) * size + 1
        }
        if out.count < limit, first < before { out += read(after: first - 1, before: before, limit: limit - out.count) }
        return out
    }

    /// The first part of ``lines(after:before:limit:)``: up to the end of the
    /// cached chunk that holds `after + 1`, as a slice of the cache's array
    /// (so a hundred subscribers catching up through the same chunk neither
    /// copy its entries nor retain each of them); the whole read where that
    /// chunk is not cached yet or the slice would hold no line.
    public func part(after: UInt64, before: UInt64, limit: Int) -> DurablePart {
        guard limit > 0, after + 1 < before else { return DurablePart([]) }
        let size = configuration.chunkPositions
        guard configuration.cachedChunks > 0, let chunk = chunk(after / size) else {
            return DurablePart(lines(after: after, before: before, limit: limit))
        }
        let start = Self.firstIndex(in: chunk, from: after + 1)
        let end = min(Self.firstIndex(in: chunk, from: before), start + min(limit, chunk.count))
        // Only events (a chunk's last positions): read on, so the part holds a line.
        guard chunk[start..<end].contains(where: \.isLine) else {
            return DurablePart(lines(after: after, before: before, limit: limit))
        }
        return DurablePart(array: chunk, range: start..<end, shared: true)
    }

    /// The index of the first entry with a position at or above `position` (positions rise).
    static func firstIndex(in entries: [HubEntry], from position: UInt64) -> Int {
        var low = 0
        var high = entries.count
        while low < high {
            let middle = (low + high) / 2
            if entries[middle].position >= position { high = middle } else { low = middle + 1 }
        }
        return low
    }

    /// The entries with positions in chunk `index` (`index * size + 1` through
    /// `(index + 1) * size`), from the cache or read into it; nil while the
    /// chunk may still grow (nothing past it is written yet).
    /// A chunk that reaches below the oldest segment is not cached either
    /// (retention deletes its oldest lines), and older chunks are dropped.
    private func chunk(_ index: UInt64) -> [HubEntry]? {
        let size = configuration.chunkPositions
        let (written, oldest) = state.withLock { ($0.lastPosition, $0.segments.first?.firstSeq ?? 1) }
        // Positions are written in order: once one past the chunk is, the chunk is whole.
        guard written > (index + 1) * size, index * size + 1 >= oldest else {
            if index * size + 1 < oldest { cache.withLock { $0.dropBelow((oldest - 1) / size + 1) } }
            return nil
        }
        if let cached = cache.withLock({ $0.entries(index) }) { return cached }
        let entries = read(after: index * size, before: (index + 1) * size + 1, limit: .max)
        cache.withLock { $0.insert(index, entries) }
        return entries
    }

    /// ``lines(after:before:limit:)`` from the segment files.
    private func read(after: UInt64, before: UInt64, limit: Int) -> [HubEntry] {
        guard limit > 0, after + 1 < before else { return [] }
        let segments = state.withLock { $0.segments }
        let start = Self.readStart(segments, after: after)
        return Self.collect(
            segments[start.index...],
            from: start.offset,
            before: before,
            limit: limit,
            line: { seq, _ in seq > after },
            event: { position, _ in position > after }
        )
    }

    public func lines(since: Timestamp, before: UInt64, limit: Int) -> [HubEntry] {
        guard limit > 0 else { return [] }
        let segments = state.withLock { $0.segments }
        // The newest segment whose first line is not after `since`: the range starts in it.
        let start = segments.indices.reversed().first { Self.firstLineTime(segments[$0]).map { $0 <= since } ?? false } ?? 0
        // Events belong to the range once one of its lines has been found.
        return Self.collect(
            segments[start...],
            before: before,
            limit: limit,
            line: { _, line in since <= line.timestamp },
            event: { _, inRange in inRange }
        )
    }

    /// The stored lines and events of `segments` below `before` that `line`
    /// and `event` accept (`event` is told whether a line was accepted
    /// yet), oldest first, at most `limit`, as hub entries.
    private static func collect(
        _ segments: ArraySlice<Segment>,
        from firstOffset: Int64 = 0,
        before: UInt64,
        limit: Int,
        line wantedLine: (UInt64, LogRecord) -> Bool,
        event wantedEvent: (UInt64, Bool) -> Bool
    ) -> [HubEntry] {
        var out: [HubEntry] = []
        var sawLine = false
        for segment in segments {
            if segment.firstSeq >= before || out.count == limit { break }
            var done = false
            let from = segment.path == segments.first?.path ? firstOffset : 0
            _ = try? scan(path: segment.path, from: from, upTo: segment.bytes) { record, _ in
                let wanted: Bool
                switch record {
                case .line(let seq, let line):
                    guard seq < before else {
                        done = true
                        return false
                    }
                    wanted = wantedLine(seq, line)
                    sawLine = sawLine || wanted
                case .event(let position, _):
                    guard position < before else {
                        done = true
                        return false
                    }
                    wanted = wantedEvent(position, sawLine)
                case .position, .lineSeq:
                    return true
                }
                if wanted, let entry = record.hubEntry {
                    out.append(entry)
                    if out.count == limit { done = true }
                }
                return !done
            }
            if done { break }
        }
        return out
    }

    public var oldestLineTime: Timestamp? {
        let segments = state.withLock { $0.segments }
        return segments.lazy.compactMap(Self.firstLineTime).first
    }

    /// The stamp of a segment's first line.
    static func firstLineTime(_ segment: Segment) -> Timestamp? {
        var found: Timestamp?
        _ = try? scan(path: segment.path, upTo: segment.bytes) { record, _ in
            guard case .line(_, let line) = record else { return true }
            found = line.timestamp
            return false
        }
        return found
    }

    struct ScanResult {
        var fileBytes: Int64
        var validBytes: Int64
        /// With `markEvery`: seek marks about that many bytes apart.
        var marks: [Mark] = []
        /// The highest position of a line or event read.
        var lastPosition: UInt64 = 0
    }

    /// Reads a segment's records in order until its end, its first damaged
    /// record (a bad length or checksum), or `body` returning false, and
    /// says how far it was whole (as far as it read).
    /// - Parameters:
    ///   - from: a record boundary to begin at (0, or a ``Mark``'s offset).
    ///   - markEvery: when above 0, also collect seek marks about this many bytes apart.
    ///   - body: given each record and what it costs to keep; returns whether to read on.
    ///     A reader that has what it wants stops here: reading to the segment's
    ///     end would check and decode every later record (up to 64 MiB) for nothing.
    static func scan(
        path: String,
        from start: Int64 = 0,
        upTo limit: Int64 = .max,
        decodeLines: Bool = true,
        markEvery: Int64 = 0,
        _ body: (StoredRecord, Int) -> Bool
    ) throws(StoreError) -> ScanResult {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw StoreError("cannot read \(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var info = stat()
        fstat(fd, &info)
        let fileBytes = min(Int64(info.st_size), limit)
        var valid: Int64 = start
        // At most 1 MiB, less for what is left of a small segment (it grows for a bigger record).
        var buffer = [UInt8](repeating: 0, count: Int(max(4096, min(1 << 20, fileBytes - start))))
        var filled = 0
        var consumed = 0
        var readOffset: Int64 = start
        var stopped = false
        var marks: [Mark] = []
        var highest: UInt64 = 0
        while true {
            // Parse every whole record in the buffer.
            var stop = false
            while filled - consumed >= StoredRecord.headerBytes {
                let (length, checksum) = buffer.withUnsafeBytes { raw -> (Int, UInt32) in
                    var reader = RecordReader(UnsafeRawBufferPointer(rebasing: raw[consumed..<consumed + 8]))
                    return (Int(reader.u32()!), reader.u32()!)
                }
                guard length > 0, length <= StoredRecord.maxPayloadBytes else {
                    stop = true
                    break
                }
                if filled - consumed < StoredRecord.headerBytes + length {
                    if buffer.count < StoredRecord.headerBytes + length { buffer += [UInt8](repeating: 0, count: length) }
                    break
                }
                let ok = buffer.withUnsafeBytes { raw -> Bool in
                    let payload = UnsafeRawBufferPointer(rebasing: raw[consumed + 8..<consumed + 8 + length])
                    guard CRC32.checksum(payload) == checksum else { return false }
                    let decoded = decodeLines ? StoredRecord.decode(payload) : StoredRecord.lineSeq(payload).map(StoredRecord.lineSeq)
                    guard let record = decoded ?? StoredRecord.decode(payload) else { return false }
                    if markEvery > 0, valid - (marks.last?.offset ?? 0) >= markEvery {
                        marks.append(Mark(offset: valid, through: highest))
                    }
                    switch record {
                    case .line(let seq, _), .lineSeq(let seq): highest = max(highest, seq)
                    case .event(let position, _): highest = max(highest, position)
                    case .position: break
                    }
                    stopped = !body(record, length + 64)
                    return true
                }
                guard ok else {
                    stop = true
                    break
                }
                consumed += StoredRecord.headerBytes + length
                valid += Int64(StoredRecord.headerBytes + length)
                if stopped { break }
            }
            if stopped { break }
            if stop || readOffset >= fileBytes { break }
            // Keep the unparsed rest, then read more after it.
            if consumed > 0 {
                buffer.withUnsafeMutableBytes { raw in
                    let rest = filled - consumed
                    if rest > 0 { memmove(raw.baseAddress!, raw.baseAddress! + consumed, rest) }
                }
                filled -= consumed
                consumed = 0
            }
            let wanted = min(Int64(buffer.count - filled), fileBytes - readOffset)
            guard wanted > 0 else { break }
            let got = buffer.withUnsafeMutableBytes { raw in pread(fd, raw.baseAddress! + filled, Int(wanted), off_t(readOffset)) }
            if got <= 0 { break }
            filled += got
            readOffset += Int64(got)
        }
        return ScanResult(fileBytes: fileBytes, validBytes: valid, marks: marks, lastPosition: highest)
    }
}

/// Decoded chunks of the durable history, shared by every reader: a
/// hundred subscribers catching up over the same positions decode each
/// record once between them, not once each. Least recently used first out.
struct ChunkCache {
    let capacity: Int
    private var chunks: [UInt64: [HubEntry]] = [:]
    private var order: [UInt64] = []  // least recently used first; a few entries

    init(capacity: Int) {
        self.capacity = capacity
    }

    var count: Int { chunks.count }

    mutating func entries(_ index: UInt64) -> [HubEntry]? {
        guard let entries = chunks[index] else { return nil }
        touch(index)
        return entries
    }

    mutating func insert(_ index: UInt64, _ entries: [HubEntry]) {
        guard capacity > 0 else { return }
        chunks[index] = entries
        touch(index)
        while order.count > capacity { chunks[order.removeFirst()] = nil }
    }

    /// Drops the chunks before `index` (their oldest lines were deleted).
    mutating func dropBelow(_ index: UInt64) {
        order.removeAll { $0 < index }
        chunks = chunks.filter { $0.key >= index }
    }

    private mutating func touch(_ index: UInt64) {
        order.removeAll { $0 == index }
        order.append(index)
    }
}

/// The state directory or the history cannot be used.
public struct StoreError: Error, Sendable, CustomStringConvertible {
    public var description: String

    public init(_ description: String) {
        self.description = description
    }
}
