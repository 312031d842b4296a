import LogcastProtocol

/// How far a source has read: saved with the lines it produced, so that
/// after a restart the source continues where its last stored line ended.
public enum SourcePosition: Sendable, Equatable {
    case file(FilePosition)
    /// The cursor of the last journal entry published.
    case journal(cursor: String)
    /// A file of a glob source (each member has its own).
    case member(FilePosition)

    /// The name a position is kept under: the source's, and for a glob
    /// member the source's and the member's path (``memberKeyPrefix(_:)``).
    public static func key(source: String, _ position: SourcePosition) -> String {
        if case .member(let file) = position { return memberKeyPrefix(source) + file.path }
        return source
    }

    /// What the keys of a glob source's member positions begin with.
    public static func memberKeyPrefix(_ source: String) -> String { source + "\u{0}" }
}

/// A place in one file, and what identifies the file: device and inode
/// (which are reused once a file is deleted), and a fingerprint of its
/// first bytes (which are not).
public struct FilePosition: Sendable, Equatable {
    public var path: String
    public var device: UInt64
    public var inode: UInt64
    /// Bytes of the file read and published (a partial last line excluded).
    public var offset: Int64
    /// A hash of the file's first ``fingerprintLength`` bytes.
    public var fingerprint: UInt64
    public var fingerprintLength: Int

    public init(path: String, device: UInt64, inode: UInt64, offset: Int64, fingerprint: UInt64, fingerprintLength: Int) {
        self.path = path
        self.device = device
        self.inode = inode
        self.offset = offset
        self.fingerprint = fingerprint
        self.fingerprintLength = fingerprintLength
    }
}

/// Where the hub's lines are kept beyond memory (the state directory's
/// segment log): every line, in `seq` order, with the source positions it
/// reaches, and reads of lines the in-memory history no longer holds.
public protocol DurableHistory: Sendable {
    /// Appends lines just stamped, and the position of `source` after them.
    /// Called by publishers one at a time, in `seq` order, before the lines
    /// are offered to subscribers; never throws (a write that fails is the
    /// store's to report, and the stream goes on from memory).
    func append(_ entries: [HubEntry], source: String?, position: SourcePosition?)

    /// Stored lines with `seq` above `after` and below `before`, oldest
    /// first, with the source events among them, at most `limit` entries
    /// (the first ones).
    func lines(after: UInt64, before: UInt64, limit: Int) -> [HubEntry]

    /// The first part of ``lines(after:before:limit:)``: the same entries
    /// from the start, perhaps fewer (at least one line when any is
    /// stored in the range), where the store can as a stretch of an array it
    /// already holds, so that many readers of the same positions
    /// (subscribers catching up after a burst) share one array, and the
    /// hub one text index of it, instead of each copying its entries.
    func part(after: UInt64, before: UInt64, limit: Int) -> DurablePart

    /// Stored lines stamped at or after `since` with `seq` below `before`,
    /// oldest first, with the source events after the first of them, at
    /// most `limit` entries (the first ones). Lines are found by
    /// the order they were stored in, which follows their stamps for files
    /// and nearly so for journals.
    func lines(since: Timestamp, before: UInt64, limit: Int) -> [HubEntry]

    /// The stamp of the oldest line stored, if any.
    var oldestLineTime: Timestamp? { get }

    /// Like ``lines(after:before:limit:)``, for a reader whose filter
    /// selects at most one host and one source (nil: any): a store that can
    /// select them cheaply (the cluster stream, by subject) returns only
    /// theirs, as a ``SelectedRead``, and one whose numbering skips (the
    /// stream's) answers so for every read; others return nil and are read
    /// whole, a missing position being a hole.
    func lines(after: UInt64, before: UInt64, limit: Int, host: String?, source: String?) -> SelectedRead?

    /// Like ``lines(since:before:limit:)``, selecting as above.
    func lines(since: Timestamp, before: UInt64, limit: Int, host: String?, source: String?) -> SelectedRead?
}

/// Lines of one host and source read from a store that selects them: the
/// positions between them are other lines, not holes.
public struct SelectedRead: Sendable {
    public var entries: [HubEntry]
    /// The oldest position the store still holds (older ones are gone: an
    /// `evicted` gap for a reader that asked for them).
    public var firstKept: UInt64
    /// Whether the read got to its end (or its limit); false when its time ran out.
    public var complete: Bool

    public init(entries: [HubEntry], firstKept: UInt64, complete: Bool) {
        self.entries = entries
        self.firstKept = firstKept
        self.complete = complete
    }
}

/// The first part of a read from a ``DurableHistory``: `array[range]`.
public struct DurablePart: Sendable {
    /// The array the part is a stretch of.
    public var array: [HubEntry]
    public var range: Range<Int>
    /// Whether `array` is the store's own, handed to every reader of its
    /// positions (a cached chunk): worth indexing once for all of them.
    public var shared: Bool

    public init(array: [HubEntry], range: Range<Int>, shared: Bool) {
        self.array = array
        self.range = range
        self.shared = shared
    }

    /// A read of its own (nothing shared).
    public init(_ entries: [HubEntry]) {
        self.init(array: entries, range: entries.indices, shared: false)
    }

    public var entries: ArraySlice<HubEntry> { array[range] }
}

extension DurableHistory {
    public func part(after: UInt64, before: UInt64, limit: Int) -> DurablePart {
        DurablePart(lines(after: after, before: before, limit: limit))
    }

    public func lines(after: UInt64, before: UInt64, limit: Int, host: String?, source: String?) -> SelectedRead? { nil }
    public func lines(since: Timestamp, before: UInt64, limit: Int, host: String?, source: String?) -> SelectedRead? { nil }
}

/// A source's own record of its past (the journal), for time-range reads
/// that reach back before the hub's history: `since=-1d` on a journal
/// source gives the day's entries even when logcast kept fewer.
///
/// Lines read from it have no `seq`: they are not part of the stream, only
/// shown before it.
public protocol SourceArchive: Sendable {
    /// The source whose past this is.
    var source: String { get }

    /// The source's lines stamped at or after `since`, before `before` and
    /// not after `until` that pass `matching`, oldest first, at most
    /// `limit`. Reading stops at `deadline`; `complete` says whether it got
    /// to the end of the range.
    func lines(
        since: Timestamp,
        until: Timestamp?,
        before: Timestamp,
        limit: Int,
        matching: (LogRecord) -> Bool,
        deadline: ContinuousClock.Instant
    ) -> (lines: [LogRecord], complete: Bool)
}
