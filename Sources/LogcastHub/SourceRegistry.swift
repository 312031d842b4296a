import LogcastProtocol
import Synchronization

/// What one source is doing, for `/api/v1/sources` and `/healthz`.
public struct SourceStatus: Sendable, Equatable {
    public enum State: String, Sendable {
        /// Reading, all well.
        case following
        /// Waiting for a file that does not exist (yet).
        case waiting
        /// Cannot read (permissions, I/O error): see `lastError`.
        case failing
        case stopped
    }

    public var name: String
    /// `file`, `journal`, `demo`.
    public var kind: String
    /// What was configured (a path or a glob).
    public var pattern: String
    /// Files currently followed.
    public var paths: [String]
    public var state: State
    public var linesRead: UInt64 = 0
    public var bytesRead: UInt64 = 0
    public var events: [String: UInt64] = [:]
    public var lastError: String?

    public init(name: String, kind: String, pattern: String, paths: [String] = [], state: State = .waiting) {
        self.name = name
        self.kind = kind
        self.pattern = pattern
        self.paths = paths
        self.state = state
    }
}

/// The configured sources and their live status. Safe from any thread.
public final class SourceRegistry: Sendable {
    private let statuses: Mutex<[String: SourceStatus]>
    /// Source names in configuration order.
    public let names: [String]

    public init(_ sources: [SourceStatus]) {
        names = sources.map(\.name)
        statuses = Mutex(Dictionary(uniqueKeysWithValues: sources.map { ($0.name, $0) }))
    }

    public func update(_ name: String, _ body: (inout SourceStatus) -> Void) {
        statuses.withLock { all in
            if var status = all[name] {
                body(&status)
                all[name] = status
            }
        }
    }

    public var all: [SourceStatus] {
        statuses.withLock { all in names.compactMap { all[$0] } }
    }
}
