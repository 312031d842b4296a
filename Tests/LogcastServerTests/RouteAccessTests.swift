import Foundation
import HTTPTypes
import Hummingbird
import LogcastHub
import LogcastProtocol
import Logging
import NIOCore
import NIOEmbedded
import Testing

@testable import LogcastServer

/// Access is decided by the route the router picks, whatever the spelling:
/// these tests drive the real router in-process with spellings generated
/// from its own route list.
@Suite struct RouteAccessTests {
    static let token = "route-access-token"

    func makeApplication() -> LogcastApplication {
        var configuration = ServerConfiguration(hostName: "test-host")
        configuration.access = AccessPolicy(tokens: TokenStore(tokens: [Self.token]))
        configuration.webRoot = nil
        let registry = SourceRegistry([SourceStatus(name: "app", kind: "file", pattern: "/tmp/app.log")])
        return LogcastApplication(configuration: configuration, hub: Hub(), registry: registry, logger: Logger(label: "test"))
    }

    /// Spellings of `path` a client might send for the same resource.
    static func spellings(of path: String) -> [String] {
        let parts = path.split(separator: "/").map(String.init)
        var out: Set<String> = [
            path + "/", "/" + path, path + "//", "//" + parts.joined(separator: "//"), "/./" + parts.joined(separator: "/"),
            "/" + parts.joined(separator: "/./"), path + "/.", path + "?", path + "?a=b", path + "%2f", path.uppercased(),
            "http://127.0.0.1:8080" + path, "http://evil.example" + path + "/", "HTTPS://x" + "/" + path,
        ]
        for (index, character) in path.enumerated() where character.isLetter {
            let encoded = String(format: "%%%02X", Int(character.asciiValue!))
            out.insert(String(path.prefix(index)) + encoded + String(path.dropFirst(index + 1)))
        }
        out.remove(path)
        return out.sorted()
    }

    func respond(_ router: Router<LogcastRequestContext>, _ target: String, headers: HTTPFields = [:]) async throws -> Response {
        let channel = EmbeddedChannel()
        let context = LogcastRequestContext(source: ApplicationRequestContextSource(channel: channel, logger: Logger(label: "test")))
        let head = HTTPRequest(method: .get, scheme: nil, authority: "127.0.0.1:8080", path: target, headerFields: headers)
        return try await router.buildResponder().respond(to: Request(head: head, body: RequestBody(buffer: ByteBuffer())), context: context)
    }

    @Test func theRouteListIsTheEndpointTable() {
        let routes = makeApplication().routes
        #expect(Set(routes.map(\.path)) == Set(Endpoint.allCases.map(\.rawValue)))
        #expect(routes.filter { !$0.isProtected }.map(\.path) == ["/healthz"])
    }

    /// The upgrade path resolves endpoints itself (it runs before the
    /// router): it must pick exactly what the router picks.
    @Test func upgradeResolutionAgreesWithTheRouter() async throws {
        let probe = Router(context: LogcastRequestContext.self)
        for endpoint in Endpoint.allCases {
            probe.get(RouterPath(endpoint.rawValue)) { _, context in context.endpointPath ?? "" }
        }
        for endpoint in Endpoint.allCases {
            for target in [endpoint.rawValue] + Self.spellings(of: endpoint.rawValue) {
                let response = try await respond(probe, target)
                let routed: String? =
                    response.status == .ok
                    ? String(decoding: try await collect(response.body), as: UTF8.self) : nil
                #expect(routed == Endpoint.resolve(target: target)?.rawValue, "\(target)")
            }
        }
    }

    @Test func everySpellingOfAProtectedRouteGetsTheCanonicalRefusal() async throws {
        let app = makeApplication()
        let router = app.makeRouter(serveFiles: false)
        for route in app.routes where route.isProtected {
            let canonical = try await respond(router, route.path)
            #expect(canonical.status == .unauthorized, "\(route.path)")
            let canonicalBody = String(decoding: try await collect(canonical.body), as: UTF8.self)
            var reached = 0
            for target in Self.spellings(of: route.path) {
                let response = try await respond(router, target)
                if response.status == .notFound { continue }
                reached += 1
                // (A body is read only from a refusal: a stream served by mistake never ends.)
                guard response.status == .unauthorized else {
                    Issue.record("\(target) reached \(route.path) without a token: \(response.status)")
                    continue
                }
                #expect(String(decoding: try await collect(response.body), as: UTF8.self) == canonicalBody, "\(target)")
                let foreign = try await respond(router, target, headers: [.origin: "https://evil.example", .authorization: "Bearer \(Self.token)"])
                #expect(foreign.status == .forbidden, "\(target)")
            }
            #expect(reached >= 4, "\(route.path): the router accepted only \(reached) other spellings")
        }
    }

    @Test func aRouteAddedLaterIsProtectedByDefault() async throws {
        let app = makeApplication()
        let router = app.makeRouter(serveFiles: false)
        router.get("/api/v2/new-thing") { _, _ in "data" }
        #expect(try await respond(router, "/api/v2/new-thing").status == .unauthorized)
        #expect(try await respond(router, "/api/v2/new-thing/").status == .unauthorized)
        let allowed = try await respond(router, "/api/v2/new-thing", headers: [.authorization: "Bearer \(Self.token)"])
        #expect(allowed.status == .ok)
    }

    @Test func healthzIsOpenButTerse() async throws {
        let router = makeApplication().makeRouter(serveFiles: false)
        for target in ["/healthz", "/healthz/", "//healthz"] {
            let response = try await respond(router, target)
            #expect(response.status == .ok)
            #expect(String(decoding: try await collect(response.body), as: UTF8.self) == #"{"status":"ok"}"#)
        }
    }

    @Test func foreignHostsAreRefusedOnEveryRoute() async throws {
        let router = makeApplication().makeRouter(serveFiles: false)
        for endpoint in Endpoint.allCases {
            let channel = EmbeddedChannel()
            let context = LogcastRequestContext(source: ApplicationRequestContextSource(channel: channel, logger: Logger(label: "test")))
            let head = HTTPRequest(method: .get, scheme: nil, authority: "evil.example:8080", path: endpoint.rawValue)
            let response = try await router.buildResponder().respond(
                to: Request(head: head, body: RequestBody(buffer: ByteBuffer())),
                context: context
            )
            #expect(response.status.code == 421, "\(endpoint)")
        }
    }
}

/// Collects a response body in memory (a body that never ends would hang: use for finite ones).
final class BodyCollector: ResponseBodyWriter {
    var bytes: [UInt8] = []
    func write(_ buffer: ByteBuffer) async throws { bytes += buffer.readableBytesView }
    func finish(_ trailingHeaders: HTTPFields?) async throws {}
}

func collect(_ body: ResponseBody) async throws -> [UInt8] {
    let collector = BodyCollector()
    try await body.write(collector)
    return collector.bytes
}
