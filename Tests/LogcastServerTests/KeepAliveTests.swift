import NIOCore
import NIOEmbedded
import NIOWebSocket
import Testing

@testable import LogcastServer

/// The WebSocket connection's guard (``KeepAlive``) on an embedded channel
/// whose clock the test moves: pings, the close of a silent connection, and
/// nothing written after a close frame, whoever wrote it.
@Suite struct KeepAliveTests {
    static let interval = TimeAmount.seconds(30)

    /// An active channel with a keep-alive whose timer runs.
    func makeChannel() throws -> EmbeddedChannel {
        let channel = EmbeddedChannel()
        let keepAlive = KeepAlive(interval: Self.interval)
        try channel.pipeline.syncOperations.addHandler(keepAlive)
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        keepAlive.startTimer(channel)
        return channel
    }

    func frames(_ channel: EmbeddedChannel) throws -> [WebSocketFrame] {
        var out: [WebSocketFrame] = []
        while let frame = try channel.readOutbound(as: WebSocketFrame.self) { out.append(frame) }
        return out
    }

    func closeOf(_ frame: WebSocketFrame) -> (UInt16, String)? {
        guard frame.opcode == .connectionClose else { return nil }
        var data = frame.unmaskedData
        guard let code = data.readInteger(as: UInt16.self) else { return nil }
        return (code, data.readString(length: data.readableBytes) ?? "")
    }

    @Test func aConnectionThatAnswersIsPingedEveryIntervalAndStaysOpen() throws {
        let channel = try makeChannel()
        for round in 1...5 {
            channel.embeddedEventLoop.advanceTime(by: Self.interval)
            #expect(try frames(channel).map(\.opcode) == [.ping], "round \(round)")
            #expect(channel.isActive)
            try channel.writeInbound(ByteBuffer(bytes: [0x8A, 0x00]))  // anything read counts
            _ = try channel.readInbound(as: ByteBuffer.self)
        }
        _ = try channel.finish()
    }

    /// Silent after a ping, at whatever point: closed one interval after the
    /// unanswered ping, never earlier.
    @Test(arguments: 0...3)
    func aConnectionSilentForAnIntervalAfterAPingIsClosed1001(answeredPings: Int) throws {
        let channel = try makeChannel()
        for _ in 0..<answeredPings {
            channel.embeddedEventLoop.advanceTime(by: Self.interval)
            try channel.writeInbound(ByteBuffer(bytes: [0x8A, 0x00]))
            _ = try channel.readInbound(as: ByteBuffer.self)
        }
        _ = try frames(channel)
        channel.embeddedEventLoop.advanceTime(by: Self.interval)
        #expect(try frames(channel).map(\.opcode) == [.ping], "the ping that goes unanswered")
        channel.embeddedEventLoop.advanceTime(by: Self.interval - .nanoseconds(1))
        #expect(try frames(channel).isEmpty && channel.isActive, "not before the interval is over")
        channel.embeddedEventLoop.advanceTime(by: .nanoseconds(1))
        let sent = try frames(channel)
        #expect(sent.count == 1)
        #expect(sent.first.flatMap(closeOf).map { "\($0.0) \($0.1)" } == "1001 ping timeout")
        #expect(!channel.isActive, "closed at once after the close frame")
    }

    /// After a close frame, written by the timer or by a writer, no frame
    /// of any kind goes out, and its write fails.
    @Test(arguments: [WebSocketOpcode.text, .binary, .continuation, .ping, .pong, .connectionClose])
    func nothingIsWrittenAfterACloseFrame(after opcode: WebSocketOpcode) throws {
        let channel = try makeChannel()
        var data = channel.allocator.buffer(capacity: 2)
        data.write(webSocketErrorCode: .normalClosure)
        try channel.writeOutbound(WebSocketFrame(fin: true, opcode: .connectionClose, data: data))
        let later = channel.writeAndFlush(WebSocketFrame(fin: true, opcode: opcode, data: channel.allocator.buffer(string: "late")))
        #expect(throws: ChannelError.outputClosed) { try later.wait() }
        #expect(try frames(channel).map(\.opcode) == [.connectionClose])
        channel.embeddedEventLoop.advanceTime(by: Self.interval)
        #expect(try frames(channel).isEmpty, "not even a ping")
        _ = try? channel.finish()
    }
}
