import CLinuxShims
import DequeModule
import Foundation
import LogcastHub
import NIOCore

/// The threads that build and send subscribers' frames: a prompt lane for
/// writers that keep up, and a bulk lane, at a lower scheduling priority,
/// for writers that are catching up.
///
/// A writer waits for lines, and sends what it gets, on the prompt lane (the
/// `/ws` and `/sse` writers on their connection's event loop instead). Once it has sent a full frame
/// and more is waiting (a burst, a catch-up), it moves to the bulk lane and
/// stays there, yielding to the lane's other writers after every frame,
/// until it has caught up (``drive(_:prompt:_:)``). Reads from the history
/// run on the bulk lane too (`Subscription.nextBatch(maxBytes:readOnExecutor:)`).
///
/// Why two lanes, each with threads of its own: in one shared pool a line
/// for a quiet subscriber waited, during a burst to 100 others, behind one
/// frame of every busy writer (15-30 ms at the median). The bulk lane's
/// threads also run at a nice value 5 above the process's, so the kernel
/// gives the sources' threads and the event loops (where quiet writers run)
/// three times the bulk lane's share of a busy CPU; a burst is not slower
/// for it (`Benchmarks/README.md`). Nice values weigh threads of one
/// scheduling group against each other: under systemd the service is a
/// group of its own (its own session, so its own autogroup, or its own
/// cgroup), and the bulk lane gives way only to logcast's other threads.
/// Started from a shell beside busy programs of the same session, it gives
/// way to those too, which is why the increment is 5 and not 10 (measured
/// no better for latency, and a third of the share).
///
/// Jobs of one lane run in the order they were enqueued, on any of its
/// threads. Each lane has one thread per processor (at least two), named
/// `logcast-prompt` and `logcast-bulk`; ``shared`` lives as long as the
/// process.
public final class WriterPool: Sendable {
    /// The process's pool.
    public static let shared = WriterPool(threads: max(2, ProcessInfo.processInfo.activeProcessorCount))

    /// How much higher the bulk lane's nice value is than the process's.
    public static let bulkNiceIncrement: Int32 = 5

    /// What a writer did in one step of ``drive(_:prompt:_:)``.
    public enum Step: Sendable, Equatable {
        /// Sent what it had: the next step waits for lines, on the prompt lane.
        case sent
        /// Sent a full frame and has more waiting: the next steps run on the bulk lane.
        case busy
        /// Done: the subscription ended or the peer went.
        case finished
        /// Nothing is waiting: the writer's task ends, and a new one starts
        /// when something arrives (``Subscription/whenReady(_:)``), so an
        /// idle subscriber holds no task.
        case idle
    }

    /// Where writers without an event loop of their own wait for lines and
    /// send what they keep up with (the server's writers use their
    /// connection's event loop instead).
    public let prompt: Lane
    /// Where writers that are catching up send their frames.
    public let bulk: Lane

    /// Starts `threads` threads for each lane.
    public init(threads: Int, bulkNiceIncrement: Int32 = WriterPool.bulkNiceIncrement) {
        prompt = Lane(name: "logcast-prompt", threads: threads, niceIncrement: 0)
        bulk = Lane(name: "logcast-bulk", threads: threads, niceIncrement: bulkNiceIncrement)
    }

    /// Runs `step` until it returns ``Step/finished`` or ``Step/idle``
    /// (which it returns): on `prompt` (the pool's prompt lane when nil)
    /// while the writer keeps up, on the bulk lane from a ``Step/busy``
    /// step to the next ``Step/sent`` one, and while `subscription` is
    /// behind (reading on from the history).
    @discardableResult
    public func drive(_ subscription: Subscription, prompt: (any TaskExecutor)? = nil, _ step: () async -> Step) async -> Step {
        await drive(prompt: prompt, catchingUp: { subscription.isBehind }, step: step)
    }

    /// ``drive(_:prompt:_:)`` with the catch-up test given (for tests).
    @discardableResult
    func drive(prompt: (any TaskExecutor)?, catchingUp: () -> Bool, step: () async -> Step) async -> Step {
        await withTaskExecutorPreference(prompt ?? self.prompt) {
            var next = catchingUp() ? Step.busy : await step()
            while true {
                switch next {
                case .finished, .idle: return next
                case .sent: next = catchingUp() ? .busy : await step()
                case .busy:
                    next = await withTaskExecutorPreference(bulk) { () async -> Step in
                        while true {
                            // The lane's other writers get a frame each before this one's next.
                            await Task.yield()
                            let step = await step()
                            if step != .busy { return step }
                        }
                    }
                }
            }
        }
    }

    /// Ends the threads once their queues are empty (for tests; ``shared`` is never stopped).
    public func stop() {
        prompt.stop()
        bulk.stop()
    }

    /// One lane: a queue of jobs and the threads that run them, as a task executor.
    public final class Lane: TaskExecutor {
        private let condition = NSCondition()
        // Guarded by `condition`.
        private nonisolated(unsafe) var jobs = Deque<UnownedJob>()
        private nonisolated(unsafe) var waiting = 0
        private nonisolated(unsafe) var stopped = false

        fileprivate init(name: String, threads: Int, niceIncrement: Int32) {
            for _ in 0..<max(1, threads) {
                Thread { [self] in
                    _ = logcast_set_thread_name(name)
                    // Lowering one's own priority needs no privilege; a failure leaves the thread as it was.
                    if niceIncrement > 0 { _ = logcast_raise_thread_nice(niceIncrement) }
                    run()
                }.start()
            }
        }

        public func enqueue(_ job: consuming ExecutorJob) {
            let job = UnownedJob(job)
            condition.lock()
            jobs.append(job)
            let wake = waiting > 0
            condition.unlock()
            if wake { condition.signal() }
        }

        fileprivate func stop() {
            condition.lock()
            stopped = true
            condition.unlock()
            condition.broadcast()
        }

        /// One thread's life: the next job, else wait for one.
        private func run() {
            let executor = asUnownedTaskExecutor()
            while true {
                condition.lock()
                while jobs.isEmpty, !stopped {
                    waiting += 1
                    condition.wait()
                    waiting -= 1
                }
                guard let job = jobs.popFirst() else {
                    condition.unlock()
                    return
                }
                condition.unlock()
                job.runSynchronously(on: executor)
            }
        }
    }
}

/// A connection's event loop as a task executor: a writer running on it
/// writes to its channel directly (`NIOAsyncWriter` hops only from other
/// threads). Only work that never blocks may run here.
final class EventLoopTaskExecutor: TaskExecutor {
    let eventLoop: any EventLoop

    init(_ eventLoop: any EventLoop) {
        self.eventLoop = eventLoop
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        eventLoop.execute { job.runSynchronously(on: self.asUnownedTaskExecutor()) }
    }
}

extension WriterPool {
    /// The step after sending a frame of `items` with a budget of `maxBytes`:
    /// ``Step/busy`` when the frame was full (its items took at least half
    /// the budget; a frame ends before the line that would pass it) and
    /// more is waiting. Measured as the drain measured the budget
    /// (``SubscriberQueue/FrameMeasure``), not in the frame's bytes: a
    /// framing adds its own (SSE's `data:` and `id:`), and a frame measured
    /// in anything else could never count as full.
    static func step(sent items: [SubscriberQueue.Item], of maxBytes: Int, _ subscription: Subscription) -> Step {
        SubscriberQueue.budgetBytes(of: items, measure: subscription.frameMeasure) >= maxBytes / 2 && subscription.hasMore ? .busy : .sent
    }
}
