import LogcastProtocol

/// What a subscriber wants to see: the filter keys of docs/PROTOCOL.md.
///
/// All given keys must hold (AND); the values of `source`, `unit`,
/// `identifier` and `host` are alternatives (OR) within their key; every
/// `grep` must match and no `exclude` may. An empty filter passes everything.
public struct Filter: Sendable, Equatable {
    public var sources: [String] = []
    public var grep: [String] = []
    public var regex: String?
    public var exclude: [String] = []
    /// Inclusive range of syslog levels (0 = emerg ... 7 = debug).
    public var priority: ClosedRange<Int>?
    public var units: [String] = []
    public var identifiers: [String] = []
    public var hosts: [String] = []
    /// Lines stamped at or after this time (`since`).
    public var since: Timestamp?
    /// Lines stamped at or before this time (`until`).
    public var until: Timestamp?
    /// Lines around each matching one (`context`, `before-context`,
    /// `after-context`): see ``ContextSelector``. With context, `priority`
    /// chooses matches like the text keys do, and the other selection keys
    /// (source, host, unit, identifier, time) also bound the context lines.
    public var context = ContextWindow()
    /// Conditions on the line's structured fields (`field`), all of which
    /// must hold: see ``FieldCondition``. Match keys, like `grep`.
    public var fields: [FieldCondition] = []

    public init() {}

    /// The normalised form sent back in `hello` and `subscribed`, encoded.
    /// The one host and one source this filter keeps to, when it names at
    /// most one of each and at least one of them (nil: any other filter):
    /// what a store that selects by host and source can read alone.
    public var selection: (host: String?, source: String?)? {
        guard hosts.count <= 1, sources.count <= 1, !(hosts.isEmpty && sources.isEmpty) else { return nil }
        return (hosts.first, sources.first)
    }

    public var json: [UInt8] {
        var writer = JSONWriter()
        encode(into: &writer)
        return writer.bytes
    }

    /// The normalised form sent back in `hello` and `subscribed`.
    public func encode(into writer: inout JSONWriter) {
        writer.beginObject()
        if !sources.isEmpty { writer.field("source", strings: sources) }
        if !grep.isEmpty { writer.field("grep", strings: grep) }
        writer.field("regex", regex)
        if !exclude.isEmpty { writer.field("exclude", strings: exclude) }
        if let priority { writer.field("priority", Filter.priorityText(priority)) }
        if !units.isEmpty { writer.field("unit", strings: units) }
        if !identifiers.isEmpty { writer.field("identifier", strings: identifiers) }
        if !hosts.isEmpty { writer.field("host", strings: hosts) }
        if let since { writer.field("since", since.rfc3339) }
        if let until { writer.field("until", until.rfc3339) }
        if context.before > 0 { writer.field("before-context", context.before) }
        if context.after > 0 { writer.field("after-context", context.after) }
        if !fields.isEmpty { writer.field("field", strings: fields.map(\.description)) }
        writer.endObject()
    }

    /// `err` for 0...3, `err..warning` for 3...4.
    public static func priorityText(_ range: ClosedRange<Int>) -> String {
        if range.lowerBound == 0 { return Priority.names[range.upperBound] }
        return "\(Priority.names[range.lowerBound])..\(Priority.names[range.upperBound])"
    }

    /// `journalctl -u` rules: a name without a unit type suffix means `NAME.service`.
    public static func normalizeUnit(_ unit: String) -> String {
        let suffixes = [
            ".service", ".socket", ".device", ".mount", ".automount", ".swap",
            ".target", ".path", ".timer", ".slice", ".scope",
        ]
        return suffixes.contains(where: { unit.hasSuffix($0) }) ? unit : unit + ".service"
    }
}

/// A ``Filter`` compiled for matching: its patterns built once.
///
/// Safe to share between threads; ``matches(_:)`` does not allocate for
/// fixed-string filters.
public final class LineMatcher: Sendable {
    public let filter: Filter
    private let grep: [Pattern]
    private let regex: Pattern?
    private let exclude: [Pattern]
    private let fieldTests: [FieldTest]
    private let sources: Set<String>
    private let units: Set<String>
    private let identifiers: Set<String>
    private let hosts: Set<String>
    /// An empty filter: every line and event passes (writers skip matching).
    public let passesEverything: Bool
    /// No selection key (source, host, unit, identifier, priority, time):
    /// ``admits(_:)`` is true for everything.
    public let admitsEverything: Bool
    /// The only selection key is `source`: whether a line is admitted
    /// depends on its source alone, so a chunk of one source's lines is
    /// admitted or not as a whole (``admits(chunk:)``).
    private let admitsBySourceAlone: Bool
    /// The only key at all is `source`: whether a line matches depends on
    /// its source alone (``matches(chunk:)``).
    let matchesBySourceAlone: Bool
    /// The source of a filter that names one (`source` keys are most often one).
    private let onlySource: String?
    /// Whether a line matches is decided by its message (`grep`, `regex`,
    /// `exclude`) and its fields (`field`) alone: no selection key and no
    /// priority look at the record.
    private let messageAndFieldsOnly: Bool
    /// The lines around each match to send; not empty: ``priority`` is a
    /// match key, not a selection key, and a ``ContextSelector`` chooses.
    public let context: ContextWindow
    /// What the hub's shared text index looks up for this filter: the
    /// longest `grep`, or text every `regex` match holds (``RegexLiteral``),
    /// that it can index, folded (see ``TextDictionary``); nil when none
    /// can be. Only lines that contain it can match.
    public let textKey: [UInt8]?

    /// - Throws: ``FilterError`` when a pattern does not compile.
    public init(_ filter: Filter) throws(FilterError) {
        self.filter = filter
        passesEverything = filter == Filter()
        do {
            grep = try filter.grep.map { text throws(PatternError) in try Pattern(text, kind: .fixedString) }
            exclude = try filter.exclude.map { text throws(PatternError) in try Pattern(text, kind: .fixedString) }
        } catch {
            throw FilterError("bad text filter: \(error.message)", hint: "grep and exclude take plain text")
        }
        if let source = filter.regex {
            do {
                regex = try Pattern(source, kind: .regularExpression)
            } catch {
                throw FilterError(
                    "bad regex: \(error.message) at offset \(error.offset)",
                    hint: "regex takes PCRE2 syntax, e.g. regex=timeout|refused or regex=^E\\d+; escape literal ( [ { with \\"
                )
            }
        } else {
            regex = nil
        }
        var fieldTests: [FieldTest] = []
        for condition in filter.fields { fieldTests.append(try FieldTest(condition)) }
        self.fieldTests = fieldTests
        sources = Set(filter.sources)
        onlySource = sources.count == 1 ? sources.first : nil
        units = Set(filter.units)
        identifiers = Set(filter.identifiers)
        hosts = Set(filter.hosts)
        context = filter.context
        admitsEverything =
            sources.isEmpty && units.isEmpty && identifiers.isEmpty && hosts.isEmpty && (filter.priority == nil || !context.isEmpty)
            && filter.since == nil && filter.until == nil
        admitsBySourceAlone =
            !sources.isEmpty && units.isEmpty && identifiers.isEmpty && hosts.isEmpty && (filter.priority == nil || !context.isEmpty)
            && filter.since == nil && filter.until == nil
        matchesBySourceAlone =
            admitsBySourceAlone && grep.isEmpty && regex == nil && exclude.isEmpty && fieldTests.isEmpty && filter.priority == nil
            && context.isEmpty
        messageAndFieldsOnly = admitsEverything && filter.priority == nil
        var keys = zip(filter.grep, grep).compactMap { Self.indexKey($0, caseSensitive: $1.caseSensitive) }
        if let regex, let source = filter.regex, let literal = RegexLiteral.required(in: source),
            let key = Self.indexKey(literal, caseSensitive: regex.caseSensitive)
        {
            keys.append(key)
        }
        textKey = keys.max { $0.count < $1.count }
    }

    /// A `grep` text as the shared index holds it (ASCII folded), or nil
    /// when the index cannot stand for it: empty, longer than
    /// ``TextDictionary/maxKeyBytes``, or caseless with a byte outside ASCII
    /// or a `k` or `s` (PCRE2 folds the Kelvin sign and the long s to those).
    static func indexKey(_ text: String, caseSensitive: Bool) -> [UInt8]? {
        let bytes = Array(text.utf8)
        guard !bytes.isEmpty, bytes.count <= TextDictionary.maxKeyBytes else { return nil }
        if !caseSensitive {
            let unsafe: Set<UInt8> = [UInt8(ascii: "k"), UInt8(ascii: "K"), UInt8(ascii: "s"), UInt8(ascii: "S")]
            guard bytes.allSatisfy({ $0 < 0x80 && !unsafe.contains($0) }) else { return nil }
        }
        return bytes.map(TextDictionary.fold)
    }

    /// Whether a source event is for a source this filter follows.
    public func matches(_ event: SourceEvent) -> Bool {
        sources.isEmpty || sources.contains(event.source)
    }

    /// Whether lines of `source` can pass (the `source` selection).
    public func follows(source: String) -> Bool {
        sources.isEmpty || sources.contains(source)
    }

    /// Whether a line or an event of the hub passes (a line's fields, when
    /// the filter has `field` keys, parsed once per entry: ``HubEntry/fields``).
    public func matches(_ entry: HubEntry) -> Bool {
        if matchesBySourceAlone, entry.isLine { return admits(source: entry.source) }
        // The message and the fields decide: no copy of the record for every line.
        if messageAndFieldsOnly, entry.isLine {
            if !(grep.isEmpty && regex == nil && exclude.isEmpty), !entry.withMessageBytes(matchesText) { return false }
            if fieldTests.isEmpty { return true }
            let lineFields = entry.fields
            return fieldTests.allSatisfy { $0.passes(lineFields) }
        }
        switch entry.payload {
        case .line(let record): return matches(record, fields: { entry.fields })
        case .event(let event): return matches(event)
        }
    }

    /// Whether the filter looks at structured fields (`field` keys).
    public var needsFields: Bool { !fieldTests.isEmpty }

    /// Whether a history scan hands `entry` on: with context, every line
    /// that passes the selection keys (the ``ContextSelector`` chooses among
    /// them), else only those that pass.
    public func selects(_ entry: HubEntry) -> Bool {
        context.isEmpty ? matches(entry) : admits(entry)
    }

    /// Whether a line or event passes the selection keys, the ones that
    /// cost no pattern match (set lookups and comparisons). Cheap enough to
    /// run where lines are offered to a subscriber, so that a queue holds
    /// only lines that may match: a subscriber of one quiet source is not
    /// pushed behind by a burst on another.
    public func admits(_ entry: HubEntry) -> Bool {
        // By source alone: the entry's own source decides, without a copy of the record.
        if admitsBySourceAlone, entry.isLine { return admits(source: entry.source) }
        switch entry.payload {
        case .line(let record): return admits(record)
        case .event(let event): return matches(event)
        }
    }

    /// Whether every line of `chunk` passes the selection keys (true), none
    /// does (false), or that is for each line to say (nil). Decided once
    /// for the chunk when the keys look at nothing but what all its lines
    /// share: none, or only `source` for a chunk of one source's lines (a
    /// file or journal source publishes its own lines, one chunk at a
    /// time). A publisher offering a burst's chunk to a hundred subscribers
    /// of one source each so tests a set once per subscriber, not once per
    /// line and subscriber, while it holds the hub's fan-out lock.
    func admits(chunk: HubChunk) -> Bool? {
        if admitsEverything { return true }
        guard admitsBySourceAlone, let source = chunk.source else { return nil }
        return admits(source: source)
    }

    /// Whether every line of `chunk` matches (true), none does (false), or
    /// that is for each line to say (nil): decided once for a chunk of one
    /// source's lines when the filter has no key but `source`. A writer then
    /// sends the chunk's run whole, as it does for a subscriber without a
    /// filter (one copy of the run's encoded lines), instead of testing and
    /// appending line by line.
    func matches(chunk: HubChunk) -> Bool? {
        guard matchesBySourceAlone, let source = chunk.source else { return nil }
        return admits(source: source)
    }

    /// Whether `source` is one the `source` keys name (with one, a string
    /// comparison: a short name is compared in place, without hashing).
    private func admits(source: String) -> Bool {
        if let onlySource { return source == onlySource }
        return sources.contains(source)
    }

    public func admits(_ record: LogRecord) -> Bool {
        if !sources.isEmpty, !sources.contains(record.source) { return false }
        if let since = filter.since, record.timestamp < since { return false }
        if let until = filter.until, until < record.timestamp { return false }
        if context.isEmpty, !passesPriority(record) { return false }
        if !units.isEmpty {
            // Like journalctl -u: the entry's own unit, or the unit it is about.
            let own = record.unit.map(units.contains) ?? false
            guard own || (record.relatedUnit.map(units.contains) ?? false) else { return false }
        }
        if !identifiers.isEmpty {
            guard let identifier = record.identifier, identifiers.contains(identifier) else { return false }
        }
        if !hosts.isEmpty {
            guard let host = record.host, hosts.contains(host) else { return false }
        }
        return true
    }

    private func passesPriority(_ record: LogRecord) -> Bool {
        guard let range = filter.priority else { return true }
        guard let level = record.priority else { return false }
        return range.contains(level)
    }

    /// Whether a line passes every key (its fields, if a `field` key needs
    /// them, parsed here: a caller holding a ``HubEntry`` passes the entry,
    /// which parses once).
    public func matches(_ record: LogRecord) -> Bool {
        matches(record, fields: { record.structuredFields })
    }

    /// Whether a message passes the text keys: every `grep`, the `regex`, no `exclude`.
    private func matchesText(_ bytes: UnsafeRawBufferPointer) -> Bool {
        for pattern in grep where !pattern.matches(utf8: bytes) { return false }
        if let regex, !regex.matches(utf8: bytes) { return false }
        for pattern in exclude where pattern.matches(utf8: bytes) { return false }
        return true
    }

    /// Whether a line passes every key; `fields` is asked only when a
    /// `field` key is left to decide.
    public func matches(_ record: LogRecord, fields: () -> LineFields?) -> Bool {
        guard admits(record) else { return false }
        if !context.isEmpty, !passesPriority(record) { return false }
        if !(grep.isEmpty && regex == nil && exclude.isEmpty) {
            var message = record.message
            guard message.withUTF8({ matchesText(UnsafeRawBufferPointer($0)) }) else { return false }
        }
        if fieldTests.isEmpty { return true }
        let lineFields = fields()
        return fieldTests.allSatisfy { $0.passes(lineFields) }
    }
}

/// A refused filter or subscription: the `error` and `hint` of a `400` body
/// or an `error` event.
public struct FilterError: Error, Sendable, Equatable, CustomStringConvertible {
    public var error: String
    public var hint: String

    public init(_ error: String, hint: String) {
        self.error = error
        self.hint = hint
    }

    public var description: String { "\(error) (\(hint))" }

    /// `{"error":"...","hint":"..."}`
    public var json: [UInt8] {
        ProtocolObject.refusalBody(error: error, hint: hint)
    }
}
