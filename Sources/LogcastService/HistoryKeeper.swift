import LogcastStore
import Logging
import ServiceLifecycle

/// Keeps the state directory locked while logcast runs, and the durable
/// history on disk: `fdatasync` once a second (so a power loss costs at
/// most about a second of lines; a crash of the process costs nothing, since
/// every line was written before it was sent), the age limit, and a last
/// sync at shutdown, after every source has stopped.
struct HistoryKeeper: Service {
    let state: StateDirectory
    let log: SegmentLog
    let logger: Logger

    static let syncInterval: Duration = .seconds(1)

    func run() async throws {
        await cancelWhenGracefulShutdown {
            var reported: String?
            while !Task.isCancelled {
                try? await Task.sleep(for: Self.syncInterval)
                log.sync()
                let problem = log.problem
                if problem != reported {
                    if let problem {
                        logger.error("history not written", metadata: ["error": "\(problem)"])
                    } else {
                        logger.notice("writing the history again")
                    }
                    reported = problem
                }
            }
        }
        log.sync()
        withExtendedLifetime(state) {}
    }
}
