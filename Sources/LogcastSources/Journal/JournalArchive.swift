import CSystemd
import LogcastHub
import LogcastProtocol

#if canImport(Glibc)
import Glibc
#endif

/// The journal as a ``SourceArchive``: a time range read straight from
/// sd-journal (as `journalctl -S ... -U ...` reads it), with the source's
/// unit matches, and without logcast's own entries.
///
/// Each read opens the journal on the caller's thread and closes it again:
/// sd-journal handles are not shared between threads, and reads are rare.
public struct JournalArchive: SourceArchive {
    public let source: String
    let location: JournalTailer.Location
    let units: [String]
    let maxMessageBytes: Int

    public init(configuration: JournalTailer.Configuration) {
        source = configuration.name
        location = configuration.location
        units = configuration.units
        maxMessageBytes = configuration.maxMessageBytes
    }

    public func lines(
        since: Timestamp,
        until: Timestamp?,
        before: Timestamp,
        limit: Int,
        matching: (LogRecord) -> Bool,
        deadline: ContinuousClock.Instant
    ) -> (lines: [LogRecord], complete: Bool) {
        guard limit > 0, since < before else { return ([], true) }
        let (opened, result) = JournalTailer.open(location)
        guard result >= 0, let journal = opened else { return ([], true) }
        defer { sd_journal_close(journal) }
        _ = sd_journal_set_data_threshold(journal, maxMessageBytes)
        JournalTailer.addUnitMatches(journal, units: units)
        guard sd_journal_seek_realtime_usec(journal, UInt64(clamping: max(0, since.microseconds))) >= 0 else { return ([], true) }
        let own = OwnEntryRule.current
        var out: [LogRecord] = []
        var examined = 0
        while sd_journal_next(journal) > 0 {
            examined += 1
            if examined % 256 == 0, ContinuousClock.now > deadline { return (out, false) }
            let read = JournalTailer.readEntry(journal)
            guard let realtime = read.realtime else { continue }
            let stamp = Timestamp(microseconds: realtime)
            // Entries of several files interleave by time; one out of order is skipped, not an end.
            if stamp < since { continue }
            if stamp >= before || (until.map { $0 < stamp } ?? false) { break }
            if own.isOwn(read.entry, realtime: realtime) { continue }
            let record = read.entry.record(source: source, timestamp: stamp, cursor: read.cursor)
            guard matching(record) else { continue }
            out.append(record)
            if out.count == limit { return (out, false) }
        }
        return (out, true)
    }
}
