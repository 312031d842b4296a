import CLinuxShims
import Foundation
import LogcastProtocol
import NIOCore
import NIOPosix
import Synchronization
import Testing

@testable import LogcastHub
@testable import LogcastServer

/// The writers' two lanes: where each step of a writer runs, and that the
/// lanes do not wait for each other.
@Suite struct WriterPoolTests {
    /// The calling thread's name, as the kernel has it.
    static func threadName() -> String {
        ((try? String(contentsOfFile: "/proc/thread-self/comm", encoding: .utf8)) ?? "?")
            .trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Runs `script` through `drive` and returns, for each step, the lane
    /// (by its threads' name) and the nice value it ran at.
    static func lanes(of script: [WriterPool.Step], catchingUp: [Bool] = []) async -> [(name: String, nice: Int32)] {
        let pool = WriterPool(threads: 1)
        defer { pool.stop() }
        var seen: [(name: String, nice: Int32)] = []
        var next = script.makeIterator()
        var behind = catchingUp.makeIterator()
        await pool.drive(
            prompt: nil,
            catchingUp: { behind.next() ?? false },
            step: {
                seen.append((threadName(), logcast_thread_nice()))
                return next.next() ?? .finished
            }
        )
        return seen
    }

    @Test(
        arguments: [
            ([.sent, .busy, .busy, .sent, .finished], ["prompt", "prompt", "bulk", "bulk", "prompt"]),
            ([.busy, .finished], ["prompt", "bulk"]),
            ([.busy, .sent, .busy, .busy, .sent, .sent, .finished], ["prompt", "bulk", "prompt", "bulk", "bulk", "prompt", "prompt"]),
            ([.finished], ["prompt"]),
            // Idle ends the task too (a writer without a task while idle starts another later), from either lane.
            ([.sent, .idle, .sent], ["prompt", "prompt"]),
            ([.busy, .idle, .sent], ["prompt", "bulk"]),
        ] as [([WriterPool.Step], [String])]
    )
    func aWriterCatchesUpOnTheBulkLaneAndWaitsOnThePromptOne(script: [WriterPool.Step], expected: [String]) async {
        let seen = await Self.lanes(of: script)
        #expect(seen.map(\.name) == expected.map { "logcast-\($0)" })
    }

    /// drive returns the step that ended it: the writer asks for a callback
    /// after `idle`, and ends the stream after `finished`.
    /// A frame that took its whole budget is full (the writer moves to the
    /// bulk lane while more is waiting) in every format and framing, though
    /// a `format=text` frame is a third of the budget in bytes; one that
    /// took less than half is not.
    @Test func aFullFrameIsFullInEveryFormat() throws {
        let maxBytes = 64 * 1024
        let kinds: [StreamFraming.Kind] = [.ndjson, .sse(epoch: "00000000000000aa")]
        for format in [SubscriptionRequest.Format.json, .text] {
            let hub = Hub(configuration: Hub.Configuration(), epoch: "00000000000000aa")
            let subscription = hub.subscribe(matcher: try LineMatcher(Filter()), request: SubscriptionRequest(backlog: 0, format: format))
            let message = String(repeating: "m", count: 96)
            hub.publish((0..<2000).map { _ in LogRecord(timestamp: Timestamp(microseconds: 0), source: "app", message: message) })
            guard case .batch(.items(let gap, let items)) = subscription.takeBatchNow(maxBytes: maxBytes, keepingRuns: true) else {
                Issue.record("no batch")
                return
            }
            #expect(subscription.hasMore)
            for kind in kinds {
                var buffer = ByteBuffer()
                _ = StreamFraming(kind: kind, format: format).append(gap: gap, items: items, to: &buffer)
                // A text frame is measured by its text: it holds its budget, not a third of it.
                if case .ndjson = kind, format == .text { #expect(buffer.readableBytes > maxBytes / 2 && buffer.readableBytes <= maxBytes) }
                #expect(WriterPool.step(sent: items, of: maxBytes, subscription) == .busy, "\(kind) \(format)")
            }
            let first = try #require(
                items.lazy.compactMap(\.carried).first
                    ?? items.lazy.compactMap { item -> HubEntry? in
                        if case .run(let lines, _, _) = item { return lines.first }
                        return nil
                    }.first
            )
            #expect(WriterPool.step(sent: [.entry(first)], of: maxBytes, subscription) == .sent, "a frame of one line is not full (\(format))")
        }
    }

    @Test func driveReturnsTheStepThatEndedIt() async {
        let pool = WriterPool(threads: 1)
        defer { pool.stop() }
        for (script, last) in [([WriterPool.Step.sent, .idle], WriterPool.Step.idle), ([.busy, .idle], .idle), ([.busy, .finished], .finished)] {
            var next = script.makeIterator()
            let ended = await pool.drive(prompt: nil, catchingUp: { false }, step: { next.next() ?? .finished })
            #expect(ended == last, "\(script)")
        }
    }

    /// A catch-up read may wait for the disk: it never runs on the prompt
    /// lane (which may be an event loop), even as a writer's first step.
    @Test func aWriterThatIsBehindReadsOnOnTheBulkLane() async {
        let seen = await Self.lanes(of: [.sent, .sent, .finished], catchingUp: [true, false, true])
        #expect(seen.map(\.name) == ["logcast-bulk", "logcast-prompt", "logcast-bulk"])
    }

    /// With a connection's event loop as the prompt lane, the steps that
    /// keep up run on it (a frame goes to the socket without a hop), and
    /// the busy ones on the bulk lane.
    @Test func aConnectionsEventLoopCanBeThePromptLane() async {
        let pool = WriterPool(threads: 1)
        defer { pool.stop() }
        let eventLoop = MultiThreadedEventLoopGroup.singleton.next()
        var onLoop: [Bool] = []
        var next = [WriterPool.Step.sent, .busy, .sent, .finished].makeIterator()
        await pool.drive(
            prompt: EventLoopTaskExecutor(eventLoop),
            catchingUp: { false },
            step: {
                onLoop.append(eventLoop.inEventLoop)
                return next.next() ?? .finished
            }
        )
        #expect(onLoop == [true, true, false, true])
    }

    @Test func theBulkLaneRunsAtALowerPriority() async {
        let seen = await Self.lanes(of: [.busy, .finished])
        let prompt = try! #require(seen.first)
        let bulk = try! #require(seen.last)
        #expect(prompt.nice == logcast_thread_nice(), "the prompt lane keeps the process's priority")
        #expect(bulk.nice == min(19, prompt.nice + WriterPool.bulkNiceIncrement))
    }

    /// A writer on the prompt lane is served while every bulk thread is taken.
    @Test func thePromptLaneDoesNotWaitForTheBulkLane() async {
        let pool = WriterPool(threads: 1)
        defer { pool.stop() }
        let bulkStarted = DispatchSemaphore(value: 0)
        let release = DispatchSemaphore(value: 0)
        let bulk = Task(executorPreference: pool.bulk) {
            bulkStarted.signal()
            // Holds the bulk lane's only thread until the prompt job below has run.
            return release.wait(timeout: .now() + 60) == .success
        }
        #expect(bulkStarted.wait(timeout: .now() + 60) == .success)
        let prompt = await Task(executorPreference: pool.prompt) { Self.threadName() }.value
        release.signal()
        #expect(prompt == "logcast-prompt")
        #expect(await bulk.value, "the prompt job ran while the bulk lane was held")
    }
}
