import LogcastHub
import LogcastProtocol
import Testing

@testable import LogcastSources

@Suite struct PriorityDetectorTests {
    // MARK: 1. <N> syslog prefix

    @Test(arguments: [
        ("<3>disk failed", 3),
        ("<0>kernel panic", 0),
        ("<7>debugging", 7),
        ("<13>user notice", 5),  // facility 1, severity 5
        ("<191>x", 7),
    ])
    func syslogPrefix(line: String, level: Int) {
        #expect(PriorityDetector.detect(line) == level)
    }

    @Test(arguments: [
        (#"{"level":50,"msg":"boom"}"#, 3),
        (#"{"time":1733300000,"level":30}"#, 6),
        (#"{"level":60}"#, 2),
        (#"{"level":40}"#, 4),
        (#"{"level":20}"#, 7),
        (#"{"level":10}"#, 7),
        (#"{"severity":3}"#, 3),
        (#"{"level": "50"}"#, 3),
    ])
    func aNumericLevelOfAJSONLineCounts(line: String, level: Int) {
        #expect(PriorityDetector.detect(line) == level)
    }

    @Test(arguments: [#"{"level":35}"#, #"{"level":300}"#, #"{"level":3.5}"#, #"{"time":50}"#, "level=50 plain", #"{"level":5000}"#])
    func otherNumbersAreNotLevels(line: String) {
        #expect(PriorityDetector.detect(line) == nil)
    }

    @Test func aWordLevelWinsOverANumber() {
        #expect(PriorityDetector.detect(#"{"level":30,"msg":"ERROR here"}"#) == 3)
    }

    @Test func syslogPrefixWithoutClosingBracketIsNotAPriority() {
        #expect(PriorityDetector.detect("<3 disk failed") == nil)
    }

    // MARK: 2. glog/klog prefix

    @Test(arguments: [
        ("E1125 09:05:29.123456 1 main.go:10] boom", 3),
        ("W1125 09:05:29.123456 1 main.go:10] hmm", 4),
        ("I1125 09:05:29.123456 1 main.go:10] ok", 6),
        ("F1125 09:05:29.123456 1 main.go:10] dead", 2),
    ])
    func glogPrefix(line: String, level: Int) {
        #expect(PriorityDetector.detect(line) == level)
    }

    @Test func glogLikePrefixWithOtherLetterIsNotAPriority() {
        #expect(PriorityDetector.detect("X1125 09:05:29 something") == nil)
    }

    // MARK: 3. keys

    @Test(arguments: [
        ("ts=1 level=warn msg=slow", 4),
        ("lvl=error x", 3),
        ("severity=CRITICAL disk", 2),
        ("loglevel=Debug x", 7),
        ("log_level=info x", 6),
        ("levelname=notice x", 5),
        ("LEVEL=alert", 1),
        ("level: warning something", 4),
    ])
    func keyValue(line: String, level: Int) {
        #expect(PriorityDetector.detect(line) == level)
    }

    @Test func jsonLevelKey() {
        #expect(PriorityDetector.detect(#"{"time":"x","level":"error","msg":"failed"}"#) == 3)
        #expect(PriorityDetector.detect(#"{"level": "warn"}"#) == 4)
    }

    @Test func levelWordUnderAnotherKeyIsNotAPriority() {
        #expect(PriorityDetector.detect(#"{"msg":"error"}"#) == nil)
        #expect(PriorityDetector.detect("mylevel=warn x") == nil)
    }

    // MARK: 4. brackets

    @Test(arguments: [
        ("2024-01-01 [warn] low disk", 4),
        ("[ERROR] x", 3),
        ("<error> x", 3),
        ("(debug) x", 7),
        ("[INFO ] padded", 6),
        ("[Notice] x", 5),
    ])
    func brackets(line: String, level: Int) {
        #expect(PriorityDetector.detect(line) == level)
    }

    @Test func mismatchedBracketsAreNotAPriority() {
        #expect(PriorityDetector.detect("x [warn) y") == nil)
    }

    // MARK: 5. bare upper case

    @Test(arguments: [
        ("ERROR something broke", 3),
        ("12:00 WARN slow", 4),
        ("INFO started", 6),
        ("DEBUG x=1", 7),
        ("ERR x", 3),
        ("NOTICE x", 5),
    ])
    func bareUpperCase(line: String, level: Int) {
        #expect(PriorityDetector.detect(line) == level)
    }

    // MARK: 6. capitalised with colon

    @Test(arguments: [
        ("Error: file not found", 3),
        ("Warning: deprecated", 4),
        ("Information: hello", 6),
    ])
    func capitalisedWithColon(line: String, level: Int) {
        #expect(PriorityDetector.detect(line) == level)
    }

    // MARK: mappings

    @Test func fatalAndCriticalMapToCrit() {
        #expect(PriorityDetector.detect("FATAL out of memory") == 2)
        #expect(PriorityDetector.detect("level=critical") == 2)
    }

    @Test func traceMapsToDebug() {
        #expect(PriorityDetector.detect("TRACE enter f()") == 7)
    }

    @Test func severeMapsToErr() {
        #expect(PriorityDetector.detect("SEVERE: db down") == 3)
    }

    @Test func leftmostMatchWins() {
        #expect(PriorityDetector.detect("INFO retry after ERROR") == 6)
        #expect(PriorityDetector.detect("request [error] then WARN") == 3)
    }

    // MARK: negatives

    @Test(arguments: [
        "no errors found",
        "ERRORS: 0",
        "terror alert level",
        "no error occurred",
        "warning signs in prose",
        "Information about the build",
        "Error in prose without colon",
        "error_code=5",
        "INFO_FIELD=1",
        "E11250 not glog",
        "",
        "plain text line",
    ])
    func noPriority(line: String) {
        #expect(PriorityDetector.detect(line) == nil)
    }

    @Test func onlyTheFirst256BytesAreLookedAt() {
        let padding = String(repeating: "x ", count: 200)  // 400 bytes
        #expect(PriorityDetector.detect(padding + "ERROR late") == nil)
        #expect(PriorityDetector.detect("ERROR " + padding) == 3)
    }
}

@Suite struct PriorityNameTests {
    @Test func namesAndDigitsAndAliases() {
        for (index, name) in Priority.names.enumerated() {
            #expect(Priority.level(named: name) == index)
            #expect(Priority.level(named: name.uppercased()) == index)
            #expect(Priority.level(named: String(index)) == index)
        }
        #expect(Priority.level(named: "error") == 3)
        #expect(Priority.level(named: "warn") == 4)
        #expect(Priority.level(named: "panic") == 0)
        #expect(Priority.level(named: "emergency") == 0)
        #expect(Priority.level(named: "critical") == 2)
        #expect(Priority.level(named: "information") == 6)
    }

    @Test(arguments: ["8", "-1", "03", "", "fatal", "errr"])
    func unknownNames(name: String) {
        #expect(Priority.level(named: name) == nil)
    }
}

@Suite struct PriorityDetectorWindowTests {
    @Test func aWordCutByTheWindowIsNotTakenAsWhole() {
        // "ERRORS" straddles byte 256: the window sees "ERROR", the line does not say ERROR.
        let line = String(repeating: ".", count: 252) + " ERRORS here"
        #expect(PriorityDetector.detect(line) == nil)
    }

    // MARK: The word table

    /// The packed lookup answers as the dictionary of level words did,
    /// looked up lower-cased: for every level word in every case, and for
    /// the words one letter away from each (cut short, one added before or
    /// after, one changed), which must not be taken for it.
    @Test func packedWordsAnswerAsTheDictionaryInAnyCase() {
        var candidates: Set<String> = ["requests", "served", "connection", "closed", "upstream", "timeout", "informational"]
        for word in PriorityDetector.words.keys {
            candidates.insert(word)
            candidates.insert(String(word.dropLast()))
            candidates.insert(word + "s")
            candidates.insert("x" + word)
            candidates.insert(String(word.prefix(1)) + "q" + String(word.dropFirst(2)))
        }
        for candidate in candidates where (3...11).contains(candidate.utf8.count) {
            let variants = [
                candidate, candidate.uppercased(), candidate.prefix(1).uppercased() + candidate.dropFirst(),
                String(candidate.enumerated().map { $0.offset % 2 == 0 ? Character($0.element.uppercased()) : $0.element }),
            ]
            for variant in variants {
                var bytes = variant
                let found = bytes.withUTF8 { PriorityDetector.level(ofWord: UnsafeRawBufferPointer($0)) }
                #expect(found == PriorityDetector.words[variant.lowercased()], "\(variant)")
            }
        }
    }
}
