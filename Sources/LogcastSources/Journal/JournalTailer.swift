import CSystemd
import Foundation
import LogcastHub
import LogcastProtocol
import Logging
import ServiceLifecycle

#if canImport(Glibc)
import Glibc
#endif

/// Follows a systemd journal through libsystemd's sd-journal API, like
/// `journalctl -f`, and publishes one line per entry.
///
/// The `sd_journal` handle is owned by one dedicated thread for its whole
/// life (sd-journal is not thread-safe, and Swift tasks hop threads). That
/// thread blocks in `poll(2)` on the journal's inotify descriptor and a
/// ``WakeSignal``, so shutdown wakes it at once; it also wakes every
/// ``Configuration/pollInterval`` to retry a journal that is missing or
/// unreadable and to read entries that came without a notification.
///
/// Entries are published in journal order, each once: after an error or a
/// journal that went away, reading resumes from the cursor of the last
/// entry read. Journal file rotation and vacuuming are handled by sd-journal
/// (`SD_JOURNAL_INVALIDATE`) and are invisible to subscribers.
///
/// The service's own log output reaches the local journal too; entries
/// written by this process (``OwnEntryRule``: same boot, `_PID`, `_COMM`,
/// after its start) are skipped so they never loop back into the stream.
public final class JournalTailer: Service, Sendable {
    /// Which journal to read.
    public enum Location: Sendable, Equatable {
        /// The local system journal (and the current user's), as `journalctl`.
        case local
        /// The journal files in a directory, as `journalctl --directory`.
        case directory(String)
        /// These journal files, as `journalctl --file`.
        case files([String])

        /// How it appears in `/api/v1/sources` and logs.
        public var description: String {
            switch self {
            case .local: "system journal"
            case .directory(let path): path
            case .files(let paths): paths.joined(separator: " ")
            }
        }

        /// The places read, for `/api/v1/sources`.
        public var paths: [String] {
            switch self {
            case .local: JournalTailer.localJournalRoots
            case .directory(let path): [path]
            case .files(let paths): paths
            }
        }
    }

    public struct Configuration: Sendable {
        public var name: String
        public var location: Location
        /// Read only entries of these units (normalised, `nginx.service`),
        /// matched as `journalctl -u` matches them. Empty: every entry.
        public var units: [String] = []
        /// Entries already in the journal loaded at start (`journalctl -n`).
        public var initialLines = 10
        /// How often a missing or unreadable journal is retried, and the
        /// longest wait between reads.
        public var pollInterval: Duration = .seconds(1)
        /// Longer `MESSAGE` fields are cut to this many bytes.
        public var maxMessageBytes = 64 * 1024
        /// The cursor of the last entry published by the last run (from the
        /// state directory): reading continues after it instead of at the
        /// last `initialLines` entries.
        public var resumeCursor: String?
        /// At most this many bytes of messages written while logcast was
        /// down are read on a resume (the newest); the older rest is skipped
        /// with a `downtime` gap.
        public var maxCatchUpBytes: Int64 = 256 << 20
        /// Entries handed to the hub at once while catching up.
        public var batchSize = 512

        public init(name: String, location: Location) {
            self.name = name
            self.location = location
        }
    }

    /// Where journald keeps the system journal (volatile, then persistent).
    public static let localJournalRoots = ["/run/log/journal", "/var/log/journal"]

    public let configuration: Configuration
    private let sink: SourceSink
    private let logger: Logger
    private let wake = WakeSignal()
    private let reopenRequest = WakeSignal()

    public init(configuration: Configuration, sink: SourceSink, logger: Logger) {
        self.configuration = configuration
        self.sink = sink
        self.logger = logger
    }

    /// Runs until graceful shutdown or cancellation; the thread stops within one poll.
    public func run() async throws {
        await runOnDedicatedThread(named: "logcast-journal-\(configuration.name)", wake: wake) { [self] in
            var loop = JournalTailLoop(configuration: configuration, sink: sink, logger: logger, wakeFD: wake.fd, reopenRequest: reopenRequest)
            loop.run()
        }
    }

    /// Closes and reopens the journal (SIGHUP), continuing after the last
    /// entry read; subscribers get a `reopened` event.
    public func reopen() {
        reopenRequest.signal()
    }

    /// Why the local system journal cannot be read by this process, or nil
    /// when at least one system journal file is readable.
    public static func localJournalProblem() -> (message: String, isMissing: Bool)? {
        var found: [String] = []
        for root in localJournalRoots {
            let machines = (try? FileManager.default.contentsOfDirectory(atPath: root)) ?? []
            for machine in machines {
                let directory = root + "/" + machine
                let files = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
                for file in files where file.hasPrefix("system") && file.hasSuffix(".journal") {
                    let path = directory + "/" + file
                    if access(path, R_OK) == 0 { return nil }
                    found.append(path)
                }
            }
        }
        if found.isEmpty {
            return ("no system journal under \(localJournalRoots.joined(separator: " or ")) (is systemd-journald running?)", true)
        }
        return ("the system journal (\(found[0])) is not readable by uid \(getuid()): \(groupHint)", false)
    }

    static let groupHint =
        "run logcast as a member of the systemd-journal (or adm) group, e.g. 'usermod -aG systemd-journal USER' or "
        + "SupplementaryGroups=systemd-journal in its unit"
}

extension JournalTailer {
    /// Opens the journal at `location`: the handle, or the negative errno.
    static func open(_ location: Location) -> (OpaquePointer?, Int32) {
        var handle: OpaquePointer?
        let result: Int32
        switch location {
        case .local:
            result = sd_journal_open(&handle, Int32(SD_JOURNAL_LOCAL_ONLY))
        case .directory(let path):
            result = sd_journal_open_directory(&handle, path, 0)
        case .files(let paths):
            var cStrings = paths.map { strdup($0) } + [nil]
            defer { for string in cStrings { free(string) } }
            result = cStrings.withUnsafeMutableBufferPointer { buffer in
                buffer.baseAddress!.withMemoryRebound(to: UnsafePointer<CChar>?.self, capacity: buffer.count) {
                    sd_journal_open_files(&handle, $0, 0)
                }
            }
        }
        return (handle, result)
    }

    /// `journalctl -u` rules: the unit's own entries, PID 1's entries about
    /// it, and root daemons' and core dumps' entries about it.
    static func addUnitMatches(_ journal: OpaquePointer, units: [String]) {
        func match(_ text: String) { _ = sd_journal_add_match(journal, text, 0) }
        var first = true
        for unit in units {
            let terms = [
                ["_SYSTEMD_UNIT=\(unit)"],
                ["_PID=1", "UNIT=\(unit)"],
                ["_UID=0", "OBJECT_SYSTEMD_UNIT=\(unit)"],
                ["_UID=0", "COREDUMP_UNIT=\(unit)"],
            ]
            for term in terms {
                if !first { _ = sd_journal_add_disjunction(journal) }
                first = false
                term.forEach(match)
            }
        }
    }

    /// The fields, realtime stamp and cursor of the entry under the read pointer.
    static func readEntry(_ journal: OpaquePointer) -> (entry: JournalEntry, realtime: Int64?, cursor: String?) {
        var entry = JournalEntry()
        sd_journal_restart_data(journal)
        var data: UnsafeRawPointer?
        var length = 0
        while sd_journal_enumerate_available_data(journal, &data, &length) > 0 {
            if let data { entry.add(UnsafeRawBufferPointer(start: data, count: length)) }
        }
        var realtime: UInt64 = 0
        let hasRealtime = sd_journal_get_realtime_usec(journal, &realtime) >= 0
        return (entry, hasRealtime ? Int64(clamping: realtime) : nil, JournalTailLoop.cursor(journal))
    }
}

/// The loop of ``JournalTailer``'s thread. Not Sendable: it and its
/// `sd_journal` handle live on that thread.
struct JournalTailLoop {
    let configuration: JournalTailer.Configuration
    let sink: SourceSink
    let logger: Logger
    let wakeFD: Int32
    let reopenRequest: WakeSignal

    var journal: OpaquePointer?
    /// The cursor of the last entry read (published or skipped as our own).
    var lastCursor: String?
    /// The current entry is the first to read (after `previous_skip`).
    var currentIsPending = false
    /// Skip the entry at this cursor: it was read before a reopen.
    var skipCursor: String?
    var hasStarted = false
    var state: SourceStatus.State = .waiting
    var lastError: String?
    var linesRead: UInt64 = 0
    var bytesRead: UInt64 = 0
    var events: [String: UInt64] = [:]

    let own = OwnEntryRule.current

    init(configuration: JournalTailer.Configuration, sink: SourceSink, logger: Logger, wakeFD: Int32, reopenRequest: WakeSignal) {
        self.configuration = configuration
        self.sink = sink
        self.logger = logger
        self.wakeFD = wakeFD
        self.reopenRequest = reopenRequest
        self.lastCursor = configuration.resumeCursor
    }

    var metadata: Logger.Metadata { ["source": "\(configuration.name)", "journal": "\(configuration.location.description)"] }

    mutating func run() {
        while true {
            if journal == nil { open() }
            if journal != nil { readAvailable() }
            publishStatus()
            if !waitForChange() { break }
        }
        closeJournal()
        state = .stopped
        publishStatus()
    }

    // MARK: Opening

    mutating func open() {
        if let problem = accessProblem() {
            if problem.isMissing {
                setState(.waiting, error: problem.message)
            } else {
                setState(.failing, error: problem.message)
            }
            hasStarted = true
            return
        }
        let (handle, result) = JournalTailer.open(configuration.location)
        guard result >= 0, let handle else {
            setState(.failing, error: "cannot open the journal \(configuration.location.description): \(Self.errorText(result))")
            hasStarted = true
            return
        }
        _ = sd_journal_set_data_threshold(handle, configuration.maxMessageBytes)
        JournalTailer.addUnitMatches(handle, units: configuration.units)
        position(handle)
        journal = handle

        let previous = state
        if hasStarted {
            let kind: SourceEvent.Kind = previous == .waiting ? .created : .reopened
            events[kind.rawValue, default: 0] += 1
            sink.event(SourceEvent(source: configuration.name, kind: kind, path: configuration.location.paths.first))
            logger.info("source event", metadata: metadata.merging(["event": "\(kind.rawValue)"]) { $1 })
        }
        hasStarted = true
        setState(.following, error: nil)
    }

    /// Checks what sd-journal would silently skip: a missing or unreadable
    /// directory or file, and a system journal this user may not read.
    func accessProblem() -> (message: String, isMissing: Bool)? {
        switch configuration.location {
        case .local:
            return JournalTailer.localJournalProblem()
        case .directory(let path):
            var info = stat()
            if stat(path, &info) != 0 {
                let code = errno
                if code == ENOENT { return ("journal directory \(path) does not exist (yet); waiting for it", true) }
                let hint = code == EACCES ? "; \(JournalTailer.groupHint)" : ""
                return ("cannot read journal directory \(path): \(Self.errorText(-code))\(hint)", false)
            }
            if (info.st_mode & S_IFMT) != S_IFDIR {
                return ("\(path) is not a directory; give a journal file with --journal-file", false)
            }
            if access(path, R_OK | X_OK) != 0 {
                return ("cannot read journal directory \(path): \(Self.errorText(-errno)); \(JournalTailer.groupHint)", false)
            }
            return nil
        case .files(let paths):
            for path in paths {
                if access(path, F_OK) != 0 { return ("journal file \(path) does not exist (yet); waiting for it", true) }
                if access(path, R_OK) != 0 {
                    return ("cannot read journal file \(path): \(Self.errorText(-errno)); \(JournalTailer.groupHint)", false)
                }
            }
            return nil
        }
    }

    /// Where reading starts: after the last entry read (a reopen); the last
    /// `initialLines` entries (start); or the beginning (a journal that
    /// appeared after start: all of it is new).
    mutating func position(_ journal: OpaquePointer) {
        currentIsPending = false
        skipCursor = nil
        if let lastCursor {
            if sd_journal_seek_cursor(journal, lastCursor) >= 0 {
                skipCursor = lastCursor
                if !hasStarted, configuration.resumeCursor != nil { boundCatchUp(journal, after: lastCursor) }
                return
            }
        }
        if hasStarted {
            _ = sd_journal_seek_head(journal)
            return
        }
        _ = sd_journal_seek_tail(journal)
        if configuration.initialLines > 0 {
            if sd_journal_previous_skip(journal, UInt64(configuration.initialLines)) > 0 {
                currentIsPending = true
                return
            }
        } else if sd_journal_previous(journal) > 0 {
            // On the last entry: next() returns only entries that come later.
            // It counts as read, so a reopen before the first new entry
            // continues from here instead of replaying the journal from its head.
            var cursor: UnsafeMutablePointer<CChar>?
            if sd_journal_get_cursor(journal, &cursor) >= 0, let cursor {
                lastCursor = String(cString: cursor)
                free(cursor)
            }
            return
        }
        // An empty journal: everything that arrives is new.
        _ = sd_journal_seek_head(journal)
    }

    /// Bounds a resume to the newest ``JournalTailer/Configuration/maxCatchUpBytes``
    /// of messages after `cursor` (the read pointer is there): walks back
    /// from the tail to the saved entry (or its time, if it was vacuumed),
    /// adding up message sizes, and when they are over the budget starts at
    /// the oldest entry within it, with a `downtime` gap for the rest.
    mutating func boundCatchUp(_ journal: OpaquePointer, after cursor: String) {
        var savedTime: UInt64 = 0
        guard sd_journal_next(journal) > 0, sd_journal_get_realtime_usec(journal, &savedTime) >= 0 else {
            _ = sd_journal_seek_cursor(journal, cursor)
            return
        }
        let budget = configuration.maxCatchUpBytes
        var kept: Int64 = 0
        var skipped: Int64 = 0
        var oldestKept: String?
        _ = sd_journal_seek_tail(journal)
        while sd_journal_previous(journal) > 0 {
            if sd_journal_test_cursor(journal, cursor) > 0 { break }
            var time: UInt64 = 0
            if sd_journal_get_realtime_usec(journal, &time) >= 0, time < savedTime { break }
            var data: UnsafeRawPointer?
            var length = 0
            let size = sd_journal_get_data(journal, "MESSAGE", &data, &length) >= 0 ? Int64(max(0, length - 8)) : 0
            if skipped == 0, kept + size <= budget {
                kept += size
                oldestKept = Self.cursor(journal)
            } else {
                skipped += size
            }
        }
        guard skipped > 0 else {
            _ = sd_journal_seek_cursor(journal, cursor)
            return
        }
        skipCursor = nil
        if let oldestKept, sd_journal_seek_cursor(journal, oldestKept) >= 0, sd_journal_next(journal) > 0 {
            currentIsPending = true
        } else {
            // Not even the newest entry fits: continue after it.
            _ = sd_journal_seek_tail(journal)
            if sd_journal_previous(journal) > 0 { lastCursor = Self.cursor(journal) }
        }
        events[SourceEvent.Kind.downtime.rawValue, default: 0] += 1
        sink.event(SourceEvent(source: configuration.name, kind: .downtime, path: configuration.location.paths.first, skippedBytes: skipped))
        logger.warning(
            "more was written to the journal while logcast was down than it catches up on; the oldest of it is skipped",
            metadata: metadata.merging(["skipped_bytes": "\(skipped)", "max_catch_up_bytes": "\(budget)"]) { $1 }
        )
    }

    /// The cursor of the entry under the read pointer.
    static func cursor(_ journal: OpaquePointer) -> String? {
        var pointer: UnsafeMutablePointer<CChar>?
        guard sd_journal_get_cursor(journal, &pointer) >= 0, let pointer else { return nil }
        defer { free(pointer) }
        return String(cString: pointer)
    }

    mutating func closeJournal() {
        if let journal { sd_journal_close(journal) }
        journal = nil
    }

    // MARK: Reading

    /// Reads every entry available now, publishing in batches.
    mutating func readAvailable() {
        guard let journal else { return }
        var batch: [LogRecord] = []
        batch.reserveCapacity(min(configuration.batchSize, 64))
        func flush() {
            if !batch.isEmpty {
                sink.lines(batch, batch.last?.cursor.map { .journal(cursor: $0) })
                batch.removeAll(keepingCapacity: true)
            }
        }
        if currentIsPending {
            currentIsPending = false
            if let record = readCurrent(journal) { batch.append(record) }
        }
        while true {
            let result = sd_journal_next(journal)
            if result == 0 { break }
            if result < 0 {
                flush()
                fail("reading the journal failed: \(Self.errorText(result)); reopening after the last entry read")
                return
            }
            if let skip = skipCursor {
                skipCursor = nil
                if sd_journal_test_cursor(journal, skip) > 0 { continue }
            }
            if let record = readCurrent(journal) { batch.append(record) }
            if batch.count >= configuration.batchSize {
                flush()
                publishStatus()
            }
        }
        flush()
    }

    /// How often an entry without MESSAGE is read again (1 ms apart) before it is taken as it is.
    static let incompleteEntryRetries = 5

    /// The entry under the read pointer as a line, or nil when it is logcast's own.
    mutating func readCurrent(_ journal: OpaquePointer) -> LogRecord? {
        var read = JournalTailer.readEntry(journal)
        // An entry read while its writer is still appending it (another process,
        // through the shared mapping) can show up before its data objects are
        // complete; sd-journal then skips them as bad, and MESSAGE is missing.
        // Measured: about 1 in 100,000 entries appended at full speed through
        // systemd-journal-remote. Reading it again a moment later gets the whole
        // entry; one that still has no MESSAGE after that is taken as it is.
        var retries = 0
        while read.entry.message == nil, retries < Self.incompleteEntryRetries {
            retries += 1
            usleep(1000)
            read = JournalTailer.readEntry(journal)
        }
        if let cursor = read.cursor { lastCursor = cursor }
        if own.isOwn(read.entry, realtime: read.realtime ?? Int64.max) { return nil }
        let timestamp = read.realtime.map { Timestamp(microseconds: $0) } ?? Timestamp.now()
        let record = read.entry.record(source: configuration.name, timestamp: timestamp, cursor: read.cursor)
        linesRead += 1
        bytesRead += UInt64(read.entry.message?.count ?? 0)
        return record
    }

    // MARK: Waiting

    /// Blocks until the journal changes, the poll interval passes, or the
    /// wake signal fires (then returns false).
    mutating func waitForChange() -> Bool {
        var fds = [
            pollfd(fd: wakeFD, events: Int16(POLLIN), revents: 0),
            pollfd(fd: reopenRequest.fd, events: Int16(POLLIN), revents: 0),
        ]
        var timeout = Int32(
            configuration.pollInterval.components.seconds * 1000
                + configuration.pollInterval.components.attoseconds / 1_000_000_000_000_000
        )
        if let journal {
            let fd = sd_journal_get_fd(journal)
            if fd >= 0 {
                fds.append(pollfd(fd: fd, events: Int16(truncatingIfNeeded: sd_journal_get_events(journal)), revents: 0))
            }
            var deadline: UInt64 = 0
            if sd_journal_get_timeout(journal, &deadline) >= 0, deadline != UInt64.max {
                var now = timespec()
                clock_gettime(CLOCK_MONOTONIC, &now)
                let nowMicros = UInt64(now.tv_sec) * 1_000_000 + UInt64(now.tv_nsec) / 1000
                let wait = deadline > nowMicros ? (deadline - nowMicros + 999) / 1000 : 0
                timeout = min(timeout, Int32(clamping: wait))
            }
        }
        let ready = poll(&fds, nfds_t(fds.count), timeout)
        if ready < 0 && errno != EINTR { return false }
        if fds[0].revents != 0 { return false }
        if fds[1].revents != 0 {
            reopenRequest.drain()
            if journal != nil {
                // Read what is there, then reopen after the last entry read.
                readAvailable()
                closeJournal()
                logger.info("reopening the journal (reload)", metadata: metadata)
                // open() reports `reopened`: the source was following before.
            }
            return true
        }
        if let journal {
            let change = sd_journal_process(journal)
            if change < 0 {
                fail("watching the journal failed: \(Self.errorText(change))")
            } else if change == Int32(SD_JOURNAL_INVALIDATE) {
                logger.debug("journal files changed", metadata: metadata)
            }
        }
        return true
    }

    // MARK: Status

    /// Closes the journal after an error; the next turn reopens it after
    /// the last entry read.
    mutating func fail(_ message: String) {
        logger.warning("journal failed", metadata: metadata.merging(["error": "\(message)"]) { $1 })
        closeJournal()
        setState(.failing, error: message)
    }

    mutating func setState(_ newState: SourceStatus.State, error: String?) {
        if newState != .following, let error, error != lastError {
            logger.warning("source not following", metadata: metadata.merging(["state": "\(newState.rawValue)", "error": "\(error)"]) { $1 })
        }
        state = newState
        if let error { lastError = error } else if newState == .following { lastError = nil }
    }

    func publishStatus() {
        let state = self.state
        let lastError = self.lastError
        let linesRead = self.linesRead
        let bytesRead = self.bytesRead
        let events = self.events
        let paths = configuration.location.paths
        sink.status { status in
            status.state = state
            status.lastError = lastError
            status.linesRead = linesRead
            status.bytesRead = bytesRead
            status.events = events
            status.paths = paths
        }
    }

    static func errorText(_ negativeErrno: Int32) -> String {
        String(cString: strerror(-negativeErrno))
    }
}
