import Testing

@testable import LogcastClient

@Suite struct ServerAddressTests {
    @Test func defaultsAndSchemes() throws {
        let plain = try ServerAddress(parsing: "ws://127.0.0.1:8080")
        #expect(plain == ServerAddress(secureHostPortPath: (false, "127.0.0.1", 8080, "/ws")))
        #expect(plain.webSocketURL(query: "grep=x") == "ws://127.0.0.1:8080/ws?grep=x")
        #expect(try ServerAddress(parsing: "https://logs.example.com").webSocketURL(query: "") == "wss://logs.example.com:443/ws")
        #expect(try ServerAddress(parsing: "http://h/logcast/ws").path == "/logcast/ws")
        #expect(try ServerAddress(parsing: "ws://[::1]:9000").webSocketURL(query: "") == "ws://[::1]:9000/ws")
    }

    @Test(arguments: ["foo://x", "ws://", "", "127.0.0.1:8080", "ws://h:1/ws?grep=x"])
    func badURLsAreUsageErrors(_ text: String) {
        #expect(throws: TailError.self) { try ServerAddress(parsing: text) }
        do {
            _ = try ServerAddress(parsing: text)
        } catch {
            #expect(error.exitCode == 2)
        }
    }
}

extension ServerAddress {
    init(secureHostPortPath value: (Bool, String, Int, String)) {
        self = try! ServerAddress(parsing: "\(value.0 ? "wss" : "ws")://\(value.1):\(value.2)\(value.3)")
    }
}

@Suite struct StreamPositionTests {
    @Test func asksForTheBacklogUntilALineWasSeenThenResumes() {
        var filter = TailFilter()
        filter.grep = ["a b", "c&d"]
        filter.priority = "err"
        var position = StreamPosition()
        #expect(position.query(filter: filter, backlog: 10) == "grep=a%20b&grep=c%26d&priority=err&backlog=10")
        position.sawHello(epoch: "e1")
        #expect(position.query(filter: filter, backlog: 10).hasSuffix("backlog=10"))
        let first = position.sawLine(seq: 5)
        #expect(first)
        #expect(position.query(filter: filter, backlog: 10).hasSuffix("after=5&epoch=e1"))
    }

    @Test func fieldConditionsAndTheFieldsSentAreQueryItems() {
        var filter = TailFilter()
        filter.fieldConditions = ["status>=500", "path=/a,b"]
        filter.fieldsSent = "status,user"
        #expect(
            StreamPosition().query(filter: filter, backlog: 0)
                == "field=status%3E%3D500&field=path%3D%2Fa%2Cb&fields=status%2Cuser&backlog=0"
        )
    }

    @Test func duplicatesAndOlderLinesAreNotPrintedTwice() {
        var position = StreamPosition()
        let results = [3, 3, 2, 4].map { position.sawLine(seq: $0) }
        #expect(results == [true, false, false, true])
    }

    @Test func contextLinesMayBeOlderThanTheLastLineButAreShownOnce() {
        var position = StreamPosition()
        var shown: [Bool] = []
        shown.append(position.sawLine(seq: 34))
        shown.append(position.sawContextLine(seq: 33))  // before a match of another file, after newer lines
        shown.append(position.sawLine(seq: 35))
        shown.append(position.sawContextLine(seq: 36))  // after-context moves the resume point
        #expect(position.lastSeq == 36)
        shown.append(position.sawContextLine(seq: 33))  // sent again (a reconnect broke off its group)
        shown.append(position.sawContextLine(seq: 36))
        shown.append(position.sawLine(seq: 36))
        #expect(shown == [true, true, true, true, false, false, false])
    }

    @Test func aRestartStartsNumberingAgain() {
        var position = StreamPosition()
        position.sawHello(epoch: "old")
        _ = position.sawLine(seq: 900)
        position.sawHello(epoch: "new")
        position.serverRestarted(next: 1)
        let fresh = position.sawLine(seq: 1)
        #expect(fresh, "seq 1 of the new epoch is a new line")
    }
}

@Suite struct BackoffTests {
    @Test func growsWithJitterUpToTheCapAndResets() {
        var backoff = Backoff(base: .milliseconds(100), maximum: .seconds(1))
        let early = [backoff.next(random: 0), backoff.next(random: 1), backoff.next(random: 0.5)]
        #expect(early == [.milliseconds(50), .milliseconds(200), .milliseconds(300)])
        for _ in 0..<30 { _ = backoff.next(random: 1) }
        let capped = [backoff.next(random: 1), backoff.next(random: 0)]
        #expect(capped == [.seconds(1), .milliseconds(500)])
        backoff.reset()
        let again = backoff.next(random: 1)
        #expect(again == .milliseconds(100))
    }
}

@Suite struct LineFormatterTests {
    let line =
        #"{"type":"line","seq":7,"ts":"2026-11-25T09:05:29.123456Z","source":"journal","host":"web1","msg":"disk full","#
        + #""priority":3,"identifier":"kernel","pid":1}"#

    @Test func shortModeIsReadableAndColouredOnlyWhenAsked() {
        let plain = LineFormatter(mode: .short, color: false).format(raw: Substring(line))
        #expect(plain == .line(seq: 7, text: "2026-11-25T09:05:29.123Z web1 journal kernel[1]: disk full"))
        let coloured = LineFormatter(mode: .short, color: true).format(raw: Substring(line))
        guard case .line(_, let text) = coloured else {
            Issue.record("not a line")
            return
        }
        #expect(text.contains("\u{1B}[1;31mdisk full\u{1B}[0m"))
    }

    @Test func jsonModeKeepsTheServersObjectAndCatTheMessage() {
        #expect(LineFormatter(mode: .json, color: true).format(raw: Substring(line)) == .line(seq: 7, text: line))
        #expect(LineFormatter(mode: .cat, color: true).format(raw: Substring(line)) == .line(seq: 7, text: "disk full"))
        let fromTheJournal = #"{"type":"line","ts":"2026-11-25T09:05:29.123456Z","source":"journal","msg":"before the stream"}"#
        #expect(
            LineFormatter(mode: .cat, color: false).format(raw: Substring(fromTheJournal)) == .line(seq: nil, text: "before the stream"),
            "a line read from the journal for a time range has no seq, and is shown all the same"
        )
    }

    @Test func contextLinesAndSeparatorsAsGrepPrintsThem() {
        let context = String(line.dropLast()) + #","context":true}"#
        #expect(LineFormatter(mode: .cat, color: false).format(raw: Substring(context)) == .contextLine(seq: 7, text: "disk full"))
        let separator = #"{"type":"separator"}"#
        #expect(LineFormatter(mode: .cat, color: false).format(raw: Substring(separator)) == .separator("--"))
        #expect(LineFormatter(mode: .json, color: false).format(raw: Substring(separator)) == .separator(separator))
    }

    @Test func controlObjectsBecomeNotices() {
        let formatter = LineFormatter(mode: .cat, color: false)
        #expect(formatter.format(raw: #"{"type":"hello","epoch":"ab"}"#) == .hello(epoch: "ab"))
        #expect(
            formatter.format(raw: #"{"type":"gap","after":1,"next":9,"missed":7,"reason":"slow-consumer"}"#)
                == .notice("logcast: 7 lines skipped: this connection was too slow (the server dropped them)")
        )
        guard case .restart(let next, _) = formatter.format(raw: #"{"type":"gap","after":5,"next":1,"reason":"restart"}"#) else {
            Issue.record("restart not recognised")
            return
        }
        #expect(next == 1)
        #expect(
            formatter.format(raw: #"{"type":"gap","after":5,"next":6,"reason":"downtime","source":"app","path":"/a.log","skipped_bytes":900}"#)
                == .notice("logcast: 900 bytes of app (/a.log) skipped: written while the server was down, more than it catches up on")
        )
        #expect(
            formatter.format(raw: #"{"type":"source","source":"app","event":"rotated","path":"/var/log/app.log"}"#)
                == .event("logcast: — app rotated (/var/log/app.log) —")
        )
        #expect(formatter.format(raw: #"{"type":"subscribed","filter":{}}"#) == .ignored)
        guard case .notice(let text) = formatter.format(raw: "not json") else {
            Issue.record("garbage accepted")
            return
        }
        #expect(text.contains("not a JSON object"))
    }
}

@Suite struct RefusalTests {
    @Test func statusesMapToExitCodesAndRetries() {
        let body = Array(#"{"error":"unknown source 'x'","hint":"known sources: a, b"}"#.utf8)
        guard case .stop(let refused) = TailSession.refusal(status: 400, body: body, headers: []) else {
            Issue.record("400 retried")
            return
        }
        #expect(refused.exitCode == 3)
        #expect(refused.description.contains("400 unknown source 'x' (known sources: a, b)"))
        guard case .stop(let unauthorized) = TailSession.refusal(status: 401, body: Array(#"{"error":"token required"}"#.utf8), headers: []) else {
            Issue.record("401 retried")
            return
        }
        #expect(unauthorized.exitCode == 4 && unauthorized.description.contains("401 token required"))
        guard case .retry(_, let after) = TailSession.refusal(status: 503, body: [], headers: [("Retry-After", "7")]) else {
            Issue.record("503 not retried")
            return
        }
        #expect(after == .seconds(7))
    }
}

@Suite struct ControlCharacterTests {
    @Test func controlsAreShownVisibly() {
        #expect(LineFormatter.visible("a\u{1B}]0;t\u{07}b") == "a\\x1b]0;t\\x07b")
        #expect(LineFormatter.visible("back\rover") == "back\\rover")
        #expect(LineFormatter.visible("tab\tand\nnewline stay") == "tab\tand\nnewline stay")
        #expect(LineFormatter.visible("c1\u{9B}del\u{7F}") == "c1\\x9bdel\\x7f")
        #expect(LineFormatter.visible("rtl\u{202E}x") == "rtl\\x202ex")
        #expect(LineFormatter.visible("plain ünïcode") == "plain ünïcode")
    }

    @Test func sgrIsKeptOnlyWhenAsked() {
        let text = "\u{1B}[1;31mred\u{1B}[0m \u{1B}[2J"
        #expect(LineFormatter.visible(text, keepSGR: true) == "\u{1B}[1;31mred\u{1B}[0m \\x1b[2J")
        #expect(LineFormatter.visible(text) == "\\x1b[1;31mred\\x1b[0m \\x1b[2J")
        #expect(LineFormatter.visible("\u{1B}[", keepSGR: true) == "\\x1b[")
    }
}

@Suite struct JournalctlArgumentsTests {
    @Test func aBareCaseSensitiveFlagMeansYesOnlyForTailAndBeforeTheTerminator() {
        #expect(
            JournalctlArguments.normalized(["tail", "-g", "Foo", "--case-sensitive"]) == ["tail", "-g", "Foo", "--case-sensitive=yes"]
        )
        #expect(JournalctlArguments.normalized(["tail", "--case-sensitive=no", "-g", "x"]) == ["tail", "--case-sensitive=no", "-g", "x"])
        #expect(JournalctlArguments.normalized(["tail", "--", "--case-sensitive"]) == ["tail", "--", "--case-sensitive"])
        #expect(JournalctlArguments.normalized(["serve", "--case-sensitive"]) == ["serve", "--case-sensitive"])
        #expect(JournalctlArguments.normalized([]) == [])
    }
}
