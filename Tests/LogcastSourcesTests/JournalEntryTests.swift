import Foundation
import LogcastHub
import LogcastProtocol
import Testing

@testable import LogcastSources

@Suite struct JournalEntryTests {
    private func entry(_ items: String...) -> JournalEntry {
        var entry = JournalEntry()
        for item in items { entry.add(item) }
        return entry
    }

    @Test func everyTextFieldButTheMessageIsKeptInOrder() throws {
        var e = entry("MESSAGE=hello", "_PID=42", "CUSTOM_FIELD=a=b", "MULTI=one\ntwo", "REPEAT=1", "REPEAT=2", "TABBED=a\tb")
        e.add("BINARY=a\u{1}b")
        e.add("CR=a\rb")
        var invalid = Array("BAD_UTF8=".utf8) + [0xFF, 0xFE]
        invalid.withUnsafeMutableBytes { e.add(UnsafeRawBufferPointer($0)) }
        e.add("UNICODE=ünï")
        let record = e.record(source: "journal", timestamp: Timestamp(microseconds: 5), cursor: nil)
        let fields = try #require(record.fields)
        #expect(
            fields.pairs.map { "\($0.name)=\($0.value)" } == [
                "_PID=42", "CUSTOM_FIELD=a=b", "MULTI=one\ntwo", "REPEAT=1", "REPEAT=2", "TABBED=a\tb", "UNICODE=ünï",
            ]
        )
        #expect(record.pid == 42, "the protocol fields are still taken")
        #expect(entry("MESSAGE=only").record(source: "j", timestamp: Timestamp(microseconds: 0), cursor: nil).fields == nil)
    }

    @Test func collectsTheProtocolFields() {
        let e = entry(
            "MESSAGE=Started nginx",
            "PRIORITY=6",
            "_SYSTEMD_UNIT=nginx.service",
            "SYSLOG_IDENTIFIER=nginx",
            "_PID=42",
            "_HOSTNAME=web1",
            "_UID=33",
            "_BOOT_ID=abc",
            "_SYSTEMD_INVOCATION_ID=inv",
            "CODE_FILE=ignored.c"
        )
        let record = e.record(source: "journal", timestamp: Timestamp(microseconds: 5), cursor: "s=1")
        #expect(record.message == "Started nginx")
        #expect(record.priority == 6)
        #expect(record.unit == "nginx.service")
        #expect(record.identifier == "nginx")
        #expect(record.pid == 42)
        #expect(record.host == "web1")
        #expect(record.cursor == "s=1")
        #expect(record.timestamp.microseconds == 5)
        #expect(record.path == nil)
        #expect(e.uid == 33 && e.bootID == "abc" && e.invocationID == "inv")
    }

    @Test func valuesMayContainEqualsSignsAndNewlines() {
        let e = entry("MESSAGE=a=b\nsecond line")
        #expect(e.record(source: "j", timestamp: Timestamp(microseconds: 0), cursor: nil).message == "a=b\nsecond line")
    }

    @Test func binaryMessagesBecomeValidUTF8() {
        var e = JournalEntry()
        var item = Array("MESSAGE=bin ".utf8) + [0xFF, 0x00, 0xC3] + Array("end".utf8)
        item.withUnsafeMutableBytes { e.add(UnsafeRawBufferPointer($0)) }
        let message = e.record(source: "j", timestamp: Timestamp(microseconds: 0), cursor: nil).message
        #expect(message == "bin \u{FFFD}\u{0}\u{FFFD}end")
    }

    @Test func aMissingMessageIsEmptyAndUnknownFieldsAreOmitted() {
        let record = entry("FOO=bar").record(source: "j", timestamp: Timestamp(microseconds: 0), cursor: nil)
        #expect(record.message == "")
        #expect(record.priority == nil && record.unit == nil && record.identifier == nil && record.pid == nil && record.host == nil)
    }

    @Test(arguments: ["PRIORITY=8", "PRIORITY=-1", "PRIORITY=warning", "PRIORITY="])
    func outOfRangePrioritiesAreUnknown(_ item: String) {
        #expect(entry(item).priority == nil)
    }

    @Test func itemsWithoutEqualsOrWithPrefixNamesAreIgnored() {
        let e = entry("MESSAGE", "MESSAGE_ID=1234", "XMESSAGE=no", "_PIDX=7")
        #expect(e.message == nil && e.pid == nil)
    }

    @Test func theLastValueOfARepeatedFieldWins() {
        #expect(entry("PRIORITY=3", "PRIORITY=5").priority == 5)
    }

    @Test func userUnitIsTheUnitWhenNoSystemUnit() {
        let e = entry("_SYSTEMD_USER_UNIT=app.service")
        #expect(e.unit == "app.service")
        #expect(e.relatedUnit == nil)
        let both = entry("_SYSTEMD_UNIT=user@1000.service", "_SYSTEMD_USER_UNIT=app.service")
        #expect(both.unit == "user@1000.service")
        #expect(both.relatedUnit == "app.service")
    }

    @Test func relatedUnitFollowsJournalctlRules() {
        #expect(entry("_PID=1", "UNIT=nginx.service", "_SYSTEMD_UNIT=init.scope").relatedUnit == "nginx.service")
        #expect(entry("_PID=7", "UNIT=nginx.service").relatedUnit == nil, "only PID 1 speaks for a unit with UNIT=")
        #expect(entry("_UID=0", "OBJECT_SYSTEMD_UNIT=cron.service").relatedUnit == "cron.service")
        #expect(entry("_UID=1000", "OBJECT_SYSTEMD_UNIT=cron.service").relatedUnit == nil, "only root daemons")
        #expect(entry("_UID=0", "COREDUMP_UNIT=app.service").relatedUnit == "app.service")
    }

    @Test func unitFiltersMatchTheRelatedUnit() throws {
        var filter = Filter()
        filter.units = ["nginx.service"]
        let matcher = try LineMatcher(filter)
        let aboutNginx = entry("MESSAGE=Started nginx", "_PID=1", "UNIT=nginx.service", "_SYSTEMD_UNIT=init.scope")
        let fromCron = entry("MESSAGE=job", "_PID=9", "_SYSTEMD_UNIT=cron.service")
        #expect(matcher.matches(aboutNginx.record(source: "j", timestamp: Timestamp(microseconds: 0), cursor: nil)))
        #expect(!matcher.matches(fromCron.record(source: "j", timestamp: Timestamp(microseconds: 0), cursor: nil)))
    }
}

@Suite struct OwnEntryRuleTests {
    let rule = OwnEntryRule(bootID: "b00t", pid: 1, command: "logcast", startedAtMicroseconds: 1_000)

    func entry(pid: Int, command: String?, boot: String = "b00t", invocation: String? = nil) -> JournalEntry {
        var entry = JournalEntry()
        entry.add("_BOOT_ID=\(boot)")
        entry.add("_PID=\(pid)")
        if let command { entry.add("_COMM=\(command)") }
        if let invocation { entry.add("_SYSTEMD_INVOCATION_ID=\(invocation)") }
        return entry
    }

    @Test func ourOwnEntriesAreRecognised() {
        #expect(rule.isOwn(entry(pid: 1, command: "logcast"), realtime: 2_000))
    }

    /// logcast as PID 1 in a container reading the host's journal (same boot id).
    @Test func theHostsPID1IsNotUs() {
        #expect(!rule.isOwn(entry(pid: 1, command: "systemd"), realtime: 2_000))
        // Without `_COMM` (not written through journald) the rest decides.
        #expect(rule.isOwn(entry(pid: 1, command: nil), realtime: 2_000))
    }

    @Test func entriesFromBeforeOurStartOrAnotherBootAreNotOurs() {
        #expect(!rule.isOwn(entry(pid: 1, command: "logcast"), realtime: 999))
        #expect(!rule.isOwn(entry(pid: 1, command: "logcast", boot: "other"), realtime: 2_000))
    }

    /// An INVOCATION_ID inherited from a parent unit is not ours.
    @Test func aSharedInvocationIDIsNotEnough() {
        #expect(!rule.isOwn(entry(pid: 77, command: "bash", invocation: "inv"), realtime: 2_000))
    }

    @Test func thisProcessReadsItself() {
        let current = OwnEntryRule.current
        #expect(current.pid == Int(getpid()))
        #expect(current.command?.isEmpty == false)
        #expect(current.startedAtMicroseconds <= Int64(Date().timeIntervalSince1970 * 1_000_000))
        #expect(current.startedAtMicroseconds > 1_500_000_000_000_000)
    }
}
