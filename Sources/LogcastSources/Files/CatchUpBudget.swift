/// How much of what was written while logcast was down a file source reads
/// at start (`--max-catch-up-bytes`): the newest `budget` bytes of it, so
/// that a long downtime costs a bounded start, not hours of reading.
///
/// What is left to read is at most two ranges, oldest first: the rest of a
/// generation rotated away while down (`rotated`), and the file now at the
/// path (`current`). Over budget, the oldest bytes are dropped first: the
/// rotated rest, then the start of the current file. The cut points are
/// byte offsets; the reader moves each to the start of the next line
/// (``lineStart(after:in:)``) so no line is cut in two.
public struct CatchUpBudget: Sendable, Equatable {
    /// Where reading starts in each range; nil skips the rotated rest entirely.
    public var rotatedFrom: Int64?
    public var currentFrom: Int64?

    /// The cut points for `budget` bytes (`budget` ≥ 0).
    public init(rotated: Range<Int64>?, current: Range<Int64>?, budget: Int64) {
        let rotatedBytes = rotated.map { $0.upperBound - $0.lowerBound } ?? 0
        let currentBytes = current.map { $0.upperBound - $0.lowerBound } ?? 0
        guard rotatedBytes + currentBytes > budget else {
            rotatedFrom = rotated?.lowerBound
            currentFrom = current?.lowerBound
            return
        }
        let keptOfCurrent = min(currentBytes, budget)
        currentFrom = current.map { $0.upperBound - keptOfCurrent }
        let left = budget - keptOfCurrent
        rotatedFrom = left > 0 ? rotated.map { $0.upperBound - left } : nil
    }

    /// Whether anything is skipped.
    public func skips(rotated: Range<Int64>?, current: Range<Int64>?) -> Bool {
        rotatedFrom != rotated?.lowerBound || currentFrom != current?.lowerBound
    }

    /// The first offset at or after `offset` where a line begins in `bytes`
    /// (the file's bytes from `base`): `offset` itself when the byte before
    /// it is a newline, else the byte after the next newline, else nil (no
    /// line begins before the end of `bytes`).
    public static func lineStart(after offset: Int64, in bytes: some Collection<UInt8>, base: Int64) -> Int64? {
        guard offset > base else { return offset }
        var position = base
        for byte in bytes {
            position += 1
            if position >= offset, byte == UInt8(ascii: "\n") { return position }
        }
        return nil
    }
}
