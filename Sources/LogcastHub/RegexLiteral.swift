/// The longest run of literal text that every match of a regular
/// expression must contain, found by a deliberately small reading of the
/// PCRE2 syntax: so that a `regex` filter can use the shared text index
/// (``TextDictionary``) as well as a `grep` can.
///
/// It only has to be right, not complete: whatever it does not fully
/// understand gives nil (the regex is then matched on every line).
/// - nil for any alternation (`|`), group or look-around (`(`), class
///   (`[`), counted quantifier (`{`), or escape it does not know.
/// - Literal characters (and escaped punctuation such as `\.`) extend the
///   current run; zero-width assertions (`^`, `$`, `\b`, `\B`, `\A`, `\z`,
///   `\Z`, `\G`) leave it as it is, since they consume nothing.
/// - `.` and the class escapes (`\d`, `\w`, `\s`, ...) end the run.
/// - `?` and `*` make the character before them optional: it leaves the run,
///   which ends. `+` keeps it (it occurs at least once) and ends the run.
///
/// Dropping the last character of a run leaves a prefix of text that must
/// occur, so every rule only ever shortens what is required.
enum RegexLiteral {
    static func required(in source: String) -> String? {
        var runs: [[Character]] = []
        var run: [Character] = []
        func end() {
            if !run.isEmpty { runs.append(run) }
            run = []
        }
        var iterator = source.makeIterator()
        while let character = iterator.next() {
            switch character {
            case "|", "(", ")", "[", "]", "{", "}":
                return nil
            case "\\":
                guard let escaped = iterator.next() else { return nil }
                if "bBAzZG".contains(escaped) { continue }
                if "dDwWsShHvVRNX".contains(escaped) {
                    end()
                    continue
                }
                guard escaped.isASCII, escaped.isPunctuation || escaped.isSymbol || escaped == " " else { return nil }
                run.append(escaped)
            case "^", "$":
                continue
            case ".":
                end()
            case "?", "*":
                if !run.isEmpty { run.removeLast() }
                end()
            case "+":
                end()
            default:
                run.append(character)
            }
        }
        end()
        guard let longest = runs.max(by: { $0.count < $1.count }) else { return nil }
        return String(longest)
    }
}
