import Foundation
import HTTPTypes
import LogcastHub
import LogcastProtocol
import Synchronization

/// The bearer tokens a server accepts, loaded from a token file.
///
/// The file holds one token per line; blank lines and lines starting with
/// `#` are ignored, surrounding whitespace is trimmed. ``reload()`` rereads
/// the file (SIGHUP) and keeps the old tokens when the new file is bad.
/// Safe from any thread. Tokens never appear in descriptions or logs.
///
/// Comparison takes the same time whatever the tokens and the candidate
/// hold, including their lengths: every token is kept zero-padded to
/// ``maxTokenBytes`` with its length beside it, a candidate is padded the
/// same way, and every byte of every slot is compared (a candidate's own
/// length only decides how long copying it takes, which its sender knows).
public final class TokenStore: Sendable {
    /// The longest token accepted, in bytes (`openssl rand -hex 32` makes 64).
    public static let maxTokenBytes = 512

    public let path: String
    private let tokens: Mutex<[[UInt8]]>

    /// - Throws: ``TokenFileError`` when the file cannot be read or holds no token.
    public init(path: String) throws(TokenFileError) {
        self.path = path
        tokens = Mutex(try Self.load(path))
    }

    /// For tests and embedding: a fixed set of tokens.
    public init(tokens: [String]) {
        precondition(tokens.allSatisfy { $0.utf8.count <= Self.maxTokenBytes }, "a token is at most \(Self.maxTokenBytes) bytes")
        path = ""
        self.tokens = Mutex(tokens.map { Self.slot(Array($0.utf8)) })
    }

    /// Rereads the file; on error the current tokens stay.
    public func reload() throws(TokenFileError) {
        let fresh = try Self.load(path)
        tokens.withLock { $0 = fresh }
    }

    public var count: Int { tokens.withLock { $0.count } }

    /// Whether `candidate` is one of the tokens. Takes the same time
    /// wherever it differs and whatever the lengths (a candidate longer than
    /// ``maxTokenBytes`` is compared as a slot that matches nothing).
    public func accepts(_ candidate: some Collection<UInt8>) -> Bool {
        let candidate = Self.slot(Array(candidate.prefix(Self.maxTokenBytes + 1)))
        return tokens.withLock { tokens in
            var matched: UInt8 = 0
            for token in tokens {
                matched |= Self.constantTimeEqual(token, candidate) ? 1 : 0
            }
            return matched == 1
        }
    }

    /// A token's comparison slot: two length bytes (big-endian; a length
    /// past ``maxTokenBytes`` is kept as maxTokenBytes + 1, which no stored
    /// token has), then its bytes, zero-padded to ``maxTokenBytes``.
    static func slot(_ token: [UInt8]) -> [UInt8] {
        let length = min(token.count, maxTokenBytes + 1)
        var slot = [UInt8](repeating: 0, count: 2 + maxTokenBytes)
        slot[0] = UInt8(truncatingIfNeeded: length >> 8)
        slot[1] = UInt8(truncatingIfNeeded: length)
        for index in 0..<min(token.count, maxTokenBytes) { slot[2 + index] = token[index] }
        return slot
    }

    /// Compares every byte of two slots whatever the contents.
    static func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        precondition(a.count == 2 + maxTokenBytes && b.count == a.count)
        var difference: UInt8 = 0
        for index in 0..<a.count { difference |= a[index] ^ b[index] }
        return difference == 0
    }

    static func load(_ path: String) throws(TokenFileError) -> [[UInt8]] {
        guard let data = FileManager.default.contents(atPath: path) else {
            let reason = FileManager.default.fileExists(atPath: path) ? "cannot be read (permissions?)" : "does not exist"
            throw TokenFileError("token file \(path) \(reason)")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw TokenFileError("token file \(path) is not UTF-8 text; put one token per line")
        }
        var tokens: [[UInt8]] = []
        for (number, rawLine) in text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline).enumerated() {
            let line = rawLine.trimmingCharacters(in: .whitespaces.union(.init(charactersIn: "\r")))
            if line.isEmpty || line.hasPrefix("#") { continue }
            if line.contains(where: \.isWhitespace) {
                throw TokenFileError("token file \(path), line \(number + 1): a token may not contain spaces; put one token per line")
            }
            if line.utf8.count > maxTokenBytes {
                throw TokenFileError(
                    "token file \(path), line \(number + 1): a token is at most \(maxTokenBytes) bytes (this one has \(line.utf8.count))"
                )
            }
            tokens.append(slot(Array(line.utf8)))
        }
        guard !tokens.isEmpty else {
            throw TokenFileError("token file \(path) holds no token; put one per line (e.g. from 'openssl rand -hex 32')")
        }
        return tokens
    }
}

public struct TokenFileError: Error, Sendable, CustomStringConvertible {
    public var description: String
    init(_ description: String) { self.description = description }
}

/// What the access check needs to know about a request; filled from the
/// HTTP head by the server.
public struct AccessRequest: Sendable {
    /// The `Authorization` header.
    public var authorization: String?
    /// The `Sec-WebSocket-Protocol` values, in order (comma-separated lists split).
    public var webSocketProtocols: [String] = []
    /// The `Origin` header.
    public var origin: String?
    /// The `Host` header.
    public var host: String?
    /// The query string's keys (to refuse tokens put in the URL).
    public var queryKeys: [String] = []

    public init(authorization: String? = nil, webSocketProtocols: [String] = [], origin: String? = nil, host: String? = nil, queryKeys: [String] = [])
    {
        self.authorization = authorization
        self.webSocketProtocols = webSocketProtocols
        self.origin = origin
        self.host = host
        self.queryKeys = queryKeys
    }

    /// Splits `Sec-WebSocket-Protocol` header values into protocol names.
    public static func protocols(fromHeaderValues values: [String]) -> [String] {
        values.flatMap { $0.split(separator: ",") }.map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
    }
}

/// Who may read the stream: bearer tokens and allowed origins, as
/// docs/PROTOCOL.md's "Authentication and origin" describes.
///
/// The order of checks is fixed: a cross-site `Origin` is refused first
/// (`403`), then a missing or wrong token (`401`), so that nobody learns
/// anything about the sources (not even through a `400` hint) without both.
public struct AccessPolicy: Sendable {
    /// The WebSocket subprotocol a client offers to speak this protocol.
    public static let subprotocol = "logcast.v1"
    /// The prefix of the subprotocol that carries a token (base64url) for browsers.
    public static let tokenSubprotocolPrefix = "logcast.token."
    /// Query keys that look like a token put in the URL.
    static let tokenQueryKeys: Set<String> = ["token", "access_token", "auth", "authorization", "bearer"]

    public var tokens: TokenStore?
    /// Normalised origins (`https://logs.example.com`, `http://host:8080`)
    /// allowed besides the server's own; `*` allows every origin.
    public var allowedOrigins: Set<String>

    /// The server's own origin is the one whose host and port are the
    /// request's `Host`, whatever the scheme (TLS may end at a proxy).
    public init(tokens: TokenStore? = nil, allowedOrigins: [String] = []) {
        self.tokens = tokens
        self.allowedOrigins = Set(allowedOrigins.compactMap { $0 == "*" ? "*" : Self.normalizedOrigin($0) })
    }

    public var requiresToken: Bool { tokens != nil }

    /// Checks origin, then token. On success returns the subprotocol to
    /// select (`logcast.v1` when the client offered it).
    public func check(_ request: AccessRequest) -> Result<String?, Refusal> {
        if let refusal = checkOrigin(request) { return .failure(refusal) }
        if let refusal = checkToken(request) { return .failure(refusal) }
        return .success(request.webSocketProtocols.contains(Self.subprotocol) ? Self.subprotocol : nil)
    }

    /// The `Access-Control-Allow-Origin` a response to a page of `origin`
    /// carries: the origin itself when `--allow-origin` names it (or is `*`);
    /// nil for every other origin, for `null`, and for no origin. The
    /// server's own pages are same-origin and need none.
    public func crossOriginGrant(for origin: String?) -> String? {
        guard let origin, let normalized = Self.normalizedOrigin(origin) else { return nil }
        guard allowedOrigins.contains("*") || allowedOrigins.contains(normalized) else { return nil }
        return origin.trimmingCharacters(in: .whitespaces)
    }

    func checkOrigin(_ request: AccessRequest) -> Refusal? {
        guard let origin = request.origin else { return nil }
        // Browsers send http(s) origins (or "null"); a ws:// or wss:// origin
        // comes from a non-browser client (some libraries send one), which
        // cannot be a hijacked page: treat it as no origin.
        let lowered = origin.lowercased()
        if lowered.hasPrefix("ws://") || lowered.hasPrefix("wss://") { return nil }
        if allowedOrigins.contains("*") { return nil }
        let normalized = Self.normalizedOrigin(origin)
        if let normalized {
            if allowedOrigins.contains(normalized) { return nil }
            if let host = request.host, Self.authority(ofOrigin: normalized) == Self.normalizedHost(host) { return nil }
        }
        return Refusal(
            .forbidden,
            "origin '\(origin)' is not allowed",
            hint:
                "pages are served streams only from this server's own origin; allow another with --allow-origin ORIGIN (e.g. "
                + "--allow-origin https://logs.example.com)"
        )
    }

    /// The token a request presents (bearer header, else the token
    /// subprotocol), whether or not it is accepted; nil when none can be read.
    public func presentedToken(_ request: AccessRequest) -> [UInt8]? {
        if let authorization = request.authorization {
            let parts = authorization.split(separator: " ", maxSplits: 1)
            guard parts.count == 2, parts[0].lowercased() == "bearer" else { return nil }
            return Array(parts[1].trimmingCharacters(in: .whitespaces).utf8)
        }
        if let carrier = request.webSocketProtocols.first(where: { $0.hasPrefix(Self.tokenSubprotocolPrefix) }) {
            return Base64URL.decode(carrier.dropFirst(Self.tokenSubprotocolPrefix.count))
        }
        return nil
    }

    func checkToken(_ request: AccessRequest) -> Refusal? {
        guard let tokens else { return nil }
        var presented: [UInt8]?
        if let authorization = request.authorization {
            let parts = authorization.split(separator: " ", maxSplits: 1)
            if parts.count == 2, parts[0].lowercased() == "bearer" {
                presented = Array(parts[1].trimmingCharacters(in: .whitespaces).utf8)
            } else {
                return unauthorized(
                    "unsupported Authorization scheme",
                    hint: "send 'Authorization: Bearer TOKEN'",
                    invalid: true
                )
            }
        } else if let carrier = request.webSocketProtocols.first(where: { $0.hasPrefix(Self.tokenSubprotocolPrefix) }) {
            guard let decoded = Base64URL.decode(carrier.dropFirst(Self.tokenSubprotocolPrefix.count)) else {
                return unauthorized(
                    "malformed token subprotocol",
                    hint: "offer the subprotocols 'logcast.v1, logcast.token.<token in base64url, no padding>'",
                    invalid: true
                )
            }
            presented = decoded
        }
        guard let presented else {
            if request.queryKeys.contains(where: { Self.tokenQueryKeys.contains($0.lowercased()) }) {
                return unauthorized(
                    "token required; tokens in the URL are not accepted",
                    hint:
                        "URLs end up in logs and browser history: send 'Authorization: Bearer TOKEN' (or, from a browser, the subprotocols "
                        + "'logcast.v1, logcast.token.<base64url token>')",
                    invalid: false
                )
            }
            return unauthorized(
                "token required",
                hint: "send 'Authorization: Bearer TOKEN' (or, from a browser, the subprotocols 'logcast.v1, logcast.token.<base64url token>')",
                invalid: false
            )
        }
        if tokens.accepts(presented) { return nil }
        return unauthorized("token not accepted", hint: "check the token against the server's token file", invalid: true)
    }

    func unauthorized(_ message: String, hint: String, invalid: Bool) -> Refusal {
        Refusal(
            .unauthorized,
            message,
            hint: hint,
            headers: [.wwwAuthenticate: invalid ? "Bearer realm=\"logcast\", error=\"invalid_token\"" : "Bearer realm=\"logcast\""]
        )
    }

    /// `scheme://host[:port]` in lower case, without a default port; nil when
    /// it is not an http(s) origin (`null`, garbage).
    public static func normalizedOrigin(_ origin: String) -> String? {
        let text = origin.trimmingCharacters(in: .whitespaces).lowercased()
        let scheme: String
        if text.hasPrefix("http://") {
            scheme = "http"
        } else if text.hasPrefix("https://") {
            scheme = "https"
        } else {
            return nil
        }
        var authority = String(text.dropFirst(scheme.count + 3))
        if authority.hasSuffix("/") { authority.removeLast() }
        guard !authority.isEmpty, !authority.contains("/"), !authority.contains("@") else { return nil }
        let defaultPort = scheme == "http" ? ":80" : ":443"
        if authority.hasSuffix(defaultPort) { authority.removeLast(defaultPort.count) }
        return "\(scheme)://\(authority)"
    }

    static func authority(ofOrigin normalized: String) -> String {
        String(normalized[normalized.range(of: "://")!.upperBound...])
    }

    /// A `Host` header in lower case without `:80` or `:443`.
    static func normalizedHost(_ host: String) -> String {
        var host = host.trimmingCharacters(in: .whitespaces).lowercased()
        for port in [":80", ":443"] where host.hasSuffix(port) {
            host.removeLast(port.count)
        }
        return host
    }
}

/// base64url (RFC 4648 §5) without padding, as tokens travel in a subprotocol name.
public enum Base64URL {
    public static func encode(_ bytes: some Collection<UInt8>) -> String {
        Data(bytes).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-")
            .replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    /// Nil for characters outside the alphabet or an impossible length.
    public static func decode(_ text: some StringProtocol) -> [UInt8]? {
        guard !text.isEmpty, text.utf8.count % 4 != 1,
            text.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_") })
        else { return nil }
        var standard = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        standard += String(repeating: "=", count: (4 - standard.utf8.count % 4) % 4)
        return Data(base64Encoded: standard).map(Array.init)
    }
}
