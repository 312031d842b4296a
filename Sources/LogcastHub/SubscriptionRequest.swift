import Foundation
import LogcastProtocol

/// A subscriber's request: its filter and where its stream starts.
///
/// Parsed from the query of `/ws`, `/sse`, `/api/v1/lines`, or from the
/// `filter` object of a `subscribe` message; both go through
/// ``SubscriptionRequest/parse(_:limits:)`` so the rules and messages are
/// the same everywhere.
public struct SubscriptionRequest: Sendable, Equatable {
    public enum Format: String, Sendable, CaseIterable {
        case json
        case text
    }

    public var filter = Filter()
    /// The last N matching retained lines to send first (`tail -n`).
    public var backlog: Int
    /// Resume: send every retained matching line with a greater `seq` instead of the backlog.
    public var after: UInt64?
    /// With `after`: the epoch the client saw.
    public var epoch: String?
    public var format: Format = .json
    /// Structured fields to send with each line (`fields`), as `"fields":{...}`.
    public var fields: FieldSelection?

    public init(
        filter: Filter = Filter(),
        backlog: Int = SubscriptionRequest.defaultBacklog,
        after: UInt64? = nil,
        epoch: String? = nil,
        format: Format = .json
    ) {
        self.filter = filter
        self.backlog = backlog
        self.after = after
        self.epoch = epoch
        self.format = format
    }

    public static let defaultBacklog = 10

    /// Bounds on what a request may ask for.
    public struct Limits: Sendable {
        /// The longest value of any key, in bytes (a regex: ``Pattern/maxRegexBytes``).
        public var maxValueBytes = 1024
        /// The most values one key may have.
        public var maxValuesPerKey = 32
        /// The largest `backlog`.
        public var maxBacklog = 1_000_000
        /// Source names that exist; empty means any name is accepted.
        public var knownSources: [String] = []

        public init(knownSources: [String] = []) {
            self.knownSources = knownSources
        }
    }

    /// Keys that may be given more than once.
    public static let repeatableKeys: Set<String> = ["source", "grep", "exclude", "unit", "identifier", "host", "field"]
    /// Repeatable keys whose values may also be comma-separated: all but
    /// `field`, whose value (a regex, a path) may hold a comma.
    static let commaSeparatedKeys = repeatableKeys.subtracting(["field"])
    public static let allKeys = [
        "source", "grep", "regex", "exclude", "priority", "unit", "identifier", "host", "since", "until", "context", "before-context",
        "after-context", "field", "backlog", "after", "epoch", "format", "fields",
    ]

    /// Parses query items in order. Repeated keys add values; repeatable keys also split on
    /// commas when `splitCommas` is set (query strings; JSON arrays are already split).
    /// Empty values are ignored (a form with blank fields means "no filter").
    /// - Throws: ``FilterError`` naming the key, what was wrong, and what would be right.
    public static func parse(
        _ items: [(key: String, value: String)],
        limits: Limits = Limits(),
        splitCommas: Bool = true
    ) throws(FilterError) -> SubscriptionRequest {
        var request = SubscriptionRequest()
        var seen: [String: Int] = [:]
        // `context` sets both sides; `before-context` and `after-context` win over it, in any order (as grep's -C, -B, -A).
        var context: (both: Int?, before: Int?, after: Int?) = (nil, nil, nil)
        for (key, rawValue) in items {
            if key == "around" {
                throw FilterError(
                    "around reads once: it is a parameter of /api/v1/lines, not of a stream",
                    hint: "GET /api/v1/lines?around=SEQ&context=N shows the lines around one line"
                )
            }
            guard allKeys.contains(key) else {
                throw FilterError("unknown parameter '\(key)'", hint: "known parameters: \(allKeys.joined(separator: ", "))")
            }
            let limit = key == "regex" ? Pattern.maxRegexBytes : limits.maxValueBytes
            if rawValue.utf8.count > limit {
                throw FilterError("\(key) is \(rawValue.utf8.count) bytes long; at most \(limit) are allowed", hint: "shorten the \(key) value")
            }
            let values =
                splitCommas && commaSeparatedKeys.contains(key)
                ? rawValue.split(separator: ",", omittingEmptySubsequences: true).map(String.init) : [rawValue]
            for value in values where !value.isEmpty {
                seen[key, default: 0] += 1
                if seen[key]! > (repeatableKeys.contains(key) ? limits.maxValuesPerKey : 1) {
                    if repeatableKeys.contains(key) {
                        throw FilterError(
                            "too many \(key) values (more than \(limits.maxValuesPerKey))",
                            hint: "give at most \(limits.maxValuesPerKey) \(key) values"
                        )
                    }
                    throw FilterError(
                        "\(key) given more than once",
                        hint: key == "regex" ? "combine the patterns into one, e.g. regex=a|b" : "give \(key) once"
                    )
                }
                switch key {
                case "context": context.both = try contextLines(key, value)
                case "before-context": context.before = try contextLines(key, value)
                case "after-context": context.after = try contextLines(key, value)
                default: try request.apply(key: key, value: value, limits: limits)
                }
            }
        }
        if request.fields != nil, request.format == .text {
            throw FilterError("fields needs format=json: text lines carry only the message", hint: "drop fields, or drop format=text")
        }
        request.filter.context = ContextWindow(before: context.before ?? context.both ?? 0, after: context.after ?? context.both ?? 0)
        if let since = request.filter.since, let until = request.filter.until, until < since {
            throw FilterError(
                "until (\(until.rfc3339)) is before since (\(since.rfc3339))",
                hint: "until is the end of the time range, since its start"
            )
        }
        return request
    }

    private mutating func apply(key: String, value: String, limits: Limits) throws(FilterError) {
        switch key {
        case "source":
            if !limits.knownSources.isEmpty, !limits.knownSources.contains(value) {
                throw FilterError("unknown source '\(value)'", hint: "known sources: \(limits.knownSources.joined(separator: ", "))")
            }
            if !filter.sources.contains(value) { filter.sources.append(value) }
        case "grep":
            filter.grep.append(value)
        case "exclude":
            filter.exclude.append(value)
        case "regex":
            filter.regex = value
        case "field":
            let condition = try FieldCondition.parse(value)
            if !filter.fields.contains(condition) { filter.fields.append(condition) }
        case "fields":
            fields = try FieldSelection.parse(value)
        case "priority":
            filter.priority = try Self.parsePriority(value)
        case "unit":
            let unit = Filter.normalizeUnit(value)
            if !filter.units.contains(unit) { filter.units.append(unit) }
        case "identifier":
            if !filter.identifiers.contains(value) { filter.identifiers.append(value) }
        case "host":
            if !filter.hosts.contains(value) { filter.hosts.append(value) }
        case "since", "until":
            guard let time = TimeBound.parse(value) else {
                throw FilterError("\(key) '\(value)' is not a time", hint: TimeBound.hint)
            }
            if key == "since" { filter.since = time } else { filter.until = time }
        case "backlog":
            guard let number = Self.wholeNumber(value), number <= limits.maxBacklog else {
                throw FilterError(
                    "backlog '\(value)' is not a whole number from 0 to \(limits.maxBacklog)",
                    hint: "e.g. backlog=100, or backlog=0 for live lines only"
                )
            }
            backlog = number
        case "after":
            guard value.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }), let number = UInt64(value) else {
                throw FilterError("after '\(value)' is not a sequence number", hint: "after takes the seq of the last line received, e.g. after=1042")
            }
            after = number
        case "epoch":
            guard value.utf8.count <= 64, value.utf8.allSatisfy({ ($0 >= 48 && $0 <= 57) || ($0 >= 97 && $0 <= 102) }) else {
                throw FilterError(
                    "epoch '\(value)' is not an epoch",
                    hint: "epoch takes the hex string from the hello message, e.g. epoch=5f0c2a9e41d7b3aa"
                )
            }
            epoch = value
        case "format":
            guard let format = Format(rawValue: value) else {
                throw FilterError("format '\(value)' is not known", hint: "format is json or text")
            }
            self.format = format
        default:
            break
        }
    }

    /// Digits only (no sign, no spaces), at most 18 of them: a count.
    static func wholeNumber(_ text: String) -> Int? {
        guard !text.isEmpty, text.utf8.count <= 18, text.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }) else { return nil }
        return Int(text)
    }

    static let contextSide = ["before-context": "before", "after-context": "after", "context": "before and after"]

    /// The number of a context key: 0 to ``ContextWindow/maxLines``.
    static func contextLines(_ key: String, _ value: String) throws(FilterError) -> Int {
        guard let number = Self.wholeNumber(value), number <= ContextWindow.maxLines else {
            throw FilterError(
                "\(key) '\(value)' is not a number of lines from 0 to \(ContextWindow.maxLines)",
                hint: "e.g. \(key)=3 for three lines \(Self.contextSide[key] ?? "around") each match"
            )
        }
        return number
    }

    /// `err` = 0...3; `warning..err` or `err..warning` = 3...4; names, aliases or digits.
    public static func parsePriority(_ text: String) throws(FilterError) -> ClosedRange<Int> {
        let hint =
            "priority takes a level (emerg alert crit err warning notice info debug, or 0-7) meaning that level or more severe, or a range "
            + "like warning..err"
        let parts = text.components(separatedBy: "..")
        switch parts.count {
        case 1:
            guard let level = Priority.level(named: text) else {
                throw FilterError("priority '\(text)' is not a syslog level", hint: hint)
            }
            return 0...level
        case 2:
            guard let a = Priority.level(named: parts[0]), let b = Priority.level(named: parts[1]) else {
                throw FilterError("priority range '\(text)' does not name two syslog levels", hint: hint)
            }
            return min(a, b)...max(a, b)
        default:
            throw FilterError("priority '\(text)' is not a level or a range", hint: hint)
        }
    }
}
