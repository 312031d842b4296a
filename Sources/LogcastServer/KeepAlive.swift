import NIOCore
import NIOWebSocket

/// Pings a WebSocket connection every `interval` and closes it when the
/// peer has been silent since the previous ping.
///
/// It sits first in the connection's pipeline and counts reads of any
/// kind (a pong, a message, TLS records), so a connection is closed when
/// nothing at all arrived for one interval after a ping: silent for
/// between one and two intervals. The close frame says `1001` (`ping
/// timeout`), and the connection is closed at once: a peer that stopped
/// answering is not waited for, and one that stopped reading (so that
/// the frame cannot be sent) is closed all the same. Pings are written
/// to the channel directly, past a writer that waits for a full socket.
///
/// A timer of the event loop does this, not a task per connection: an
/// idle connection's Swift task costs its async frames (the stock
/// WebSocket handler's own ping task was about 3 KiB per subscriber,
/// `Benchmarks/README.md`). Everything runs on the channel's event loop.
final class KeepAlive: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer

    let interval: TimeAmount
    private var reads = 0
    /// ``reads`` when the last ping was sent (nil: none sent yet).
    private var readsAtPing: Int?
    private var timer: RepeatedTask?

    /// The close frame's code and reason when the peer stopped answering.
    static let closeCode = WebSocketErrorCode.goingAway
    static let closeReason = "ping timeout"

    init(interval: TimeAmount) {
        self.interval = interval
    }

    /// Adds a keep-alive to `channel` (first in its pipeline) and starts its timer.
    static func start(on channel: any Channel, interval: TimeAmount) {
        channel.eventLoop.execute {
            guard channel.isActive else { return }
            let keepAlive = KeepAlive(interval: interval)
            do {
                try channel.pipeline.syncOperations.addHandler(keepAlive, position: .first)
            } catch {
                return
            }
            keepAlive.timer = channel.eventLoop.scheduleRepeatedTask(initialDelay: interval, delay: interval) { [weak keepAlive] task in
                guard let keepAlive else { return task.cancel() }
                keepAlive.tick(channel)
            }
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        reads &+= 1
        context.fireChannelRead(data)
    }

    func channelInactive(context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
    }

    /// One interval passed: close a connection silent since the last ping, else ping.
    func tick(_ channel: any Channel) {
        if let readsAtPing, readsAtPing == reads {
            timer?.cancel()
            timer = nil
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
