import Foundation
import LogcastHub
import LogcastProtocol

/// Recognises the journal entries this very process wrote (its own log on
/// stderr, which journald records), so that they never loop back into the
/// stream.
///
/// An entry is our own only when everything that identifies this process
/// matches: the boot, the `_PID`, the `_COMM` (process name, when the entry
/// has one), and a timestamp no earlier than the process's start. The PID alone is not
/// enough: run as PID 1 in a container that reads the host's journal
/// (containers share the host's boot id), it would match every entry of the
/// host's systemd; an `INVOCATION_ID` inherited from a parent unit would
/// match the parent's entries, so it is not used.
public struct OwnEntryRule: Sendable, Equatable {
    public var bootID: String?
    public var pid: Int
    public var command: String?
    /// Microseconds since the epoch when the process started.
    public var startedAtMicroseconds: Int64

    public init(bootID: String?, pid: Int, command: String?, startedAtMicroseconds: Int64) {
        self.bootID = bootID
        self.pid = pid
        self.command = command
        self.startedAtMicroseconds = startedAtMicroseconds
    }

    /// This process, read from `/proc`.
    public static var current: OwnEntryRule {
        let bootID = (try? String(contentsOfFile: "/proc/sys/kernel/random/boot_id", encoding: .utf8))
            .map { $0.trimmingCharacters(in: .whitespacesAndNewlines).replacingOccurrences(of: "-", with: "") }
        let command = (try? String(contentsOfFile: "/proc/self/comm", encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines)
        return OwnEntryRule(bootID: bootID, pid: Int(getpid()), command: command, startedAtMicroseconds: processStartMicroseconds())
    }

    /// Whether `entry`, stamped `realtime` (microseconds), is this process's.
    public func isOwn(_ entry: JournalEntry, realtime: Int64) -> Bool {
        guard let bootID, entry.bootID == bootID, entry.pid == pid else { return false }
        // journald records `_COMM` for every process it knows; an entry without
        // one (written by a tool) is judged by the rest.
        if let written = entry.command, written != command { return false }
        return realtime >= startedAtMicroseconds
    }

    /// The process's start, from `/proc/self/stat` (clock ticks after boot)
    /// and `/proc/stat` (`btime`), less a second of rounding; now if unreadable.
    static func processStartMicroseconds() -> Int64 {
        let now = Int64(Date().timeIntervalSince1970 * 1_000_000)
        guard let stat = try? String(contentsOfFile: "/proc/self/stat", encoding: .utf8),
            let close = stat.lastIndex(of: ")"),
            let system = try? String(contentsOfFile: "/proc/stat", encoding: .utf8),
            let btimeLine = system.split(separator: "\n").first(where: { $0.hasPrefix("btime ") }),
            let bootSeconds = Int64(btimeLine.dropFirst(6).trimmingCharacters(in: .whitespaces))
        else { return now }
        // Fields after the command: state is field 3; starttime is field 22.
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        guard fields.count > 19, let ticks = Int64(fields[19]) else { return now }
        let hertz = Int64(sysconf(Int32(_SC_CLK_TCK)))
        guard hertz > 0 else { return now }
        return (bootSeconds + ticks / hertz - 1) * 1_000_000
    }
}
