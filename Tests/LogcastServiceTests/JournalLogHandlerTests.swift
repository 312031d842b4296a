import Logging
import Testing

@testable import LogcastService

@Suite struct JournalLogHandlerTests {
    @Test func metadataKeysBecomeJournalFieldNames() {
        #expect(JournalLogHandler.fieldName("address") == "ADDRESS")
        #expect(JournalLogHandler.fieldName("remote-address") == "REMOTE_ADDRESS")
        #expect(JournalLogHandler.fieldName("ünï.cödé") == "LOGCAST__N__C_D_")
        // Trusted (underscore), digit-led and reserved names are moved out of the journal's own.
        #expect(JournalLogHandler.fieldName("_pid") == "LOGCAST__PID")
        #expect(JournalLogHandler.fieldName("1st") == "LOGCAST_1ST")
        #expect(JournalLogHandler.fieldName("message") == "LOGCAST_MESSAGE")
        #expect(JournalLogHandler.fieldName("priority") == "LOGCAST_PRIORITY")
        #expect(JournalLogHandler.fieldName("") == "LOGCAST_")
        #expect(JournalLogHandler.fieldName(String(repeating: "a", count: 100)).utf8.count == 64)
    }

    @Test func levelsAreSyslogPriorities() {
        #expect(Logger.Level.allCases.map(JournalLogHandler.priority) == [7, 7, 6, 5, 4, 3, 2])
    }

    @Test func anEntryCarriesTextPriorityLocationAndEachKeyOnce() {
        var handler = JournalLogHandler(label: "logcast", logLevel: .info, identifier: "logcast")
        handler[metadataKey: "source"] = "app"
        let fields = handler.fields(
            level: .warning,
            message: "source error",
            metadata: ["error": "gone", "Error": "twice", "message": "not the message"],
            file: "LogcastSources/Files/FileTailer.swift",
            function: "recordError(_:)",
            line: 805
        )
        #expect(fields.first == "MESSAGE=source error Error=twice error=gone message=not the message source=app")
        #expect(fields.contains("PRIORITY=4") && fields.contains("SYSLOG_IDENTIFIER=logcast") && fields.contains("CODE_LINE=805"))
        #expect(fields.contains("ERROR=twice") && fields.contains("ERROR_=gone"))
        #expect(fields.contains("LOGCAST_MESSAGE=not the message") && fields.contains("SOURCE=app"))
        #expect(Set(fields.map { $0.prefix { $0 != "=" } }).count == fields.count)
    }

    @Test func stderrIsTheJournalOnlyWhenTheVariableNamesIt() {
        #expect(!JournalLogHandler.stderrIsJournal(environment: [:]))
        #expect(!JournalLogHandler.stderrIsJournal(environment: ["JOURNAL_STREAM": "garbage"]))
        #expect(!JournalLogHandler.stderrIsJournal(environment: ["JOURNAL_STREAM": "1:2"]))
    }
}
