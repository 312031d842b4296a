import Foundation
import Testing

@testable import LogcastClient

#if canImport(Glibc)
import Glibc
#endif

/// A loopback listener for HTTPGet's bad servers: it answers each
/// connection with `reply` (after reading the request), or with nothing at
/// all when `reply` is nil (it never even accepts: the kernel completes the
/// handshake from the backlog).
final class OneShotServer: @unchecked Sendable {
    let fd: Int32
    let port: Int

    init(reply: [UInt8]?) {
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        fd = listener
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, length) } }
        listen(listener, 8)
        _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(listener, $0, &length) } }
        port = Int(UInt16(bigEndian: address.sin_port))
        guard let reply else { return }
        Thread.detachNewThread {
            let client = accept(listener, nil, nil)
            guard client >= 0 else { return }
            // The whole request head first: replying to part of it and closing
            // with the rest unread would reset the connection (and lose the reply).
            var request: [UInt8] = []
            var buffer = [UInt8](repeating: 0, count: 4096)
            while !request.ends(with: Array("\r\n\r\n".utf8)) {
                let n = read(client, &buffer, buffer.count)
                if n <= 0 { break }
                request += buffer[0..<n]
            }
            var sent = 0
            while sent < reply.count {
                let n = reply[sent...].withUnsafeBytes { send(client, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                if n <= 0 { break }
                sent += n
            }
            // An orderly end: the client reads everything, then sees EOF; wait for it to close its side.
            shutdown(client, Int32(SHUT_WR))
            while read(client, &buffer, buffer.count) > 0 {}
            close(client)
        }
    }

    deinit { close(fd) }
}

extension Array where Element == UInt8 {
    func ends(with suffix: [UInt8]) -> Bool {
        count >= suffix.count && Array(self[(count - suffix.count)...]) == suffix
    }
}

@Suite(.timeLimit(.minutes(1))) struct HTTPGetTests {
    static func fetch(
        _ server: OneShotServer,
        maxBodyBytes: Int = 64 * 1024 * 1024,
        timeout: Duration = .seconds(30)
    ) async throws -> HTTPGet.Response {
        try await HTTPGet.fetch(
            host: "127.0.0.1",
            port: server.port,
            target: "/",
            headers: [],
            tls: nil,
            maxBodyBytes: maxBodyBytes,
            timeout: timeout
        )
    }

    static func response(body: Int) -> [UInt8] {
        Array("HTTP/1.1 200 OK\r\nContent-Length: \(body)\r\nConnection: close\r\n\r\n".utf8) + [UInt8](repeating: UInt8(ascii: "x"), count: body)
    }

    @Test func aServerThatNeverAnswersTimesOut() async {
        let server = OneShotServer(reply: nil)
        await #expect(throws: HTTPGet.Failure.timedOut(.milliseconds(300))) {
            _ = try await Self.fetch(server, timeout: .milliseconds(300))
        }
    }

    @Test func aBodyOverTheCapIsAnErrorNotAShortenedBody() async throws {
        let over = OneShotServer(reply: Self.response(body: 200_000))
        await #expect(throws: HTTPGet.Failure.bodyTooLarge(limit: 100_000)) {
            _ = try await Self.fetch(over, maxBodyBytes: 100_000)
        }
        let within = OneShotServer(reply: Self.response(body: 200_000))
        let response = try await Self.fetch(within, maxBodyBytes: 200_000)
        #expect(response.status == 200 && response.body.count == 200_000)
    }

    @Test func aBodyCutShortIsAnError() async {
        let server = OneShotServer(reply: Array(Self.response(body: 1000).prefix(200)))
        await #expect(throws: (any Error).self) {
            _ = try await Self.fetch(server)
        }
    }

    @Test func serverNameIsSentForEveryHostNameAndNoAddress() {
        for name in ["logs.example.com", "1password.example", "3com.example", "10.example", "localhost", "a-1.b"] {
            #expect(HTTPGet.serverNameIndication(for: name) == name, "\(name)")
        }
        for address in ["127.0.0.1", "10.0.0.7", "::1", "fe80::1", "2001:db8::8:800:200c:417a", ""] {
            #expect(HTTPGet.serverNameIndication(for: address) == nil, "\(address)")
        }
    }
}
