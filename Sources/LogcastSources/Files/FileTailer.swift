import CLinuxShims
import Foundation
import LogcastHub
import LogcastProtocol
import Logging
import ServiceLifecycle
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Follows one file source, a path or a glob, like GNU `tail -F`, and
/// publishes its lines and events.
///
/// Runs on a dedicated thread for its whole life: it blocks in `poll(2)` on
/// an inotify descriptor watching the file's *directory* (so rename rotation,
/// deletion and re-creation are seen), wakes at least every
/// ``Configuration/pollInterval`` to `stat` the files anyway (NFS and FUSE
/// send no events; an inotify queue overflow loses some), and hands each
/// chunk of lines to `publish` in file order. Rotation and truncation
/// decisions are ``FollowState``'s; line cutting is ``LineSplitter``'s.
///
/// A glob (`/var/log/nginx/*.log`) may have wildcards in its last component
/// only; every matching file, including ones created later, is followed and
/// its lines carry their `path`.
public final class FileTailer: Service, Sendable {
    public struct Configuration: Sendable {
        public var name: String
        /// A path, or a glob with wildcards in the file name.
        public var pattern: String
        /// Existing lines of each file loaded at start (`tail -n`).
        public var initialLines = 10
        /// How often files are checked without an event.
        public var pollInterval: Duration = .seconds(1)
        /// A partial last line is published after this long without new bytes.
        public var partialLineTimeout: Duration = .milliseconds(500)
        /// How lines are joined into multi-line records (`--multiline`); nil: each line is a record.
        public var multiline: MultilineRule?
        /// A pending multi-line record is published after this long without a continuation.
        public var multilineTimeout: Duration = .milliseconds(500)
        public var maxLineBytes = 64 * 1024
        public var hostName: String?
        /// Where the last run stopped (from the state directory): the file
        /// continues there instead of at its last `initialLines`. Single
        /// files; a glob has ``resumeMembers``.
        public var resumeFrom: FilePosition?
        /// For a glob: where the last run stopped in each member (nil: no
        /// saved state, the members start from their tails). A member is
        /// found by its identity and first bytes, whatever its name now
        /// (rotation renames members); a member none of these is, appeared
        /// while logcast was down and is read from its start.
        public var resumeMembers: [FilePosition]?
        /// At most this many bytes written while logcast was down are read
        /// on a resume; the older rest is skipped with a `downtime` gap
        /// (see ``CatchUpBudget``).
        public var maxCatchUpBytes: Int64 = 256 << 20

        public init(name: String, pattern: String) {
            self.name = name
            self.pattern = pattern
        }

        /// The directory and the file-name pattern.
        var directory: String { (pattern as NSString).deletingLastPathComponent }
        var namePattern: String { (pattern as NSString).lastPathComponent }
        public var isGlob: Bool { namePattern.contains(where: { "*?[".contains($0) }) }
    }

    public let configuration: Configuration
    private let sink: SourceSink
    private let logger: Logger
    private let wake = WakeSignal()
    private let recheck = WakeSignal()

    /// Checks a pattern before anything starts: wildcards only in the file name.
    public static func validate(pattern: String) -> String? {
        let directory = (pattern as NSString).deletingLastPathComponent
        if directory.contains(where: { "*?[".contains($0) }) {
            return "'\(pattern)': wildcards are supported in the file name only, not in directories"
        }
        if pattern.hasSuffix("/") { return "'\(pattern)' names a directory; give a file or a glob such as \(pattern)*.log" }
        return nil
    }

    public init(configuration: Configuration, sink: SourceSink, logger: Logger) {
        self.configuration = configuration
        self.sink = sink
        self.logger = logger
    }

    /// Runs until graceful shutdown or cancellation; the thread stops within one poll.
    public func run() async throws {
        await runOnDedicatedThread(named: "logcast-file-\(configuration.name)", wake: wake) { [self] in
            var loop = FileTailLoop(configuration: configuration, sink: sink, logger: logger, wakeFD: wake.fd, recheck: recheck)
            loop.run()
        }
    }

    /// Checks every file now, as the periodic poll does (SIGHUP): re-adds
    /// the directory watch, finds new glob members, and notices rotation,
    /// truncation or deletion at once.
    public func reopen() {
        recheck.signal()
    }
}

/// One followed file: descriptor, follow state, partial line.
struct FollowedFile {
    let path: String
    /// The last component of ``path``: the name its inotify events carry.
    let name: String
    /// Whether a write to any file of the directory is a reason to read
    /// this one (``InotifyDigest``): its path is a symbolic link (whose
    /// target's writes carry the target's name), or its name no longer
    /// refers to its open file (renamed away and still written to, the new
    /// file not there yet). Decided at each full check; until the first, so.
    var readsOnAnyWrite = true
    var fd: Int32 = -1
    /// The identity of the file open on `fd` (the state may already name the next one).
    var openIdentity: FileIdentity?
    var state: FollowState
    var splitter: LineSplitter
    /// With ``FileTailer/Configuration/multiline``: the record being joined.
    var joiner: RecordJoiner?
    /// A hash of the open file's first bytes, and how many (see ``FilePosition``).
    var fingerprint: (hash: UInt64, length: Int) = (0, 0)
    var lastData: ContinuousClock.Instant = .now
    /// Set for glob members that vanished: forget them after the next check.
    var retired = false

    init(path: String, state: FollowState, splitter: LineSplitter) {
        self.path = path
        self.name = path.split(separator: "/", omittingEmptySubsequences: false).last.map(String.init) ?? path
        self.state = state
        self.splitter = splitter
    }
}

/// The loop of ``FileTailer``'s thread. Not Sendable: it lives on that thread.
struct FileTailLoop {
    let configuration: FileTailer.Configuration
    let sink: SourceSink
    let logger: Logger
    let wakeFD: Int32
    let recheck: WakeSignal

    /// The pattern's directory and whether it is a glob, worked out once:
    /// every event and every publish asks.
    let directory: String
    let isGlob: Bool

    var files: [String: FollowedFile] = [:]
    var inotifyFD: Int32 = -1
    /// Where inotify events are read into (kept: an event is read for every write to the directory).
    var inotifyBuffer = [UInt8](repeating: 0, count: 16 * 1024)
    /// What ``publishStatus()`` last told the registry.
    var publishedPaths: [String]?
    var publishedError: String?
    var watch: Int32 = -1
    var lastError: String?
    var readBuffer = [UInt8](repeating: 0, count: 64 * 1024)
    /// Where reading stopped in files that are no longer open under their
    /// old name: a glob member renamed to another matching name (rotation
    /// to `app.log.1` under `*.log*`) continues there instead of being read
    /// again from the start. Bounded; the oldest are forgotten first.
    var knownOffsets: [FileIdentity: Int64] = [:]
    var knownOrder: [FileIdentity] = []
    static let maxKnownOffsets = 4096
    /// Glob members not followed, and why (each reported once).
    var skipped: [String: String] = [:]
    /// Set by inotify events that may change which files match.
    var membershipChanged = false
    /// For each followed path, the names it was renamed to since it was last
    /// opened, in order (from inotify's paired move events): the generations
    /// of a file rotated more than once between two checks.
    var renamedAway: [String: [String]] = [:]
    /// The identity of the file each path had open until it was last closed.
    var lastClosed: [String: FileIdentity] = [:]
    /// Move events whose other half has not been read yet (cookie → old path).
    var movedFrom: [UInt32: String] = [:]
    /// Events read in the middle of a check (``readSkippedGenerations(of:expected:opened:)``):
    /// what they ask is checked on the next turn, without waiting.
    var carried: InotifyDigest?
    /// The followed paths any write in the directory concerns
    /// (``FollowedFile/readsOnAnyWrite``), as of the last full check of
    /// every file; nil until then, and after members were added since.
    /// With it, a wake-up after writes costs the files written to, not
    /// every member of a large glob.
    var anyWritePaths: Set<String>?
    /// The paths that may hold a partial line or a record being joined
    /// (every path read since it was last found with neither): the only
    /// ones the timeouts look at.
    var pendingPaths: Set<String> = []
    /// Whether which files are open, or the last error, may have changed
    /// since ``publishStatus()`` last looked.
    var statusMayChange = true

    init(configuration: FileTailer.Configuration, sink: SourceSink, logger: Logger, wakeFD: Int32, recheck: WakeSignal) {
        self.configuration = configuration
        self.sink = sink
        self.logger = logger
        self.wakeFD = wakeFD
        self.recheck = recheck
        directory = configuration.directory
        isGlob = configuration.isGlob
    }

    mutating func run() {
        inotifyFD = inotify_init1(Int32(IN_NONBLOCK | IN_CLOEXEC))
        if inotifyFD < 0 {
            logger.warning("inotify unavailable, polling only", metadata: ["source": "\(configuration.name)", "errno": "\(errno)"])
        }
        addWatch()
        start()
        publishStatus()

        var lastFullCheck = ContinuousClock.now
        while true {
            let timeout = carried == nil ? pollTimeoutMilliseconds(since: lastFullCheck) : 0
            var fds = [
                pollfd(fd: wakeFD, events: Int16(POLLIN), revents: 0),
                pollfd(fd: recheck.fd, events: Int16(POLLIN), revents: 0),
            ]
            if inotifyFD >= 0 { fds.append(pollfd(fd: inotifyFD, events: Int16(POLLIN), revents: 0)) }
            let ready = poll(&fds, nfds_t(fds.count), timeout)
            if ready < 0 && errno != EINTR { break }
            if fds[0].revents != 0 { break }

            // A wake-up without events (the poll interval, a partial line's
            // timeout) checks every file in full; one with events, what they ask.
            var digest: InotifyDigest
            if fds.count > 2, fds[2].revents != 0 {
                digest = carried ?? InotifyDigest()
                drainInotify(into: &digest)
            } else {
                digest = carried ?? .full
            }
            carried = nil
            var rescan = membershipChanged
            membershipChanged = false
            let forced = fds[1].revents != 0
            if forced {
                recheck.drain()
                logger.info("checking files again (reload)", metadata: ["source": "\(configuration.name)"])
            }
            let now = ContinuousClock.now
            if forced || now - lastFullCheck >= configuration.pollInterval {
                lastFullCheck = now
                rescan = true
                if watch < 0 { addWatch() }
            }
            if rescan {
                digest = .full
                if isGlob { discover(initial: false) }
            }
            checkAll(digest)
            flushStalePartials()
            if statusMayChange || digest.everything { publishStatus() }
        }
        for path in files.keys { closeFile(path, shuttingDown: true) }
        if inotifyFD >= 0 { close(inotifyFD) }
        sink.status { $0.state = .stopped }
    }

    // MARK: Start-up

    mutating func start() {
        if isGlob {
            discover(initial: true, saved: configuration.resumeMembers)
            return
        }
        let path = configuration.pattern
        files[path] = FollowedFile(path: path, state: .waiting(announced: false), splitter: LineSplitter(maxLineBytes: configuration.maxLineBytes))
        if let saved = configuration.resumeFrom {
            resume(path, from: saved)
            return
        }
        if !openAtTail(path) {
            // Not there (yet): the first check emits `missing` and waits.
            checkAll()
        }
    }

    /// Opens an existing file positioned `initialLines` lines before its end, and reads from there.
    @discardableResult
    mutating func openAtTail(_ path: String) -> Bool {
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
        guard fd >= 0 else {
            if errno != ENOENT { recordError("cannot open \(path): \(String(cString: strerror(errno)))") }
            return false
        }
        guard let status = Self.fileStatus(fd: fd) else {
            close(fd)
            return false
        }
        if let problem = refusal(fd: fd, status: status, path: path) {
            close(fd)
            refuse(path, problem)
            return false
        }
        let start = Self.offsetOfLastLines(fd: fd, size: status.size, count: configuration.initialLines)
        follow(path, fd: fd, status: status, at: start)
        return true
    }

    /// Follows the open `fd` as `path` from `start`, and reads to its end.
    mutating func follow(_ path: String, fd: Int32, status: FileStatus, at start: Int64) {
        lseek(fd, off_t(start), SEEK_SET)
        var file =
            files[path]
            ?? FollowedFile(path: path, state: .waiting(announced: false), splitter: LineSplitter(maxLineBytes: configuration.maxLineBytes))
        file.fd = fd
        file.openIdentity = status.identity
        file.fingerprint = Self.fingerprint(fd: fd)
        file.state = .following(status.identity, at: start)
        files[path] = file
        readToEnd(path)
    }

    /// Continues from where the last run stopped (`saved`):
    /// - the same file (device and inode): from the saved offset, or from 0
    ///   with `truncated` when it is shorter now or its first bytes changed;
    /// - a file rotated away while logcast was down (found beside `path` by
    ///   its identity and first bytes): the rest of it first, then the new
    ///   file from 0;
    /// - no file is the saved one any more: `missing`, then the file now at
    ///   `path` (if any) from 0, since it began while logcast was down.
    ///
    /// Of all that, at most ``FileTailer/Configuration/maxCatchUpBytes``
    /// (the newest) is read; a `downtime` gap says how much was skipped.
    mutating func resume(_ path: String, from saved: FilePosition) {
        let identity = FileIdentity(device: saved.device, inode: saved.inode)
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
        var current: (fd: Int32, status: FileStatus)?
        if fd >= 0, let status = Self.fileStatus(fd: fd), refusal(fd: fd, status: status, path: path) == nil {
            current = (fd, status)
        } else if fd >= 0 {
            close(fd)
        }
        if let current, current.status.identity == identity {
            // The same inode: shorter than the saved offset, or with other first bytes, it was emptied
            // (copytruncate) and written again, or replaced by a file that got the inode: read from 0.
            let truncated = current.status.size < saved.offset || !Self.fingerprintMatches(fd: current.fd, saved)
            let range = (truncated ? 0 : saved.offset)..<current.status.size
            let budget = CatchUpBudget(rotated: nil, current: range, budget: configuration.maxCatchUpBytes)
            let start = alignedStart(current.fd, budget.currentFrom ?? range.lowerBound, range: range)
            if truncated { emit(.truncated, path: path) }
            reportDowntime(path, skipped: start - range.lowerBound)
            follow(path, fd: current.fd, status: current.status, at: start)
            return
        }
        // The saved file, if it is still beside `path` under another name with the saved first bytes.
        var rotated: (path: String, fd: Int32, range: Range<Int64>)?
        if let found = Self.find(identity, near: path), found != path {
            let rotatedFD = open(found, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
            if rotatedFD >= 0, let status = Self.fileStatus(fd: rotatedFD), status.identity == identity,
                refusal(fd: rotatedFD, status: status, path: found) == nil, Self.fingerprintMatches(fd: rotatedFD, saved)
            {
                rotated = (found, rotatedFD, min(saved.offset, status.size)..<status.size)
            } else if rotatedFD >= 0 {
                close(rotatedFD)
            }
        }
        let currentRange = current.map { 0..<$0.status.size }
        let budget = CatchUpBudget(rotated: rotated?.range, current: currentRange, budget: configuration.maxCatchUpBytes)
        var skipped: Int64 = 0
        var rotatedStart: Int64?
        if let rotated {
            if let from = budget.rotatedFrom {
                let start = alignedStart(rotated.fd, from, range: rotated.range)
                rotatedStart = start
                skipped += start - rotated.range.lowerBound
            } else {
                skipped += rotated.range.upperBound - rotated.range.lowerBound
            }
            close(rotated.fd)
        }
        var currentStart: Int64 = 0
        if let current, let range = currentRange {
            currentStart = alignedStart(current.fd, budget.currentFrom ?? 0, range: range)
            skipped += currentStart
        }
        reportDowntime(path, skipped: skipped)
        if let rotated, let rotatedStart {
            readWhole(rotated.path, identity: identity, as: path, from: rotatedStart, fingerprint: saved)
        } else if rotated != nil {
            emit(.rotated, path: path)  // its rest was skipped; the name points at a new file all the same
        } else if current != nil {
            emit(.missing, path: path)
        }
        if let current {
            follow(path, fd: current.fd, status: current.status, at: currentStart)
        } else {
            // Nothing at the path now: the check after this says `missing` (once).
            checkAll()
        }
    }

    /// Continues a glob member after a restart: the saved position of the
    /// file with its identity (whatever name it had), from 0 with
    /// `truncated` if its first bytes changed or it shrank, or, for a file
    /// no position names, from 0 with `created` (it appeared while logcast
    /// was down). Each within ``FileTailer/Configuration/maxCatchUpBytes``.
    mutating func resumeMember(_ path: String, saved: [FilePosition]) {
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
        guard fd >= 0 else { return }
        guard let status = Self.fileStatus(fd: fd) else {
            close(fd)
            return
        }
        if let problem = refusal(fd: fd, status: status, path: path) {
            close(fd)
            refuse(path, problem)
            return
        }
        // The furthest position of this identity with its first bytes (a rename can leave an older one
        // under the old name).
        let known = saved.filter { $0.device == status.identity.device && $0.inode == status.identity.inode }.max { $0.offset < $1.offset }
        var start: Int64 = 0
        var event: SourceEvent.Kind?
        if let known, status.size >= known.offset, Self.fingerprintMatches(fd: fd, known) {
            start = known.offset
        } else {
            event = known == nil ? .created : .truncated
        }
        let range = start..<status.size
        let budget = CatchUpBudget(rotated: nil, current: range, budget: configuration.maxCatchUpBytes)
        let from = alignedStart(fd, budget.currentFrom ?? start, range: range)
        if let event { emit(event, path: path) }
        reportDowntime(path, skipped: from - start)
        follow(path, fd: fd, status: status, at: from)
    }

    /// Where reading `fd` starts for a cut at `offset` within `range`: the
    /// start of the first line at or after it (`range`'s start is one).
    func alignedStart(_ fd: Int32, _ offset: Int64, range: Range<Int64>) -> Int64 {
        guard offset > range.lowerBound else { return range.lowerBound }
        var base = offset - 1
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        while base < range.upperBound {
            let got = chunk.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, off_t(base)) }
            guard got > 0 else { break }
            if let start = CatchUpBudget.lineStart(after: offset, in: chunk.prefix(got), base: base) { return min(start, range.upperBound) }
            base += Int64(got)
        }
        return range.upperBound
    }

    /// A `downtime` gap when a resume skips `skipped` bytes.
    func reportDowntime(_ path: String, skipped: Int64) {
        guard skipped > 0 else { return }
        sink.event(SourceEvent(source: configuration.name, kind: .downtime, path: path, skippedBytes: skipped))
        sink.status { $0.events[SourceEvent.Kind.downtime.rawValue, default: 0] += 1 }
        logger.warning(
            "more was written while logcast was down than it catches up on; the oldest of it is skipped",
            metadata: [
                "source": "\(configuration.name)", "path": "\(path)", "skipped_bytes": "\(skipped)",
                "max_catch_up_bytes": "\(configuration.maxCatchUpBytes)",
            ]
        )
    }

    /// FNV-1a of the first bytes of the file (at most 256).
    static func fingerprint(fd: Int32, length: Int = 256) -> (hash: UInt64, length: Int) {
        var bytes = [UInt8](repeating: 0, count: length)
        let count = max(0, pread(fd, &bytes, length, 0))
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in bytes.prefix(count) { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
        return (hash, count)
    }

    static func fingerprintMatches(fd: Int32, _ saved: FilePosition) -> Bool {
        let now = fingerprint(fd: fd, length: saved.fingerprintLength)
        return now.length == saved.fingerprintLength && now.hash == saved.fingerprint
    }

    /// Finds glob members. At start they are read from their tail, or
    /// continued from their `saved` positions; later ones from offset 0.
    mutating func discover(initial: Bool, saved: [FilePosition]? = nil) {
        anyWritePaths = nil  // members may be added: known again after the next full check
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: directory) else { return }
        // A skipped name that is gone may come back as a file worth following.
        let present = Set(names)
        skipped = skipped.filter { present.contains(($0.key as NSString).lastPathComponent) }
        for name in names.sorted() where fnmatch(configuration.namePattern, name, 0) == 0 {
            let path = directory == "" ? name : directory + "/" + name
            guard files[path] == nil, skipped[path] == nil else { continue }
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), !isDirectory.boolValue,
                let status = Self.fileStatus(path: path)
            else { continue }
            if initial, let saved {
                resumeMember(path, saved: saved)
                continue
            }
            if initial {
                openAtTail(path)
                continue
            }
            // The same file under a new name (renamed by rotation): not a new member
            // while another name still has it open; afterwards, continue where it stopped.
            if files.values.contains(where: { $0.openIdentity == status.identity }) { continue }
            if let offset = knownOffsets[status.identity] {
                continueRenamed(path, identity: status.identity, at: offset)
                continue
            }
            files[path] = FollowedFile(path: path, state: .waiting(announced: true), splitter: LineSplitter(maxLineBytes: configuration.maxLineBytes))
        }
    }

    // MARK: Following

    /// Checks the followed files that `digest` asks for (all, in full, by default).
    mutating func checkAll(_ digest: InotifyDigest = .full) {
        if files.count == 1, let (path, file) = files.first {
            // The common case, without sorting.
            check(path, digest.check(name: file.name, anyWrite: file.readsOnAnyWrite))
        } else if !digest.everything, let anyWrite = anyWritePaths {
            // After writes only: the members written to, and those any write concerns.
            var paths = anyWrite
            for name in digest.written {
                let path = directory.isEmpty ? name : directory + "/" + name
                if files[path] != nil { paths.insert(path) }
            }
            for path in paths.sorted() where files[path] != nil { check(path, .written) }
        } else {
            for path in files.keys.sorted() {
                guard let file = files[path] else { continue }
                check(path, digest.check(name: file.name, anyWrite: file.readsOnAnyWrite))
            }
            if digest.everything { anyWritePaths = Set(files.filter { $0.value.readsOnAnyWrite && !$0.value.retired }.keys) }
        }
        if files.values.contains(where: \.retired) { files = files.filter { !$0.value.retired } }
    }

    /// Checks one followed file: in full (its path and its open file), or
    /// after writes only (the open file: its name did not move, see
    /// ``InotifyDigest``), or not at all.
    mutating func check(_ path: String, _ how: InotifyDigest.Check = .full) {
        guard how != .none, var file = files[path] else { return }
        let openStatus = file.fd >= 0 ? Self.fileStatus(fd: file.fd) : nil
        let pathStatus: FileStatus?
        if how == .written, let openStatus, case .following(let current) = file.state.phase, current == openStatus.identity {
            pathStatus = openStatus
        } else {
            let throughLink: Bool
            (pathStatus, throughLink) = Self.pathStatus(path)
            file.readsOnAnyWrite = throughLink || (openStatus != nil && pathStatus?.identity != openStatus?.identity)
            if file.readsOnAnyWrite { anyWritePaths?.insert(path) } else { anyWritePaths?.remove(path) }
            statusMayChange = true  // a full check may open or close the file
        }
        let steps = file.state.check(path: pathStatus, open: openStatus)
        files[path] = file
        for step in steps {
            switch step {
            case .read:
                readToEnd(path)
            case .emit(let kind):
                emit(kind, path: path)
                if kind == .missing, isGlob {
                    // A glob member that is gone is forgotten; a new one is found by the next scan.
                    files[path]?.retired = true
                }
            case .close:
                closeFile(path)
            case .rewind:
                // The record pending from before the truncation is published first, whole.
                var joined: [JoinedRecord] = []
                files[path]?.joiner?.endOfFile { joined.append($0) }
                publish(joined.map { record($0, path: path) }, bytes: 0)
                if let fd = files[path]?.fd, fd >= 0 { lseek(fd, 0, SEEK_SET) }
                files[path]?.fingerprint = (0, 0)  // new content: taken again as it is read
                files[path]?.splitter.reset()
                files[path]?.state.didRewind()
            case .open:
                let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
                if fd < 0 {
                    let reason = String(cString: strerror(errno))
                    files[path]?.state.openFailed()
                    if errno != ENOENT { recordError("cannot open \(path): \(reason)") }
                    return
                }
                guard let opened = Self.fileStatus(fd: fd) else {
                    close(fd)
                    files[path]?.state.openFailed()
                    return
                }
                if let problem = refusal(fd: fd, status: opened, path: path) {
                    close(fd)
                    files[path]?.state.openFailed()
                    refuse(path, problem)
                    return
                }
                readSkippedGenerations(of: path, expected: files[path]?.state.phase, opened: opened.identity)
                files[path]?.fd = fd
                files[path]?.openIdentity = opened.identity
                files[path]?.fingerprint = Self.fingerprint(fd: fd)
                files[path]?.state.didOpen(opened.identity)
                lastError = nil
            }
        }
    }

    /// Reads the open file to its end and publishes complete lines in chunks.
    mutating func readToEnd(_ path: String) {
        guard var file = files[path], file.fd >= 0 else { return }
        var total = 0
        while true {
            let count = readBuffer.withUnsafeMutableBytes { read(file.fd, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                if errno != EAGAIN { recordError("cannot read \(path): \(String(cString: strerror(errno)))") }
                break
            }
            if count == 0 { break }
            total += count
            file.state.didRead(count)
            let timestamp = Timestamp.now()
            var records: [LogRecord] = []
            var joiner = file.joiner ?? configuration.multiline.map(RecordJoiner.init(rule:))
            let maker = lineMaker
            readBuffer.withUnsafeBytes { bytes in
                file.splitter.appendSized(
                    UnsafeRawBufferPointer(rebasing: bytes[0..<count]),
                    emit: { line, size in
                        maker.take(line, fileBytes: size, path: path, at: timestamp, joiner: &joiner, into: &records)
                    }
                )
            }
            file.joiner = joiner
            if file.fingerprint.length < 256 { file.fingerprint = Self.fingerprint(fd: file.fd) }
            publish(records, bytes: count, position: position(of: file))
        }
        if total > 0 { file.lastData = .now }
        if file.splitter.hasPartialLine || file.joiner?.hasPending == true { pendingPaths.insert(path) }
        files[path] = file
    }

    /// Closes the file, publishing what it holds back first. When
    /// `shuttingDown`, a multi-line record still being joined is not: the
    /// saved position is before it, and the next run reads it again whole.
    mutating func closeFile(_ path: String, shuttingDown: Bool = false) {
        guard var file = files[path], file.fd >= 0 else { return }
        var records: [LogRecord] = []
        var joiner = file.joiner
        if shuttingDown, joiner != nil {
            close(file.fd)
            file.fd = -1
            files[path] = file
            return
        }
        file.splitter.flushPartialSized(emit: { line, size in take(line, fileBytes: size, path: path, at: .now(), joiner: &joiner, into: &records) })
        // Leaving the file: its pending record ends here (nothing is joined across files).
        joiner?.endOfFile { records.append(record($0, path: path)) }
        file.joiner = joiner
        publish(records, bytes: 0, position: position(of: file))
        if let identity = file.openIdentity {
            let end = lseek(file.fd, 0, SEEK_CUR)
            if end >= 0 { remember(identity, offset: Int64(end)) }
            lastClosed[path] = identity
        }
        close(file.fd)
        file.fd = -1
        file.openIdentity = nil
        files[path] = file
    }

    // MARK: Identity

    mutating func remember(_ identity: FileIdentity, offset: Int64) {
        if knownOffsets.updateValue(offset, forKey: identity) == nil { knownOrder.append(identity) }
        if knownOrder.count > Self.maxKnownOffsets {
            knownOffsets[knownOrder.removeFirst()] = nil
        }
    }

    /// A glob member that is a file already read under another name: follow
    /// it from where that stopped, without reading it again.
    mutating func continueRenamed(_ path: String, identity: FileIdentity, at offset: Int64) {
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
        guard fd >= 0, let status = Self.fileStatus(fd: fd), status.identity == identity else {
            if fd >= 0 { close(fd) }
            return
        }
        let start = min(offset, status.size)
        lseek(fd, off_t(start), SEEK_SET)
        var file = FollowedFile(path: path, state: .following(identity, at: start), splitter: LineSplitter(maxLineBytes: configuration.maxLineBytes))
        file.fd = fd
        file.openIdentity = identity
        file.fingerprint = Self.fingerprint(fd: fd)
        files[path] = file
        logger.debug("renamed file followed on", metadata: ["source": "\(configuration.name)", "path": "\(path)", "offset": "\(start)"])
        // Its position under its new name, so a restart knows the file by it even if nothing more is written.
        if let file = files[path] { publish([], bytes: 0, position: position(of: file), always: true) }
        readToEnd(path)
    }

    /// Before the newest file of `path` is read: reads, from the start, the
    /// generations that were rotated away before they were ever opened (two
    /// rotations between checks), each followed by `rotated`. They are found
    /// by the names inotify saw `path` renamed to, and by the identity the
    /// last check saw if the file opened is yet another one. A generation
    /// renamed and removed before it could be read is lost, and the log says so.
    mutating func readSkippedGenerations(of path: String, expected: FollowState.Phase?, opened: FileIdentity) {
        // The renames up to now, not only up to the last poll; what else the
        // events ask is checked next, at once.
        var digest = carried ?? InotifyDigest()
        drainInotify(into: &digest)
        carried = digest
        var done: Set<FileIdentity> = [opened]
        if let last = lastClosed[path] { done.insert(last) }
        var candidates: [(path: String, identity: FileIdentity)] = []
        for name in renamedAway.removeValue(forKey: path) ?? [] {
            if let identity = Self.fileStatus(path: name)?.identity, !done.contains(identity) {
                candidates.append((name, identity))
                done.insert(identity)
            }
        }
        if case .following(let seen)? = expected, !done.contains(seen) {
            if let found = Self.find(seen, near: path) {
                candidates.append((found, seen))
            } else {
                logger.warning(
                    "a generation of the file was rotated away and removed before it could be read; its lines are lost",
                    metadata: ["source": "\(configuration.name)", "path": "\(path)"]
                )
            }
        }
        for candidate in candidates where knownOffsets[candidate.identity] == nil {
            readWhole(candidate.path, identity: candidate.identity, as: path)
        }
    }

    /// The file in `path`'s directory with this identity.
    static func find(_ identity: FileIdentity, near path: String) -> String? {
        let directory = (path as NSString).deletingLastPathComponent
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory.isEmpty ? "." : directory)) ?? []
        return names.sorted().map { directory.isEmpty ? $0 : directory + "/" + $0 }.first { fileStatus(path: $0)?.identity == identity }
    }

    /// Reads a whole earlier generation of `path` (now named `candidate`),
    /// publishing its lines as `path`'s, then `rotated`.
    ///
    /// With `fingerprint` (a resume), only if its first bytes are the saved
    /// file's, and from `start`.
    mutating func readWhole(_ candidate: String, identity: FileIdentity, as path: String, from start: Int64 = 0, fingerprint: FilePosition? = nil) {
        let fd = open(candidate, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
        guard fd >= 0 else { return }
        defer { close(fd) }
        guard let status = Self.fileStatus(fd: fd), status.identity == identity, refusal(fd: fd, status: status, path: candidate) == nil else {
            return
        }
        if let saved = fingerprint {
            guard Self.fingerprintMatches(fd: fd, saved) else {
                emit(.missing, path: path)
                return
            }
            lseek(fd, off_t(min(start, status.size)), SEEK_SET)
        }
        let hash = Self.fingerprint(fd: fd)
        var splitter = LineSplitter(maxLineBytes: configuration.maxLineBytes)
        var joiner = configuration.multiline.map(RecordJoiner.init(rule:))
        var total: Int64 = fingerprint == nil ? 0 : min(start, status.size)
        while true {
            let count = readBuffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            if count <= 0 { break }
            total += Int64(count)
            let timestamp = Timestamp.now()
            var records: [LogRecord] = []
            let maker = lineMaker
            readBuffer.withUnsafeBytes { bytes in
                splitter.appendSized(
                    UnsafeRawBufferPointer(rebasing: bytes[0..<count]),
                    emit: { line, size in
                        maker.take(line, fileBytes: size, path: path, at: timestamp, joiner: &joiner, into: &records)
                    }
                )
            }
            let position = FilePosition(
                path: candidate,
                device: identity.device,
                inode: identity.inode,
                offset: total - Int64(splitter.pendingByteCount) - Int64(joiner?.pendingFileBytes ?? 0),
                fingerprint: hash.hash,
                fingerprintLength: hash.length
            )
            publish(records, bytes: count, position: .file(position))
        }
        var rest: [LogRecord] = []
        splitter.flushPartialSized(emit: { line, size in take(line, fileBytes: size, path: path, at: .now(), joiner: &joiner, into: &rest) })
        joiner?.endOfFile { rest.append(record($0, path: path)) }
        let end = FilePosition(
            path: candidate,
            device: identity.device,
            inode: identity.inode,
            offset: total,
            fingerprint: hash.hash,
            fingerprintLength: hash.length
        )
        publish(rest, bytes: 0, position: .file(end))
        remember(identity, offset: total)
        emit(.rotated, path: path)
        logger.info("read a generation rotated away before it was opened", metadata: ["source": "\(configuration.name)", "path": "\(candidate)"])
    }

    // MARK: Files that are not followed

    /// Why an open file is not followed: not a regular file (a FIFO or a
    /// device would be read for ever), or compressed (a rotated `.gz`).
    func refusal(fd: Int32, status: FileStatus, path: String) -> String? {
        if !status.isRegular {
            return "\(path) is not a regular file (\(Self.fileKind(fd: fd))); logcast follows regular files only"
        }
        if let format = Self.compression(fd: fd, path: path) {
            return "\(path) is \(format)-compressed; compressed files are not streamed"
        }
        return nil
    }

    /// A file that is not followed: for a glob member, a `skipped` event
    /// (once) and the others go on; for the one file of a source, the
    /// source is failing with the reason.
    mutating func refuse(_ path: String, _ problem: String) {
        if configuration.isGlob {
            guard skipped[path] == nil else { return }
            skipped[path] = problem
            files[path] = nil
            sink.event(SourceEvent(source: configuration.name, kind: .skipped, path: path, reason: problem))
            sink.status { $0.events[SourceEvent.Kind.skipped.rawValue, default: 0] += 1 }
            logger.notice("file not followed", metadata: ["source": "\(configuration.name)", "path": "\(path)", "reason": "\(problem)"])
        } else {
            recordError(problem)
        }
    }

    static let compressedSuffixes = [
        ".gz": "gzip", ".tgz": "gzip", ".bz2": "bzip2", ".xz": "xz", ".zst": "zstd", ".lz4": "lz4", ".zip": "zip", ".lzma": "lzma", ".z": "compress",
    ]

    /// The compression format of a file, by its first bytes or its name.
    static func compression(fd: Int32, path: String) -> String? {
        var magic = [UInt8](repeating: 0, count: 6)
        let got = magic.withUnsafeMutableBytes { pread(fd, $0.baseAddress, 6, 0) }
        if got >= 2, magic[0] == 0x1F, magic[1] == 0x8B { return "gzip" }
        if got >= 3, magic[0...2] == [0x42, 0x5A, 0x68] { return "bzip2" }
        if got >= 6, magic == [0xFD, 0x37, 0x7A, 0x58, 0x5A, 0x00] { return "xz" }
        if got >= 4, magic[0...3] == [0x28, 0xB5, 0x2F, 0xFD] { return "zstd" }
        if got >= 4, magic[0...3] == [0x04, 0x22, 0x4D, 0x18] { return "lz4" }
        let lowered = path.lowercased()
        return compressedSuffixes.first { lowered.hasSuffix($0.key) }?.value
    }

    static func fileKind(fd: Int32) -> String {
        var info = stat()
        guard fstat(fd, &info) == 0 else { return "unknown kind" }
        switch info.st_mode & S_IFMT {
        case S_IFIFO: return "a FIFO"
        case S_IFCHR: return "a character device"
        case S_IFBLK: return "a block device"
        case S_IFSOCK: return "a socket"
        case S_IFDIR: return "a directory"
        default: return "not a regular file"
        }
    }

    /// Publishes a partial last line, and then a pending multi-line record,
    /// that waited their timeouts without new bytes: of the paths that may
    /// hold one (``pendingPaths``).
    mutating func flushStalePartials() {
        guard !pendingPaths.isEmpty else { return }
        let now = ContinuousClock.now
        for path in pendingPaths {
            guard var file = files[path], file.splitter.hasPartialLine || file.joiner?.hasPending == true else {
                pendingPaths.remove(path)
                continue
            }
            let quiet = now - file.lastData
            var records: [LogRecord] = []
            var joiner = file.joiner
            var changed = false
            if file.splitter.hasPartialLine, quiet >= configuration.partialLineTimeout {
                // Into the pending record, when lines are joined: it may still go on.
                file.splitter.flushPartialSized(emit: { line, size in
                    take(line, fileBytes: size, path: path, at: .now(), joiner: &joiner, into: &records)
                })
                changed = true
            }
            var joined = false
            if !file.splitter.hasPartialLine, joiner?.hasPending == true, quiet >= configuration.multilineTimeout {
                joiner?.flush { records.append(record($0, path: path)) }
                joined = true
            }
            guard changed || joined else { continue }
            file.joiner = joiner
            files[path] = file
            // A record published by its timeout moves the saved position past it.
            publish(records, bytes: 0, position: joined ? position(of: file) : nil)
        }
    }

    /// A line read from `path`: a record of its own, or a part of the
    /// multi-line record `joiner` is joining (which emits the records it ends).
    func take(_ line: String, fileBytes: Int, path: String, at timestamp: Timestamp, joiner: inout RecordJoiner?, into records: inout [LogRecord]) {
        lineMaker.take(line, fileBytes: fileBytes, path: path, at: timestamp, joiner: &joiner, into: &records)
    }

    /// A multi-line record of this source.
    func record(_ joined: JoinedRecord, path: String) -> LogRecord {
        lineMaker.record(joined, path: path)
    }

    /// What makes this source's records, small enough to copy into a read
    /// loop's closure (capturing the whole loop state there copied it once per line).
    var lineMaker: LineMaker { LineMaker(source: configuration.name, host: configuration.hostName) }

    /// Makes a file source's records from its lines.
    struct LineMaker {
        let source: String
        let host: String?

        /// Turns a line into a record, or hands it to the multi-line joiner.
        func take(_ line: String, fileBytes: Int, path: String, at timestamp: Timestamp, joiner: inout RecordJoiner?, into records: inout [LogRecord])
        {
            guard joiner != nil else {
                records.append(record(line, path: path, at: timestamp))
                return
            }
            joiner!.add(line, fileBytes: fileBytes, at: timestamp) { records.append(record($0, path: path)) }
        }

        /// A multi-line record of this source.
        func record(_ joined: JoinedRecord, path: String) -> LogRecord {
            var record = record(joined.message, path: path, at: joined.timestamp)
            record.continued = joined.continued
            return record
        }

        /// A line of this source, read from `path`, with its level detected from the text.
        func record(_ line: String, path: String, at timestamp: Timestamp) -> LogRecord {
            LogRecord(timestamp: timestamp, source: source, message: line, host: host, path: path, priority: PriorityDetector.detect(line))
        }
    }

    /// Where the lines published from `file` so far end: its read offset
    /// less the partial line not yet published.
    func position(of file: FollowedFile) -> SourcePosition? {
        guard let identity = file.openIdentity, file.fd >= 0 else { return nil }
        let offset = lseek(file.fd, 0, SEEK_CUR)
        guard offset >= 0 else { return nil }
        return .file(
            FilePosition(
                path: file.path,
                device: identity.device,
                inode: identity.inode,
                offset: Int64(offset) - Int64(file.splitter.pendingByteCount) - Int64(file.joiner?.pendingFileBytes ?? 0),
                fingerprint: file.fingerprint.hash,
                fingerprintLength: file.fingerprint.length
            )
        )
    }

    /// Publishes lines and the position after them; with `always`, the
    /// position alone when there are no lines.
    func publish(_ records: [LogRecord], bytes: Int, position: SourcePosition? = nil, always: Bool = false) {
        guard !records.isEmpty || bytes > 0 || (always && position != nil) else { return }
        // Glob members share one source name; each keeps its own position.
        var position = position
        if isGlob, case .file(let file)? = position { position = .member(file) }
        sink.lines(records, position)
        sink.status { status in
            status.linesRead += UInt64(records.count)
            status.bytesRead += UInt64(bytes)
        }
    }

    func emit(_ kind: SourceEvent.Kind, path: String) {
        sink.event(SourceEvent(source: configuration.name, kind: kind, path: path))
        sink.status { $0.events[kind.rawValue, default: 0] += 1 }
        logger.info("source event", metadata: ["source": "\(configuration.name)", "event": "\(kind.rawValue)", "path": "\(path)"])
    }

    mutating func recordError(_ message: String) {
        statusMayChange = true
        if lastError != message {
            logger.error("source error", metadata: ["source": "\(configuration.name)", "error": "\(message)"])
        }
        lastError = message
    }

    /// Tells the registry which files are open and the last error, when either changed.
    mutating func publishStatus() {
        statusMayChange = false
        let open = files.values.filter { $0.fd >= 0 }.map(\.path).sorted()
        let error = lastError
        guard open != publishedPaths || error != publishedError else { return }
        publishedPaths = open
        publishedError = error
        sink.status { status in
            status.paths = open
            status.lastError = error
            status.state = error != nil ? .failing : (open.isEmpty ? .waiting : .following)
        }
    }

    // MARK: inotify

    mutating func addWatch() {
        guard inotifyFD >= 0 else { return }
        let mask = UInt32(
            IN_MODIFY | IN_ATTRIB | IN_CLOSE_WRITE | IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | IN_DELETE_SELF | IN_MOVE_SELF
        )
        watch = inotify_add_watch(inotifyFD, directory.isEmpty ? "." : directory, mask)
    }

    /// Reads pending events: notes whether the directory's membership may
    /// have changed (``membershipChanged``), which followed files were
    /// renamed to which names (``renamedAway``), and what the events ask of
    /// the checks (into `digest`).
    mutating func drainInotify(into digest: inout InotifyDigest) {
        guard inotifyFD >= 0 else { return }
        while true {
            let count = inotifyBuffer.withUnsafeMutableBytes { read(inotifyFD, $0.baseAddress, $0.count) }
            if count <= 0 { break }
            var offset = 0
            while offset + 16 <= count {
                let (mask, cookie, nameLength) = inotifyBuffer.withUnsafeBytes { raw in
                    (
                        raw.loadUnaligned(fromByteOffset: offset + 4, as: UInt32.self),
                        raw.loadUnaligned(fromByteOffset: offset + 8, as: UInt32.self),
                        Int(raw.loadUnaligned(fromByteOffset: offset + 12, as: UInt32.self))
                    )
                }
                if mask & UInt32(IN_Q_OVERFLOW) != 0 { membershipChanged = true }
                if mask & UInt32(IN_CREATE | IN_MOVED_TO | IN_DELETE | IN_MOVED_FROM) != 0 { membershipChanged = true }
                let nameBytes = inotifyBuffer[min(count, offset + 16)..<min(count, offset + 16 + nameLength)].prefix { $0 != 0 }
                let name = String(decoding: nameBytes, as: UTF8.self)
                digest.note(mask: mask, name: name)
                if mask & UInt32(IN_MOVED_FROM | IN_MOVED_TO) != 0 {
                    let path = directory.isEmpty ? name : directory + "/" + name
                    if mask & UInt32(IN_MOVED_FROM) != 0, files[path] != nil {
                        movedFrom[cookie] = path
                    }
                    if mask & UInt32(IN_MOVED_TO) != 0, let old = movedFrom.removeValue(forKey: cookie) {
                        renamedAway[old, default: []].append(path)
                    }
                }
                if mask & UInt32(IN_IGNORED | IN_DELETE_SELF | IN_MOVE_SELF) != 0 {
                    // The directory itself went away: watch again on the next poll tick.
                    watch = -1
                    membershipChanged = true
                }
                offset += 16 + nameLength
            }
            // One read takes every event queued while they fit: with half the
            // buffer left over (more than the largest event), there were no more.
            if count < inotifyBuffer.count / 2 { break }
        }
        if movedFrom.count > 1024 { movedFrom.removeAll() }
    }

    func pollTimeoutMilliseconds(since lastFullCheck: ContinuousClock.Instant) -> Int32 {
        var wait = configuration.pollInterval - (ContinuousClock.now - lastFullCheck)
        for path in pendingPaths {
            guard let file = files[path] else { continue }
            if file.splitter.hasPartialLine {
                wait = min(wait, configuration.partialLineTimeout - (ContinuousClock.now - file.lastData))
            } else if file.joiner?.hasPending == true {
                wait = min(wait, configuration.multilineTimeout - (ContinuousClock.now - file.lastData))
            }
        }
        let ms = wait.components.seconds * 1000 + wait.components.attoseconds / 1_000_000_000_000_000
        return Int32(max(0, min(ms, 60_000)) + 1)
    }

    // MARK: stat helpers

    /// The status of what `path` names (following a symbolic link), and
    /// whether it is one: one `lstat` for a path that is not.
    static func pathStatus(_ path: String) -> (FileStatus?, throughLink: Bool) {
        var info = stat()
        guard lstat(path, &info) == 0 else { return (nil, false) }
        guard info.st_mode & S_IFMT == S_IFLNK else { return (status(info), false) }
        return (fileStatus(path: path), true)
    }

    static func fileStatus(path: String) -> FileStatus? {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        return status(info)
    }

    static func fileStatus(fd: Int32) -> FileStatus? {
        var info = stat()
        guard fstat(fd, &info) == 0 else { return nil }
        return status(info)
    }

    static func status(_ info: stat) -> FileStatus {
        FileStatus(
            identity: FileIdentity(device: UInt64(info.st_dev), inode: UInt64(info.st_ino)),
            size: Int64(info.st_size),
            linkCount: Int(info.st_nlink),
            isRegular: info.st_mode & S_IFMT == S_IFREG
        )
    }

    /// The offset where the last `count` lines begin (a final unterminated line counts as one).
    static func offsetOfLastLines(fd: Int32, size: Int64, count: Int) -> Int64 {
        guard count > 0, size > 0 else { return size }
        let chunk: Int64 = 64 * 1024
        var buffer = [UInt8](repeating: 0, count: Int(chunk))
        var end = size
        var newlinesNeeded = count
        var first = true
        while end > 0 {
            let start = max(0, end - chunk)
            let length = Int(end - start)
            let got = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress, length, off_t(start)) }
            guard got == length else { return size }
            var index = length - 1
            if first {
                first = false
                // A terminated last line: its own newline does not start a line.
                if buffer[index] == 0x0A { index -= 1 }
            }
            while index >= 0 {
                if buffer[index] == 0x0A {
                    newlinesNeeded -= 1
                    if newlinesNeeded == 0 { return start + Int64(index) + 1 }
                }
                index -= 1
            }
            end = start
        }
        return 0
    }
}
