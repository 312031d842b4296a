import CLinuxShims
import CPCRE2
import LogcastProtocol
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// A compiled text pattern: a fixed string or a PCRE2 regular expression,
/// matched against a line's UTF-8 bytes.
///
/// Guarantees:
/// - Matching never stalls: regular expressions run under a PCRE2 match
///   limit (``matchLimit``); a line on which a pattern hits the limit counts
///   as not matching.
/// - Safe to use from any thread; matching takes a short lock around the
///   pattern's match data.
public final class Pattern: Sendable {
    /// Backtracking steps PCRE2 may take on one line before giving up.
    public static let matchLimit: UInt32 = 100_000
    /// The longest regular expression accepted, in bytes.
    public static let maxRegexBytes = 1024

    public enum Kind: Sendable, Equatable {
        case fixedString
        case regularExpression
    }

    public let source: String
    public let kind: Kind
    public let caseSensitive: Bool

    private let engine: Mutex<Engine>
    /// A case-sensitive fixed string's bytes: matched with `memmem`, with
    /// no lock and no PCRE2 (nil for every other pattern).
    private let literal: [UInt8]?

    /// A PCRE2 pattern with its match data; only touched under ``engine``'s lock.
    private struct Engine: ~Copyable, @unchecked Sendable {
        var code: OpaquePointer?
        var matchData: OpaquePointer?
        var context: OpaquePointer?

        deinit {
            if let matchData { pcre2_match_data_free_8(matchData) }
            if let context { pcre2_match_context_free_8(context) }
            if let code { pcre2_code_free_8(code) }
        }
    }

    /// Compiles `source`.
    ///
    /// Case follows the smart-case rule unless `caseSensitive` is given:
    /// insensitive unless the pattern has an upper-case letter (for a regular
    /// expression, one that is not part of an escape such as `\S` or `\p{Lu}`).
    /// - Throws: ``PatternError`` with PCRE2's message and the offset.
    public init(_ source: String, kind: Kind, caseSensitive: Bool? = nil) throws(PatternError) {
        self.source = source
        self.kind = kind
        let sensitive = caseSensitive ?? Pattern.hasUpperCase(source, isRegex: kind == .regularExpression)
        self.caseSensitive = sensitive

        if kind == .fixedString && sensitive {
            engine = Mutex(Engine(code: nil, matchData: nil, context: nil))
            literal = Array(source.utf8)
            return
        }
        literal = nil
        var options: UInt32 = PCRE2_UTF | PCRE2_MATCH_INVALID_UTF
        // In UTF mode, caseless matching folds non-ASCII letters too; UCP
        // (Unicode \w, \d) is for regular expressions only: PCRE2_LITERAL refuses it.
        if !sensitive { options |= PCRE2_CASELESS }
        if kind == .fixedString { options |= PCRE2_LITERAL } else { options |= PCRE2_UCP }
        var errorCode: Int32 = 0
        var errorOffset: Int = 0
        let bytes = Array(source.utf8)
        let code = bytes.withUnsafeBufferPointer { buffer in
            pcre2_compile_8(buffer.baseAddress, buffer.count, options, &errorCode, &errorOffset, nil)
        }
        guard let code else {
            throw PatternError(message: Pattern.errorMessage(errorCode), offset: errorOffset)
        }
        // JIT is an optimisation: without it (no executable memory) the interpreter is used.
        _ = pcre2_jit_compile_8(code, PCRE2_JIT_COMPLETE)
        let context = pcre2_match_context_create_8(nil)
        pcre2_set_match_limit_8(context, Pattern.matchLimit)
        pcre2_set_depth_limit_8(context, Pattern.matchLimit)
        let matchData = pcre2_match_data_create_from_pattern_8(code, nil)
        engine = Mutex(Engine(code: code, matchData: matchData, context: context))
    }

    /// Whether the pattern occurs in `text`.
    public func matches(_ text: String) -> Bool {
        var text = text
        return text.withUTF8 { matches(utf8: UnsafeRawBufferPointer($0)) }
    }

    /// Whether the pattern occurs in these UTF-8 bytes.
    public func matches(utf8 text: UnsafeRawBufferPointer) -> Bool {
        if let literal {
            return literal.withUnsafeBytes { needle in
                if needle.isEmpty { return true }
                guard let hay = text.baseAddress, let pin = needle.baseAddress else { return false }
                return logcast_memmem(hay, text.count, pin, needle.count) != nil
            }
        }
        return engine.withLock { engine in
            guard let code = engine.code else { return false }
            let base = text.baseAddress?.assumingMemoryBound(to: UInt8.self) ?? UnsafePointer<UInt8>(bitPattern: 1)!
            let result = pcre2_match_8(code, base, text.count, 0, 0, engine.matchData, engine.context)
            // >= 0: matched. PCRE2_ERROR_NOMATCH, PCRE2_ERROR_MATCHLIMIT, ...: not a match.
            return result >= 0
        }
    }

    static func errorMessage(_ code: Int32) -> String {
        var buffer = [UInt8](repeating: 0, count: 256)
        let length = buffer.withUnsafeMutableBufferPointer { pcre2_get_error_message_8(code, $0.baseAddress, $0.count) }
        return length > 0 ? String(decoding: buffer[0..<Int(length)], as: UTF8.self) : "error \(code)"
    }

    /// Smart case: does the pattern contain an upper-case letter of its own?
    static func hasUpperCase(_ pattern: String, isRegex: Bool) -> Bool {
        guard isRegex else { return pattern.contains { $0.isUppercase } }
        var iterator = pattern.makeIterator()
        while let character = iterator.next() {
            if character == "\\" {
                guard let escaped = iterator.next() else { break }
                if escaped == "p" || escaped == "P" {
                    // \p{Lu}, \pL: skip the property name.
                    if let next = iterator.next(), next == "{" {
                        while let c = iterator.next(), c != "}" {}
                    }
                }
                continue
            }
            if character.isUppercase { return true }
        }
        return false
    }
}

/// A pattern that does not compile.
public struct PatternError: Error, Sendable, Equatable {
    public var message: String
    public var offset: Int
}
