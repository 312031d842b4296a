import Foundation
import LogcastProtocol

/// Where a `logcast tail` connects: the server's WebSocket URL, and the
/// HTTP URL of the same server for plain requests.
public struct ServerAddress: Sendable, Equatable {
    public var secure: Bool
    public var host: String
    public var port: Int
    /// The WebSocket path, `/ws` unless the URL names another.
    public var path: String

    /// Accepts `ws://`, `wss://`, `http://` and `https://` URLs; a URL
    /// without a path means `/ws`.
    /// - Throws: ``TailError/usage(_:)`` with what would be right.
    public init(parsing text: String) throws(TailError) {
        let problem = TailError.usage("bad URL '\(text)': use ws://HOST:PORT or wss://HOST:PORT (e.g. ws://127.0.0.1:8080)")
        guard let components = URLComponents(string: text), let scheme = components.scheme?.lowercased(),
            let host = components.host, !host.isEmpty
        else { throw problem }
        switch scheme {
        case "ws", "http": secure = false
        case "wss", "https": secure = true
        default: throw problem
        }
        if components.query != nil || components.fragment != nil {
            throw TailError.usage("bad URL '\(text)': give filters as options (-g, -p, -s ...), not in the URL")
        }
        // URLComponents keeps the brackets of an IPv6 literal.
        self.host = host.hasPrefix("[") && host.hasSuffix("]") ? String(host.dropFirst().dropLast()) : host
        port = components.port ?? (secure ? 443 : 80)
        path = components.path.isEmpty || components.path == "/" ? "/ws" : components.path
    }

    /// `ws://host:port/ws?query`
    public func webSocketURL(query: String) -> String {
        "\(secure ? "wss" : "ws")://\(authority)\(path)\(query.isEmpty ? "" : "?" + query)"
    }

    /// The same server over HTTP, at `path`.
    public func httpTarget(_ path: String, query: String) -> String {
        query.isEmpty ? path : path + "?" + query
    }

    public var authority: String {
        let bracketed = host.contains(":") ? "[\(host)]" : host
        return "\(bracketed):\(port)"
    }
}

/// The filter of a `logcast tail`, as docs/PROTOCOL.md query items.
public struct TailFilter: Sendable, Equatable {
    public var sources: [String] = []
    public var grep: [String] = []
    public var regex: String?
    public var exclude: [String] = []
    public var priority: String?
    public var units: [String] = []
    public var identifiers: [String] = []
    public var hosts: [String] = []
    /// `-S`: from this time (sent as RFC 3339, so a reconnect asks for the same range).
    public var since: Timestamp?
    /// `-U`: up to this time.
    public var until: Timestamp?
    /// `-B`, `-A` (`-C` sets both): lines around each match, as grep's.
    public var beforeContext = 0
    public var afterContext = 0
    /// `--field`: conditions on structured fields (`status>=500`), all of which must hold.
    public var fieldConditions: [String] = []
    /// `--fields`: the fields the server adds to each line object (`status,user` or `*`).
    public var fieldsSent: String?

    public init() {}

    public var queryItems: [(String, String)] {
        var items: [(String, String)] = []
        items += sources.map { ("source", $0) }
        items += grep.map { ("grep", $0) }
        if let regex { items.append(("regex", regex)) }
        items += exclude.map { ("exclude", $0) }
        if let priority { items.append(("priority", priority)) }
        items += units.map { ("unit", $0) }
        items += identifiers.map { ("identifier", $0) }
        items += hosts.map { ("host", $0) }
        if let since { items.append(("since", since.rfc3339)) }
        if let until { items.append(("until", until.rfc3339)) }
        if beforeContext > 0 { items.append(("before-context", String(beforeContext))) }
        if afterContext > 0 { items.append(("after-context", String(afterContext))) }
        items += fieldConditions.map { ("field", $0) }
        if let fieldsSent { items.append(("fields", fieldsSent)) }
        return items
    }
}

/// How far a subscriber has read, so a reconnect resumes exactly there.
///
/// A pure value fed with the objects received: the `epoch` of `hello` and
/// the `seq` of each line. ``query(filter:backlog:)`` asks for what was
/// missed (`after` + `epoch`) once a line was seen, else for the backlog.
public struct StreamPosition: Sendable, Equatable {
    public private(set) var epoch: String?
    public private(set) var lastSeq: UInt64?

    public init() {}

    public mutating func sawHello(epoch: String) {
        self.epoch = epoch
    }

    /// Lines arrive in `seq` order; an older or repeated `seq` is a duplicate.
    /// - Returns: false for a line already seen (not to be printed again).
    public mutating func sawLine(seq: UInt64) -> Bool {
        if let lastSeq, seq <= lastSeq { return false }
        lastSeq = seq
        return true
    }

    /// The `seq`s of the context lines seen last that were older than a line
    /// seen before them (at most ``recentContextLimit``).
    private var recentContext: [UInt64] = []
    static let recentContextLimit = 1024

    /// A context line (`"context":true`): the lines before a match come
    /// after newer lines of other files, so an older `seq` is no duplicate
    /// in itself; one is when the same context line comes again (after a
    /// reconnect that broke off a group).
    /// - Returns: false for a line already seen.
    public mutating func sawContextLine(seq: UInt64) -> Bool {
        if let lastSeq, seq <= lastSeq {
            if recentContext.contains(seq) { return false }
            if recentContext.count == Self.recentContextLimit { recentContext.removeFirst() }
            recentContext.append(seq)
            return true
        }
        if recentContext.count == Self.recentContextLimit { recentContext.removeFirst() }
        recentContext.append(seq)
        lastSeq = seq
        return true
    }

    /// A `restart` gap: the old epoch's numbers mean nothing any more.
    public mutating func serverRestarted(next: UInt64?) {
        lastSeq = next.map { $0 > 0 ? $0 - 1 : 0 }
    }

    public func query(filter: TailFilter, backlog: Int) -> String {
        var items = filter.queryItems
        if let lastSeq, let epoch {
            items += [("after", String(lastSeq)), ("epoch", epoch)]
        } else {
            items.append(("backlog", String(backlog)))
        }
        return QueryString.encode(items)
    }
}

/// Exponential backoff with equal jitter (half fixed, half random): attempt n waits a random time in
/// [cap/2, cap] where cap = min(maximum, base · 2ⁿ). ``reset()`` after a
/// connection that stayed up.
public struct Backoff: Sendable {
    public var base: Duration
    public var maximum: Duration
    public private(set) var attempt = 0

    public init(base: Duration = .milliseconds(250), maximum: Duration = .seconds(15)) {
        self.base = base
        self.maximum = maximum
    }

    /// The wait before the next attempt; `random` is in 0...1.
    public mutating func next(random: Double = Double.random(in: 0...1)) -> Duration {
        let factor = 1 << min(attempt, 20)
        attempt += 1
        let cap = min(maximum, base * factor)
        return cap / 2 + cap / 2 * min(max(random, 0), 1)
    }

    public mutating func reset() {
        attempt = 0
    }
}

/// Why `logcast tail` stops, with its exit code.
public enum TailError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Bad URL or options: exit 2.
    case usage(String)
    /// The server refused the filter (400, 404): exit 3.
    case refused(String)
    /// Token missing or wrong (401), origin refused (403): exit 4.
    case unauthorized(String)
    /// Could not connect within the connect timeout: exit 1.
    case unreachable(String)

    public var description: String {
        switch self {
        case .usage(let text), .refused(let text), .unauthorized(let text), .unreachable(let text): text
        }
    }

    public var exitCode: Int32 {
        switch self {
        case .unreachable: 1
        case .usage: 2
        case .refused: 3
        case .unauthorized: 4
        }
    }
}

/// journalctl's optional-value flags, for an argument parser that knows
/// only flags and options with values: `--case-sensitive` alone means
/// `--case-sensitive=yes` (journalctl's `--case-sensitive[=BOOL]`). Only the
/// `tail` subcommand's arguments are touched, and none after `--`.
public enum JournalctlArguments {
    public static func normalized(_ arguments: [String]) -> [String] {
        guard arguments.first == "tail" else { return arguments }
        var out: [String] = []
        var ended = false
        for argument in arguments {
            if argument == "--" { ended = true }
            out.append(!ended && argument == "--case-sensitive" ? "--case-sensitive=yes" : argument)
        }
        return out
    }
}
