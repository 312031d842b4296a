import Foundation
import HTTPTypes
import LogcastProtocol
import Logging
import NIOCore
import NIOPosix
import NIOSSL
import Synchronization
import WSClient
import WSCompression

#if canImport(Glibc)
import Glibc
#endif

/// Everything `logcast tail` was asked to do.
public struct TailOptions: Sendable {
    public var address: ServerAddress
    public var filter = TailFilter()
    /// Lines of history to print first (`-n`).
    public var backlog = 10
    /// Keep streaming (false: print the backlog and exit, `--no-follow`).
    public var follow = true
    /// Print the lines newest first (`-r`; only when not following).
    public var reverse = false
    /// No connection notices or source events on stderr (`-q`); gaps and errors still show.
    public var quiet = false
    public var token: String?
    /// TLS settings for `wss://` (system trust store unless changed).
    public var tls: TLSConfiguration = .makeClientConfiguration()
    /// How long the first connection is retried before giving up.
    public var connectTimeout: Duration = .seconds(10)
    public var formatter = LineFormatter(mode: .short, color: false)

    public init(address: ServerAddress) {
        self.address = address
    }
}

/// Where output goes; stdout and stderr in the CLI, buffers in tests.
public struct TailOutput: Sendable {
    public var stdout: @Sendable (String) -> Void
    public var stderr: @Sendable (String) -> Void

    public init(stdout: @escaping @Sendable (String) -> Void, stderr: @escaping @Sendable (String) -> Void) {
        self.stdout = stdout
        self.stderr = stderr
    }
}

/// A subscriber that keeps its place: it connects, prints lines, and on a
/// dropped connection reconnects with backoff and jitter, resuming with
/// `after`/`epoch` so that no line the server still holds is lost or
/// printed twice. Refusals are diagnosed with a plain `GET` of the same
/// URL, which the server answers with the refusal's status and JSON body.
public final class TailSession: Sendable {
    let options: TailOptions
    let output: TailOutput
    let position = Mutex(StreamPosition())
    let logger: Logger

    public init(options: TailOptions, output: TailOutput) {
        self.options = options
        self.output = output
        var logger = Logger(label: "logcast-tail")
        logger.logLevel = .critical
        self.logger = logger
    }

    var authorizationHeaders: [(String, String)] {
        options.token.map { [("Authorization", "Bearer \($0)")] } ?? []
    }

    var tls: TLSConfiguration? { options.address.secure ? options.tls : nil }

    /// Streams until the process is stopped.
    /// - Throws: ``TailError`` for refusals and for a server that cannot be
    ///   reached within the connect timeout.
    public func follow() async throws(TailError) {
        var backoff = Backoff()
        let started = ContinuousClock.now
        var everConnected = false
        var announcedOutage = false
        while true {
            let query = position.withLock { $0.query(filter: options.filter, backlog: options.backlog) }
            let url = options.address.webSocketURL(query: query)
            let connectedAt = Mutex<ContinuousClock.Instant?>(nil)
            var failure = "connection closed"
            do {
                var configuration = WebSocketClientConfiguration(
                    maxFrameSize: 16 * 1024 * 1024,
                    extensions: [.perMessageDeflate(maxDecompressedFrameSize: 16 * 1024 * 1024)],
                    autoPing: .enabled(timePeriod: .seconds(30))
                )
                for (name, value) in authorizationHeaders {
                    if let field = HTTPField.Name(name) { configuration.additionalHeaders[field] = value }
                }
                let wasConnected = everConnected
                let close = try await WebSocketClient.connect(url: url, configuration: configuration, tlsConfiguration: tls, logger: logger) {
                    inbound,
                    _,
                    _ in
                    connectedAt.withLock { $0 = .now }
                    if wasConnected, !self.options.quiet {
                        let seq = self.position.withLock { $0.lastSeq }
                        self.output.stderr("logcast: reconnected" + (seq.map { "; resuming after line \($0)" } ?? "") + "\n")
                    }
                    for try await message in inbound.messages(maxSize: 64 * 1024 * 1024) {
                        if case .text(let text) = message { self.handle(frame: text) }
                    }
                }
                if let close {
                    failure = "the server closed the connection (\(close.closeCode)\(close.reason.map { ": \($0)" } ?? ""))"
                }
            } catch {
                if connectedAt.withLock({ $0 }) == nil {
                    if let refusal = try await diagnose(query: query) {
                        switch refusal {
                        case .retry(let text, let after):
                            failure = text
                            if let after { try? await Task.sleep(for: after) }
                        case .stop(let error):
                            throw error
                        }
                    } else {
                        failure = Self.describe(error)
                    }
                } else {
                    failure = Self.describe(error)
                }
            }
            if let since = connectedAt.withLock({ $0 }) {
                everConnected = true
                announcedOutage = false
                if ContinuousClock.now - since > .seconds(5) { backoff.reset() }
            }
            if !everConnected, ContinuousClock.now - started >= options.connectTimeout {
                throw .unreachable(
                    "logcast: cannot connect to \(options.address.webSocketURL(query: "")): \(failure) (retried for "
                        + "\(options.connectTimeout.components.seconds)s; see --connect-timeout)"
                )
            }
            let wait = backoff.next()
            if !announcedOutage, !options.quiet {
                output.stderr("logcast: \(failure); reconnecting\n")
                announcedOutage = true
            }
            try? await Task.sleep(for: wait)
        }
    }

    /// Prints the backlog once, through `/api/v1/lines`, and returns.
    public func printBacklog() async throws(TailError) {
        var items = options.filter.queryItems
        if options.filter.since != nil {
            items.append(("limit", "10000"))  // every line of the range, up to the server's most
        } else {
            items.append(("backlog", String(options.backlog)))
        }
        let base = options.address.path.hasSuffix("/ws") ? String(options.address.path.dropLast(3)) : ""
        let target = options.address.httpTarget(base + "/api/v1/lines", query: QueryString.encode(items))
        let response: HTTPGet.Response
        do {
            response = try await HTTPGet.fetch(
                host: options.address.host,
                port: options.address.port,
                target: target,
                headers: authorizationHeaders,
                tls: tls
            )
        } catch {
            throw .unreachable("logcast: cannot connect to \(options.address.webSocketURL(query: "")): \(Self.describe(error))")
        }
        if response.status != 200 {
            if case .stop(let error) = Self.refusal(status: response.status, body: response.body, headers: response.headers) { throw error }
            throw .unreachable("logcast: \(response.status) from the server: \(response.text.prefix(300))")
        }
        handle(frame: response.text, reverse: options.reverse)
    }

    // MARK: Frames

    /// Prints what one frame (or one `/api/v1/lines` answer) holds: lines to
    /// stdout, notices to stderr. With `reverse`, the lines are printed
    /// newest first once the whole frame is read (notices as they come).
    func handle(frame: String, reverse: Bool = false) {
        var lines = ""
        var newestFirst: [String] = []
        func add(_ text: String) {
            if reverse { newestFirst.append(text) } else { lines += text + "\n" }
        }
        defer {
            if reverse, !newestFirst.isEmpty { output.stdout(newestFirst.reversed().map { $0 + "\n" }.joined()) }
        }
        for raw in frame.split(separator: "\n", omittingEmptySubsequences: true) {
            switch options.formatter.format(raw: raw) {
            case .line(let seq?, let text):
                if position.withLock({ $0.sawLine(seq: seq) }) { add(text) }
            case .line(nil, let text), .contextLine(nil, let text):
                add(text)  // from the journal, before the stream: no place in it to remember
            case .contextLine(let seq?, let text):
                if position.withLock({ $0.sawContextLine(seq: seq) }) { add(text) }
            case .separator(let text):
                add(text)
            case .hello(let epoch):
                position.withLock { $0.sawHello(epoch: epoch) }
            case .restart(let next, let notice):
                position.withLock { $0.serverRestarted(next: next) }
                flush(&lines)
                output.stderr(notice + "\n")
            case .notice(let text):
                flush(&lines)
                output.stderr(text + "\n")
            case .event(let text):
                guard !options.quiet else { break }
                flush(&lines)
                output.stderr(text + "\n")
            case .ignored:
                break
            }
        }
        flush(&lines)
    }

    func flush(_ lines: inout String) {
        if !lines.isEmpty {
            output.stdout(lines)
            lines = ""
        }
    }

    // MARK: Refusals

    enum Refusal {
        case retry(String, after: Duration?)
        case stop(TailError)
    }

    /// Asks the server why the upgrade failed; nil when it cannot be reached.
    func diagnose(query: String) async throws(TailError) -> Refusal? {
        let target = options.address.httpTarget(options.address.path, query: query)
        guard
            let response = try? await HTTPGet.fetch(
                host: options.address.host,
                port: options.address.port,
                target: target,
                headers: authorizationHeaders,
                tls: tls
            )
        else { return nil }
        return Self.refusal(status: response.status, body: response.body, headers: response.headers)
    }

    static func refusal(status: Int, body: [UInt8], headers: [(String, String)]) -> Refusal {
        var reason = "\(status)"
        if let object = try? JSONSerialization.jsonObject(with: Data(body)) as? [String: Any], let error = object["error"] as? String {
            reason += " \(error)"
            if let hint = object["hint"] as? String { reason += " (\(hint))" }
        }
        switch status {
        case 400, 404, 414: return .stop(.refused("logcast: refused: \(reason)"))
        case 401, 403: return .stop(.unauthorized("logcast: refused: \(reason)"))
        case 429, 503:
            let retryAfter = headers.first { $0.0.lowercased() == "retry-after" }.flatMap { Int($0.1) }
            return .retry("server busy: \(reason)", after: retryAfter.map { .seconds(min($0, 60)) })
        default:
            return .retry("upgrade failed: \(reason)", after: nil)
        }
    }

    static func describe(_ error: any Error) -> String {
        if let error = error as? IOError { return String(cString: strerror(error.errnoCode)).lowercased() }
        if let error = error as? NIOConnectionError {
            if let first = error.connectionErrors.first { return describe(first.error) }
            if let dns = error.dnsAError ?? error.dnsAAAAError { return "cannot resolve \(error.host): \(dns)" }
        }
        if let error = error as? NIOSSLError { return "TLS: \(error)" }
        if let error = error as? BoringSSLError { return "TLS: \(error)" }
        let text = "\(error)"
        if text.contains("connectTimeout") { return "connection timed out" }
        return text
    }
}
