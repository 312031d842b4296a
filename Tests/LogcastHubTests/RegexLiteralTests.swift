import Testing

@testable import LogcastHub

/// ``RegexLiteral``: the text it finds must occur in every line the regex
/// matches, which PCRE2 itself decides here.
@Suite struct RegexLiteralTests {
    @Test func examples() {
        #expect(RegexLiteral.required(in: #"\bG5\b"#) == "G5")
        #expect(RegexLiteral.required(in: #"^E\d+ failed"#) == " failed")
        #expect(RegexLiteral.required(in: #"status=5\d\d"#) == "status=5")
        #expect(RegexLiteral.required(in: #"a\.b?c"#) == "a.")
        #expect(RegexLiteral.required(in: #"colou?r"#) == "colo")
        #expect(RegexLiteral.required(in: #"ab+c"#) == "ab")
        #expect(RegexLiteral.required(in: "timeout|refused") == nil)
        #expect(RegexLiteral.required(in: "(a)bcd") == nil)
        #expect(RegexLiteral.required(in: "[ab]cde") == nil)
        #expect(RegexLiteral.required(in: "ab{2}") == nil)
        #expect(RegexLiteral.required(in: #"\x41bc"#) == nil)
        #expect(RegexLiteral.required(in: #"\d+"#) == nil)
        #expect(RegexLiteral.required(in: "") == nil)
        #expect(RegexLiteral.required(in: #"a\"#) == nil)
    }

    /// Random regular expressions over a small alphabet and random lines:
    /// whenever PCRE2 says a line matches, the line holds the required text
    /// (folded when the regex is caseless); and the text is found often
    /// enough for this to say something.
    @Test(arguments: 1...20)
    func everyMatchHoldsTheRequiredText(seed: UInt64) throws {
        var rng = SeededGenerator(state: seed)
        let atoms = ["a", "b", "A", "5", " ", ".", #"\."#, #"\b"#, #"\B"#, #"\d"#, #"\w"#, #"\s"#, "^", "$", "é", "K", "\u{212A}"]
        let quantifiers = ["", "", "", "?", "*", "+", "+?", "*?"]
        let subjects = (0..<300).map { _ in
            String((0..<Int.random(in: 0...12, using: &rng)).map { _ in Array("abAB5 .é\u{212A}k")[Int.random(in: 0..<10, using: &rng)] })
        }
        var found = 0
        for _ in 0..<60 {
            let source = (0..<Int.random(in: 1...6, using: &rng)).map { _ in
                atoms.randomElement(using: &rng)! + quantifiers.randomElement(using: &rng)!
            }.joined()
            guard let pattern = try? Pattern(source, kind: .regularExpression) else { continue }
            guard let required = RegexLiteral.required(in: source) else { continue }
            found += 1
            for subject in subjects where pattern.matches(subject) {
                if pattern.caseSensitive {
                    #expect(subject.contains(required), "\(source) matched \(subject) without \(required)")
                } else if let key = LineMatcher.indexKey(required, caseSensitive: false) {
                    // What the index looks up for a caseless regex: ASCII folded.
                    #expect(subject.utf8.map(TextDictionary.fold).contains(key), "\(source) matched \(subject) without \(required)")
                }
            }
        }
        #expect(found > 10)
    }
}
