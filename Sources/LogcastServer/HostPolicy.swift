import HTTPTypes
import LogcastHub
import LogcastProtocol

#if canImport(Glibc)
import Glibc
#endif

/// Which `Host` headers this server answers, against DNS rebinding.
///
/// A page on any site can make a browser resolve its own name to
/// `127.0.0.1` and then send requests to a local logcast with
/// `Host: evil.example:8080` and a matching `Origin`. Refusing names that are
/// not this server's own closes that door, on every route.
///
/// Accepted: no `Host` at all (HTTP/1.0 clients; browsers always send one),
/// any IP address literal (a rebinding needs a name that resolves; a page
/// whose origin is an address was served from that address), `localhost` and
/// names under `.localhost` (browsers resolve them to loopback themselves),
/// the listen address, the host name (`--host-name`, by default this
/// machine's), and every name given with `--allow-host` (`*` accepts any).
/// Names compare without case, port or a trailing dot.
public struct HostPolicy: Sendable, Equatable {
    public private(set) var names: Set<String>
    public private(set) var acceptsAny: Bool

    /// - Parameters:
    ///   - listenHost: the address or name the server is bound to.
    ///   - hostName: the server's host name (`--host-name`).
    ///   - allowed: `--allow-host` values; `*` accepts every name.
    public init(listenHost: String?, hostName: String?, allowed: [String] = []) {
        acceptsAny = allowed.contains("*")
        var names: Set<String> = ["localhost"]
        for name in [listenHost, hostName].compactMap({ $0 }) + allowed where name != "*" {
            if let normalized = Self.normalizedName(name) { names.insert(normalized) }
        }
        self.names = names
    }

    /// Accepts every `Host` (for embedding and tests).
    public static var any: HostPolicy { HostPolicy(listenHost: nil, hostName: nil, allowed: ["*"]) }

    /// Whether a request with this `Host` header may be answered.
    public func accepts(_ host: String?) -> Bool {
        guard let host else { return true }
        if acceptsAny { return true }
        guard let name = Self.name(ofHostHeader: host) else { return false }
        if Self.isAddressLiteral(name) { return true }
        if name == "localhost" || name.hasSuffix(".localhost") { return true }
        return names.contains(name)
    }

    /// The refusal for a `Host` that is not accepted: `421 Misdirected Request`.
    public func refusal(for host: String) -> Refusal {
        let shown = String(host.unicodeScalars.prefix(200).map { $0.value < 0x20 || $0.value == 0x7F ? "?" : Character($0) })
        let suggestion = Self.name(ofHostHeader: host).map { "--allow-host \($0)" } ?? "--allow-host NAME"
        return Refusal(
            .misdirectedRequest,
            "host '\(shown)' is not a name of this server",
            hint:
                "a request for a name this server does not know may come from a DNS rebinding attack; if clients really reach this server "
                + "by that name, start it with \(suggestion)"
        )
    }

    /// A configured name, normalised; nil for an empty one.
    public static func normalizedName(_ text: String) -> String? {
        var name = text.trimmedOfBlanks().lowercased()
        if name.hasPrefix("[") && name.hasSuffix("]") { name = String(name.dropFirst().dropLast()) }
        while name.hasSuffix(".") { name.removeLast() }
        return name.isEmpty ? nil : name
    }

    /// The name in a `Host` header (`Name:8080`, `[::1]:8080`) in lower case,
    /// without port, brackets or trailing dot; nil when it is malformed.
    public static func name(ofHostHeader header: String) -> String? {
        var text = Substring(header.trimmedOfBlanks().lowercased())
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else { return nil }
            let rest = text[text.index(after: close)...]
            guard rest.isEmpty || (rest.hasPrefix(":") && rest.dropFirst().allSatisfy(\.isASCIIDigit)) else { return nil }
            text = text[text.index(after: text.startIndex)..<close]
            return text.isEmpty ? nil : String(text)
        }
        if let colon = text.lastIndex(of: ":") {
            guard text[text.index(after: colon)...].allSatisfy(\.isASCIIDigit) else { return nil }
            text = text[..<colon]
        }
        while text.hasSuffix(".") { text.removeLast() }
        let allowed: (Character) -> Bool = { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "." || $0 == "_") }
        guard !text.isEmpty, text.allSatisfy(allowed) else { return nil }
        return String(text)
    }

    /// Whether `name` is an IPv4 or IPv6 address.
    static func isAddressLiteral(_ name: String) -> Bool {
        // Room for either address (4 or 16 bytes); inet_pton only writes into it.
        var buffer = [UInt8](repeating: 0, count: 16)
        return inet_pton(AF_INET, name, &buffer) == 1 || inet_pton(AF_INET6, name, &buffer) == 1
    }
}

extension Character {
    fileprivate var isASCIIDigit: Bool { isASCII && isNumber }
}

extension String {
    /// Without leading and trailing spaces and tabs.
    fileprivate func trimmedOfBlanks() -> String {
        var text = Substring(self)
        while text.first == " " || text.first == "\t" { text.removeFirst() }
        while text.last == " " || text.last == "\t" { text.removeLast() }
        return String(text)
    }
}
