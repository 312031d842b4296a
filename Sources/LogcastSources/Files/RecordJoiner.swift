import LogcastHub
import LogcastProtocol

/// How a file source's lines are joined into records (`--multiline`).
public struct MultilineRule: Sendable {
    public enum Start: Sendable {
        /// A line that matches the pattern begins a record; others continue it.
        case pattern(Pattern)
        /// Continuation lines are indented, or the usual follow-ups of Java,
        /// Python and Go traces (see ``RecordJoiner/continuesIndented(_:in:)``).
        case indented
    }

    public var start: Start
    /// A record is cut after this many lines (the rest begins a record marked `continued`).
    public var maxLines = 500
    /// ... or once it holds this many bytes of text.
    public var maxBytes = 64 * 1024

    public init(start: Start) {
        self.start = start
    }

    /// The rule a `--multiline SOURCE=START` value names: `indented`, or a
    /// PCRE2 pattern (`none` means no rule: nil, not an error).
    /// - Throws: the pattern's error, for a message naming the flag.
    public static func parse(_ text: String) throws(PatternError) -> MultilineRule? {
        switch text {
        case "none": return nil
        case "indented": return MultilineRule(start: .indented)
        default: return MultilineRule(start: .pattern(try Pattern(text, kind: .regularExpression, caseSensitive: true)))
        }
    }
}

/// One record being joined: its lines, and what they cost.
public struct JoinedRecord: Sendable, Equatable {
    /// The lines, joined with `\n`.
    public var message: String
    public var lines: Int
    /// The record continues one that was cut at the line or byte bound.
    public var continued: Bool
    /// When its first line was read.
    public var timestamp: Timestamp
}

/// Joins a file's lines into multi-line records (a stack trace is one
/// record), by a ``MultilineRule``.
///
/// A plain value type fed line by line, in file order:
/// - a start line ends the pending record (emitted) and begins the next;
/// - a continuation line is appended to the pending record; one that comes
///   with no record pending (the file's first line) begins one;
/// - at ``MultilineRule/maxLines`` lines or ``MultilineRule/maxBytes``
///   bytes the record is emitted, and the next line begins a record marked
///   ``JoinedRecord/continued``;
/// - ``flush(emit:)`` emits what is pending: after a quiet time without a
///   continuation, and before the file is left (rotation, truncation,
///   deletion), so nothing is lost or merged across files.
///
/// ``pendingFileBytes`` is what the file holds of the pending record, so a
/// source's saved position never passes a record that was not published.
public struct RecordJoiner: Sendable {
    public let rule: MultilineRule
    private var lines: [String] = []
    private var textBytes = 0
    /// Bytes of the file (lines and their line ends) in the pending record.
    public private(set) var pendingFileBytes = 0
    private var continued = false
    private var startedAt = Timestamp(microseconds: 0)
    /// The next line continues a record cut at a bound.
    private var cut = false
    /// In the pending record (``MultilineRule/Start/indented``): a Python
    /// traceback whose exception line has not come yet, a Go goroutine dump.
    private var inTraceback = false
    private var inGoroutine = false

    public init(rule: MultilineRule) {
        self.rule = rule
    }

    public var hasPending: Bool { !lines.isEmpty }

    /// Takes one line of the file (`fileBytes`: its bytes in the file, with
    /// the line end), read at `timestamp`.
    public mutating func add(_ line: String, fileBytes: Int, at timestamp: Timestamp, emit: (JoinedRecord) -> Void) {
        let starts: Bool
        if cut {
            starts = true
        } else if lines.isEmpty {
            starts = true
        } else {
            starts = !continues(line)
        }
        if starts {
            let wasCut = cut
            flush(emit: emit)
            continued = wasCut
            cut = false
            startedAt = timestamp
        }
        lines.append(line)
        textBytes += line.utf8.count + (lines.count > 1 ? 1 : 0)
        pendingFileBytes += fileBytes
        note(line)
        if lines.count >= rule.maxLines || textBytes >= rule.maxBytes {
            flush(emit: emit)
            cut = true
        }
    }

    /// Emits the pending record, if any.
    public mutating func flush(emit: (JoinedRecord) -> Void) {
        guard !lines.isEmpty else { return }
        emit(JoinedRecord(message: lines.joined(separator: "\n"), lines: lines.count, continued: continued, timestamp: startedAt))
        lines.removeAll(keepingCapacity: true)
        textBytes = 0
        pendingFileBytes = 0
        continued = false
        inTraceback = false
        inGoroutine = false
    }

    /// Forgets the pending record and any cut (the file was truncated, or
    /// is left): the next line begins a new record.
    public mutating func endOfFile(emit: (JoinedRecord) -> Void) {
        flush(emit: emit)
        cut = false
    }

    private func continues(_ line: String) -> Bool {
        switch rule.start {
        case .pattern(let pattern): !pattern.matches(line)
        case .indented: Self.continuesIndented(line, in: (inTraceback, inGoroutine))
        }
    }

    private mutating func note(_ line: String) {
        guard case .indented = rule.start else { return }
        if line.hasPrefix("Traceback (most recent call last):") {
            inTraceback = true
        } else if inTraceback, Self.isPythonExceptionLine(line) {
            inTraceback = false  // the exception line closes the traceback
        }
        if line.hasPrefix("goroutine ") { inGoroutine = true }
    }

    /// The `indented` preset: whether `line` continues the record. It does
    /// when it
    /// - is empty, or begins with a space or a tab (Java's `\tat ...`,
    ///   Python's `  File ...`, Go's `\t/src/x.go:8`);
    /// - begins with a follow-up: `Caused by:`, `Suppressed:`, `Traceback
    ///   (most recent call last):`, `During handling of the above
    ///   exception`, `The above exception was the direct cause`, `goroutine `;
    /// - is a Java exception header under a log line
    ///   (`java.lang.IllegalStateException: boom`, see ``isJavaExceptionLine(_:)``);
    /// - closes a Python traceback: the first non-indented line after a
    ///   `Traceback` line that looks like an exception (`ValueError: bad`,
    ///   `mod.Error`);
    /// - in a Go goroutine dump, is a function frame (`main.main()`,
    ///   `created by main.run in goroutine 1`) or `exit status N`.
    static func continuesIndented(_ line: String, in state: (traceback: Bool, goroutine: Bool)) -> Bool {
        guard let first = line.utf8.first else { return true }
        if first == UInt8(ascii: " ") || first == UInt8(ascii: "\t") { return true }
        for prefix in followUps where line.hasPrefix(prefix) { return true }
        if state.traceback, isPythonExceptionLine(line) { return true }
        if isJavaExceptionLine(line) { return true }
        if state.goroutine {
            if line.hasPrefix("created by ") || line.hasPrefix("exit status ") { return true }
            if line.hasSuffix(")"), line.contains("("), !line.contains(" ") || line.hasPrefix("panic(") { return true }
        }
        return false
    }

    static let followUps = [
        "Caused by:", "Suppressed:", "Traceback (most recent call last):", "During handling of the above exception",
        "The above exception was the direct cause", "goroutine ",
    ]

    /// `java.lang.IllegalStateException: boom`, `com.example.Failure$Inner`:
    /// a qualified class name (lower-case packages, dots) ending in
    /// `Exception`, `Error` or `Throwable`, then `:` or the end. Logback and
    /// log4j print it on its own line under the message.
    static func isJavaExceptionLine(_ line: String) -> Bool {
        let name = line.prefix { $0 != ":" && $0 != " " }
        guard name.count < line.count ? line[name.endIndex] == ":" : true else { return false }
        let parts = name.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count >= 2, let last = parts.last, last.first?.isUppercase == true else { return false }
        guard ["Exception", "Error", "Throwable"].contains(where: { last.hasSuffix($0) }) else { return false }
        return parts.dropLast().allSatisfy { part in
            guard let head = part.first, head.isLowercase else { return false }
            return part.allSatisfy { $0.isLetter || $0.isNumber || $0 == "_" }
        } && last.allSatisfy { $0.isLetter || $0.isNumber || $0 == "_" || $0 == "$" }
    }

    /// `ValueError: bad`, `KeyError`, `requests.exceptions.HTTPError: 500`: a dotted name, then `:` or the end.
    static func isPythonExceptionLine(_ line: String) -> Bool {
        let name = line.prefix { $0 != ":" }
        guard !name.isEmpty, name.count <= 200, let head = name.first, head.isLetter || head == "_" else { return false }
        return name.allSatisfy { $0.isLetter || $0.isNumber || $0 == "_" || $0 == "." }
    }
}
