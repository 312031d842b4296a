/// The subjects of the cluster stream: every line of host H's source S is
/// published to `logcast.<H>.<S>`, each name escaped to one subject token.
///
/// A NATS subject token may not contain `.` (the separator), `*` or `>`
/// (wildcards) or whitespace, and must not be empty. Names are escaped so
/// that any host or source name is one token and the escape is reversible:
/// ASCII letters, digits and `-` stay as they are; every other byte of the
/// UTF-8 name becomes `_` and two upper-case hex digits (`_` itself is
/// `_5F`, `.` is `_2E`); the empty name is `_`.
public enum ClusterSubject {
    /// The first token of every logcast subject.
    public static let prefix = "logcast"

    /// Every logcast subject (the stream's subject filter).
    public static let all = prefix + ".>"

    /// `name` as one subject token.
    public static func token(_ name: String) -> String {
        if name.isEmpty { return "_" }
        var out: [UInt8] = []
        out.reserveCapacity(name.utf8.count)
        let hex = Array("0123456789ABCDEF".utf8)
        for byte in name.utf8 {
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                UInt8(ascii: "-"):
                out.append(byte)
            default:
                out += [UInt8(ascii: "_"), hex[Int(byte >> 4)], hex[Int(byte & 0xF)]]
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// The name a token stands for, or nil when it is not one ``token(_:)`` makes.
    public static func name(ofToken token: Substring) -> String? {
        if token == "_" { return "" }
        guard !token.isEmpty else { return nil }
        var bytes: [UInt8] = []
        var iterator = token.utf8.makeIterator()
        func hexValue(_ byte: UInt8?) -> UInt8? {
            switch byte {
            case let b? where b >= UInt8(ascii: "0") && b <= UInt8(ascii: "9"): b - UInt8(ascii: "0")
            case let b? where b >= UInt8(ascii: "A") && b <= UInt8(ascii: "F"): b - UInt8(ascii: "A") + 10
            default: nil
            }
        }
        while let byte = iterator.next() {
            if byte == UInt8(ascii: "_") {
                guard let high = hexValue(iterator.next()), let low = hexValue(iterator.next()) else { return nil }
                bytes.append(high << 4 | low)
            } else {
                bytes.append(byte)
            }
        }
        return String(validating: bytes, as: UTF8.self)
    }

    /// The subject of `source`'s lines on `host`.
    public static func subject(host: String, source: String) -> String {
        "\(prefix).\(token(host)).\(token(source))"
    }

    /// The host and source of a logcast subject, or nil for any other subject.
    public static func parse(_ subject: String) -> (host: String, source: String)? {
        let tokens = subject.split(separator: ".", omittingEmptySubsequences: false)
        guard tokens.count == 3, tokens[0] == prefix, let host = name(ofToken: tokens[1]), let source = name(ofToken: tokens[2]) else {
            return nil
        }
        return (host, source)
    }

    /// The one subject pattern that selects exactly these hosts and sources,
    /// when there is one (at most one host and one source; nil: any):
    /// `logcast.web1.nginx`, `logcast.web1.*`, `logcast.*.nginx`, `logcast.*.*`.
    public static func filter(host: String?, source: String?) -> String {
        "\(prefix).\(host.map(token) ?? "*").\(source.map(token) ?? "*")"
    }
}
