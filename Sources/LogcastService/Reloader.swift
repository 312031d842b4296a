import LogcastHub
import LogcastServer
import LogcastSources
import Logging
import ServiceLifecycle
import UnixSignals

/// Handles SIGHUP without dropping subscribers: rereads the token file
/// (keeping the old tokens if the new file is bad), closes the streams whose
/// token is no longer in it (WebSocket close code 4401), loads the TLS
/// certificate and key again (keeping the old ones if the new ones do not
/// load; connections already open keep theirs), and asks every source to
/// check or reopen its files. The service manager is told when the reload
/// begins (`RELOADING=1`) and ends (`READY=1`), so `systemctl reload` of a
/// `Type=notify-reload` unit returns once it is done.
struct Reloader: Service {
    let tokens: TokenStore?
    let tls: TLSCredentials?
    let connections: ConnectionTracker
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
        SystemdNotifier.reloading()
        defer { SystemdNotifier.reloaded() }
        logger.notice("SIGHUP: reloading the token file and TLS files and reopening sources")
        if let tokens {
            do {
                try tokens.reload()
                logger.notice("token file reloaded", metadata: ["path": "\(tokens.path)", "tokens": "\(tokens.count)"])
                let revoked = connections.revokeStreams(unless: { tokens.accepts($0) })
                if revoked > 0 { logger.notice("closed streams whose token was revoked", metadata: ["streams": "\(revoked)"]) }
            } catch {
                logger.error("token file not reloaded; the previous tokens stay in force", metadata: ["error": "\(error.description)"])
            }
        }
        if let tls {
            do {
                try tls.reload()
                logger.notice("TLS certificate reloaded", metadata: ["certificate": "\(tls.certificatePath)", "key": "\(tls.keyPath)"])
            } catch {
                logger.error("TLS files not reloaded; the previous certificate stays in use", metadata: ["error": "\(error)"])
            }
        }
        for tailer in fileTailers { tailer.reopen() }
        for tailer in journalTailers { tailer.reopen() }
    }
}
