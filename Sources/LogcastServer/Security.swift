import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdCore
import LogcastHub
import LogcastProtocol
import Logging
import NIOCore
import NIOSSL
import Synchronization

// MARK: TLS

/// Loads a PEM certificate chain and private key into a server TLS context.
///
/// - Throws: a ``ServerSetupError`` naming the file and what is wrong with it.
public func makeTLSContext(certificatePath: String, keyPath: String) throws -> NIOSSLContext {
    let chain: [NIOSSLCertificate]
    do {
        chain = try NIOSSLCertificate.fromPEMFile(certificatePath)
    } catch {
        throw ServerSetupError(description: "--tls-cert \(certificatePath): not a readable PEM certificate (\(error))")
    }
    guard !chain.isEmpty else { throw ServerSetupError(description: "--tls-cert \(certificatePath) holds no PEM certificate") }
    let key: NIOSSLPrivateKey
    do {
        key = try NIOSSLPrivateKey(file: keyPath, format: .pem)
    } catch {
        throw ServerSetupError(description: "--tls-key \(keyPath): not a readable PEM private key (\(error))")
    }
    var configuration = TLSConfiguration.makeServerConfiguration(certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(key))
    configuration.minimumTLSVersion = .tlsv12
    configuration.applicationProtocols = ["http/1.1"]
    do {
        return try NIOSSLContext(configuration: configuration)
    } catch {
        throw ServerSetupError(description: "--tls-cert/--tls-key: the key does not fit the certificate, or they cannot be used (\(error))")
    }
}

public struct ServerSetupError: Error, CustomStringConvertible {
    public var description: String
}

/// The server's certificate and key, loaded from their files, and loaded
/// again on request (SIGHUP) so a renewed certificate is served without a
/// restart. Each new connection takes the context current when it is
/// accepted; connections already open keep theirs.
public final class TLSCredentials: Sendable {
    public let certificatePath: String
    public let keyPath: String
    private let current: Mutex<NIOSSLContext>

    /// Loads both files.
    /// - Throws: a ``ServerSetupError`` naming the file and what is wrong with it.
    public init(certificatePath: String, keyPath: String) throws {
        self.certificatePath = certificatePath
        self.keyPath = keyPath
        self.current = Mutex(try makeTLSContext(certificatePath: certificatePath, keyPath: keyPath))
    }

    /// The context new connections get.
    public var context: NIOSSLContext { current.withLock { $0 } }

    /// Reads both files again and serves them from the next connection on.
    /// - Throws: a ``ServerSetupError`` when they do not load; the context
    ///   in use stays.
    public func reload() throws {
        let context = try makeTLSContext(certificatePath: certificatePath, keyPath: keyPath)
        current.withLock { $0 = context }
    }
}

/// Puts TLS in front of a child channel when a context is configured, so
/// plain and TLS servers share one channel type.
struct OptionalTLSChannel<Base: ServerChildChannel>: ServerChildChannel {
    typealias Value = Base.Value

    let base: Base
    let credentials: TLSCredentials?

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        guard let context = credentials?.context else { return base.setup(channel: channel, logger: logger) }
        return channel.eventLoop.makeCompletedFuture {
            try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: context))
        }.flatMap {
            base.setup(channel: channel, logger: logger)
        }
    }

    func handle(value: Value, logger: Logger) async {
        await base.handle(value: value, logger: logger)
    }
}

// MARK: Middleware

/// Adds the headers every response carries: a strict Content-Security-Policy
/// (the viewer loads only its own scripts and styles and connects only to
/// its own origin), no MIME sniffing, no referrer, no framing.
struct SecurityHeadersMiddleware<Context: RequestContext>: RouterMiddleware {
    static var contentSecurityPolicy: String {
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; font-src 'self'; manifest-src "
            + "'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    }

    static var referrerPolicy: HTTPField.Name { HTTPField.Name("Referrer-Policy")! }
    static var frameOptions: HTTPField.Name { HTTPField.Name("X-Frame-Options")! }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var response = try await respond(request, context: context, next: next)
        response.headers[.contentSecurityPolicy] = Self.contentSecurityPolicy
        response.headers[.xContentTypeOptions] = "nosniff"
        response.headers[Self.referrerPolicy] = "no-referrer"
        response.headers[Self.frameOptions] = "DENY"
        return response
    }
}

/// The response `next` gives, with a thrown refusal (ours, or Hummingbird's
/// own: 404 for no route, 405 ...) turned into its JSON response, so a
/// middleware can add headers to every answer.
func respond<Context: RequestContext>(
    _ request: Request,
    context: Context,
    next: (Request, Context) async throws -> Response
) async throws -> Response {
    do {
        return try await next(request, context)
    } catch let refusal as Refusal {
        return refusal.answer()
    } catch let error as any HTTPResponseError {
        return Refusal(error.status, error.status.reasonPhrase.lowercased(), hint: "see the README for the endpoints").answer()
    }
}

/// Lets pages of the origins `--allow-origin` names read the server from
/// their own origin (CORS), and nobody else:
/// - a preflight (`OPTIONS` with `Access-Control-Request-Method`) from an
///   allowed origin gets `204` allowing `GET` and `HEAD` with the
///   `Authorization` and `Last-Event-ID` headers, for 10 minutes; from any
///   other origin `403`, saying why;
/// - every other response to an allowed origin (refusals included, so the
///   page can read why) carries `Access-Control-Allow-Origin` with that
///   origin, `Vary: Origin` and the `Logcast-*` headers exposed.
///
/// Granting reading is all it does: the origin and token checks
/// (``AccessMiddleware``) still decide every request.
struct CORSMiddleware<Context: RequestContext>: RouterMiddleware {
    let policy: AccessPolicy

    static var allowOrigin: HTTPField.Name { HTTPField.Name("Access-Control-Allow-Origin")! }
    static var allowMethods: HTTPField.Name { HTTPField.Name("Access-Control-Allow-Methods")! }
    static var allowHeaders: HTTPField.Name { HTTPField.Name("Access-Control-Allow-Headers")! }
    static var exposeHeaders: HTTPField.Name { HTTPField.Name("Access-Control-Expose-Headers")! }
    static var maxAge: HTTPField.Name { HTTPField.Name("Access-Control-Max-Age")! }
    static var requestMethod: HTTPField.Name { HTTPField.Name("Access-Control-Request-Method")! }
    /// The response headers a page may read besides the safelisted ones.
    static var exposed: String { "Logcast-Epoch, Logcast-Last-Seq, Logcast-Scan, Retry-After, WWW-Authenticate" }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let origin = request.headers[.origin]
        let grant = policy.crossOriginGrant(for: origin)
        if request.method == .options, request.headers[Self.requestMethod] != nil, let origin {
            guard let grant else {
                return Refusal(
                    .forbidden,
                    "origin '\(origin)' may not read this server from its pages",
                    hint: "allow it with --allow-origin ORIGIN (e.g. --allow-origin https://logs.example.com)"
                ).answer()
            }
            var headers = HTTPFields()
            headers[Self.allowOrigin] = grant
            headers[.vary] = "Origin"
            headers[Self.allowMethods] = "GET, HEAD"
            headers[Self.allowHeaders] = "Authorization, Last-Event-ID"
            headers[Self.maxAge] = "600"
            return Response(status: .noContent, headers: headers)
        }
        var response = try await respond(request, context: context, next: next)
        guard let grant else { return response }
        response.headers[Self.allowOrigin] = grant
        response.headers[.vary] = "Origin"
        response.headers[Self.exposeHeaders] = Self.exposed
        return response
    }
}

/// Refuses what must not reach the static files: over-long request targets
/// (`414`), and paths that try to leave the web root (`..`, encoded or not,
/// backslashes, NUL, or a symlink pointing outside it), which get a plain
/// `404` like any file that is not there.
struct RequestGuardMiddleware<Context: RequestContext>: RouterMiddleware {
    let webRoot: String?
    let maxTargetBytes: Int

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        if request.uri.description.utf8.count > maxTargetBytes {
            throw Refusal(
                .uriTooLong,
                "request target longer than \(maxTargetBytes) bytes",
                hint: "shorten the query; filter values are at most 1024 bytes each"
            )
        }
        if let webRoot, !isInside(webRoot: webRoot, path: request.uri.path) {
            throw Refusal(.notFound, "not found", hint: "the viewer is at /")
        }
        return try await next(request, context)
    }

    func isInside(webRoot: String, path: String) -> Bool {
        guard let decoded = path.removingPercentEncoding else { return false }
        if decoded.contains("..") || decoded.contains("\\") || decoded.contains("\0") { return false }
        let candidate = webRoot + "/" + decoded.drop(while: { $0 == "/" })
        guard let real = realpath(candidate, nil) else { return true }  // not there: let the router answer 404
        defer { free(real) }
        guard let root = realpath(webRoot, nil) else { return false }
        defer { free(root) }
        let resolved = String(cString: real)
        let rootPath = String(cString: root)
        return resolved == rootPath || resolved.hasPrefix(rootPath.hasSuffix("/") ? rootPath : rootPath + "/")
    }
}

/// Refuses requests whose `Host` is not one of this server's names
/// (``HostPolicy``, against DNS rebinding) with `421`, on every route,
/// static files included.
struct HostCheckMiddleware<Context: RequestContext>: RouterMiddleware {
    let hosts: HostPolicy

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard let host = request.head.authority, !hosts.accepts(host) else { return try await next(request, context) }
        return hosts.refusal(for: host).answer()
    }
}

/// Requires origin and token (``AccessPolicy``) on every route the router
/// picked, unless ``Endpoint/publicRoutes`` lists it. The decision is made
/// on the route (`context.endpointPath`, set by the router before route
/// middleware runs), so every spelling the router accepts for a path gets
/// the same answer. Requests that match no route (the viewer's static
/// files) pass.
struct AccessMiddleware<Context: RequestContext>: RouterMiddleware {
    let policy: AccessPolicy

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard let route = context.endpointPath, Endpoint.isProtected(routePath: route) else {
            return try await next(request, context)
        }
        switch policy.check(AccessRequest(request)) {
        case .success:
            return try await next(request, context)
        case .failure(let refusal):
            return refusal.answer()
        }
    }
}

extension AccessRequest {
    /// What the access check needs from a Hummingbird request.
    init(_ request: Request) {
        self.init(
            authorization: request.headers[.authorization],
            webSocketProtocols: AccessRequest.protocols(fromHeaderValues: request.headers[values: .secWebSocketProtocol]),
            origin: request.headers[.origin],
            host: request.head.authority,
            queryKeys: QueryString.parse(QueryString.query(ofTarget: request.uri.description)).map(\.key)
        )
    }
}
