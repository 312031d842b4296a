import ArgumentParser
import Foundation
import LogcastClient
import LogcastProtocol
import NIOSSL

#if canImport(Glibc)
import Glibc
#endif

/// `logcast tail`: a terminal subscriber, like `journalctl -f` for a logcast server.
struct Tail: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Stream lines from a logcast server to the terminal, like journalctl -f.",
        discussion: """
            URL defaults to $LOGCAST_URL or ws://127.0.0.1:8080. Follows by default (-f is accepted; --no-follow prints and exits). \
            Reconnects by itself and resumes where it left off.
            Lines go to stdout; gaps, source events and connection notices go to stderr (-q keeps only gaps and errors).

            journalctl habits: -u, -t, -p, -g (PCRE2, smart case), --case-sensitive[=BOOL], -S, -U, -n, -f, -q, -r, -e, \
            --no-pager and -o short-iso, short-precise, short-full, with-unit, json, cat mean what they mean there. \
            Different here: -s is a logcast source, -H a cluster host; -o short is logcast's own (UTC, milliseconds, source) and \
            -o json prints the server's line objects, not journal fields; -e only implies -n 1000 (there is no pager); \
            -x is accepted and does nothing (no message catalog); -F is a fixed string.

            Exit codes: 0 done (--no-follow, Ctrl-C, a closed pipe), 1 server unreachable, 2 bad usage, 3 filter refused, \
            4 token or origin refused.
            Example: logcast tail ws://web1:8080 -u nginx -p warning -g 'timeout|refused'
            """
    )

    @Argument(help: ArgumentHelp("The server, e.g. ws://127.0.0.1:8080 or wss://logs.example.com.", valueName: "URL"))
    var url: String?

    @Option(name: [.short, .customLong("source")], help: ArgumentHelp("Only this source (repeatable).", valueName: "NAME"))
    var sources: [String] = []

    @Option(
        name: [.short, .long, .customLong("regex")],
        help: ArgumentHelp("Message matches this PCRE2 regular expression, like journalctl -g (smart case).", valueName: "REGEX")
    )
    var grep: String?

    @Option(
        help: ArgumentHelp(
            "With -g: match case as given (yes) or ignore it (no); without it, smart case (as journalctl).",
            valueName: "BOOL"
        )
    )
    var caseSensitive: String?

    @Option(
        name: [.customShort("F"), .customLong("contains")],
        help: ArgumentHelp("Message contains this fixed text (repeatable: all must match; smart case).", valueName: "TEXT")
    )
    var contains: [String] = []

    @Option(help: ArgumentHelp("Drop lines containing this text (repeatable).", valueName: "TEXT"))
    var exclude: [String] = []

    @Option(
        name: [.short, .long],
        help: ArgumentHelp("This level or more severe (err, warning, 0-7), or a range like warning..err.", valueName: "LEVEL")
    )
    var priority: String?

    @Option(name: [.short, .customLong("unit")], help: ArgumentHelp("systemd unit (repeatable; 'nginx' means nginx.service).", valueName: "UNIT"))
    var units: [String] = []

    @Option(name: [.customShort("t"), .customLong("identifier")], help: ArgumentHelp("Syslog identifier (repeatable).", valueName: "ID"))
    var identifiers: [String] = []

    @Option(
        name: [.customShort("H"), .customLong("host")],
        help: ArgumentHelp("Host name (repeatable): on a gateway, the lines of these hosts of the cluster.", valueName: "HOST")
    )
    var hosts: [String] = []

    @Option(
        name: [.customShort("S"), .long],
        help: ArgumentHelp("Lines from this time on, like journalctl -S: 2026-12-01T10:00:00Z, 2026-12-01, -10m, -2h, -1d.", valueName: "TIME")
    )
    var since: String?

    @Option(
        name: [.customShort("U"), .long],
        help: ArgumentHelp("Lines up to this time (same forms as --since); prints the range and exits.", valueName: "TIME")
    )
    var until: String?

    @Option(name: [.customShort("C"), .long], help: ArgumentHelp("Lines of context before and after each match (as grep -C).", valueName: "N"))
    var context: Int?

    @Option(name: [.customShort("B"), .long], help: ArgumentHelp("Lines of context before each match (as grep -B).", valueName: "N"))
    var beforeContext: Int?

    @Option(name: [.customShort("A"), .long], help: ArgumentHelp("Lines of context after each match (as grep -A).", valueName: "N"))
    var afterContext: Int?

    @Option(
        name: .customLong("field"),
        help: ArgumentHelp(
            "A condition on a structured field (repeatable, all must hold): NAME=VALUE, NAME!=VALUE, NAME~REGEX, NAME>N, NAME>=N, "
                + "NAME<N, NAME<=N; dotted names reach into JSON (http.status>=500); journal fields as journalctl (_PID=1234).",
            valueName: "EXPR"
        )
    )
    var fieldConditions: [String] = []

    @Option(
        name: .customLong("fields"),
        help: ArgumentHelp("With -o json: add these fields to each line object as \"fields\" (comma-separated, or * for all).", valueName: "LIST")
    )
    var fieldsSent: String?

    @Option(name: [.customShort("n"), .long], help: ArgumentHelp("Lines of history to print first (default 10; 1000 with -e).", valueName: "N"))
    var lines: Int?

    @Flag(name: [.short, .long], help: "Follow new lines (the default; as journalctl -f).")
    var follow = false

    @Flag(help: "Print the history lines and exit instead of following.")
    var noFollow = false

    @Flag(name: [.short, .long], help: "Newest line first; only for lines that end (--no-follow or --until).")
    var reverse = false

    @Flag(name: [.short, .long], help: "Quiet: no connection notices or source events on stderr (gaps and errors still show).")
    var quiet = false

    @Flag(name: [.customShort("e"), .long], help: "As journalctl -e: start at the end, with -n 1000 unless -n is given.")
    var pagerEnd = false

    @Flag(name: [.customShort("x"), .long], help: "Accepted for journalctl -x habits; does nothing (no message catalog).")
    var catalog = false

    @Flag(help: "Accepted for journalctl habits; logcast never pages.")
    var noPager = false

    @Option(
        name: [.short, .customLong("output")],
        help: ArgumentHelp(
            "short (logcast's: UTC time, host, source, message), short-iso, short-precise, short-full, with-unit (as journalctl), "
                + "json (the server's line objects) or cat (message only).",
            valueName: "MODE"
        )
    )
    var output = "short"

    @Option(
        help: ArgumentHelp(
            "Control characters in messages, hosts and paths: escape (shown as \\x1b, \\r...; the default, so a log line cannot rewrite "
                + "the terminal), color (escape all but SGR colour sequences in messages), raw (pass every byte through).",
            valueName: "escape|color|raw"
        )
    )
    var controlCharacters: String = "escape"

    @Option(help: ArgumentHelp("Colour the output: auto (on a terminal, unless NO_COLOR is set), always, never.", valueName: "auto|always|never"))
    var color = "auto"

    @Option(help: ArgumentHelp("Read the token from this file (else $LOGCAST_TOKEN); sent as a Bearer header.", valueName: "FILE"))
    var tokenFile: String?

    @Flag(help: "Do not verify the server's TLS certificate (wss://). Only for testing.")
    var insecure = false

    @Option(help: ArgumentHelp("Trust this PEM CA certificate for wss:// (besides the system store).", valueName: "FILE"))
    var caFile: String?

    @Option(help: "Seconds to keep retrying the first connection before giving up.")
    var connectTimeout: Double = 10

    func run() async throws {
        do {
            let options = try makeOptions()
            signal(SIGPIPE, SIG_IGN)
            signal(SIGINT) { _ in _exit(0) }
            let session = TailSession(
                options: options,
                output: TailOutput(stdout: { Terminal.write($0, to: STDOUT_FILENO) }, stderr: { Terminal.write($0, to: STDERR_FILENO) })
            )
            if !options.follow {
                try await session.printBacklog()
            } else {
                try await session.follow()
            }
        } catch {
            Terminal.write(error.description.hasPrefix("logcast:") ? error.description + "\n" : "logcast: \(error.description)\n", to: STDERR_FILENO)
            throw ExitCode(error.exitCode)
        }
    }

    func makeOptions() throws(TailError) -> TailOptions {
        let environment = ProcessInfo.processInfo.environment
        let text = url ?? environment["LOGCAST_URL"].flatMap { $0.isEmpty ? nil : $0 } ?? "ws://127.0.0.1:8080"
        var options = TailOptions(address: try ServerAddress(parsing: text))
        var filter = TailFilter()
        filter.sources = sources
        filter.grep = contains
        if let caseSensitive {
            guard let sensitive = Self.boolean(caseSensitive) else {
                throw .usage("--case-sensitive '\(caseSensitive)' is not a boolean; use yes or no (1/0, true/false, on/off)")
            }
            guard grep != nil else { throw .usage("--case-sensitive applies to -g/--grep, which is not given") }
            // An inline option at the start overrides the server's smart case (PCRE2 semantics).
            filter.regex = grep.map { (sensitive ? "(?-i)" : "(?i)") + $0 }
        } else {
            filter.regex = grep
        }
        filter.exclude = exclude
        filter.priority = priority
        filter.units = units
        filter.identifiers = identifiers
        filter.hosts = hosts
        for (flag, value) in [("-C/--context", context), ("-B/--before-context", beforeContext), ("-A/--after-context", afterContext)] {
            guard let value, !(0...100).contains(value) else { continue }
            throw .usage("\(flag) must be a number of lines from 0 to 100 (got \(value))")
        }
        filter.beforeContext = beforeContext ?? context ?? 0
        filter.afterContext = afterContext ?? context ?? 0
        filter.fieldConditions = fieldConditions
        filter.fieldsSent = fieldsSent
        let now = Timestamp.now()
        for (flag, text, keyPath) in [("--since", since, \TailFilter.since), ("--until", until, \TailFilter.until)] {
            guard let text else { continue }
            guard let time = TimeBound.parse(text, now: now) else { throw .usage("\(flag) '\(text)' is not a time; \(TimeBound.hint)") }
            filter[keyPath: keyPath] = time
        }
        if let since = filter.since, let until = filter.until, until < since {
            throw .usage("--until is before --since")
        }
        options.filter = filter
        let backlog = lines ?? (pagerEnd ? 1000 : 10)
        guard backlog >= 0 else { throw .usage("--lines must be 0 or more (got \(backlog))") }
        options.backlog = backlog
        if follow && noFollow { throw .usage("-f/--follow and --no-follow contradict each other") }
        if follow && until != nil { throw .usage("-f/--follow cannot be combined with --until (a range ends)") }
        options.follow = !noFollow && until == nil
        if reverse && options.follow {
            throw .usage("-r/--reverse needs lines that end: add --no-follow or --until (a followed stream has no newest line)")
        }
        options.reverse = reverse
        options.quiet = quiet
        guard let mode = OutputMode(rawValue: output) else {
            throw .usage("--output '\(output)' is not a mode; use \(OutputMode.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        if fieldsSent != nil, mode != .json { throw .usage("--fields needs -o json (the other modes print the message, not fields)") }
        let useColor: Bool
        switch color {
        case "always": useColor = true
        case "never": useColor = false
        case "auto": useColor = isatty(STDOUT_FILENO) == 1 && (environment["NO_COLOR"] ?? "").isEmpty
        default: throw .usage("--color '\(color)' is not a choice; use auto, always or never")
        }
        guard let controls = ControlCharacters(rawValue: controlCharacters) else {
            throw .usage("--control-characters '\(controlCharacters)' is not a choice; use escape, color or raw")
        }
        options.formatter = LineFormatter(mode: mode, color: useColor, controls: controls)
        guard connectTimeout >= 0 else { throw .usage("--connect-timeout must be 0 or more seconds (got \(connectTimeout))") }
        options.connectTimeout = .milliseconds(Int(connectTimeout * 1000))
        if let tokenFile {
            guard let contents = try? String(contentsOfFile: tokenFile, encoding: .utf8) else {
                throw .usage("--token-file \(tokenFile) cannot be read")
            }
            guard
                let token = contents.split(whereSeparator: \.isNewline).map({ $0.trimmingCharacters(in: .whitespaces) })
                    .first(where: { !$0.isEmpty && !$0.hasPrefix("#") })
            else { throw .usage("--token-file \(tokenFile) holds no token") }
            options.token = token
        } else if let token = environment["LOGCAST_TOKEN"], !token.isEmpty {
            options.token = token
        }
        var tls = TLSConfiguration.makeClientConfiguration()
        if insecure { tls.certificateVerification = .none }
        if let caFile {
            guard let certificates = try? NIOSSLCertificate.fromPEMFile(caFile), !certificates.isEmpty else {
                throw .usage("--ca-file \(caFile) is not a readable PEM certificate")
            }
            tls.additionalTrustRoots = [.certificates(certificates)]
        }
        options.tls = tls
        return options
    }
}

extension Tail {
    /// A systemd boolean (`yes`/`no`, `1`/`0`, `true`/`false`, `on`/`off`, `y`/`n`, `t`/`f`), as journalctl takes them.
    static func boolean(_ text: String) -> Bool? {
        switch text.lowercased() {
        case "1", "yes", "y", "true", "t", "on": true
        case "0", "no", "n", "false", "f", "off": false
        default: nil
        }
    }
}

/// Unbuffered writes to a terminal or pipe. A closed pipe (`| head`) ends
/// the program quietly with status 0, as `tail -f | head` users expect.
enum Terminal {
    static func write(_ text: String, to fd: Int32) {
        var text = text
        text.withUTF8 { buffer in
            var offset = 0
            while offset < buffer.count {
                let written = Glibc.write(fd, buffer.baseAddress! + offset, buffer.count - offset)
                if written < 0 {
                    if errno == EINTR { continue }
                    if errno == EPIPE { _exit(0) }
                    return
                }
                offset += written
            }
        }
    }
}
