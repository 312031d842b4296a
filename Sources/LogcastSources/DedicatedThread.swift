import CLinuxShims
import Foundation
import LogcastHub
import LogcastProtocol
import ServiceLifecycle
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// An `eventfd` that tells a blocking loop on another thread to stop.
///
/// The loop includes ``fd`` in its `poll(2)` set and exits once it is
/// readable; ``signal()`` may be called from any thread, any number of times.
public final class WakeSignal: Sendable {
    public let fd: Int32

    public init() {
        fd = eventfd(0, Int32(EFD_CLOEXEC | EFD_NONBLOCK))
    }

    deinit {
        close(fd)
    }

    /// Makes ``fd`` readable (and keeps it so: the counter is never drained).
    public func signal() {
        var one: UInt64 = 1
        _ = write(fd, &one, 8)
    }

    /// Resets the signal (for one that is used repeatedly, like a reload request).
    public func drain() {
        var value: UInt64 = 0
        _ = read(fd, &value, 8)
    }
}

/// Runs `body` on a new thread of its own and suspends until it returns.
///
/// Sources that block in system calls (`poll`, `sd_journal_*`) own a thread
/// for their whole life instead of borrowing one from the concurrency pool.
/// Graceful shutdown and task cancellation both signal `wake`; `body` must
/// watch `wake.fd` and return promptly once it is readable.
func runOnDedicatedThread(named name: String, wake: WakeSignal, _ body: @escaping @Sendable () -> Void) async {
    let done = Mutex<CheckedContinuation<Void, Never>?>(nil)
    await withGracefulShutdownHandler {
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                done.withLock { $0 = continuation }
                let thread = Thread {
                    body()
                    let continuation = done.withLock { waiting -> CheckedContinuation<Void, Never>? in
                        defer { waiting = nil }
                        return waiting
                    }
                    continuation?.resume()
                }
                thread.name = name
                thread.start()
            }
        } onCancel: {
            wake.signal()
        }
    } onGracefulShutdown: {
        wake.signal()
    }
}
