import Foundation
import LogcastHub

#if canImport(Glibc)
import Glibc
#endif

/// The directory where logcast keeps what must outlive the process: the
/// stream's epoch, and the history log with the sources' positions.
///
/// Layout: `VERSION` (the format, `1`), `lock` (held with `flock` while a
/// logcast uses the directory; it holds that process's pid), `epoch` (16 hex
/// digits), `history/` (the segment files of ``SegmentLog``).
///
/// Guarantees: two processes never use one directory (the second is refused
/// with the first one's pid); a directory of a newer format is refused, never
/// rewritten; the epoch stays the same until the state is lost or reset.
public final class StateDirectory: Sendable {
    /// The format this version writes and reads.
    public static let formatVersion = 1

    public let path: String
    /// The stream's epoch, kept across restarts.
    public let epoch: String
    private let lockDescriptor: Int32

    /// Where the state goes when nothing says otherwise: `$STATE_DIRECTORY`
    /// (systemd's `StateDirectory=`), else `$XDG_STATE_HOME/logcast`, else
    /// `~/.local/state/logcast`.
    public static func defaultPath(environment: [String: String]) -> String {
        if let systemd = environment["STATE_DIRECTORY"], !systemd.isEmpty {
            // systemd lists one directory per StateDirectory= entry, separated by colons.
            return String(systemd.split(separator: ":").first ?? Substring(systemd))
        }
        if let xdg = environment["XDG_STATE_HOME"], xdg.hasPrefix("/") { return xdg + "/logcast" }
        let home = environment["HOME"].flatMap { $0.isEmpty ? nil : $0 } ?? NSHomeDirectory()
        return home + "/.local/state/logcast"
    }

    /// Opens the directory (creating it, mode 0700, when missing) and locks it.
    /// - Parameter reset: start over: the history and the epoch are deleted first.
    /// - Throws: ``StoreError`` naming the path and what to do.
    public init(path: String, reset: Bool = false) throws(StoreError) {
        self.path = path
        try Self.makeDirectories(path)
        var info = stat()
        guard stat(path, &info) == 0, info.st_mode & S_IFMT == S_IFDIR else {
            throw StoreError("state directory \(path) is not a directory; give --state-directory DIR (or none)")
        }
        let lockPath = path + "/lock"
        let fd = open(lockPath, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            throw StoreError(
                "state directory \(path) is not writable (\(String(cString: strerror(errno)))); "
                    + "give logcast's user access to it, or choose another with --state-directory DIR (none keeps no state)"
            )
        }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            var holder = [UInt8](repeating: 0, count: 32)
            let count = pread(fd, &holder, holder.count, 0)
            let pid = String(decoding: holder.prefix(max(0, count)), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            close(fd)
            throw StoreError(
                "state directory \(path) is in use by another logcast\(pid.isEmpty ? "" : " (pid \(pid))"); "
                    + "two cannot share one: stop it, or give this one its own --state-directory DIR"
            )
        }
        lockDescriptor = fd
        let pid = Array("\(getpid())\n".utf8)
        _ = ftruncate(fd, 0)
        _ = pwrite(fd, pid, pid.count, 0)
        do {
            try Self.checkVersion(path)
            if reset {
                try? FileManager.default.removeItem(atPath: path + "/history")
                unlink(path + "/epoch")
            }
            epoch = try Self.loadEpoch(path)
        } catch {
            close(fd)
            throw error
        }
    }

    deinit {
        close(lockDescriptor)
    }

    /// What `--check-config` says of a state directory, without creating,
    /// locking or writing anything: a sentence, or a ``StoreError`` for a
    /// directory a start would refuse (a file, not writable, a newer format).
    /// One in use by a running logcast is fine to check (it is said so).
    public static func inspect(path: String) throws(StoreError) -> String {
        var info = stat()
        guard stat(path, &info) == 0 else {
            // Missing: the nearest existing parent must let logcast create it.
            var parent = (path as NSString).deletingLastPathComponent
            while !parent.isEmpty, parent != "/", access(parent, F_OK) != 0 { parent = (parent as NSString).deletingLastPathComponent }
            guard access(parent.isEmpty ? "." : parent, W_OK | X_OK) == 0 else {
                throw StoreError(
                    "cannot create the state directory \(path) (\(parent) is not writable); "
                        + "create it for logcast's user, or give --state-directory DIR (none keeps no state)"
                )
            }
            return "\(path) does not exist yet; it will be created (a new epoch, no history)"
        }
        guard info.st_mode & S_IFMT == S_IFDIR else {
            throw StoreError("state directory \(path) is not a directory; give --state-directory DIR (or none)")
        }
        guard access(path, W_OK | X_OK) == 0 else {
            throw StoreError(
                "state directory \(path) is not writable (\(String(cString: strerror(errno)))); "
                    + "give logcast's user access to it, or choose another with --state-directory DIR (none keeps no state)"
            )
        }
        if let text = try? String(contentsOfFile: path + "/VERSION", encoding: .utf8) {
            guard let version = Int(text.trimmingCharacters(in: .whitespacesAndNewlines)) else {
                throw StoreError("\(path)/VERSION is not a version number; remove the state directory's contents, or start with --reset-state")
            }
            guard version <= formatVersion else {
                throw StoreError(
                    "state directory \(path) holds state of a newer logcast (format \(version), this one reads \(formatVersion)); "
                        + "run the newer logcast, or start over with --reset-state (its history is lost)"
                )
            }
        }
        var parts = [path]
        let epoch = (try? String(contentsOfFile: path + "/epoch", encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines)
        parts.append(epoch.map { "epoch \($0)" } ?? "no epoch yet")
        let segments = ((try? FileManager.default.contentsOfDirectory(atPath: path + "/history")) ?? []).filter { $0.hasSuffix(".seg") }
        let bytes = segments.reduce(Int64(0)) { total, name in
            var segment = stat()
            return total + (stat(path + "/history/" + name, &segment) == 0 ? Int64(segment.st_size) : 0)
        }
        parts.append("\(bytes) bytes of history in \(segments.count) segment(s)")
        if let holder = try? String(contentsOfFile: path + "/lock", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines),
            let pid = Int32(holder), kill(pid, 0) == 0 || errno == EPERM, pid != getpid()
        {
            parts.append("in use by pid \(pid)")
        }
        return parts.joined(separator: ", ")
    }

    /// The folder of the history's segments.
    public var historyPath: String { path + "/history" }

    /// `mkdir -p`, touching the parents only when the directory is missing.
    static func makeDirectories(_ path: String) throws(StoreError) {
        if mkdir(path, 0o700) == 0 || errno == EEXIST { return }
        guard errno == ENOENT else {
            throw StoreError(
                "cannot create the state directory \(path) (\(String(cString: strerror(errno)))); "
                    + "create it for logcast's user, or give --state-directory DIR (none keeps no state)"
            )
        }
        let parent = (path as NSString).deletingLastPathComponent
        if !parent.isEmpty, parent != path { try makeDirectories(parent) }
        if mkdir(path, 0o700) != 0, errno != EEXIST {
            throw StoreError(
                "cannot create the state directory \(path) (\(String(cString: strerror(errno)))); "
                    + "create it for logcast's user, or give --state-directory DIR (none keeps no state)"
            )
        }
    }

    static func checkVersion(_ path: String) throws(StoreError) {
        let file = path + "/VERSION"
        if let text = try? String(contentsOfFile: file, encoding: .utf8) {
            guard let version = Int(text.trimmingCharacters(in: .whitespacesAndNewlines)) else {
                throw StoreError("\(file) is not a version number; remove the state directory's contents, or start with --reset-state")
            }
            guard version <= formatVersion else {
                throw StoreError(
                    "state directory \(path) holds state of a newer logcast (format \(version), this one reads \(formatVersion)); "
                        + "run the newer logcast, or start over with --reset-state (its history is lost)"
                )
            }
            return
        }
        try writeAtomically(file, "\(formatVersion)\n")
    }

    static func loadEpoch(_ path: String) throws(StoreError) -> String {
        let file = path + "/epoch"
        if let text = try? String(contentsOfFile: file, encoding: .utf8) {
            let epoch = text.trimmingCharacters(in: .whitespacesAndNewlines)
            if epoch.count == 16, epoch.allSatisfy(\.isHexDigit) { return epoch }
        }
        let epoch = Hub.randomEpoch()
        try writeAtomically(file, epoch + "\n")
        return epoch
    }

    /// Writes `text` to a temporary file, syncs it, and renames it over `path`.
    static func writeAtomically(_ path: String, _ text: String) throws(StoreError) {
        let temporary = path + ".tmp"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw StoreError("cannot write \(temporary): \(String(cString: strerror(errno)))") }
        let bytes = Array(text.utf8)
        let problem = SegmentLog.writeAll(fd, bytes)
        _ = fsync(fd)
        close(fd)
        if let problem { throw StoreError("cannot write \(temporary): \(problem)") }
        guard rename(temporary, path) == 0 else { throw StoreError("cannot rename \(temporary): \(String(cString: strerror(errno)))") }
    }
}
