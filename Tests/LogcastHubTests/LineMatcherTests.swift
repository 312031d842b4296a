import LogcastProtocol
import Testing

@testable import LogcastHub

@Suite struct LineMatcherTests {
    private func matcher(_ configure: (inout Filter) -> Void) throws -> LineMatcher {
        var filter = Filter()
        configure(&filter)
        return try LineMatcher(filter)
    }

    /// A hub entry is matched as its record is, for every kind of key: a
    /// filter of text keys alone reads only the entry's message (no copy of
    /// the record), the others the record; events follow the source keys.
    @Test func anEntryMatchesAsItsRecordForEveryKindOfKey() throws {
        let status = try FieldCondition.parse("status>=500")
        let filters: [(inout Filter) -> Void] = [
            { _ in },
            { $0.grep = ["disk"] },
            { $0.grep = ["DISK", "fail"] },
            { $0.regex = "^disk\\s+\\w+$" },
            { $0.exclude = ["cron"] },
            {
                $0.grep = ["disk"]
                $0.exclude = ["ok"]
            },
            {
                $0.grep = ["disk"]
                $0.priority = 0...3
            },
            {
                $0.grep = ["disk"]
                $0.sources = ["syslog"]
            },
            {
                $0.grep = ["disk"]
                $0.context = ContextWindow(before: 2, after: 2)
            },
            {
                $0.grep = ["disk"]
                $0.priority = 0...3
                $0.context = ContextWindow(before: 1, after: 0)
            },
            { $0.fields = [status] },
            {
                $0.grep = ["status"]
                $0.fields = [status]
            },
        ]
        let records = [
            TestSupport.record("disk failed", source: "syslog", priority: 3),
            TestSupport.record("DISK fail\nsecond line", source: "app", priority: 6),
            TestSupport.record("disk ok", source: "syslog"),
            TestSupport.record("cron disk", source: "syslog", priority: 2),
            TestSupport.record("status=503 disk", source: "app", priority: 3),
            TestSupport.record("", source: "app"),
            TestSupport.record("caf\u{e9} disk \u{1F600}", source: "syslog", priority: 1),
        ]
        for configure in filters {
            let m = try matcher(configure)
            for (index, record) in records.enumerated() {
                let entry = HubEntry(position: UInt64(index + 1), payload: .line(record), json: [])
                #expect(m.matches(entry) == m.matches(record), "\(m.filter) on \(record.message)")
            }
            for source in ["syslog", "app"] {
                let event = SourceEvent(source: source, kind: .rotated)
                #expect(m.matches(HubEntry(position: 1, payload: .event(event), json: [])) == m.matches(event))
            }
        }
    }

    @Test func emptyFilterPassesEverything() throws {
        let m = try LineMatcher(Filter())
        #expect(m.matches(TestSupport.record("anything", source: "x")))
        #expect(m.matches(SourceEvent(source: "x", kind: .rotated)))
    }

    @Test func keysAreCombinedWithAnd() throws {
        let m = try matcher {
            $0.sources = ["syslog"]
            $0.grep = ["disk"]
            $0.priority = 0...3
        }
        #expect(m.matches(TestSupport.record("disk failed", source: "syslog", priority: 3)))
        #expect(!m.matches(TestSupport.record("disk failed", source: "other", priority: 3)))
        #expect(!m.matches(TestSupport.record("net failed", source: "syslog", priority: 3)))
        #expect(!m.matches(TestSupport.record("disk failed", source: "syslog", priority: 6)))
    }

    @Test func sourceValuesAreAlternatives() throws {
        let m = try matcher { $0.sources = ["a", "b"] }
        #expect(m.matches(TestSupport.record("x", source: "a")))
        #expect(m.matches(TestSupport.record("x", source: "b")))
        #expect(!m.matches(TestSupport.record("x", source: "c")))
    }

    @Test func unitValuesAreAlternativesAndLinesWithoutUnitAreRejected() throws {
        let m = try matcher { $0.units = ["nginx.service", "sshd.service"] }
        #expect(m.matches(TestSupport.record("x", unit: "nginx.service")))
        #expect(m.matches(TestSupport.record("x", unit: "sshd.service")))
        #expect(!m.matches(TestSupport.record("x", unit: "cron.service")))
        #expect(!m.matches(TestSupport.record("x", unit: nil)))
    }

    @Test func identifierValuesAreAlternatives() throws {
        let m = try matcher { $0.identifiers = ["sshd", "sudo"] }
        #expect(m.matches(TestSupport.record("x", identifier: "sudo")))
        #expect(!m.matches(TestSupport.record("x", identifier: "cron")))
        #expect(!m.matches(TestSupport.record("x")))
    }

    @Test func hostValuesAreAlternatives() throws {
        let m = try matcher { $0.hosts = ["web1", "web2"] }
        #expect(m.matches(TestSupport.record("x", host: "web2")))
        #expect(!m.matches(TestSupport.record("x", host: "db1")))
        #expect(!m.matches(TestSupport.record("x")))
    }

    @Test func everyGrepMustMatch() throws {
        let m = try matcher { $0.grep = ["disk", "full"] }
        #expect(m.matches(TestSupport.record("DISK is full")))
        #expect(!m.matches(TestSupport.record("disk is empty")))
        #expect(!m.matches(TestSupport.record("memory full")))
    }

    @Test func excludeDropsMatchingLines() throws {
        let m = try matcher {
            $0.grep = ["get"]
            $0.exclude = ["healthz", "metrics"]
        }
        #expect(m.matches(TestSupport.record("GET /index")))
        #expect(!m.matches(TestSupport.record("GET /healthz")))
        #expect(!m.matches(TestSupport.record("GET /metrics")))
    }

    @Test func excludeAloneDropsLines() throws {
        let m = try matcher { $0.exclude = ["noise"] }
        #expect(m.matches(TestSupport.record("signal")))
        #expect(!m.matches(TestSupport.record("NOISE here")))
    }

    @Test func regexMustMatch() throws {
        let m = try matcher { $0.regex = "timeout|refused" }
        #expect(m.matches(TestSupport.record("connection REFUSED")))
        #expect(!m.matches(TestSupport.record("connection reset")))
    }

    @Test func priorityFilterRejectsLinesWithoutPriority() throws {
        let m = try matcher { $0.priority = 3...4 }
        #expect(m.matches(TestSupport.record("x", priority: 3)))
        #expect(m.matches(TestSupport.record("x", priority: 4)))
        #expect(!m.matches(TestSupport.record("x", priority: 2)))
        #expect(!m.matches(TestSupport.record("x", priority: 5)))
        #expect(!m.matches(TestSupport.record("x", priority: nil)))
    }

    @Test func sourceEventsAreFilteredOnlyBySource() throws {
        let m = try matcher {
            $0.sources = ["a"]
            $0.grep = ["never"]
            $0.priority = 0...0
        }
        #expect(m.matches(SourceEvent(source: "a", kind: .truncated)))
        #expect(!m.matches(SourceEvent(source: "b", kind: .truncated)))
    }

    @Test func badRegexThrowsFilterErrorWithOffset() throws {
        var filter = Filter()
        filter.regex = "a(b"
        do throws(FilterError) {
            _ = try LineMatcher(filter)
            Issue.record("expected a FilterError")
        } catch {
            #expect(error.error.hasPrefix("bad regex:"))
            #expect(error.error.contains("at offset 3"))
            #expect(error.hint.contains("PCRE2"))
        }
    }

    @Test func matcherKeepsItsFilter() throws {
        var filter = Filter()
        filter.grep = ["x"]
        #expect(try LineMatcher(filter).filter == filter)
    }
}
