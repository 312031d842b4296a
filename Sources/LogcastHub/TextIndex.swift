import Synchronization

/// A shared prefilter for text filters: which lines of a published chunk
/// contain which subscriber's text, found in one pass over the chunk for
/// every subscriber at once.
///
/// Every subscriber whose filter has an indexable `grep`, or a `regex` with
/// text every match must hold (``LineMatcher/textKey``),
/// contributes that text, ASCII letters folded to lower case, to the hub's
/// ``TextDictionary``. The first writer that reads a chunk for such a key
/// scans the chunk's messages once with the dictionary's automaton
/// (Aho–Corasick over the bytes that occur in the keys, one table step per
/// byte: linear in the chunk, whatever the keys) and keeps, per key, the
/// lines that contain it (``TextPostings``). Every writer then visits only
/// its key's lines instead of every line, and runs its whole filter on
/// them: the index only ever leaves out lines that cannot match.
///
/// Why folding keeps that promise: a case-sensitive key's occurrences are
/// occurrences of its folded form too; a caseless (smart-case) key is only
/// indexed when it is ASCII without `k` or `s`, because PCRE2's caseless
/// matching lets the Kelvin sign (U+212A) stand for `k` and the long s
/// (U+017F) for `s`, and no other character outside ASCII for an ASCII
/// letter (``TextIndexTests`` checks this against PCRE2 for every code point).
public final class TextDictionary: Sendable {
    /// The folded keys, by id.
    let keys: [[UInt8]]
    private let ids: [[UInt8]: Int]
    /// The byte classes, by the byte as it is in a message: the bytes that
    /// occur in keys get one each (an ASCII upper-case letter that of its
    /// lower case), every other byte class 0.
    private let classOfByte: [UInt8]
    private let classCount: Int
    /// The automaton's moves, at `state * classCount + class`: the target
    /// state's own offset (`target * classCount`), with ``hasOutput`` set
    /// when keys end there. A step is then one lookup and one test.
    private let moves: [Int32]
    /// The flag of a move whose target state ends keys.
    private static let hasOutput: Int32 = 1 << 30
    /// The keys that end at each state (its own and those of its suffixes),
    /// as ranges of ``outputs``: state s has `outputs[outputStart[s]..<outputStart[s + 1]]`.
    private let outputStart: [Int32]
    private let outputs: [Int32]

    /// The longest key indexed, in bytes (a longer `grep` is matched line by line).
    public static let maxKeyBytes = 256
    /// The largest move table built (states x classes); keys past it are left out.
    public static let maxMoves = 1 << 20

    /// Folds ASCII upper-case letters to lower case.
    @inline(__always)
    static func fold(_ byte: UInt8) -> UInt8 {
        byte &- 65 < 26 ? byte | 0x20 : byte
    }

    /// A dictionary of `keys` (already folded; duplicates are kept once).
    /// Keys beyond ``maxMoves`` are left out (their subscribers match line
    /// by line); nil when no key is left.
    public init?(keys: some Sequence<[UInt8]>) {
        var unique: [[UInt8]] = []
        var seen = Set<[UInt8]>()
        for key in keys where !key.isEmpty && key.count <= Self.maxKeyBytes && seen.insert(key).inserted { unique.append(key) }
        // Shorter keys first: when the table must be cut, it keeps the most keys.
        unique.sort { $0.count != $1.count ? $0.count < $1.count : $0.lexicographicallyPrecedes($1) }

        var classOf = [UInt8](repeating: 0, count: 256)
        var classCount = 1
        var kept: [[UInt8]] = []
        var states = 1
        for key in unique {
            var newClasses = 0
            var marked = Set<UInt8>()
            for byte in key where classOf[Int(byte)] == 0 && marked.insert(byte).inserted { newClasses += 1 }
            // An upper bound of the states (every byte a new one) and classes this key adds.
            guard (states + key.count) * (classCount + newClasses) <= Self.maxMoves, classCount + newClasses <= 255 else { continue }
            for byte in marked {
                classOf[Int(byte)] = UInt8(classCount)
                classCount += 1
            }
            states += key.count
            kept.append(key)
        }
        guard !kept.isEmpty else { return nil }

        // The trie, with moves to be completed into the automaton.
        var moves = [Int32](repeating: -1, count: classCount)
        var ends: [[Int32]] = [[]]
        for (id, key) in kept.enumerated() {
            var state = 0
            for byte in key {
                let slot = state * classCount + Int(classOf[Int(byte)])
                if moves[slot] < 0 {
                    moves[slot] = Int32(ends.count)
                    ends.append([])
                    moves += [Int32](repeating: -1, count: classCount)
                }
                state = Int(moves[slot])
            }
            ends[state].append(Int32(id))
        }
        // Breadth first: each state's missing moves follow its longest proper suffix's.
        let count = ends.count
        var fail = [Int](repeating: 0, count: count)
        var queue: [Int] = []
        for symbol in 0..<classCount {
            if moves[symbol] < 0 {
                moves[symbol] = 0
            } else {
                queue.append(Int(moves[symbol]))
            }
        }
        var head = 0
        while head < queue.count {
            let state = queue[head]
            head += 1
            ends[state] += ends[fail[state]]
            for symbol in 0..<classCount {
                let slot = state * classCount + symbol
                let target = moves[slot]
                let viaSuffix = moves[fail[state] * classCount + symbol]
                if target < 0 {
                    moves[slot] = viaSuffix
                } else {
                    fail[Int(target)] = Int(viaSuffix)
                    queue.append(Int(target))
                }
            }
        }
        var outputStart: [Int32] = [0]
        var outputs: [Int32] = []
        for list in ends {
            outputs += list
            outputStart.append(Int32(outputs.count))
        }
        // Targets as offsets, flagged when keys end there (maxMoves keeps them under the flag).
        for slot in moves.indices {
            let target = Int(moves[slot])
            moves[slot] = Int32(target * classCount) | (ends[target].isEmpty ? 0 : Self.hasOutput)
        }
        self.keys = kept
        self.ids = Dictionary(uniqueKeysWithValues: kept.enumerated().map { ($1, $0) })
        self.classOfByte = (0...255).map { classOf[Int(Self.fold(UInt8($0)))] }
        self.classCount = classCount
        self.moves = moves
        self.outputStart = outputStart
        self.outputs = outputs
    }

    /// The id of a folded key, if this dictionary indexes it.
    public func id(of key: [UInt8]) -> Int? { ids[key] }

    /// For each key, the indices of `lines` whose message contains it
    /// (ASCII case folded), in rising order.
    func scan(_ lines: [HubEntry]) -> TextPostings {
        var found: [(key: Int32, line: Int32)] = []
        var lastLine = [Int32](repeating: -1, count: keys.count)
        let classCount = classCount
        moves.withUnsafeBufferPointer { moves in
            classOfByte.withUnsafeBufferPointer { classOfByte in
                for index in lines.indices {
                    lines[index].withMessageBytes { message in
                        var offset = 0
                        for byte in message {
                            let move = moves[offset &+ Int(classOfByte[Int(byte)])]
                            offset = Int(move & ~Self.hasOutput)
                            guard move & Self.hasOutput != 0 else { continue }
                            let state = offset / classCount
                            for key in outputs[Int(outputStart[state])..<Int(outputStart[state + 1])] where lastLine[Int(key)] != Int32(index) {
                                lastLine[Int(key)] = Int32(index)
                                found.append((key, Int32(index)))
                            }
                        }
                    }
                }
            }
        }
        // Grouped by key (a counting sort keeps each key's lines in order).
        var offsets = [Int32](repeating: 0, count: keys.count + 1)
        for hit in found { offsets[Int(hit.key) + 1] += 1 }
        for key in 0..<keys.count { offsets[key + 1] += offsets[key] }
        var next = offsets
        var postings = [Int32](repeating: 0, count: found.count)
        for hit in found {
            postings[Int(next[Int(hit.key)])] = hit.line
            next[Int(hit.key)] += 1
        }
        return TextPostings(offsets: offsets, lines: postings)
    }
}

/// Which lines of a chunk contain which key of a ``TextDictionary``.
struct TextPostings: Sendable {
    /// Key `k`'s lines are `lines[offsets[k]..<offsets[k + 1]]`.
    var offsets: [Int32]
    var lines: [Int32]

    func lines(of key: Int) -> ArraySlice<Int32> {
        lines[Int(offsets[key])..<Int(offsets[key + 1])]
    }
}

/// The lines of one publish, shared by every subscriber queue that holds
/// them (``SubscriberQueue/Item/run(_:bytes:chunk:)``), with the text index
/// the first reader that needs it builds, once.
public final class HubChunk: Sendable {
    public let lines: [HubEntry]
    /// The hub's keys when the chunk was published (nil: none to index).
    let dictionary: TextDictionary?
    private let postings = Mutex<TextPostings?>(nil)
    /// What all the chunk's lines share (``file``, ``source``), once found
    /// (nil: not looked for yet).
    private let sharedOrigin = Mutex<Origin?>(nil)

    /// A source and a path (nil: a source without files, the journal).
    struct File: Sendable {
        let source: String
        let path: String?
    }

    init(lines: [HubEntry], dictionary: TextDictionary?) {
        self.lines = lines
        self.dictionary = dictionary
    }

    /// The source and the file every entry of the chunk is a line of.
    private struct Origin: Sendable {
        var source: String?
        var file: File?
    }

    /// The file every line of the chunk comes from, nil when they come
    /// from more than one (or it has none): a file source publishes one
    /// file's lines at a time, a gateway many hosts' lines. Found the first
    /// time a context selector or a filter asks, once for all of them.
    var file: File? { origin.file }

    /// The source every entry of the chunk is a line of, nil when they
    /// come from more than one (or one is an event): a source publishes its
    /// own lines, a durable read selected by source returns one source's.
    /// Found with ``file``, in the same pass (``LineMatcher/admits(chunk:)``).
    var source: String? { origin.source }

    private var origin: Origin {
        sharedOrigin.withLock { found in
            if let found { return found }
            var origin = Origin()
            if let first = lines.first, first.isLine {
                var samePath = true
                origin.source = first.source
                for entry in lines.dropFirst() {
                    guard entry.isLine, entry.source == first.source else {
                        origin.source = nil
                        break
                    }
                    if samePath, entry.path != first.path { samePath = false }
                }
                if let source = origin.source, samePath { origin.file = File(source: source, path: first.path) }
            }
            found = origin
            return origin
        }
    }

    /// The indices (into ``lines``) within `range` of the lines whose
    /// message contains `key` (folded), rising; nil when this chunk has no
    /// index for it.
    func candidates(for key: [UInt8], in range: Range<Int>) -> ArraySlice<Int32>? {
        guard let dictionary, let id = dictionary.id(of: key) else { return nil }
        let all = postings.withLock { postings in
            if postings == nil { postings = dictionary.scan(lines) }
            return postings!.lines(of: id)
        }
        // A run may be part of the chunk: its candidates are one stretch of them.
        func firstIndex(notBelow bound: Int) -> Int {
            var low = all.startIndex
            var high = all.endIndex
            while low < high {
                let middle = (low + high) / 2
                if Int(all[middle]) < bound { low = middle + 1 } else { high = middle }
            }
            return low
        }
        return all[firstIndex(notBelow: range.lowerBound)..<firstIndex(notBelow: range.upperBound)]
    }
}
