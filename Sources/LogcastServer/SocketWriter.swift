import HummingbirdWebSocket
import LogcastHub
import Logging
import NIOCore
import NIOWebSocket
import Synchronization

/// The writer of one WebSocket subscriber (``StreamSession``): sends what
/// the subscription queues, one NDJSON frame at a time, holding no task
/// while it has nothing to send.
///
/// ``start()`` asks the subscription to call back once something is ready
/// (``Subscription/whenReady(_:)``). The callback runs ``pump()`` on the
/// connection's event loop: it takes what is queued
/// (``Subscription/takeBatchNow(maxBytes:keepingRuns:)``), writes it to the
/// channel as one frame, and asks for the next callback. That is the whole
/// path of a line to an idle subscriber: one hop to the event loop, no
/// task. Anything more goes to a writing task (``run()``), on the same
/// event loop while it keeps up, moved to the bulk lane by
/// ``WriterPool/drive(_:prompt:_:)`` while it is busy: a full frame with
/// more waiting, a socket that does not take more now, a subscriber
/// behind (reading on from the history), the end of the stream, and every
/// frame of a connection with permessage-deflate (which the WebSocket
/// handler's writer compresses). The task asks for the next callback when
/// the queue is empty, and ends.
///
/// At most one of them runs at a time: a callback is asked for only by
/// the one that stops. The last ends the stream: it closes the connection
/// when the subscription asks for it (a slow consumer, a revoked token,
/// shutdown), or finishes once the subscription does (the reader
/// unsubscribed).
final class SocketWriter: Sendable {
    let session: StreamSession
    let subscription: Subscription
    let channel: any Channel
    let outbound: WebSocketOutboundWriter
    let framing: StreamFraming
    /// The connection's event loop, where the writer runs while it keeps up.
    let prompt: EventLoopTaskExecutor
    /// Whether frames may be written to the channel directly (not through
    /// the WebSocket handler's writer): false when the client offered
    /// permessage-deflate, whose compression that writer does.
    let directWrites: Bool

    struct State {
        var done = false
        var finishWaiters: [CheckedContinuation<Void, Never>] = []
        /// A close frame was sent: the writer waits for the peer's answer.
        var closeWait: CheckedContinuation<Void, Never>?
    }
    let state = Mutex(State())

    init(session: StreamSession, subscription: Subscription, channel: any Channel, outbound: WebSocketOutboundWriter, directWrites: Bool) {
        self.session = session
        self.subscription = subscription
        self.channel = channel
        self.outbound = outbound
        self.framing = StreamFraming(kind: .ndjson, format: subscription.format, fields: subscription.fields)
        self.prompt = EventLoopTaskExecutor(channel.eventLoop)
        self.directWrites = directWrites
    }

    /// Starts writing once something is ready (at once if it is).
    func start() {
        subscription.whenReady { [self] in
            if directWrites {
                channel.eventLoop.execute { self.pump() }
            } else {
                startTask()
            }
        }
    }

    private func startTask() {
        Task(executorPreference: prompt) { await self.run() }
    }

    /// On the event loop: one frame of what is queued, written to the
    /// channel, then the next callback; anything else to the writing task.
    private func pump() {
        guard channel.isWritable else { return startTask() }
        let maxBytes = session.configuration.maxBatchBytes
        switch subscription.takeBatchNow(maxBytes: maxBytes, keepingRuns: true) {
        case .empty:
            start()
        case .behind:
            startTask()
        case .batch(.items(let gap, let items)):
            guard let (frame, lines, bytes) = frame(gap: gap, items: items) else { return start() }
            channel.writeAndFlush(frame, promise: nil)
            session.metrics.sent(.ws, lines: lines, bytes: bytes, items: items, subscribedAt: subscription.startedAt)
            if WriterPool.step(sent: items, of: maxBytes, subscription) == .busy { startTask() } else { start() }
        case .batch:
            startTask()  // the end or a close: the task takes it again, and ends the stream
        }
    }

    /// `items` as one text frame, with the lines and bytes it holds (nil:
    /// nothing to send, as when a filter dropped every line).
    private func frame(gap: SubscriberQueue.Gap?, items: [SubscriberQueue.Item]) -> (frame: WebSocketFrame, lines: Int, bytes: Int)? {
        var buffer = channel.allocator.buffer(capacity: framing.capacity(gap: gap, items: items))
        // Counted in both formats; only JSON streams carry control objects.
        if let gap { session.metrics.slowConsumerGap(missed: gap.missed) }
        let lines = framing.append(gap: gap, items: items, to: &buffer)
        let bytes = buffer.readableBytes
        guard bytes > 0 else { return nil }
        return (WebSocketFrame(fin: true, opcode: .text, data: buffer), lines, bytes)
    }

    /// One writing task: frames until the queue is empty or the stream ends.
    private func run() async {
        let last = await WriterPool.shared.drive(subscription, prompt: prompt) { await step() }
        if last == .idle {
            start()
            return
        }
        let waiters = state.withLock { state in
            state.done = true
            defer { state.finishWaiters = [] }
            return state.finishWaiters
        }
        for waiter in waiters { waiter.resume() }
    }

    /// Returns once the writer has ended. Called when the reader has ended:
    /// a close the writer sent has been answered (or the peer is gone), so
    /// it need not wait for the answer any longer.
    func finished() async {
        let answered = state.withLock { state in
            defer { state.closeWait = nil }
            return state.closeWait
        }
        answered?.resume()
        await withCheckedContinuation { continuation in
            let now = state.withLock { state -> Bool in
                if state.done { return true }
                state.finishWaiters.append(continuation)
                return false
            }
            if now { continuation.resume() }
        }
    }

    /// Sends one frame of what is queued, or closes the stream; returns what
    /// the writer does next.
    private func step() async -> WriterPool.Step {
        let configuration = session.configuration
        let logger = session.logger
        let batch = await subscription.takeBatch(
            maxBytes: configuration.maxBatchBytes,
            readOnExecutor: WriterPool.shared.bulk,
            keepingRuns: true
        )
        switch batch {
        case nil:
            return .idle
        case .items(let gap, let items):
            guard let (frame, lines, bytes) = frame(gap: gap, items: items) else { return .sent }
            do {
                try await outbound.write(.custom(frame))
            } catch {
                return .finished
            }
            session.metrics.sent(.ws, lines: lines, bytes: bytes, items: items, subscribedAt: subscription.startedAt)
            return WriterPool.step(sent: items, of: configuration.maxBatchBytes, subscription)
        case .overflowed:
            logger.notice("closing slow subscriber", metadata: ["subscriber": "\(subscription.id)"])
            session.metrics.slowDisconnect()
            await close(StreamSession.closeTryAgainLater, reason: "slow consumer: queue overflowed")
            return .finished
        case .finished:
            guard session.connections.isDraining else { return .finished }
            await close(.goingAway, reason: "server shutting down")
            return .finished
        case .close(let request):
            logger.notice("closing subscriber", metadata: ["subscriber": "\(subscription.id)", "reason": "\(request.reason)"])
            await close(WebSocketErrorCode(codeNumber: Int(request.code)), reason: request.reason)
            return .finished
        }
    }

    /// How long the writer waits for the peer to answer its close frame
    /// before it disconnects.
    static let closeAnswerTimeout: TimeAmount = .seconds(2)

    /// Sends a close frame, waits until the reader ends (the peer answered)
    /// or ``closeAnswerTimeout`` passes, then disconnects.
    private func close(_ code: WebSocketErrorCode, reason: String) async {
        try? await outbound.close(code, reason: reason)
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            state.withLock { $0.closeWait = continuation }
            channel.eventLoop.scheduleTask(in: Self.closeAnswerTimeout) { [self] in
                let waiter = state.withLock { state in
                    defer { state.closeWait = nil }
                    return state.closeWait
                }
                waiter?.resume()
            }
        }
        channel.close(promise: nil)
    }
}
