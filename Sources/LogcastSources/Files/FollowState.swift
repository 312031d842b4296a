import LogcastHub
import LogcastProtocol

/// Which file a descriptor or path refers to.
public struct FileIdentity: Sendable, Hashable {
    public var device: UInt64
    public var inode: UInt64

    public init(device: UInt64, inode: UInt64) {
        self.device = device
        self.inode = inode
    }
}

/// What `stat` says about a file, as far as following it goes.
public struct FileStatus: Sendable, Equatable {
    public var identity: FileIdentity
    public var size: Int64
    /// 0 once the file was deleted (the open descriptor keeps it alive).
    public var linkCount: Int
    /// A regular file (not a FIFO, device, socket or directory).
    public var isRegular: Bool

    public init(identity: FileIdentity, size: Int64, linkCount: Int, isRegular: Bool = true) {
        self.identity = identity
        self.size = size
        self.linkCount = linkCount
        self.isRegular = isRegular
    }
}

/// Follow-by-name for one path, as GNU `tail -F` does, as a pure state machine.
///
/// The I/O around it stats the path and the open descriptor, calls
/// ``check(path:open:)``, and carries out the returned steps in order. The
/// rules:
/// - The open file is always read to its end before it is left, so lines
///   written just before a rotation are not lost.
/// - Path names another file (rename rotation): `rotated`, then the new file
///   from offset 0. If the old file was deleted instead: `missing`, `created`.
/// - Path gone and the open file deleted: `missing`, then wait; when the path
///   appears again: `created` and read it from offset 0.
/// - Path gone but the open file still linked elsewhere (renamed, replacement
///   not there yet): keep reading the old file until the new one appears.
/// - Open file smaller than what was read (copytruncate): `truncated`, read
///   from offset 0.
public struct FollowState: Sendable, Equatable {
    public enum Phase: Sendable, Equatable {
        /// No file open. `announced`: `missing` was already emitted.
        case waiting(announced: Bool)
        case following(FileIdentity)
    }

    /// What the I/O layer does next.
    public enum Step: Sendable, Equatable {
        /// Read the open file from ``FollowState/offset`` to its end.
        case read
        /// Publish this event.
        case emit(SourceEvent.Kind)
        /// Flush a held partial line, close the descriptor.
        case close
        /// Open the path; read from offset 0.
        case open
        /// Seek the open file to 0 and forget any partial line.
        case rewind
    }

    public private(set) var phase: Phase
    /// Bytes of the open file already read.
    public private(set) var offset: Int64

    /// Following an already open file from `offset` (start-up).
    public static func following(_ identity: FileIdentity, at offset: Int64) -> FollowState {
        FollowState(phase: .following(identity), offset: offset)
    }

    /// Waiting for a file. `announced: false` makes the first check emit `missing`;
    /// `announced: true` (a new file discovered by a glob) makes its appearance emit `created`.
    public static func waiting(announced: Bool) -> FollowState {
        FollowState(phase: .waiting(announced: announced), offset: 0)
    }

    /// Decides what to do, given the path's status (`nil`: it does not
    /// exist) and the open descriptor's (`nil` when nothing is open).
    public mutating func check(path: FileStatus?, open: FileStatus?) -> [Step] {
        switch phase {
        case .waiting(let announced):
            guard let path else {
                if announced { return [] }
                phase = .waiting(announced: true)
                return [.emit(.missing)]
            }
            phase = .following(path.identity)
            offset = 0
            return announced ? [.open, .emit(.created), .read] : [.open, .read]

        case .following(let current):
            guard let open else {
                // Should not happen (fstat on an open descriptor); start over.
                phase = .waiting(announced: false)
                return [.close]
            }
            var steps: [Step] = []
            if open.size < offset {
                steps += [.emit(.truncated), .rewind]
            }
            steps.append(.read)
            if let path {
                if path.identity != current {
                    if open.linkCount == 0 {
                        steps += [.close, .emit(.missing), .open, .emit(.created), .read]
                    } else {
                        steps += [.close, .emit(.rotated), .open, .read]
                    }
                    // The offset is reset by `didOpen()`, after the old file has been drained.
                    phase = .following(path.identity)
                }
            } else if open.linkCount == 0 {
                steps += [.close, .emit(.missing)]
                phase = .waiting(announced: true)
            }
            return steps
        }
    }

    /// The I/O layer opened the path (``Step/open``): reading starts at 0.
    /// - Parameter identity: the file actually opened, which is not the one
    ///   `check` saw when the path was rotated again in between.
    public mutating func didOpen(_ identity: FileIdentity) {
        offset = 0
        phase = .following(identity)
    }

    /// The I/O layer rewound the open file (``Step/rewind``).
    public mutating func didRewind() {
        offset = 0
    }

    /// The I/O layer read `count` more bytes.
    public mutating func didRead(_ count: Int) {
        offset += Int64(count)
    }

    /// Opening the path failed (a race with deletion, or permissions): wait and retry.
    public mutating func openFailed() {
        phase = .waiting(announced: true)
        offset = 0
    }
}
