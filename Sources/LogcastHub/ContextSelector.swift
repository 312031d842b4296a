import DequeModule
import LogcastProtocol

/// How many lines around each matching line a subscriber wants: grep's
/// `-B` (``before``) and `-A` (``after``), the filter keys
/// `before-context`, `after-context` and `context` (both).
public struct ContextWindow: Sendable, Equatable {
    public var before = 0
    public var after = 0

    /// The most lines either side, as in the protocol.
    public static let maxLines = 100

    public init(before: Int = 0, after: Int = 0) {
        self.before = before
        self.after = after
    }

    /// No context: a filter without one selects lines one at a time.
    public var isEmpty: Bool { before == 0 && after == 0 }
}

/// `grep -C`, live: which lines a subscriber with a ``ContextWindow`` gets,
/// given, for each line that passes its selection keys, whether it matches.
///
/// Context is taken from the same source and file (lines of other sources
/// in between are not context): each file is a *track* with its own
/// numbering of the lines seen, the lines seen since the last one sent (at
/// most `before` of them kept), and how many lines after the last match are
/// still to be sent. So:
/// - a matching line is sent after the unsent lines kept before it, as
///   context (``SubscriberQueue/Item/context(_:)``), and the next `after`
///   lines of its file follow as context as they arrive;
/// - a line is sent once, however many matches it is context for, and a
///   context line that matches is sent as a match;
/// - a ``SubscriberQueue/Item/separator`` comes before a group that does not
///   follow on from the last line sent of its file (grep's `--`); never
///   before a file's first group.
///
/// A source event of a file (rotated, truncated, missing, ...) ends its
/// track: the next file is a new one, and nothing is context across it. A
/// gap (lines lost) ends every track.
///
/// A plain value type: the hub runs one over a history scan to start a
/// stream, and hands it to the subscriber's writer
/// (``SubscriberQueue/Item/adopt(_:)``), which goes on with the live lines.
public struct ContextSelector: Sendable {
    public let window: ContextWindow

    struct Key: Hashable, Sendable {
        var source: String
        var path: String?
    }

    struct Track: Sendable {
        /// Lines of this file seen (each line's number is the count after it).
        var seen: UInt64 = 0
        /// The number of the last line sent (0: none yet).
        var lastSent: UInt64 = 0
        /// Lines still to send after the last match.
        var afterLeft = 0
        /// Unsent lines since the last one sent, the newest `before` of them.
        var kept: Deque<(number: UInt64, entry: HubEntry)> = []
    }

    /// The tracks, and where each file's is: consecutive lines of one file
    /// (the common case) find theirs without hashing, by ``lastKey``.
    var tracks: [Track] = []
    var index: [Key: Int] = [:]
    var lastKey: Key?
    var lastTrack = 0

    /// Tracks with nothing kept and nothing owed are dropped once there are
    /// this many (a glob that has seen thousands of files).
    static let maxIdleTracks = 1024

    public init(window: ContextWindow) {
        self.window = window
    }

    /// Takes one line that passed the selection keys. With `emit`, appends
    /// what is to be sent now; without, only records it (a line the client
    /// already has, or one from before a backlog's first match).
    mutating func line(_ entry: HubEntry, source: String, path: String?, matches: Bool, emit: Bool, into out: inout [SubscriberQueue.Item]) {
        line(entry, track: track(source: source, path: path), matches: matches, emit: emit, into: &out)
    }

    /// ``line(_:source:path:matches:emit:into:)`` for a line of track `t`.
    private mutating func line(_ entry: HubEntry, track t: Int, matches: Bool, emit: Bool, into out: inout [SubscriberQueue.Item]) {
        tracks[t].seen += 1
        let number = tracks[t].seen
        if matches {
            if emit {
                let first = tracks[t].kept.first?.number ?? number
                if tracks[t].lastSent > 0, first != tracks[t].lastSent + 1 { out.append(.separator) }
                for kept in tracks[t].kept { out.append(.context(kept.entry)) }
                out.append(.selected(entry))
            }
            if !tracks[t].kept.isEmpty { tracks[t].kept.removeAll(keepingCapacity: true) }
            tracks[t].lastSent = number
            tracks[t].afterLeft = window.after
        } else if tracks[t].afterLeft > 0 {
            // Follows on from the last line sent, so no separator.
            tracks[t].afterLeft -= 1
            if emit { out.append(.context(entry)) }
            tracks[t].lastSent = number
        } else if window.before > 0 {
            if tracks[t].kept.count == window.before { tracks[t].kept.removeFirst() }
            tracks[t].kept.append((number, entry))
        }
    }

    /// The index of the file's track, made when it has none.
    private mutating func track(source: String, path: String?) -> Int {
        if let lastKey, lastKey.source == source, lastKey.path == path { return lastTrack }
        let key = Key(source: source, path: path)
        let found: Int
        if let existing = index[key] {
            found = existing
        } else {
            if tracks.count >= Self.maxIdleTracks { dropIdleTracks() }
            found = tracks.count
            tracks.append(Track())
            index[key] = found
        }
        lastKey = key
        lastTrack = found
        return found
    }

    /// A source event: the file it is about (every file of the source when
    /// it names none) starts over.
    mutating func event(_ event: SourceEvent) {
        for (key, t) in index where key.source == event.source && (event.path == nil || key.path == event.path) {
            tracks[t] = Track()
        }
    }

    /// Lines were lost (a gap): nothing before it is context for what follows.
    mutating func reset() {
        tracks = []
        index = [:]
        lastKey = nil
    }

    private mutating func dropIdleTracks() {
        let kept = index.filter { !tracks[$0.value].kept.isEmpty || tracks[$0.value].afterLeft > 0 }
        var renumbered: [Key: Int] = [:]
        var newTracks: [Track] = []
        for (key, t) in kept {
            renumbered[key] = newTracks.count
            newTracks.append(tracks[t])
        }
        tracks = newTracks
        index = renumbered
        lastKey = nil
    }

    /// Applies `matcher` to items in stream order: lines
    /// (``SubscriberQueue/Item/entry(_:)``, and the lines of a
    /// ``SubscriberQueue/Item/run(_:bytes:chunk:)``, matched only where the
    /// chunk's text index has the filter's key) become what is sent of them,
    /// ``SubscriberQueue/Item/prime(_:matched:)`` items are recorded,
    /// ``SubscriberQueue/Item/adopt(_:)`` replaces this selector; everything
    /// else passes as it is. After `gap`, call ``reset()`` first.
    public mutating func select(_ items: [SubscriberQueue.Item], matcher: LineMatcher) -> [SubscriberQueue.Item] {
        var out: [SubscriberQueue.Item] = []
        out.reserveCapacity(items.count)
        func take(_ entry: HubEntry, mayMatch: Bool = true) {
            // A line's source and path are read from the entry (no copy of its record per line).
            if entry.isLine {
                guard matcher.admitsEverything || matcher.admits(entry) else { return }
                line(entry, source: entry.source, path: entry.path, matches: mayMatch && matcher.matches(entry), emit: true, into: &out)
                return
            }
            guard case .event(let event) = entry.payload, matcher.matches(event) else { return }
            self.event(event)
            out.append(.entry(entry))
        }
        for item in items {
            switch item {
            case .entry(let entry):
                take(entry)
            case .run(let lines, _, let chunk):
                guard let key = matcher.textKey, let chunk, let candidates = chunk.candidates(for: key, in: lines.indices) else {
                    for entry in lines { take(entry) }
                    continue
                }
                if matcher.admitsEverything, let file = chunk.file {
                    selectLines(of: file, lines, candidates: candidates, matcher: matcher, into: &out)
                    continue
                }
                // Only the lines the chunk's text index has for the filter's key can match;
                // every line still goes through its file's track, as context or not.
                var next = candidates.startIndex
                for index in lines.indices {
                    let mayMatch = next < candidates.endIndex && Int(candidates[next]) == index
                    if mayMatch { next += 1 }
                    take(lines[index], mayMatch: mayMatch)
                }
            case .prime(let entry, let matched):
                guard entry.isLine, matcher.admitsEverything || matcher.admits(entry) else { continue }
                line(entry, source: entry.source, path: entry.path, matches: matched, emit: false, into: &out)
            case .adopt(let selector):
                self = selector
            case .control, .selected, .context, .separator:
                out.append(item)
            }
        }
        return out
    }

    /// The lines of a run from one file, every one of them admitted, with
    /// the indices of those that hold the filter's text key (the others
    /// cannot match). A line is taken one by one only where it may be sent:
    /// context still owed after a match, or within ``ContextWindow/before``
    /// lines of the next candidate or of the run's end (the next run may
    /// start with a match). A stretch farther from both is only counted,
    /// and what the file's track kept before it is let go at once: the
    /// `before` lines taken after the stretch push all of it out before a
    /// match or the run's end could use it.
    private mutating func selectLines(
        of file: HubChunk.File,
        _ lines: ArraySlice<HubEntry>,
        candidates: ArraySlice<Int32>,
        matcher: LineMatcher,
        into out: inout [SubscriberQueue.Item]
    ) {
        let t = track(source: file.source, path: file.path)
        var next = candidates.startIndex
        var index = lines.startIndex
        while index < lines.endIndex {
            let candidate = next < candidates.endIndex ? Int(candidates[next]) : lines.endIndex
            if tracks[t].afterLeft == 0, candidate - window.before > index {
                let skipped = candidate - window.before - index
                tracks[t].seen += UInt64(skipped)
                tracks[t].kept.removeAll(keepingCapacity: true)
                index += skipped
                continue
            }
            let mayMatch = index == candidate
            if mayMatch { next += 1 }
            line(lines[index], track: t, matches: mayMatch && matcher.matches(lines[index]), emit: true, into: &out)
            index += 1
        }
    }
}
