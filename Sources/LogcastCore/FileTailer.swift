import CLinuxShims
import Foundation
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
        public var maxLineBytes = 64 * 1024
        public var hostName: String?

        public init(name: String, pattern: String) {
            self.name = name
            self.pattern = pattern
        }

        /// The directory and the file-name pattern.
        var directory: String { (pattern as NSString).deletingLastPathComponent }
        var namePattern: String { (pattern as NSString).lastPathComponent }
        var isGlob: Bool { namePattern.contains(where: { "*?[".contains($0) }) }
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

    /// Wakes the thread and makes it exit.
    public func stop() {
        wake.signal()
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
    var fd: Int32 = -1
    var state: FollowState
    var splitter: LineSplitter
    var lastData: ContinuousClock.Instant = .now
    /// Set for glob members that vanished: forget them after the next check.
    var retired = false
}

/// The loop of ``FileTailer``'s thread. Not Sendable: it lives on that thread.
struct FileTailLoop {
    let configuration: FileTailer.Configuration
    let sink: SourceSink
    let logger: Logger
    let wakeFD: Int32
    let recheck: WakeSignal

    var files: [String: FollowedFile] = [:]
    var inotifyFD: Int32 = -1
    var watch: Int32 = -1
    var lastError: String?
    var readBuffer = [UInt8](repeating: 0, count: 64 * 1024)

    init(configuration: FileTailer.Configuration, sink: SourceSink, logger: Logger, wakeFD: Int32, recheck: WakeSignal) {
        self.configuration = configuration
        self.sink = sink
        self.logger = logger
        self.wakeFD = wakeFD
        self.recheck = recheck
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
            let timeout = pollTimeoutMilliseconds(since: lastFullCheck)
            var fds = [
                pollfd(fd: wakeFD, events: Int16(POLLIN), revents: 0),
                pollfd(fd: recheck.fd, events: Int16(POLLIN), revents: 0),
            ]
            if inotifyFD >= 0 { fds.append(pollfd(fd: inotifyFD, events: Int16(POLLIN), revents: 0)) }
            let ready = poll(&fds, nfds_t(fds.count), timeout)
            if ready < 0 && errno != EINTR { break }
            if fds[0].revents != 0 { break }

            var rescan = false
            if fds.count > 2, fds[2].revents != 0 {
                rescan = drainInotify()
            }
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
            if rescan && configuration.isGlob { discover(initial: false) }
            checkAll()
            flushStalePartials()
            publishStatus()
        }
        for path in files.keys { closeFile(path) }
        if inotifyFD >= 0 { close(inotifyFD) }
        sink.status { $0.state = .stopped }
    }

    // MARK: Start-up

    mutating func start() {
        if configuration.isGlob {
            discover(initial: true)
            return
        }
        let path = configuration.pattern
        files[path] = FollowedFile(path: path, state: .waiting(announced: false), splitter: LineSplitter(maxLineBytes: configuration.maxLineBytes))
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
        let start = Self.offsetOfLastLines(fd: fd, size: status.size, count: configuration.initialLines)
        lseek(fd, off_t(start), SEEK_SET)
        var file = files[path] ?? FollowedFile(path: path, state: .waiting(announced: false), splitter: LineSplitter(maxLineBytes: configuration.maxLineBytes))
        file.fd = fd
        file.state = .following(status.identity, at: start)
        files[path] = file
        readToEnd(path)
        return true
    }

    /// Finds glob members. At start they are read from their tail; later ones from offset 0.
    mutating func discover(initial: Bool) {
        let directory = configuration.directory
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: directory) else { return }
        for name in names.sorted() where fnmatch(configuration.namePattern, name, 0) == 0 {
            let path = directory == "" ? name : directory + "/" + name
            guard files[path] == nil else { continue }
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), !isDirectory.boolValue else { continue }
            if initial {
                openAtTail(path)
            } else {
                files[path] = FollowedFile(path: path, state: .waiting(announced: true), splitter: LineSplitter(maxLineBytes: configuration.maxLineBytes))
            }
        }
    }

    // MARK: Following

    mutating func checkAll() {
        for path in files.keys.sorted() { check(path) }
        files = files.filter { !$0.value.retired }
    }

    mutating func check(_ path: String) {
        guard var file = files[path] else { return }
        let pathStatus = Self.fileStatus(path: path)
        let openStatus = file.fd >= 0 ? Self.fileStatus(fd: file.fd) : nil
        let steps = file.state.check(path: pathStatus, open: openStatus)
        files[path] = file
        for step in steps {
            switch step {
            case .read:
                readToEnd(path)
            case .emit(let kind):
                emit(kind, path: path)
                if kind == .missing, configuration.isGlob {
                    // A glob member that is gone is forgotten; a new one is found by the next scan.
                    files[path]?.retired = true
                }
            case .close:
                closeFile(path)
            case .rewind:
                if let fd = files[path]?.fd, fd >= 0 { lseek(fd, 0, SEEK_SET) }
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
                files[path]?.fd = fd
                files[path]?.state.didOpen()
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
            readBuffer.withUnsafeBytes { bytes in
                file.splitter.append(UnsafeRawBufferPointer(rebasing: bytes[0..<count])) { line in
                    records.append(record(line, path: path, at: timestamp))
                }
            }
            publish(records, bytes: count)
        }
        if total > 0 { file.lastData = .now }
        files[path] = file
    }

    mutating func closeFile(_ path: String) {
        guard var file = files[path], file.fd >= 0 else { return }
        var records: [LogRecord] = []
        file.splitter.flushPartial { records.append(record($0, path: path, at: .now())) }
        publish(records, bytes: 0)
        close(file.fd)
        file.fd = -1
        files[path] = file
    }

    mutating func flushStalePartials() {
        let now = ContinuousClock.now
        for (path, var file) in files where file.splitter.hasPartialLine && now - file.lastData >= configuration.partialLineTimeout {
            var records: [LogRecord] = []
            file.splitter.flushPartial { records.append(record($0, path: path, at: .now())) }
            files[path] = file
            publish(records, bytes: 0)
        }
    }

    /// A line of this source, read from `path`, with its level detected from the text.
    func record(_ line: String, path: String, at timestamp: Timestamp) -> LogRecord {
        LogRecord(
            timestamp: timestamp,
            source: configuration.name,
            message: line,
            host: configuration.hostName,
            path: path,
            priority: PriorityDetector.detect(line)
        )
    }

    func publish(_ records: [LogRecord], bytes: Int) {
        guard !records.isEmpty || bytes > 0 else { return }
        sink.lines(records)
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
        if lastError != message {
            logger.error("\(message)", metadata: ["source": "\(configuration.name)"])
        }
        lastError = message
    }

    func publishStatus() {
        let open = files.values.filter { $0.fd >= 0 }.map(\.path).sorted()
        let error = lastError
        sink.status { status in
            status.paths = open
            status.lastError = error
            status.state = error != nil ? .failing : (open.isEmpty ? .waiting : .following)
        }
    }

    // MARK: inotify

    mutating func addWatch() {
        guard inotifyFD >= 0 else { return }
        let mask = UInt32(IN_MODIFY | IN_ATTRIB | IN_CLOSE_WRITE | IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | IN_DELETE_SELF | IN_MOVE_SELF)
        let directory = configuration.directory.isEmpty ? "." : configuration.directory
        watch = inotify_add_watch(inotifyFD, directory, mask)
    }

    /// Reads pending events. Returns whether the directory's membership may have changed.
    mutating func drainInotify() -> Bool {
        var membership = false
        var buffer = [UInt8](repeating: 0, count: 16 * 1024)
        while true {
            let count = buffer.withUnsafeMutableBytes { read(inotifyFD, $0.baseAddress, $0.count) }
            if count <= 0 { break }
            var offset = 0
            buffer.withUnsafeBytes { raw in
                while offset + 16 <= count {
                    let mask = raw.loadUnaligned(fromByteOffset: offset + 4, as: UInt32.self)
                    let nameLength = raw.loadUnaligned(fromByteOffset: offset + 12, as: UInt32.self)
                    if mask & UInt32(IN_Q_OVERFLOW) != 0 { membership = true }
                    if mask & UInt32(IN_CREATE | IN_MOVED_TO | IN_DELETE | IN_MOVED_FROM) != 0 { membership = true }
                    if mask & UInt32(IN_IGNORED | IN_DELETE_SELF | IN_MOVE_SELF) != 0 {
                        // The directory itself went away: watch again on the next poll tick.
                        watch = -1
                        membership = true
                    }
                    offset += 16 + Int(nameLength)
                }
            }
        }
        return membership
    }

    func pollTimeoutMilliseconds(since lastFullCheck: ContinuousClock.Instant) -> Int32 {
        var wait = configuration.pollInterval - (ContinuousClock.now - lastFullCheck)
        for file in files.values where file.splitter.hasPartialLine {
            wait = min(wait, configuration.partialLineTimeout - (ContinuousClock.now - file.lastData))
        }
        let ms = wait.components.seconds * 1000 + wait.components.attoseconds / 1_000_000_000_000_000
        return Int32(max(0, min(ms, 60_000)) + 1)
    }

    // MARK: stat helpers

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
            linkCount: Int(info.st_nlink)
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
