import LogcastCore
import Logging
import ServiceLifecycle
import UnixSignals

/// Handles SIGHUP without dropping subscribers: rereads the token file
/// (keeping the old tokens if the new file is bad) and asks every source to
/// check or reopen its files.
struct Reloader: Service {
    let tokens: TokenStore?
    let fileTailers: [FileTailer]
    let journalTailers: [JournalTailer]
    let logger: Logger

    func run() async throws {
        let signals = await UnixSignalsSequence(trapping: .sighup)
        await cancelWhenGracefulShutdown {
            for await _ in signals {
                reload()
            }
        }
    }

    func reload() {
        logger.notice("SIGHUP: reloading the token file and reopening sources")
        if let tokens {
            do {
                try tokens.reload()
                logger.notice("token file reloaded", metadata: ["path": "\(tokens.path)", "tokens": "\(tokens.count)"])
            } catch {
                logger.error("token file not reloaded; the previous tokens stay in force", metadata: ["error": "\(error.description)"])
            }
        }
        fileTailers.forEach { $0.reopen() }
        journalTailers.forEach { $0.reopen() }
    }
}
