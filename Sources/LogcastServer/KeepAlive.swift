import NIOCore
import NIOWebSocket

/// The WebSocket connection's guard, right after the frame encoder: pings
/// the peer every `interval` and closes the connection when the peer has
/// been silent since the previous ping, and lets no frame out after a
/// close frame.
///
/// **Pings.** It counts every read (it sits before the frame decoder, so a
/// pong, a message, a ping, TLS records all count): a connection is closed
/// when nothing at all arrived for one interval after a ping, so when it
/// was silent for between one and two intervals. The close frame says
/// `1001` (`ping timeout`), and the connection is closed at once: a peer
/// that stopped answering is not waited for, and one that stopped reading
/// (so that the frame cannot be sent) is closed all the same. A timer of
/// the event loop does this, not a task per connection: an idle
/// connection's Swift task costs its async frames (the stock WebSocket
/// handler's ping task was about 3 KiB per subscriber,
/// `Benchmarks/README.md`).
///
/// **Nothing after a close.** Frames reach the encoder from two writers:
/// the WebSocket handler's (replies, the close handshake, compressed
/// frames) and ``SocketWriter``, which writes an idle subscriber's frame to
/// the channel directly. Once either sends a close frame, every later
/// frame is dropped here (RFC 6455, 5.5.1: no data after a close), its
/// write failed with `ChannelError.outputClosed`.
///
/// Everything runs on the channel's event loop.
final class KeepAlive: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = WebSocketFrame
    typealias OutboundOut = WebSocketFrame

    let interval: TimeAmount
    private var reads = 0
    /// ``reads`` when the last ping was sent (nil: none sent yet).
    private var readsAtPing: Int?
    private var timer: RepeatedTask?
    /// A close frame went out: nothing more does.
    private(set) var closeSent = false

    /// The close frame's code and reason when the peer stopped answering.
    static let closeCode = WebSocketErrorCode.goingAway
    static let closeReason = "ping timeout"

    init(interval: TimeAmount) {
        self.interval = interval
    }

    /// Adds a keep-alive to an upgraded `channel`, right after its frame
    /// encoder, and starts its timer.
    static func start(on channel: any Channel, interval: TimeAmount) {
        channel.eventLoop.execute {
            guard channel.isActive, let encoder = try? channel.pipeline.syncOperations.handler(type: WebSocketFrameEncoder.self) else { return }
            let keepAlive = KeepAlive(interval: interval)
            do {
                try channel.pipeline.syncOperations.addHandler(keepAlive, position: .after(encoder))
            } catch {
                return
            }
            keepAlive.startTimer(channel)
        }
    }

    func startTimer(_ channel: any Channel) {
        timer = channel.eventLoop.scheduleRepeatedTask(initialDelay: interval, delay: interval) { [weak self] task in
            guard let self else { return task.cancel() }
            tick(channel)
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        reads &+= 1
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        guard !closeSent else {
            promise?.fail(ChannelError.outputClosed)
            return
        }
        if unwrapOutboundIn(data).opcode == .connectionClose { closeSent = true }
        context.write(data, promise: promise)
    }

    func channelInactive(context: ChannelHandlerContext) {
        stopTimer()
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        stopTimer()
    }

    private func stopTimer() {
        timer?.cancel()
        timer = nil
    }

    /// One interval passed: close a connection silent since the last ping, else ping.
    func tick(_ channel: any Channel) {
        if let readsAtPing, readsAtPing == reads {
            stopTimer()
            var data = channel.allocator.buffer(capacity: 2 + Self.closeReason.utf8.count)
            data.write(webSocketErrorCode: Self.closeCode)
            data.writeString(Self.closeReason)
            // Written now if the socket takes it; a peer that reads nothing does not hold the close up.
            channel.writeAndFlush(WebSocketFrame(fin: true, opcode: .connectionClose, data: data), promise: nil)
            channel.close(promise: nil)
            return
        }
        readsAtPing = reads
        channel.writeAndFlush(WebSocketFrame(fin: true, opcode: .ping, data: channel.allocator.buffer(capacity: 0)), promise: nil)
    }
}
