import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import HummingbirdWSTesting
import LogcastHub
import LogcastProtocol
import Logging
import NIOCore
import NIOWebSocket
import Testing
import WSClient

@testable import LogcastServer

/// The whole server in the test process: the real router, middleware and
/// child channel (connection gate, refusals, WebSocket upgrade), on a
/// loopback port, driven by HummingbirdTesting's clients.
@Suite struct InProcessServerTests {
    static let token = "in-process-token"

    struct Fixture {
        let app: LogcastApplication
        let hub: Hub
    }

    static func fixture(token: Bool = false, configure: (inout ServerConfiguration) -> Void = { _ in }) -> Fixture {
        var configuration = ServerConfiguration(hostName: "testhost")
        configuration.webRoot = nil
        if token { configuration.access = AccessPolicy(tokens: TokenStore(tokens: [Self.token])) }
        configure(&configuration)
        let hub = Hub()
        let registry = SourceRegistry([SourceStatus(name: "app", kind: "file", pattern: "/tmp/app.log")])
        let app = LogcastApplication(configuration: configuration, hub: hub, registry: registry, logger: Logger(label: "test"))
        return Fixture(app: app, hub: hub)
    }

    static func record(_ message: String) -> LogRecord {
        LogRecord(timestamp: Timestamp(microseconds: 1_700_000_000_000_000), source: "app", message: message)
    }

    /// The NDJSON objects of a body.
    static func objects(_ buffer: ByteBuffer) throws -> [[String: Any]] {
        try String(buffer: buffer).split(separator: "\n").map {
            try #require(JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])
        }
    }

    static func refusal(_ response: TestResponse) throws -> (error: String, hint: String) {
        try refusal(headers: response.headers, body: response.body)
    }

    static func refusal(headers: HTTPFields, body: ByteBuffer) throws -> (error: String, hint: String) {
        #expect(headers[.contentType] == "application/json")
        let body = try #require(JSONSerialization.jsonObject(with: Data(String(buffer: body).utf8)) as? [String: Any])
        return (try #require(body["error"] as? String), try #require(body["hint"] as? String))
    }

    static let upgrade: HTTPFields = [
        .connection: "Upgrade", .upgrade: "websocket", .secWebSocketVersion: "13", .secWebSocketKey: "dGhlIHNhbXBsZSBub25jZQ==",
    ]

    /// A WebSocket upgrade request on a connection of its own (a refused
    /// upgrade closes its connection).
    static func upgradeAttempt(port: Int?, _ uri: String, headers: HTTPFields = [:]) async throws -> TestClient.Response {
        let port = try #require(port)
        return try await TestClient.withClient(host: "localhost", port: port) { client in
            try await client.execute(.init(uri, method: .get, authority: "localhost", headers: Self.upgrade + headers))
        }
    }

    @Test func pollingAnswersWithTheProtocolsObjects() async throws {
        let fixture = Self.fixture()
        fixture.hub.publish([Self.record("one"), Self.record("two \"quoted\"")])
        fixture.hub.publish(SourceEvent(source: "app", kind: .rotated, path: "/tmp/app.log"))
        try await fixture.app.makeHTTPApplication().test(.live) { client in
            try await client.execute(uri: "/api/v1/lines?backlog=10", method: .get) { response in
                #expect(response.status == .ok)
                #expect(response.headers[HTTPField.Name("Logcast-Epoch")!] == fixture.hub.epoch)
                let objects = try Self.objects(response.body)
                #expect(objects.map { $0["type"] as? String } == ["line", "line", "source"], "source events are kept in place")
                let lines = objects.filter { $0["type"] as? String == "line" }
                #expect(lines.map { $0["seq"] as? Int } == [1, 2])
                #expect(lines.map { $0["msg"] as? String } == ["one", "two \"quoted\""])
                #expect(lines.allSatisfy { $0["ts"] as? String == "2023-11-14T22:13:20.000000Z" })
                #expect(objects[2]["event"] as? String == "rotated")
            }
            try await client.execute(uri: "/api/v1/lines?backlog=10&format=text", method: .get) { response in
                #expect(String(buffer: response.body) == "one\ntwo \"quoted\"\n")
            }
        }
    }

    /// Every refusal, from a route or from the upgrade path, has the one
    /// shape: the status, `{"error","hint"}`, and its headers.
    @Test func refusalsHaveOneShapeOnEveryPath() async throws {
        let fixture = Self.fixture(token: true)
        let bearer: HTTPFields = [.authorization: "Bearer \(Self.token)"]
        try await fixture.app.makeHTTPApplication().test(.live) { client in
            // A route, without the token: 401 and the challenge.
            try await client.execute(uri: "/api/v1/sources", method: .get) { response in
                #expect(response.status == .unauthorized)
                #expect(response.headers[.wwwAuthenticate]?.hasPrefix("Bearer realm=\"logcast\"") == true)
                let refusal = try Self.refusal(response)
                #expect(refusal.error == "token required")
            }
            // The same refusal on the upgrade path, before the router.
            let refusedUpgrade = try await Self.upgradeAttempt(port: client.port, "/ws")
            #expect(refusedUpgrade.status == .unauthorized)
            #expect(refusedUpgrade.head.headerFields[.wwwAuthenticate] != nil)
            let upgradeRefusal = try Self.refusal(headers: refusedUpgrade.head.headerFields, body: refusedUpgrade.body ?? ByteBuffer())
            #expect(upgradeRefusal.error == "token required")
            // A bad filter: 400 with a hint, on a route, on /sse and on an upgrade.
            for uri in ["/api/v1/lines?priority=loud", "/sse?priority=loud"] {
                try await client.execute(uri: uri, method: .get, headers: bearer) { response in
                    #expect(response.status == .badRequest, "\(uri)")
                    let refusal = try Self.refusal(response)
                    #expect(refusal.error.contains("priority"), "\(uri): \(refusal.error)")
                    #expect(!refusal.hint.isEmpty)
                }
            }
            let badFilter = try await Self.upgradeAttempt(port: client.port, "/ws?priority=loud", headers: bearer)
            #expect(badFilter.status == .badRequest)
            let filterRefusal = try Self.refusal(headers: badFilter.head.headerFields, body: badFilter.body ?? ByteBuffer())
            #expect(filterRefusal.error.contains("priority"))
            // A plain GET of the WebSocket endpoint: 426 with Upgrade.
            try await client.execute(uri: "/ws", method: .get, headers: bearer) { response in
                #expect(response.status == .upgradeRequired)
                #expect(response.headers[.upgrade] == "websocket")
                let refusal = try Self.refusal(response)
                #expect(refusal.hint.contains("WebSocket client"))
            }
            // No route: Hummingbird's own 404, in the same shape.
            try await client.execute(uri: "/nothing-here", method: .get, headers: bearer) { response in
                #expect(response.status == .notFound)
                _ = try Self.refusal(response)
            }
        }
    }

    /// `/sse` is admitted like `/ws`: the per-address limit counts both.
    @Test func everyStreamGoesThroughOneAdmission() async throws {
        let fixture = Self.fixture { $0.maxConnectionsPerAddress = 1 }
        try await fixture.app.makeHTTPApplication().test(.live) { client in
            _ = try await client.ws("/ws?backlog=0") { inbound, outbound, _ in
                var messages = inbound.messages(maxSize: 1 << 20).makeAsyncIterator()
                _ = try await messages.next()  // hello: the stream holds its place now
                for uri in ["/sse", "/ws"] {
                    try await client.execute(uri: uri, method: .get) { response in
                        #expect(response.status == .tooManyRequests, "\(uri)")
                        #expect(response.headers[.retryAfter] == "10")
                        let refusal = try Self.refusal(response)
                        #expect(refusal.hint.contains("--max-connections-per-address"))
                    }
                }
                try await outbound.close(.normalClosure, reason: nil)
            }
        }
    }

    @Test func aWebSocketStreamSpeaksTheProtocol() async throws {
        let fixture = Self.fixture()
        fixture.hub.publish([Self.record("before")])
        try await fixture.app.makeHTTPApplication().test(.live) { client in
            _ = try await client.ws("/ws?backlog=5&grep=fore") { inbound, outbound, _ in
                var messages = inbound.messages(maxSize: 1 << 20).makeAsyncIterator()
                /// The next objects the server sends (a frame holds one or more).
                func next() async throws -> [[String: Any]] {
                    guard case .text(let text) = try await messages.next() else {
                        Issue.record("the stream ended")
                        return []
                    }
                    return try Self.objects(ByteBuffer(string: text))
                }
                var objects = try await next()
                while objects.count < 2 { objects += try await next() }
                let hello = objects[0]
                #expect(hello["type"] as? String == "hello")
                #expect(hello["version"] as? Int == ProtocolObject.version)
                #expect(hello["epoch"] as? String == fixture.hub.epoch)
                #expect(hello["host"] as? String == "testhost")
                #expect(hello["sources"] as? [String] == ["app"])
                #expect((hello["filter"] as? [String: Any])?["grep"] as? [String] == ["fore"])
                #expect(objects[1]["msg"] as? String == "before")

                try await outbound.writeTextMessage(#"{"type":"subscribe","filter":{"source":["app"]},"backlog":0}"#)
                let subscribed = try await next()
                #expect(subscribed.first?["type"] as? String == "subscribed")
                #expect(subscribed.first?["backlog"] as? Int == 0)

                try await outbound.writeTextMessage("not json")
                let error = try await next()
                #expect(error.first?["type"] as? String == "error")
                #expect((error.first?["error"] as? String)?.isEmpty == false)

                fixture.hub.publish([Self.record("after")])
                let line = try await next()
                #expect(line.first?["type"] as? String == "line" && line.first?["msg"] as? String == "after")
                try await outbound.close(.normalClosure, reason: nil)
            }
        }
    }
}
