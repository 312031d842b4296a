import LogcastProtocol
import Testing

@testable import LogcastHub

@Suite struct PatternTests {
    // MARK: smart case, fixed strings

    @Test func lowerCaseFixedStringIsCaseInsensitive() throws {
        let pattern = try Pattern("timeout", kind: .fixedString)
        #expect(!pattern.caseSensitive)
        #expect(pattern.matches("connection TIMEOUT after 5s"))
        #expect(pattern.matches("Timeout"))
        #expect(!pattern.matches("time out"))
    }

    @Test func upperCaseFixedStringIsCaseSensitive() throws {
        let pattern = try Pattern("Timeout", kind: .fixedString)
        #expect(pattern.caseSensitive)
        #expect(pattern.matches("a Timeout here"))
        #expect(!pattern.matches("a timeout here"))
        #expect(!pattern.matches("a TIMEOUT here"))
    }

    @Test func fixedStringTreatsRegexCharactersLiterally() throws {
        let insensitive = try Pattern("a.b(c", kind: .fixedString)
        #expect(insensitive.matches("x a.b(c y"))
        #expect(!insensitive.matches("axb(c"))
        let sensitive = try Pattern("A.B", kind: .fixedString)
        #expect(sensitive.matches("A.B"))
        #expect(!sensitive.matches("AxB"))
    }

    @Test func explicitCaseOverridesSmartCase() throws {
        let insensitive = try Pattern("Timeout", kind: .fixedString, caseSensitive: false)
        #expect(insensitive.matches("timeout"))
        let sensitive = try Pattern("timeout", kind: .regularExpression, caseSensitive: true)
        #expect(!sensitive.matches("TIMEOUT"))
    }

    // MARK: smart case, regular expressions

    @Test func lowerCaseRegexIsCaseInsensitive() throws {
        let pattern = try Pattern("err(or)? \\d+", kind: .regularExpression)
        #expect(!pattern.caseSensitive)
        #expect(pattern.matches("ERROR 42"))
    }

    @Test func upperCaseRegexIsCaseSensitive() throws {
        let pattern = try Pattern("^E\\d+", kind: .regularExpression)
        #expect(pattern.caseSensitive)
        #expect(pattern.matches("E1125 x"))
        #expect(!pattern.matches("e1125 x"))
    }

    @Test(arguments: ["\\S+", "\\d+", "\\W", "\\D\\S\\W\\B", "\\p{Lu}", "\\P{Lu}x", "\\pL", "x\\N"])
    func escapesDoNotCountAsUpperCase(source: String) {
        #expect(!Pattern.hasUpperCase(source, isRegex: true), "\(source)")
    }

    @Test func upperCaseOutsideEscapesCounts() {
        #expect(Pattern.hasUpperCase("\\p{Lu}X", isRegex: true))
        #expect(Pattern.hasUpperCase("\\dA", isRegex: true))
        #expect(Pattern.hasUpperCase("[A-Z]", isRegex: true))
        // Fixed strings have no escapes: a backslash-S is a literal S.
        #expect(Pattern.hasUpperCase("\\S", isRegex: false))
    }

    @Test func regexWithOnlyUpperCaseEscapesMatchesCaselessly() throws {
        let pattern = try Pattern("\\S+rror\\s\\d", kind: .regularExpression)
        #expect(!pattern.caseSensitive)
        #expect(pattern.matches("ERROR 5"))
    }

    @Test func unicodePropertyEscapeStaysCaseInsensitiveForTheRest() throws {
        let pattern = try Pattern("\\p{Lu}rror", kind: .regularExpression)
        #expect(!pattern.caseSensitive)
        #expect(pattern.matches("ERROR"))
    }

    // MARK: Unicode case

    @Test func unicodeCaselessFixedString() throws {
        let pattern = try Pattern("école", kind: .fixedString)
        #expect(!pattern.caseSensitive)
        #expect(pattern.matches("L'ÉCOLE est fermée"))
    }

    @Test func unicodeCaselessRegex() throws {
        let pattern = try Pattern("éc.le$", kind: .regularExpression)
        #expect(pattern.matches("ÉCOLE"))
    }

    @Test func unicodeUpperCaseMakesPatternCaseSensitive() throws {
        let pattern = try Pattern("ÉCOLE", kind: .fixedString)
        #expect(pattern.caseSensitive)
        #expect(!pattern.matches("école"))
        #expect(pattern.matches("une ÉCOLE"))
    }

    @Test func regexDotMatchesOneUnicodeCharacter() throws {
        let pattern = try Pattern("^a.b$", kind: .regularExpression)
        #expect(pattern.matches("a😀b"))
    }

    // MARK: errors and limits

    @Test func badRegexThrowsWithOffset() {
        #expect(throws: PatternError.self) { try Pattern("abc(def", kind: .regularExpression) }
        do throws(PatternError) {
            _ = try Pattern("abc(def", kind: .regularExpression)
            Issue.record("expected a PatternError")
        } catch {
            #expect(error.offset == 7)
            #expect(error.message.contains("parenthesis"))
        }
    }

    @Test func badRegexOffsetPointsInsideThePattern() {
        do throws(PatternError) {
            _ = try Pattern("ok[z-a]", kind: .regularExpression)
            Issue.record("expected a PatternError")
        } catch {
            #expect(error.offset > 2 && error.offset <= 7)
            #expect(!error.message.isEmpty)
        }
    }

    @Test func catastrophicBacktrackingGivesUpAsNoMatch() throws {
        let pattern = try Pattern("(a+)+$", kind: .regularExpression)
        let line = String(repeating: "a", count: 29) + "b"
        #expect(line.utf8.count == 30)
        #expect(!pattern.matches(line))
        // The same pattern still matches where it should.
        #expect(pattern.matches("aaaa"))
    }

    @Test func catastrophicBacktrackingWithNestedGroupAndTrailingB() throws {
        let pattern = try Pattern("^(a|aa)+$", kind: .regularExpression)
        #expect(!pattern.matches(String(repeating: "a", count: 29) + "b"))
    }

    // MARK: bytes

    @Test func invalidUTF8InTheSubjectDoesNotPreventMatching() throws {
        let regex = try Pattern("abc", kind: .regularExpression)
        let fixed = try Pattern("ABC", kind: .fixedString)
        let bytes: [UInt8] = [0xFF, 0xFE, 0x61, 0x62, 0x63, 0xC3, 0x41, 0x42, 0x43]
        bytes.withUnsafeBytes { raw in
            #expect(regex.matches(utf8: raw))
            #expect(fixed.matches(utf8: raw))
        }
    }

    @Test func emptySubject() throws {
        #expect(!(try Pattern("x", kind: .regularExpression).matches("")))
        #expect(!(try Pattern("X", kind: .fixedString).matches("")))
        #expect(try Pattern("^$", kind: .regularExpression).matches(""))
    }

    @Test func emptyCaseSensitiveFixedStringMatchesEverything() throws {
        let pattern = try Pattern("", kind: .fixedString, caseSensitive: true)
        #expect(pattern.matches("anything"))
    }
}
