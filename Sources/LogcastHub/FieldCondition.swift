import LogcastProtocol

/// One `field=` filter expression: `NAME=VALUE`, `NAME!=VALUE`,
/// `NAME~REGEX`, `NAME>N`, `NAME>=N`, `NAME<N`, `NAME<=N`.
///
/// Rules (docs/PROTOCOL.md, "Structured fields"):
/// - A line without the field does not pass, whatever the operator (as
///   `journalctl FIELD=value`); with a field given more than once, one
///   passing value is enough.
/// - `=` and `!=` compare as numbers when both sides are numbers (`200`
///   equals `200.0`), else as exact strings.
/// - `>`, `>=`, `<`, `<=` with a number compare as numbers, and a value
///   that is not a number does not pass; with a value that is not a number
///   they compare strings byte by byte (`ts>=2026-12-01`).
/// - `~` is a PCRE2 search, smart-case, under the same match limit as `regex`.
public struct FieldCondition: Sendable, Equatable, CustomStringConvertible {
    public enum Operator: String, Sendable, CaseIterable {
        case equal = "="
        case notEqual = "!="
        case matches = "~"
        case greater = ">"
        case greaterOrEqual = ">="
        case less = "<"
        case lessOrEqual = "<="

        var isOrdering: Bool { self == .greater || self == .greaterOrEqual || self == .less || self == .lessOrEqual }
    }

    public var name: String
    public var op: Operator
    public var value: String

    public init(name: String, op: Operator, value: String) {
        self.name = name
        self.op = op
        self.value = value
    }

    /// The expression as given (normalised): `status>=500`.
    public var description: String { name + op.rawValue + value }

    static let hint = "field takes NAME=VALUE, NAME!=VALUE, NAME~REGEX or a comparison NAME>N, NAME>=N, NAME<N, NAME<=N, e.g. field=status>=500"

    /// Whether `byte` may be part of a field name: anything printable but
    /// blanks, the operator characters and the comma (`fields=a,b`).
    static func isNameByte(_ byte: UInt8) -> Bool {
        byte > 0x20 && byte != 0x7F && !"=!~<>,".utf8.contains(byte)
    }

    /// Checks a name of `field` or `fields`. - Returns: the problem, or nil.
    static func nameProblem(_ name: String) -> String? {
        if name.isEmpty { return "is empty" }
        if name.utf8.count > FieldParser.maxNameBytes { return "is longer than \(FieldParser.maxNameBytes) bytes" }
        if let bad = name.unicodeScalars.first(where: { $0.isASCII && !isNameByte(UInt8($0.value)) }) {
            return "has '\(bad == " " ? "a blank" : String(bad))', which a field name cannot have"
        }
        return nil
    }

    /// Parses `status>=500`.
    /// - Throws: ``FilterError`` naming the expression and what is wrong.
    public static func parse(_ text: String) throws(FilterError) -> FieldCondition {
        let bytes = Array(text.utf8)
        guard let opStart = bytes.firstIndex(where: { "=!~<>".utf8.contains($0) }) else {
            throw FilterError("field '\(text)' has no operator", hint: hint)
        }
        let name = String(decoding: bytes[..<opStart], as: UTF8.self)
        if name.isEmpty { throw FilterError("field '\(text)' has no name before its operator", hint: hint) }
        if let problem = nameProblem(name) { throw FilterError("field name '\(name)' \(problem)", hint: hint) }
        var end = opStart + 1
        let op: Operator
        switch bytes[opStart] {
        case UInt8(ascii: "="): op = .equal
        case UInt8(ascii: "~"): op = .matches
        case UInt8(ascii: "!"):
            guard end < bytes.count, bytes[end] == UInt8(ascii: "=") else {
                throw FilterError("field '\(text)': '!' must be followed by '=' (NAME!=VALUE)", hint: hint)
            }
            op = .notEqual
            end += 1
        default:
            let greater = bytes[opStart] == UInt8(ascii: ">")
            if end < bytes.count, bytes[end] == UInt8(ascii: "=") {
                op = greater ? .greaterOrEqual : .lessOrEqual
                end += 1
            } else {
                op = greater ? .greater : .less
            }
        }
        let value = String(decoding: bytes[end...], as: UTF8.self)
        if op.isOrdering || op == .matches, value.isEmpty {
            throw FilterError("field '\(text)' has nothing to compare with after '\(op.rawValue)'", hint: hint)
        }
        return FieldCondition(name: name, op: op, value: value)
    }

    /// The value as a number, when it is one: JSON's number grammar
    /// (an optional `-`, digits, an optional fraction and exponent), also
    /// with a leading `+`. No `inf`, `nan`, hex or blanks.
    static func number(_ bytes: UnsafeRawBufferPointer) -> Double? {
        guard !bytes.isEmpty, bytes.count <= 64 else { return nil }
        var index = 0
        let n = bytes.count
        func digits() -> Int {
            let start = index
            while index < n, bytes[index] >= 48, bytes[index] <= 57 { index += 1 }
            return index - start
        }
        if bytes[0] == UInt8(ascii: "-") || bytes[0] == UInt8(ascii: "+") { index = 1 }
        guard digits() > 0 else { return nil }
        if index < n, bytes[index] == UInt8(ascii: ".") {
            index += 1
            guard digits() > 0 else { return nil }
        }
        if index < n, bytes[index] | 0x20 == UInt8(ascii: "e") {
            index += 1
            if index < n, bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-") { index += 1 }
            guard digits() > 0 else { return nil }
        }
        guard index == n else { return nil }
        // Whole numbers of up to 15 digits are exact as Double: no text to convert.
        let sign = bytes[0] == UInt8(ascii: "-") || bytes[0] == UInt8(ascii: "+") ? 1 : 0
        if n - sign <= 15, bytes[sign...].allSatisfy({ $0 >= 48 && $0 <= 57 }) {
            var value: Int64 = 0
            for byte in bytes[sign...] { value = value * 10 + Int64(byte - 48) }
            return Double(bytes[0] == UInt8(ascii: "-") ? -value : value)
        }
        return Double(String(decoding: bytes, as: UTF8.self))
    }
}

/// A ``FieldCondition`` compiled: its name's bytes, its number, its pattern.
/// A class: a filter tests every line with it, and a copy of a struct of
/// strings, arrays and a pattern retains and releases each of them.
final class FieldTest: Sendable {
    let condition: FieldCondition
    let name: [UInt8]
    let value: [UInt8]
    let number: Double?
    let pattern: Pattern?

    init(_ condition: FieldCondition) throws(FilterError) {
        self.condition = condition
        name = Array(condition.name.utf8)
        value = Array(condition.value.utf8)
        number = value.withUnsafeBytes { FieldCondition.number($0) }
        if condition.op == .matches {
            do {
                pattern = try Pattern(condition.value, kind: .regularExpression)
            } catch {
                throw FilterError(
                    "bad regex in field '\(condition)': \(error.message) at offset \(error.offset)",
                    hint: "NAME~REGEX takes PCRE2 syntax, e.g. field=user~^adm"
                )
            }
        } else {
            pattern = nil
        }
    }

    /// Whether some value of the field passes; a line without it does not.
    func passes(_ fields: LineFields?) -> Bool {
        guard let fields else { return false }
        return fields.contains(named: name) { passes(value: $0) }
    }

    func passes(value field: UnsafeRawBufferPointer) -> Bool {
        switch condition.op {
        case .matches:
            return pattern!.matches(utf8: field)
        case .equal, .notEqual:
            // The same bytes are equal either way; otherwise numbers may still be (`5e2` and `500`).
            var equal = field.count == value.count && value.withUnsafeBytes { field.elementsEqual($0) }
            if !equal, let number, let other = FieldCondition.number(field) { equal = number == other }
            return equal == (condition.op == .equal)
        case .greater, .greaterOrEqual, .less, .lessOrEqual:
            let order: Int
            if let number {
                guard let other = FieldCondition.number(field) else { return false }
                order = other < number ? -1 : (other > number ? 1 : 0)
            } else {
                order = field.lexicographicallyPrecedes(value) ? -1 : (field.elementsEqual(value) ? 0 : 1)
            }
            switch condition.op {
            case .greater: return order > 0
            case .greaterOrEqual: return order >= 0
            case .less: return order < 0
            default: return order <= 0
            }
        }
    }
}

/// What `fields=` asks to be sent with each line: some names, or all.
public enum FieldSelection: Sendable, Equatable {
    case names([String])
    case all

    /// Parses `status,user` or `*`.
    public static func parse(_ text: String) throws(FilterError) -> FieldSelection {
        let hint = "fields takes field names separated by commas, e.g. fields=status,user, or fields=* for all"
        if text == "*" { return .all }
        var names: [String] = []
        for part in text.split(separator: ",", omittingEmptySubsequences: true) {
            let name = String(part)
            if name == "*" { return .all }
            if let problem = FieldCondition.nameProblem(name) { throw FilterError("fields name '\(name)' \(problem)", hint: hint) }
            if !names.contains(name) { names.append(name) }
        }
        guard !names.isEmpty else { throw FilterError("fields '\(text)' names no field", hint: hint) }
        if names.count > maxNames {
            throw FilterError("fields names \(names.count) fields; at most \(maxNames) are allowed", hint: "ask for fewer, or for fields=*")
        }
        return .names(names)
    }

    public static let maxNames = 64

    /// The `"fields":{...}` member for `fields` (nil when none is selected),
    /// with its leading comma: what goes before a line object's closing `}`.
    public func member(_ fields: LineFields?) -> [UInt8]? {
        switch self {
        case .all: fields?.member(selecting: nil)
        case .names(let names): fields?.member(selecting: names)
        }
    }
}
