#if canImport(Glibc)
import Glibc
#endif

/// What the inotify events of one wake-up ask the file checks to do.
///
/// Checking a followed file costs a `stat` of its path (has the name moved
/// on to another file?), an `fstat` of the open file (was it truncated?)
/// and a `read`. The path's `stat` only tells something new after an event
/// that can change which file a name refers to, and the directory watch
/// reports every such event: a name created, moved or deleted, attributes
/// changed (a link count), the directory itself gone, or the queue
/// overflowed (events lost). Most events are none of these but writes to a
/// file (`IN_MODIFY`), and name it. So:
/// - After a wake-up whose events were all writes, only the followed files
///   written to are checked, without the `stat` of their path (their
///   `fstat` still shows a truncation). Writes to other files of the
///   directory, a busy neighbour in `/var/log`, cost nothing more.
/// - After any other event, after a wake-up without events (the poll
///   interval, a partial line's timeout) and after `SIGHUP`, every followed
///   path is checked in full, as before.
/// - A followed file is checked after every write in the directory while
///   its path is a symbolic link (its target's writes carry the target's
///   name; a target in another directory sends no events here at all, and
///   the poll interval finds its lines, as it always did), and while its
///   name no longer refers to its open file (renamed away and still written
///   to under its new name, the new file not there yet).
/// - A write through another name of the same file (a hard link) is found
///   by the poll interval.
struct InotifyDigest: Equatable, Sendable {
    /// Whether every followed path is checked in full.
    var everything: Bool
    /// The names written to, when ``everything`` is false.
    var written: Set<String> = []

    init(everything: Bool = false) {
        self.everything = everything
    }

    /// Every followed path, in full: the wake-ups without events.
    static let full = InotifyDigest(everything: true)

    /// The events that only write to the file they name.
    static let writeMask = UInt32(IN_MODIFY | IN_CLOSE_WRITE)

    /// Takes one event: its mask and the name it carries (empty: the
    /// directory itself, or the queue).
    mutating func note(mask: UInt32, name: String) {
        guard !everything else { return }
        guard !name.isEmpty, mask != 0, mask & ~Self.writeMask == 0 else {
            everything = true
            written = []
            return
        }
        written.insert(name)
    }

    /// Whether a followed file is checked after these events, and whether
    /// in full (its path `stat`ed too). `name` is the last component of
    /// its path; `anyWrite`, whether any write in the directory concerns it
    /// (``FollowedFile/readsOnAnyWrite``).
    func check(name: String, anyWrite: Bool) -> Check {
        if everything { return .full }
        return anyWrite || written.contains(name) ? .written : .none
    }

    enum Check: Equatable, Sendable {
        /// Not at all: nothing happened to it.
        case none
        /// The open file only (`fstat`, `read`): its name did not move.
        case written
        /// The path and the open file.
        case full
    }
}
