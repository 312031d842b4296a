import Foundation
import LogcastHub
import LogcastProtocol
import Synchronization
import Testing

@testable import LogcastStore

/// A fresh directory under the temporary directory, removed by the caller.
func temporaryDirectory() -> String {
    var template = Array((NSTemporaryDirectory() + "logcast-store-XXXXXX").utf8CString)
    return String(cString: mkdtemp(&template)!)
}

func line(_ seq: UInt64, _ message: String = "", fields: Bool = false) -> HubEntry {
    var record = LogRecord(timestamp: Timestamp(microseconds: Int64(seq) * 1000), source: "app", message: message.isEmpty ? "line \(seq)" : message)
    if fields {
        var given = LineFields()
        given.append(name: "_PID", value: "1234")
        given.append(name: "MULTI", value: "a\nb")
        record.fields = given
        record.continued = true
    }
    record.host = "h"
    record.priority = Int(seq % 8)
    record.cursor = seq % 2 == 0 ? "c\(seq)" : nil
    return HubEntry(position: seq, payload: .line(record), json: ProtocolObject.line(record, seq: seq).encoded())
}

func position(_ offset: Int64) -> SourcePosition {
    .file(FilePosition(path: "/var/log/app.log", device: 1, inode: 2, offset: offset, fingerprint: 3, fingerprintLength: 256))
}

func messages(_ entries: [HubEntry]) -> [String] {
    entries.map { if case .line(let record) = $0.payload { record.message } else { "?" } }
}

@Suite struct SegmentLogTests {
    func open(_ directory: String, segmentBytes: Int64 = 64 << 20, maxBytes: Int64 = 1 << 30, tail: Int = 100) throws -> SegmentLog {
        var configuration = SegmentLog.Configuration(directory: directory)
        configuration.segmentBytes = segmentBytes
        configuration.maxBytes = maxBytes
        return try SegmentLog(configuration: configuration, tailLines: tail, tailBytes: 1 << 30)
    }

    @Test func linesAndPositionsSurviveAReopen() throws {
        let directory = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        do {
            let log = try open(directory)
            log.append([line(1), line(2)], source: "app", position: position(20))
            log.append([line(3, "ünïcødé \"quoted\"\n")], source: "app", position: position(40))
            log.append([line(4, fields: true)], source: "journal", position: .journal(cursor: "s=abc;i=4"))
            log.append(
                [],
                source: "nginx",
                position: .member(FilePosition(path: "/n/a.log", device: 1, inode: 7, offset: 9, fingerprint: 5, fingerprintLength: 9))
            )
            log.append(
                [],
                source: "nginx",
                position: .member(FilePosition(path: "/n/b.log", device: 1, inode: 8, offset: 3, fingerprint: 6, fingerprintLength: 3))
            )
        }
        let log = try open(directory, tail: 3)
        #expect(log.recovery.lastSeq == 4)
        #expect(log.recovery.tail.map(\.position) == [2, 3, 4], "the newest lines, at most the tail's size")
        #expect(messages(log.recovery.tail) == ["line 2", "ünïcødé \"quoted\"\n", "line 4"])
        guard case .line(let withFields) = log.recovery.tail.last?.payload else { return }
        #expect(withFields.fields?.pairs.map(\.value) == ["1234", "a\nb"], "a source's fields are stored")
        #expect(withFields.continued, "and the flag beside them")
        #expect(
            log.recovery.tail.map { String(decoding: $0.json, as: UTF8.self) }
                == [2, 3, 4].map {
                    String(decoding: line($0, $0 == 3 ? "ünïcødé \"quoted\"\n" : "", fields: $0 == 4).json, as: UTF8.self)
                },
            "the same bytes as when they were published"
        )
        #expect(
            log.recovery.positions == [
                "app": position(40), "journal": .journal(cursor: "s=abc;i=4"),
                "nginx\u{0}/n/a.log": .member(FilePosition(path: "/n/a.log", device: 1, inode: 7, offset: 9, fingerprint: 5, fingerprintLength: 9)),
                "nginx\u{0}/n/b.log": .member(FilePosition(path: "/n/b.log", device: 1, inode: 8, offset: 3, fingerprint: 6, fingerprintLength: 3)),
            ],
            "a glob's members each keep a position, stored without lines"
        )
        #expect(log.recovery.tornBytes == 0 && log.recovery.damagedSegments.isEmpty)
    }

    /// Readers catching up through the same whole chunk get slices of one
    /// cached array (no copy of its entries each); a read past the last
    /// whole chunk is read from the files.
    @Test func partsOfACachedChunkShareItsArray() throws {
        let directory = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        var configuration = SegmentLog.Configuration(directory: directory)
        configuration.chunkPositions = 16
        configuration.cachedChunks = 4
        let log = try SegmentLog(configuration: configuration, tailLines: 10, tailBytes: 1 << 20)
        log.append((1...40).map { line($0, "line \($0)") }, source: "app", position: position(40))
        func base(_ part: DurablePart) -> UnsafeRawPointer? {
            part.array.withUnsafeBufferPointer { UnsafeRawPointer($0.baseAddress) }
        }
        let first = log.part(after: 16, before: 41, limit: 100)
        let second = log.part(after: 20, before: 41, limit: 3)
        #expect(first.entries.map(\.position) == Array(17...32))
        #expect(second.entries.map(\.position) == [21, 22, 23])
        #expect(first.shared && second.shared)
        #expect(base(first) != nil && base(first) == base(second), "one array for both readers")
        let growing = log.part(after: 32, before: 41, limit: 100)
        #expect(growing.entries.map(\.position) == Array(33...40), "the growing chunk, from the files")
        #expect(!growing.shared, "a read of its own")
    }

    @Test func aScanStopsWhenItsReaderHasWhatItWants() throws {
        let directory = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let log = try open(directory)
        log.append((1...2000).map { line($0) }, source: "app", position: position(1))
        let files = try FileManager.default.contentsOfDirectory(atPath: directory).filter { $0.hasSuffix(".seg") }
        let path = directory + "/" + (try #require(files.sorted().first))
        var seen: [UInt64] = []
        let scan = try SegmentLog.scan(path: path) { record, _ in
            if case .line(let seq, _) = record { seen.append(seq) }
            return seen.count < 5
        }
        #expect(seen == [1, 2, 3, 4, 5], "no record read after the reader stopped")
        #expect(scan.validBytes < scan.fileBytes / 100, "it read a few records of \(scan.fileBytes) bytes, not the file")
        var all = 0
        _ = try SegmentLog.scan(path: path) { record, _ in
            if case .line = record { all += 1 }
            return true
        }
        #expect(all == 2000)
        // The readers that stop early still read what they want.
        #expect(log.lines(after: 10, before: 16, limit: 100).map(\.position) == Array(11...15))
        #expect(log.oldestLineTime == Timestamp(microseconds: 1000))
    }

    @Test func aTornLastRecordIsCutAndWritingGoesOn() throws {
        let directory = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        do {
            let log = try open(directory)
            log.append([line(1)], source: "app", position: position(10))
            log.append([line(2)], source: "app", position: position(20))
        }
        let segment = directory + "/" + (try FileManager.default.contentsOfDirectory(atPath: directory).first!)
        let size = try FileManager.default.attributesOfItem(atPath: segment)[.size] as! Int
        for cut in [1, 5, 30] {
            // Every size of tear: within the position record, or into the line.
            let copy = temporaryDirectory()
            defer { try? FileManager.default.removeItem(atPath: copy) }
            let target = copy + "/" + (segment as NSString).lastPathComponent
            try FileManager.default.copyItem(atPath: segment, toPath: target)
            #expect(truncate(target, off_t(size - cut)) == 0)
            do {
                let log = try open(copy)
                #expect(log.recovery.tornBytes > 0, "cut \(cut)")
                #expect(log.recovery.lastSeq >= 1)
                log.append([line(log.recovery.lastSeq + 1)], source: "app", position: position(99))
            }
            let again = try open(copy)
            #expect(again.recovery.tornBytes == 0, "the tear was cut, cut \(cut)")
            #expect(again.recovery.positions["app"] == position(99))
        }
    }

    @Test func aDamagedSegmentIsSkippedNotFatal() throws {
        let directory = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        do {
            let log = try open(directory, segmentBytes: 200)
            for seq in UInt64(1)...20 { log.append([line(seq)], source: "app", position: position(Int64(seq))) }
            #expect(log.statistics.segments > 3)
        }
        let names = try FileManager.default.contentsOfDirectory(atPath: directory).sorted()
        let first = directory + "/" + names[0]
        let handle = try #require(FileHandle(forUpdatingAtPath: first))
        try handle.seek(toOffset: 12)
        handle.write(Data([0xFF, 0xFE]))
        try handle.close()
        let log = try open(directory, segmentBytes: 200)
        #expect(log.recovery.damagedSegments == [first])
        #expect(log.recovery.lastSeq == 20)
        #expect(log.recovery.positions["app"] == position(20))
        let read = log.lines(after: 0, before: 100, limit: 100)
        #expect(!read.isEmpty && read.last?.position == 20, "the other segments are read")
    }

    @Test func readsAreByRangeAndLimit() throws {
        let directory = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let log = try open(directory, segmentBytes: 300)
        for seq in UInt64(1)...50 { log.append([line(seq)], source: nil, position: nil) }
        #expect(log.lines(after: 10, before: 15, limit: 100).map(\.position) == [11, 12, 13, 14])
        #expect(log.lines(after: 0, before: 51, limit: 3).map(\.position) == [1, 2, 3])
        #expect(log.lines(after: 45, before: 1000, limit: 100).map(\.position) == [46, 47, 48, 49, 50])
        #expect(log.lines(after: 50, before: 1000, limit: 100).isEmpty)
    }

    /// Reads from a position begin at a seek mark, not at the segment's
    /// start, and whole chunks come from the read cache; every read, at
    /// every position, in every segment, written or reopened, gives what a
    /// read from the start would.
    @Test(arguments: [(64, 16, 8), (512, 7, 2), (4096, 4096, 8), (512, 16, 0)] as [(Int64, UInt64, Int)])
    func readsFromAPositionBeginAtAMarkAndMissNothing(markBytes: Int64, chunkPositions: UInt64, cachedChunks: Int) throws {
        let directory = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        func event(_ position: UInt64) -> HubEntry {
            let event = SourceEvent(source: "app", kind: .rotated, path: "/var/log/app.log")
            return HubEntry(position: position, payload: .event(event), json: ProtocolObject.entry(event, position: position).encoded())
        }
        var all: [HubEntry] = []
        func open() throws -> SegmentLog {
            var configuration = SegmentLog.Configuration(directory: directory)
            configuration.segmentBytes = 8 << 10
            configuration.markBytes = markBytes
            configuration.chunkPositions = chunkPositions
            configuration.cachedChunks = cachedChunks
            return try SegmentLog(configuration: configuration, tailLines: 10, tailBytes: 1 << 20)
        }
        func check(_ log: SegmentLog, _ when: Comment) {
            let last = all.last!.position
            for after in UInt64(0)...last {
                for limit in after % 25 == 0 ? [1, 1000] : [1, 3] {
                    let expected = Array(all.filter { $0.position > after }.prefix(limit)).map { [$0.position, $0.isLine ? 1 : 0] }
                    let read = log.lines(after: after, before: last + 1, limit: limit).map { [$0.position, $0.isLine ? 1 : 0] }
                    #expect(read == expected, "after \(after), limit \(limit), \(when)")
                    // A part (a slice of a cached chunk) begins the same read, and holds a line if any is left.
                    for before in [last + 1, after + 2, after + 5] {
                        let whole = Array(all.filter { $0.position > after && $0.position < before }.prefix(limit))
                            .map { [$0.position, $0.isLine ? 1 : 0] }
                        let part = log.part(after: after, before: before, limit: limit).entries.map { [$0.position, $0.isLine ? 1 : 0] }
                        #expect(Array(whole.prefix(part.count)) == part, "part after \(after) before \(before), limit \(limit), \(when)")
                        #expect(!whole.contains { $0[1] == 1 } || part.contains { $0[1] == 1 }, "part after \(after) holds no line, \(when)")
                    }
                }
            }
        }
        do {
            let log = try open()
            for seq in UInt64(1)...300 {
                var batch = [line(seq, "line \(seq) " + String(repeating: "x", count: Int(seq % 50)))]
                if seq % 37 == 0 { batch.insert(event(seq), at: 0) }  // an event sits before the line at its position
                all += batch
                log.append(batch, source: "app", position: position(Int64(seq)))
            }
            #expect(log.marks.count > 1, "several segments")
            #expect(log.marks.allSatisfy { !$0.isEmpty }, "each segment has marks")
            #expect(log.readStart(after: 290) > 0, "a read near the end does not begin at the segment's start")
            check(log, "as written")
            #expect(log.cachedChunkCount == min(cachedChunks, chunkPositions < 300 ? cachedChunks : 0), "chunks were cached")
        }
        let log = try open()
        #expect(log.marks.allSatisfy { !$0.isEmpty }, "marks are found again on open")
        check(log, "after a reopen")
        log.append([line(301)], source: "app", position: position(301))
        all.append(line(301))
        check(log, "written after a reopen")
    }

    /// The read cache never serves lines that retention deleted.
    @Test func theReadCacheForgetsWhatRetentionDeletes() throws {
        let directory = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        var configuration = SegmentLog.Configuration(directory: directory)
        configuration.segmentBytes = 2000
        configuration.maxBytes = 6000
        configuration.chunkPositions = 4
        let log = try SegmentLog(configuration: configuration, tailLines: 10, tailBytes: 1 << 20)
        for seq in UInt64(1)...20 { log.append([line(seq)], source: "app", position: position(Int64(seq))) }
        #expect(log.lines(after: 0, before: 1000, limit: 1000).map(\.position) == Array(1...20))
        #expect(log.cachedChunkCount > 0)
        for seq in UInt64(21)...200 { log.append([line(seq)], source: "app", position: position(Int64(seq))) }
        let oldest = log.lines(after: 0, before: 1000, limit: 1).first!.position
        #expect(oldest > 20, "the oldest lines are gone, cached or not")
        #expect(log.lines(after: 0, before: 1000, limit: 1000).map(\.position) == Array(oldest...200))
    }

    @Test func eventsAreStoredInPlaceAndReadBackAmongTheLines() throws {
        let directory = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let downtime = SourceEvent(source: "app", kind: .downtime, path: "/var/log/app.log", skippedBytes: 1 << 40)
        let skipped = SourceEvent(source: "app", kind: .skipped, path: "/var/log/app.log.2.gz", reason: "gzip")
        func event(_ position: UInt64, _ event: SourceEvent) -> HubEntry {
            HubEntry(position: position, payload: .event(event), json: ProtocolObject.entry(event, position: position).encoded())
        }
        do {
            let log = try open(directory)
            log.append([line(1)], source: "app", position: position(10))
            log.append([event(2, downtime)], source: nil, position: nil)
            log.append([line(2), line(3)], source: "app", position: position(30))
            log.append([event(4, skipped)], source: nil, position: nil)
            #expect(log.lines(after: 1, before: 100, limit: 100).map(\.isLine) == [false, true, true, false])
        }
        let log = try open(directory)
        #expect(log.recovery.lastSeq == 3, "an event after the last line does not move seq on")
        let tail = log.recovery.tail
        #expect(tail.map(\.position) == [1, 2, 2, 3, 4])
        #expect(String(decoding: tail[1].json, as: UTF8.self).contains(#""reason":"downtime""#))
        #expect(String(decoding: tail[1].json, as: UTF8.self).contains(#""skipped_bytes":1099511627776"#))
        #expect(tail[4].json == event(4, skipped).json, "the same bytes as when it was published")
        #expect(log.lines(after: 2, before: 100, limit: 100).map(\.position) == [3, 4], "an event at 2 comes before line 2")
        #expect(log.lines(after: 0, before: 3, limit: 100).map(\.position) == [1, 2, 2])
        #expect(
            log.lines(since: Timestamp(microseconds: 2000), before: 100, limit: 100).map(\.position) == [2, 3, 4],
            "a time range starts with its first line; the events after it come along"
        )
    }

    @Test func retentionDeletesTheOldestSegmentsButKeepsPositions() throws {
        let directory = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        do {
            let log = try open(directory, segmentBytes: 300, maxBytes: 1000)
            log.append([line(1)], source: "quiet", position: .journal(cursor: "only-once"))
            for seq in UInt64(2)...100 { log.append([line(seq)], source: "app", position: position(Int64(seq))) }
            #expect(log.statistics.bytes <= 1000 + 300)
            #expect(log.lines(after: 0, before: 1000, limit: 1000).first!.position > 1, "the oldest lines are gone")
        }
        let log = try open(directory, segmentBytes: 300, maxBytes: 1000)
        #expect(log.recovery.positions["quiet"] == .journal(cursor: "only-once"), "each segment starts with every position")
        #expect(log.recovery.lastSeq == 100)
    }

    @Test func aFailedWriteIsUndoneAndReported() throws {
        let directory = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let log = try open(directory)
        log.append([line(1)], source: "app", position: position(1))
        // Make writes fail: the segment's descriptor now reads /dev/null's, opened read-only.
        let readOnly = Glibc.open("/dev/null", O_RDONLY)
        #expect(dup2(readOnly, log.activeDescriptor) >= 0)
        close(readOnly)
        log.append([line(2)], source: "app", position: position(2))
        #expect(log.problem?.contains("cannot write the history") == true)
        #expect(log.statistics.writeErrors == 1)
    }
}

@Suite struct StateDirectoryTests {
    @Test func theEpochStaysUntilReset() throws {
        let root = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let path = root + "/a/b"
        let epoch = try StateDirectory(path: path).epoch
        #expect(try StateDirectory(path: path).epoch == epoch)
        #expect(try StateDirectory(path: path, reset: true).epoch != epoch)
    }

    @Test func oneProcessPerDirectory() throws {
        let root = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: root) }
        do {
            let first = try StateDirectory(path: root)
            #expect {
                try StateDirectory(path: root)
            } throws: { error in
                (error as? StoreError)?.description.contains("in use by another logcast (pid \(getpid()))") == true
            }
            withExtendedLifetime(first) {}
        }
        _ = try StateDirectory(path: root)  // free again once the first is closed
    }

    @Test func refusesAFileANewerFormatAndNoAccess() throws {
        let root = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: root) }
        #expect(FileManager.default.createFile(atPath: root + "/file", contents: Data()))
        #expect(throws: StoreError.self) { try StateDirectory(path: root + "/file") }
        try "9\n".write(toFile: root + "/VERSION", atomically: true, encoding: .utf8)
        #expect {
            try StateDirectory(path: root)
        } throws: { error in
            (error as? StoreError)?.description.contains("newer logcast (format 9") == true
        }
    }

    @Test func theDefaultFollowsSystemdThenXDG() {
        #expect(StateDirectory.defaultPath(environment: ["STATE_DIRECTORY": "/var/lib/logcast", "HOME": "/h"]) == "/var/lib/logcast")
        #expect(StateDirectory.defaultPath(environment: ["XDG_STATE_HOME": "/x", "HOME": "/h"]) == "/x/logcast")
        #expect(StateDirectory.defaultPath(environment: ["HOME": "/h"]) == "/h/.local/state/logcast")
    }
}

/// `sync()` flushes outside the lock that `append` takes: a slow disk must
/// not hold up the lines published meanwhile.
@Suite struct SegmentLogSyncTests {
    func open(_ directory: String, flush: @escaping @Sendable (Int32) -> Void) throws -> SegmentLog {
        var configuration = SegmentLog.Configuration(directory: directory)
        configuration.segmentBytes = 200
        return try SegmentLog(configuration: configuration, tailLines: 100, tailBytes: 1 << 20, flush: flush)
    }

    /// Where a descriptor points, or nil once it is closed (or is another file's).
    func target(_ fd: Int32) -> String? {
        try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/fd/\(fd)")
    }

    @Test func appendsGoOnWhileSyncFlushes() throws {
        let directory = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let flushing = DispatchSemaphore(value: 0)
        let appended = DispatchSemaphore(value: 0)
        let flushed = DispatchSemaphore(value: 0)
        let sawAppend = Mutex<[Bool]>([])
        let log = try open(directory) { _ in
            flushing.signal()
            // A deadline, not a pause: the append below ends it at once unless it is blocked.
            let result = appended.wait(timeout: .now() + 30)
            sawAppend.withLock { $0.append(result == .success) }
            flushed.signal()
        }
        log.append([line(1)], source: "app", position: position(1))
        let syncer = Thread { log.sync() }
        syncer.start()
        #expect(flushing.wait(timeout: .now() + 30) == .success, "sync flushes the written segment")
        log.append([line(2)], source: "app", position: position(2))
        appended.signal()
        #expect(flushed.wait(timeout: .now() + 60) == .success)
        #expect(sawAppend.withLock { $0 } == [true], "the append finished while the flush was in progress")
        #expect(log.lines(after: 0, before: 10, limit: 10).map(\.position) == [1, 2])
    }

    @Test func finishedSegmentsAreFlushedAndClosedByTheNextSync() throws {
        let directory = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let flushed = Mutex<[String]>([])
        let log = try open(directory) { fd in
            if let path = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/fd/\(fd)") {
                flushed.withLock { $0.append(path) }
            }
        }
        for seq in UInt64(1)...20 { log.append([line(seq)], source: "app", position: position(Int64(seq))) }
        let retired = log.retiredDescriptors
        let segments = log.statistics.segments
        #expect(segments > 3)
        #expect(retired.count == segments - 1, "every segment but the newest waits for the next sync")
        let paths = retired.compactMap(target)
        #expect(paths.count == retired.count && paths.allSatisfy { $0.hasPrefix(directory) })

        log.sync()
        #expect(log.retiredDescriptors.isEmpty)
        #expect(retired.allSatisfy { target($0)?.hasPrefix(directory) != true }, "closed")
        let newest = try FileManager.default.contentsOfDirectory(atPath: directory).sorted().last.map { directory + "/" + $0 }
        #expect(Set(flushed.withLock { $0 }) == Set(paths + [newest].compactMap { $0 }), "each finished segment and the newest, flushed")
        #expect(log.lines(after: 0, before: 100, limit: 100).map(\.position) == Array(1...20))
    }
}
