import LogcastHub
import LogcastProtocol
import Testing

@testable import LogcastSources

@Suite struct RecordJoinerTests {
    /// The records `text`'s lines make, flushed at the end.
    private func records(_ text: String, rule: MultilineRule) -> [JoinedRecord] {
        var joiner = RecordJoiner(rule: rule)
        var out: [JoinedRecord] = []
        for line in text.split(separator: "\n", omittingEmptySubsequences: false).dropLast() {
            joiner.add(String(line), fileBytes: line.utf8.count + 1, at: Timestamp(microseconds: 0)) { out.append($0) }
        }
        joiner.flush { out.append($0) }
        return out
    }

    private let indented = MultilineRule(start: .indented)

    @Test func aJavaTraceWithItsCausesIsOneRecordUnderItsLogLine() {
        let log = """
            2026-12-03 10:00:00 ERROR request failed
            java.lang.IllegalStateException: boom
            \tat com.example.A.run(A.java:10)
            \tat com.example.B.main(B.java:5)
            Caused by: java.io.IOException: disk full
            \tat com.example.C.io(C.java:3)
            \t... 2 more
            Suppressed: com.example.Cleanup$Failure: also
            \tat com.example.D.close(D.java:1)
            2026-12-03 10:00:01 INFO next

            """
        let got = records(log, rule: indented)
        #expect(got.map(\.lines) == [9, 1])
        #expect(got[0].message.hasPrefix("2026-12-03 10:00:00 ERROR request failed\njava.lang.IllegalStateException: boom\n\tat"))
        #expect(got[1].message == "2026-12-03 10:00:01 INFO next")
    }

    @Test func aPythonTracebackEndsWithItsExceptionLineAndChainsStayTogether() {
        let log = """
            ERROR:root:failed
            Traceback (most recent call last):
              File "a.py", line 3, in <module>
                int("x")
            ValueError: invalid literal for int() with base 10: 'x'

            During handling of the above exception, another exception occurred:

            Traceback (most recent call last):
              File "a.py", line 5, in <module>
                raise RuntimeError("wrapped")
            RuntimeError: wrapped
            INFO:root:next
            KeyError: not a traceback, a log line

            """
        let got = records(log, rule: indented)
        #expect(got.map(\.lines) == [12, 1, 1])
        #expect(got[0].message.hasSuffix("RuntimeError: wrapped"))
        #expect(got[2].message == "KeyError: not a traceback, a log line", "outside a traceback an exception-like line starts a record")
    }

    @Test func aGoPanicWithItsGoroutinesIsOneRecord() {
        let log = """
            panic: runtime error: index out of range [5] with length 3

            goroutine 1 [running]:
            main.main()
            \t/tmp/x.go:8 +0x1d
            created by main.start in goroutine 1
            \t/tmp/x.go:3 +0x2e
            exit status 2
            2026/12/03 10:00:00 restarted

            """
        let got = records(log, rule: indented)
        #expect(got.map(\.lines) == [8, 1])
    }

    @Test func aStartPatternBeginsRecordsAndTheFirstLinesBeforeOneAreARecord() throws {
        let rule = try #require(try MultilineRule.parse(#"^\d{4}-\d{2}-\d{2} "#))
        let got = records("orphan 1\norphan 2\n2026-12-03 a\nmore\n2026-12-03 b\n", rule: rule)
        #expect(got.map(\.message) == ["orphan 1\norphan 2", "2026-12-03 a\nmore", "2026-12-03 b"])
        #expect(try MultilineRule.parse("none") == nil)
        #expect(throws: PatternError.self) { try MultilineRule.parse("(unclosed") }
    }

    @Test func aRecordIsCutAtItsLineAndByteBoundsAndTheRestIsMarkedContinued() {
        var rule = indented
        rule.maxLines = 3
        let got = records("head\n" + String(repeating: "\tat x\n", count: 7), rule: rule)
        #expect(got.map(\.lines) == [3, 3, 2])
        #expect(got.map(\.continued) == [false, true, true])
        var small = indented
        small.maxBytes = 20
        let bytes = records("head\n\t0123456789\n\t0123456789\n\tlast\nnext\n", rule: small)
        #expect(bytes.map(\.lines) == [3, 1, 1], "cut once it holds 20 bytes or more")
        #expect(bytes.map(\.continued) == [false, true, false], "a start line after a cut begins a record of its own")
    }

    @Test func pendingBytesCountTheHeldRecordAndAnEndOfFileFlushesIt() {
        var joiner = RecordJoiner(rule: indented)
        var out: [JoinedRecord] = []
        joiner.add("a", fileBytes: 2, at: Timestamp(microseconds: 1)) { out.append($0) }
        joiner.add("\tb", fileBytes: 4, at: Timestamp(microseconds: 2)) { out.append($0) }
        #expect(out.isEmpty && joiner.pendingFileBytes == 6 && joiner.hasPending)
        joiner.add("c", fileBytes: 3, at: Timestamp(microseconds: 3)) { out.append($0) }
        #expect(out == [JoinedRecord(message: "a\n\tb", lines: 2, continued: false, timestamp: Timestamp(microseconds: 1))])
        #expect(joiner.pendingFileBytes == 3, "the record's timestamp is its first line's")
        joiner.endOfFile { out.append($0) }
        #expect(out.last?.message == "c" && !joiner.hasPending && joiner.pendingFileBytes == 0)
    }

    @Test func theSplitterTellsEachLinesBytesInTheFile() {
        var splitter = LineSplitter(maxLineBytes: 8)
        var got: [(String, Int)] = []
        Array("ab\r\ncd\n0123456789ABCDEF\nxy".utf8).withUnsafeBytes { chunk in
            splitter.appendSized(chunk, emit: { line, bytes in got.append((line, bytes)) })
        }
        splitter.flushPartialSized(emit: { line, bytes in got.append((line, bytes)) })
        #expect(got.map(\.0) == ["ab", "cd", "01234567", "89ABCDEF", "xy"])
        #expect(got.map(\.1) == [4, 3, 8, 9, 2], "CRLF, LF, a long line's pieces (the last with its LF), a partial line")
        #expect(got.map(\.1).reduce(0, +) == "ab\r\ncd\n0123456789ABCDEF\nxy".utf8.count)
    }
}
