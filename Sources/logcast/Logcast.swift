import ArgumentParser
import CoreMetrics
import Foundation
import LogcastClient
import LogcastProtocol
import LogcastServer
import LogcastService
import Prometheus

/// The `logcast` command: `serve` runs the service, `tail` subscribes to one.
@main
struct Logcast: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "logcast",
        abstract:
            "Real-time log tailing over WebSocket: follows files like tail -F and the journal like journalctl -f, and streams them to subscribers.",
        version: LogcastVersion.string,
        subcommands: [Serve.self, Tail.self]
    )

    /// Parses the command line after mapping journalctl's optional-value
    /// flags (``JournalctlArguments``), and runs the command. A command line
    /// the parser refuses exits with 2, the documented usage status
    /// (ArgumentParser's own would be 64).
    static func main() async {
        let arguments = JournalctlArguments.normalized(Array(CommandLine.arguments.dropFirst()))
        let command: any ParsableCommand
        do {
            command = try parseAsRoot(arguments)
        } catch {
            if exitCode(for: error) == .validationFailure {
                FileHandle.standardError.write(Data((fullMessage(for: error) + "\n").utf8))
                Foundation.exit(2)
            }
            exit(withError: error)
        }
        do {
            if var command = command as? any AsyncParsableCommand {
                try await command.run()
            } else {
                var command = command
                try command.run()
            }
        } catch {
            exit(withError: error)
        }
    }
}

/// `logcast serve`: its flags come from the settings table in
/// `LogcastService` (`SettingKey`), which also prints its `--help`.
struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Follow log files and the systemd journal and serve them over WebSocket.",
        discussion: ServeArguments.helpText(),
        helpNames: []
    )

    @Argument(parsing: .captureForPassthrough, help: "Options; see 'logcast serve --help'.")
    var arguments: [String] = []

    func run() async throws {
        // The process's metrics backend: what the libraries record through
        // swift-metrics lands in this registry, which `/metrics` renders.
        let registry = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(LogcastMetricsFactory(registry: registry))
        let code = try await LogcastService.main(
            arguments: arguments,
            environment: ProcessInfo.processInfo.environment,
            metrics: registry
        )
        if code != 0 { throw ExitCode(code) }
    }
}
