import Testing

@testable import LogcastSources

#if canImport(Glibc)
import Glibc
#endif

/// What a wake-up's inotify events ask the file checks to do (``InotifyDigest``):
/// writes that name a file check only that file's descriptor; every other
/// event, on its own or among writes, checks every path in full.
@Suite struct InotifyDigestTests {
    /// Writes: a file modified, or closed after writing.
    static let writes: Set<UInt32> = [UInt32(IN_MODIFY), UInt32(IN_CLOSE_WRITE)]

    /// Every one of the 32 bits of an event mask, alone and beside a write,
    /// with a name and without: only writes that carry a name leave the
    /// other paths unchecked.
    @Test(arguments: 0..<32)
    func everyEventButANamedWriteChecksEverything(bit: Int) {
        let mask = UInt32(1) << UInt32(bit)
        let isWrite = Self.writes.contains(mask)
        for combined in [mask, mask | UInt32(IN_MODIFY)] {
            var digest = InotifyDigest()
            digest.note(mask: combined, name: "app.log")
            #expect(digest.everything == !isWrite, "mask \(String(combined, radix: 16))")
            #expect(digest.written == (isWrite ? ["app.log"] : []))
            var nameless = InotifyDigest()
            nameless.note(mask: combined, name: "")
            #expect(nameless.everything, "an event without a name is the directory's or the queue's: mask \(String(combined, radix: 16))")
        }
    }

    @Test func anEmptyMaskChecksEverything() {
        var digest = InotifyDigest()
        digest.note(mask: 0, name: "app.log")
        #expect(digest.everything)
    }

    /// The named events the directory watch asks for, each with what it must
    /// lead to: rotation, truncation, deletion, creation, a glob member renamed.
    @Test(arguments: [
        (IN_MODIFY, false),
        (IN_CLOSE_WRITE, false),
        (IN_MODIFY | IN_CLOSE_WRITE, false),
        (IN_ATTRIB, true),
        (IN_CREATE, true),
        (IN_DELETE, true),
        (IN_MOVED_FROM, true),
        (IN_MOVED_TO, true),
        (IN_DELETE_SELF, true),
        (IN_MOVE_SELF, true),
        (IN_Q_OVERFLOW, true),
        (IN_IGNORED, true),
        (IN_CREATE | IN_ISDIR, true),
        (IN_MODIFY | IN_ISDIR, true),
    ])
    func theWatchedEvents(mask: Int32, everything: Bool) {
        var digest = InotifyDigest()
        digest.note(mask: UInt32(mask), name: "app.log")
        #expect(digest.everything == everything)
    }

    /// Random wake-ups: the digest is everything exactly when one event is not
    /// a named write; otherwise the names written, and each followed file is
    /// checked as those say.
    @Test(arguments: 0..<50)
    func randomWakeUps(seed: UInt64) {
        var random = SplitMix(seed: seed)
        // Writes are the most common events, as in a directory of logs.
        let masks = [IN_MODIFY, IN_CLOSE_WRITE, IN_MODIFY, IN_MODIFY, IN_CREATE, IN_MOVED_FROM, IN_ATTRIB].map { UInt32($0) }
        let names = ["a.log", "b.log", "c.log", "", "app.log"]
        var digest = InotifyDigest()
        var other = false
        var written: Set<String> = []
        for _ in 0..<Int(random.next() % 6) {
            let mask = masks[Int(random.next() % UInt64(masks.count))]
            let name = names[Int(random.next() % UInt64(names.count))]
            digest.note(mask: mask, name: name)
            if name.isEmpty || !Self.writes.contains(mask) { other = true } else { written.insert(name) }
        }
        #expect(digest.everything == other)
        if !other { #expect(digest.written == written) }
        for name in ["a.log", "b.log", "app.log"] {
            for anyWrite in [false, true] {
                let expected: InotifyDigest.Check = other ? .full : (anyWrite || written.contains(name) ? .written : .none)
                #expect(digest.check(name: name, anyWrite: anyWrite) == expected, "\(name), any write \(anyWrite)")
            }
        }
    }

    @Test func aWakeUpWithoutEventsChecksEverything() {
        #expect(InotifyDigest.full.check(name: "app.log", anyWrite: false) == .full)
        #expect(InotifyDigest().check(name: "app.log", anyWrite: false) == .none, "no events: nothing to do")
        #expect(InotifyDigest().check(name: "app.log", anyWrite: true) == .written)
    }

    /// Once everything is asked, later writes do not narrow it.
    @Test func everythingStays() {
        var digest = InotifyDigest()
        digest.note(mask: UInt32(IN_MODIFY), name: "a.log")
        digest.note(mask: UInt32(IN_MOVED_TO), name: "b.log")
        digest.note(mask: UInt32(IN_MODIFY), name: "c.log")
        #expect(digest.everything)
        #expect(digest.check(name: "x.log", anyWrite: false) == .full)
    }

    struct SplitMix {
        var state: UInt64
        init(seed: UInt64) { state = seed &+ 0x9E37_79B9_7F4A_7C15 }
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }
}
