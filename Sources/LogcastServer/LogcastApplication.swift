import HTTPTypes
import Hummingbird
import HummingbirdCore
import HummingbirdWSCompression
import HummingbirdWebSocket
import LogcastHub
import LogcastProtocol
import Logging
import NIOCore
import NIOHTTP1
import ServiceLifecycle

/// Builds the logcast HTTP/WebSocket application. The executable and the
/// tests call the same function.
///
/// Routes: `GET /ws` (WebSocket stream; `426` without an upgrade),
/// `GET /healthz`, `GET /api/v1/sources`, and the viewer from
/// ``ServerConfiguration/webRoot``. Refused upgrades are answered by
/// ``UpgradeRefusalHandler`` with their real status and a JSON body.
public struct LogcastApplication: Sendable {
    /// The child channel of every connection.
    typealias ServerChildChannel = GuardedChildChannel<OptionalTLSChannel<RefusingChildChannel<HTTP1WebSocketUpgradeChannel>>>

    public let configuration: ServerConfiguration
    public let hub: Hub
    public let registry: SourceRegistry
    public let connections = ConnectionTracker()
    /// Caps open connections of every kind (descriptors stay free for the sources).
    public let gate: ConnectionGate
    let pollsInFlight = InFlightLimit(Self.maxConcurrentPolls)
    public let metrics: ServerMetrics
    public let logger: Logger
    /// The `Host` names answered (DNS rebinding).
    let hosts: HostPolicy
    let startedAt = ContinuousClock.now

    /// What keeps the server from being whole while it still serves (the
    /// durable history cannot be written): `/healthz` says `degraded`.
    let degradation: @Sendable () -> [String]
    /// Metrics of other parts, for `/metrics`.
    let extraMetrics: @Sendable () -> [MetricSample]
    /// Why there is no stream to serve yet (a gateway that has not reached
    /// its cluster stream), or nil: streams and reads are refused with `503`
    /// and this reason meanwhile, and `/healthz` says `starting`.
    let unavailable: @Sendable () -> String?

    public init(
        configuration: ServerConfiguration,
        hub: Hub,
        registry: SourceRegistry,
        logger: Logger,
        degradation: @escaping @Sendable () -> [String] = { [] },
        extraMetrics: @escaping @Sendable () -> [MetricSample] = { [] },
        unavailable: @escaping @Sendable () -> String? = { nil },
        metrics: ServerMetrics = ServerMetrics()
    ) {
        self.configuration = configuration
        self.metrics = metrics
        self.unavailable = unavailable
        self.degradation = degradation
        self.extraMetrics = extraMetrics
        self.hub = hub
        self.registry = registry
        self.logger = logger
        self.gate = ConnectionGate(maxConnections: configuration.maxConnections)
        self.hosts =
            configuration.allowedHosts.contains("*")
            ? .any
            : HostPolicy(listenHost: configuration.host, hostName: configuration.hostName, allowed: configuration.allowedHosts)
    }

    /// The HTTP application, and the drainer that must follow it in the service group.
    /// - Parameter onListening: called with the bound port once the server listens.
    public func build(onListening: @escaping @Sendable (Int) async -> Void = { _ in }) -> (application: any Service, drainer: ShutdownDrainer) {
        makeApplication(router: makeRouter(), onListening: onListening)
    }

    /// The router: every endpoint, its middleware, and the viewer's files.
    /// - Parameter serveFiles: false leaves the static files out (listing routes).
    func makeRouter(serveFiles: Bool = true) -> Router<LogcastRequestContext> {
        let router = Router(context: LogcastRequestContext.self)
        // Router-level middleware runs for every request: for a route after the
        // router has picked it (so AccessMiddleware sees the route, not the
        // spelling), and for the static files when no route matches.
        router.addMiddleware {
            // Outermost, so it sees every answer, refusals included.
            MetricsMiddleware()
            SecurityHeadersMiddleware()
            HostCheckMiddleware(hosts: hosts)
            CORSMiddleware(policy: configuration.access)
            RequestGuardMiddleware(webRoot: configuration.webRoot, maxTargetBytes: configuration.maxRequestTargetBytes)
            AccessMiddleware(policy: configuration.access)
        }
        router.get(path(.health)) { request, _ in healthResponse(request) }
        router.get(path(.sources)) { _, _ in jsonResponse(.ok, sourcesJSON()) }
        router.get(path(.lines)) { request, _ in try await linesResponse(request) }
        router.get(path(.metrics)) { _, _ in
            let text: [UInt8] = metrics.exposition(
                hub: hub,
                registry: registry,
                uptimeSeconds: (ContinuousClock.now - startedAt).components.seconds,
                extra: extraMetrics()
            )
            return Response(
                status: .ok,
                headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8", .cacheControl: "no-store"],
                body: .init(byteBuffer: ByteBuffer(bytes: text))
            )
        }
        router.get(path(.events)) { request, context in try await eventStream(request, context: context) }
        router.get(path(.stream)) { request, context -> Response in
            // The same checks as an upgrade, so `curl` (or a client that cannot
            // read a refused upgrade) learns why a stream would be refused.
            switch admit(StreamAttempt(request, remoteAddress: context.remoteAddress), at: .stream) {
            case .failure(let refusal):
                throw refusal
            case .success(let admission):
                admission.slot.release()
            }
            throw Refusal(
                .upgradeRequired,
                "this endpoint speaks WebSocket only",
                hint: "connect with a WebSocket client, e.g. wscat -c 'ws://HOST:PORT/ws?grep=error'",
                headers: [.upgrade: "websocket", .connection: "Upgrade"]
            )
        }
        if serveFiles, let webRoot = configuration.webRoot {
            router.addMiddleware { FileMiddleware(webRoot, searchForIndexHtml: true, logger: logger) }
        }
        return router
    }

    /// Every route of the router, and whether it needs the token (for
    /// `--check-config`, and the tests that try every spelling of every route).
    public var routes: [(method: String, path: String, isProtected: Bool)] {
        makeRouter(serveFiles: false).routes.map { ($0.method.rawValue, $0.path.description, Endpoint.isProtected(routePath: $0.path.description)) }
    }

    /// The HTTP application, and the drainer that must follow it in the service group.
    /// - Parameter onListening: called with the bound port once the server listens.
    func makeApplication(
        router: Router<LogcastRequestContext>,
        onListening: @escaping @Sendable (Int) async -> Void
    ) -> (application: any Service, drainer: ShutdownDrainer) {
        let makeChildChannel = childChannelFactory()
        let announce = announcer(onListening: onListening)
        let drainer = ShutdownDrainer(hub: hub, connections: connections, timeout: configuration.shutdownDrainTimeout)
        if let socket = configuration.activatedSocket {
            let child = makeChildChannel(makeHTTPResponder(router: router, logger: logger))
            let server = ActivatedServer(socket: socket, child: child, logger: logger) { port, address in
                logger.notice("adopted the listening socket passed by systemd", metadata: ["fd": "\(socket)"])
                await announce(port, address)
            }
            return (server, drainer)
        }
        return (makeHTTPApplication(router: router, childChannel: makeChildChannel, announce: announce), drainer)
    }

    /// What every connection runs: the connection cap and head timeout,
    /// TLS when configured, the refusal of upgrades (and of unparsable
    /// requests) with their real status, then HTTP/1.1 with WebSocket upgrades.
    func childChannelFactory() -> @Sendable (@escaping HTTPChannelHandler.Responder) -> ServerChildChannel {
        let configuration = self.configuration
        let wsConfiguration = WebSocketServerConfiguration(
            maxFrameSize: configuration.maxClientMessageBytes,
            // permessage-deflate whenever the client offers it.
            extensions: [.perMessageDeflate(maxDecompressedFrameSize: configuration.maxClientMessageBytes)],
            // Pings come from ``KeepAlive``, a timer of the event loop, not a task per connection.
            autoPing: .disabled
        )
        let pingInterval = TimeAmount(configuration.pingInterval)
        let session = StreamSession(
            hub: hub,
            sourceNames: registry.names,
            configuration: configuration,
            connections: connections,
            metrics: metrics,
            logger: logger
        )
        let app = self
        let gate = self.gate
        return { @Sendable (responder: @escaping HTTPChannelHandler.Responder) in
            GuardedChildChannel(
                base: OptionalTLSChannel(
                    base: RefusingChildChannel(
                        inner: HTTP1WebSocketUpgradeChannel(
                            responder: responder,
                            configuration: .init(
                                http1: .init(idleTimeout: TimeAmount(configuration.idleTimeout)),
                                ws: wsConfiguration
                            ),
                            shouldUpgrade: { request, channel, _ in
                                // Access, limits and the filter were checked (and the filter compiled) by
                                // the admission in `decide`, which counted the stream; this picks the subprotocol.
                                guard let admitted = app.connections.takePending(for: channel) else {
                                    return .dontUpgrade
                                }
                                let offered = AccessRequest.protocols(fromHeaderValues: request.headerFields[values: .secWebSocketProtocol])
                                var headers = HTTPFields()
                                if offered.contains(AccessPolicy.subprotocol) { headers[.secWebSocketProtocol] = AccessPolicy.subprotocol }
                                let remote = channel.remoteAddress?.ipAddress
                                let deflate = request.headerFields[values: .secWebSocketExtensions].contains {
                                    $0.lowercased().contains("permessage-deflate")
                                }
                                return .upgrade(headers) { inbound, outbound, _ in
                                    KeepAlive.start(on: channel, interval: pingInterval)
                                    try await session.run(
                                        admitted,
                                        remoteAddress: remote,
                                        channel: channel,
                                        deflate: deflate,
                                        inbound: inbound,
                                        outbound: outbound
                                    )
                                }
                            }
                        ),
                        decide: { head, channel in
                            switch app.admit(StreamAttempt(head, remoteAddress: channel.remoteAddress), at: Endpoint.resolve(target: head.uri)) {
                            case .failure(let refusal):
                                return refusal
                            case .success(let admission):
                                // Counted from now until the connection closes, whatever happens to the upgrade.
                                app.connections.setPending(
                                    .init(slot: admission.slot, request: admission.stream.request, matcher: admission.stream.matcher),
                                    for: channel
                                )
                                channel.closeFuture.whenComplete { _ in
                                    _ = app.connections.takePending(for: channel)
                                    admission.slot.release()
                                }
                                return nil
                            }
                        }
                    ),
                    credentials: configuration.tls
                ),
                gate: gate,
                headTimeout: TimeAmount(configuration.requestHeadTimeout)
            )
        }
    }

    /// Logs where the server listens (and warns when it is open to the
    /// network without a token), then calls `onListening`.
    func announcer(onListening: @escaping @Sendable (Int) async -> Void) -> @Sendable (Int, String) async -> Void {
        let (configuration, logger) = (self.configuration, self.logger)
        return { port, address in
            let scheme = configuration.tls == nil ? "http" : "https"
            logger.notice("listening", metadata: ["address": "\(scheme)://\(address):\(port)"])
            if !configuration.access.requiresToken, !Self.isLoopback(address) {
                logger.warning(
                    """
                    listening without --token-file: anyone who can reach this port can read these logs; \
                    set a token, or listen on 127.0.0.1 behind a proxy
                    """,
                    metadata: ["address": "\(address)"]
                )
            }
            await onListening(port)
        }
    }

    /// The whole server as a Hummingbird application (what runs when no
    /// socket was passed by systemd); the in-process tests run it too.
    func makeHTTPApplication(onListening: @escaping @Sendable (Int) async -> Void = { _ in }) -> Application<RouterResponder<LogcastRequestContext>> {
        makeHTTPApplication(router: makeRouter(), childChannel: childChannelFactory(), announce: announcer(onListening: onListening))
    }

    /// The Hummingbird application on `host:port` (when no socket was passed by systemd).
    func makeHTTPApplication(
        router: Router<LogcastRequestContext>,
        childChannel: @escaping @Sendable (@escaping HTTPChannelHandler.Responder) -> ServerChildChannel,
        announce: @escaping @Sendable (Int, String) async -> Void
    ) -> Application<RouterResponder<LogcastRequestContext>> {
        Application(
            router: router,
            server: HTTPServerBuilder { responder in childChannel(responder) },
            configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: LogcastVersion.server),
            onServerRunning: { channel in
                await announce(channel.localAddress?.port ?? configuration.port, configuration.host)
            },
            logger: logger
        )
    }

    // MARK: Upgrade decisions

    struct ParsedStream: Sendable {
        var request: SubscriptionRequest
        var matcher: LineMatcher
    }

    /// Parses query items into a request and its compiled filter (the same
    /// rules for `/ws`, `/sse` and `/api/v1/lines`).
    func streamRequest(items: [(key: String, value: String)]) -> Result<ParsedStream, FilterError> {
        do {
            let request = try SubscriptionRequest.parse(items, limits: .init(knownSources: registry.names))
            return .success(ParsedStream(request: request, matcher: try LineMatcher(request.filter)))
        } catch {
            return .failure(error)
        }
    }

    /// What the checks before a stream look at, from a NIO request head (the
    /// upgrade path) or a Hummingbird request (plain `GET /ws`, `/sse`).
    struct StreamAttempt {
        var target: String
        var access: AccessRequest
        var remoteAddress: String?
        /// The query items; for `/sse`, with `Last-Event-ID` merged in.
        var items: [(key: String, value: String)]

        init(_ head: HTTPRequestHead, remoteAddress: SocketAddress?) {
            target = head.uri
            items = QueryString.parse(QueryString.query(ofTarget: head.uri))
            access = AccessRequest(
                authorization: head.headers["Authorization"].first,
                webSocketProtocols: AccessRequest.protocols(fromHeaderValues: head.headers["Sec-WebSocket-Protocol"]),
                origin: head.headers["Origin"].first,
                host: head.headers["Host"].first,
                queryKeys: items.map(\.key)
            )
            self.remoteAddress = remoteAddress?.ipAddress
        }

        init(_ request: Request, remoteAddress: SocketAddress?) {
            target = request.uri.description
            items = QueryString.parse(QueryString.query(ofTarget: target))
            access = AccessRequest(request)
            self.remoteAddress = remoteAddress?.ipAddress
        }
    }

    /// A stream that was let in: its counted place among the streams (give
    /// it back with ``ConnectionTracker/Slot/release()`` when the stream
    /// ends) and its parsed request.
    struct Admission {
        var slot: ConnectionTracker.Slot
        var stream: ParsedStream
    }

    /// The one admission path of every stream (WebSocket upgrade, plain
    /// `GET /ws`, `/sse`), in the order: host (`421`), endpoint (`404`),
    /// request size (`414`), origin (`403`), token (`401`), shutdown and
    /// subscriber limits (`503`, `429`; checked and counted at once), filter
    /// (`400`).
    /// - Parameters:
    ///   - endpoint: the endpoint the request reaches (the router's choice,
    ///     or ``Endpoint/resolve(target:)`` for an upgrade).
    ///   - transport: the streaming endpoint being asked for.
    func admit(_ attempt: StreamAttempt, at endpoint: Endpoint?, as transport: Endpoint = .stream) -> Result<Admission, Refusal> {
        if let host = attempt.access.host, !hosts.accepts(host) {
            return .failure(hosts.refusal(for: host))
        }
        guard endpoint == transport else {
            let path = QueryString.path(ofTarget: attempt.target)
            return .failure(Refusal(.notFound, "no WebSocket endpoint at \(path)", hint: "connect to /ws"))
        }
        if attempt.target.utf8.count > configuration.maxRequestTargetBytes {
            return .failure(
                Refusal(
                    .uriTooLong,
                    "request target longer than \(configuration.maxRequestTargetBytes) bytes",
                    hint: "shorten the query; filter values are at most 1024 bytes each"
                )
            )
        }
        if case .failure(let refusal) = configuration.access.check(attempt.access) {
            return .failure(refusal)
        }
        if let reason = unavailable() { return .failure(Self.notYetServing(reason)) }
        let token = configuration.access.requiresToken ? configuration.access.presentedToken(attempt.access) : nil
        let slot: ConnectionTracker.Slot
        switch connections.admit(
            from: attempt.remoteAddress,
            token: token,
            maxTotal: configuration.maxSubscribers,
            maxPerAddress: configuration.maxConnectionsPerAddress
        ) {
        case .success(let admitted):
            slot = admitted
        case .failure(.draining):
            return .failure(
                Refusal(
                    .serviceUnavailable,
                    "server is shutting down",
                    hint: "reconnect in a few seconds",
                    headers: [.retryAfter: "5"],
                    reason: "shutting-down"
                )
            )
        case .failure(.tooMany(let limit)):
            return .failure(
                Refusal(
                    .serviceUnavailable,
                    "too many subscribers (\(limit))",
                    hint: "try again later; the limit is --max-subscribers",
                    headers: [.retryAfter: "10"],
                    reason: "too-many-subscribers"
                )
            )
        case .failure(.tooManyFromAddress(let address, let limit)):
            return .failure(
                Refusal(
                    .tooManyRequests,
                    "too many streams from \(address) (\(limit))",
                    hint: "close some; the limit is --max-connections-per-address",
                    headers: [.retryAfter: "10"]
                )
            )
        }
        switch streamRequest(items: attempt.items) {
        case .success(let stream):
            return .success(Admission(slot: slot, stream: stream))
        case .failure(let error):
            slot.release()
            return .failure(Refusal(.badRequest, error))
        }
    }

    /// The refusal of a stream or read while there is nothing to serve yet.
    static func notYetServing(_ reason: String) -> Refusal {
        Refusal(
            .serviceUnavailable,
            reason,
            hint: "it is retrying; reconnect in a few seconds",
            headers: [.retryAfter: "2"],
            reason: "not-serving-yet"
        )
    }

    /// The router path of an endpoint.
    func path(_ endpoint: Endpoint) -> RouterPath { RouterPath(endpoint.rawValue) }

    // MARK: Polling

    /// Largest `limit` of `/api/v1/lines`.
    static let maxPollLimit = 10_000

    /// `GET /api/v1/lines`: the objects a stream with the same query would
    /// start with (gaps, then lines), as NDJSON, without following.
    /// `limit` caps the lines (default 1000 with `after`, else `backlog`).
    func linesResponse(_ request: Request) async throws(Refusal) -> Response {
        var items = QueryString.parse(QueryString.query(ofTarget: request.uri.description))
        var limit: Int?
        if let index = items.lastIndex(where: { $0.key == "limit" }) {
            guard let value = Int(items[index].value), (1...Self.maxPollLimit).contains(value) else {
                throw Refusal(.badRequest, "bad limit '\(items[index].value)'", hint: "limit takes a number from 1 to \(Self.maxPollLimit)")
            }
            limit = value
            items.removeAll { $0.key == "limit" }
        }
        var around: UInt64?
        if let index = items.lastIndex(where: { $0.key == "around" }) {
            guard items[index].value.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }), let value = UInt64(items[index].value), value > 0 else {
                throw Refusal(.badRequest, "bad around '\(items[index].value)'", hint: "around takes the seq of a line, e.g. around=1042")
            }
            if let other = items.first(where: { Self.notWithAround.contains($0.key) && !$0.value.isEmpty })?.key ?? (limit != nil ? "limit" : nil) {
                throw Refusal(
                    .badRequest,
                    "around reads the lines around one line; \(other) does not go with it",
                    hint: "give around=SEQ with context=N (or before-context, after-context) and selection keys (source, host, unit, identifier)"
                )
            }
            around = value
            items.removeAll { $0.key == "around" }
        }
        if let reason = unavailable() { throw Self.notYetServing(reason) }
        let parsed: SubscriptionRequest
        let matcher: LineMatcher
        switch streamRequest(items: items) {
        case .success(let stream): (parsed, matcher) = (stream.request, stream.matcher)
        case .failure(let error): throw Refusal(.badRequest, error)
        }
        guard pollsInFlight.tryEnter() else {
            throw Refusal(
                .serviceUnavailable,
                "too many /api/v1/lines reads at once (\(Self.maxConcurrentPolls))",
                hint: "retry in a second, or follow the stream on /ws or /sse",
                headers: [.retryAfter: "1"],
                reason: "too-many-reads"
            )
        }
        defer { pollsInFlight.leave() }
        if let around {
            var window = parsed.filter.context
            if window.isEmpty { window = ContextWindow(before: Self.defaultAroundContext, after: Self.defaultAroundContext) }
            let (hub, aroundWindow) = (self.hub, window)
            // It may read the durable history: off the cooperative pool, and counted as a read.
            let found = await offCooperativePool { hub.around(seq: around, window: aroundWindow, matcher: matcher) }
            return try aroundResponse(seq: around, found: found, format: parsed.format, fields: parsed.fields)
        }
        var effective = parsed
        if parsed.after == nil, let limit { effective.backlog = limit }
        // The scan holds references to the history's entries, not copies; the
        // body is written in chunks as it goes out.
        let hub = self.hub
        let scanLimit = limit ?? (parsed.after == nil && parsed.filter.since == nil ? parsed.backlog : 1000)
        let request = effective
        let scan = await offCooperativePool { hub.snapshot(request: request, matcher: matcher, limit: scanLimit) }
        let headers: HTTPFields = [
            .contentType: parsed.format == .text ? "text/plain; charset=utf-8" : "application/x-ndjson",
            .cacheControl: "no-store",
            HTTPField.Name("Logcast-Epoch")!: hub.epoch,
            HTTPField.Name("Logcast-Last-Seq")!: String(scan.lastSeq),
            HTTPField.Name("Logcast-Scan")!: scan.complete ? "complete" : "incomplete",
        ]
        let framing = StreamFraming(kind: .ndjson, format: parsed.format, fields: parsed.fields)
        let metrics = self.metrics
        return Response(
            status: .ok,
            headers: headers,
            body: ResponseBody { writer in
                var buffer = ByteBuffer()
                var (lines, bytes) = (0, 0)
                defer { metrics.polled(lines: lines, bytes: bytes) }
                for item in scan.items {
                    lines += framing.append(item, to: &buffer)
                    if buffer.readableBytes >= 64 * 1024 {
                        bytes += buffer.readableBytes
                        try await writer.write(buffer)
                        buffer.clear()
                    }
                }
                bytes += buffer.readableBytes
                if buffer.readableBytes > 0 { try await writer.write(buffer) }
                try await writer.finish(nil)
            }
        )
    }

    /// Keys that choose lines or where a read starts: `around` names its line itself.
    static let notWithAround: Set<String> = ["after", "epoch", "backlog", "since", "until", "grep", "regex", "exclude", "priority", "field"]

    /// The lines either side of `around` when no context key is given.
    static let defaultAroundContext = 10

    /// `GET /api/v1/lines?around=SEQ`: the line and the lines of its file
    /// around it (``Hub/around(seq:window:matcher:)``): `404` when it is not
    /// held (or not written yet).
    func aroundResponse(
        seq: UInt64,
        found: Hub.AroundResult,
        format: SubscriptionRequest.Format,
        fields: FieldSelection?
    ) throws(Refusal) -> Response {
        let items: [SubscriberQueue.Item]
        switch found {
        case .lines(let lines): items = lines
        case .notYet(let lastSeq):
            throw Refusal(.notFound, "no line has seq \(seq) yet", hint: "the newest line is \(lastSeq)")
        case .gone(let oldest):
            throw Refusal(.notFound, "line \(seq) is no longer held", hint: "the oldest line held is \(oldest)")
        }
        let framing = StreamFraming(kind: .ndjson, format: format, fields: fields)
        var buffer = ByteBuffer()
        var lines = 0
        for item in items { lines += framing.append(item, to: &buffer) }
        metrics.polled(lines: lines, bytes: buffer.readableBytes)
        let headers: HTTPFields = [
            .contentType: format == .text ? "text/plain; charset=utf-8" : "application/x-ndjson",
            .cacheControl: "no-store",
            HTTPField.Name("Logcast-Epoch")!: hub.epoch,
        ]
        return Response(status: .ok, headers: headers, body: ResponseBody(byteBuffer: buffer))
    }

    /// `/api/v1/lines` reads served at once (each scans the history); more get `503`.
    static let maxConcurrentPolls = 4

    static func isLoopback(_ host: String) -> Bool {
        host == "localhost" || host == "::1" || host.hasPrefix("127.")
    }

    // MARK: JSON endpoints

    /// The `hello` object a stream starts with.
    func helloObject(filter: Filter) -> [UInt8] {
        ProtocolObject.hello(epoch: hub.epoch, host: configuration.hostName, sources: registry.names, filter: filter.json).encoded()
    }

    func sourcesJSON() -> [UInt8] {
        var writer = JSONWriter()
        writer.beginArrayValue()
        for status in registry.all {
            writer.beginObject()
            writer.field("name", status.name)
            writer.field("kind", status.kind)
            writer.field("pattern", status.pattern)
            writer.field("paths", strings: status.paths)
            writer.field("state", status.state.rawValue)
            writer.field("lines_read", status.linesRead)
            writer.field("bytes_read", status.bytesRead)
            writer.key("events")
            writer.beginObject()
            for (name, count) in status.events.sorted(by: { $0.key < $1.key }) { writer.field(name, count) }
            writer.endObject()
            writer.field("last_error", status.lastError)
            writer.endObject()
        }
        writer.endArray()
        return writer.bytes
    }

    /// `GET /healthz`: open to load balancers, so without a token it says
    /// only `status` (`ok`, or `failing` with `503`). The details (version,
    /// epoch, counters, source names and their errors) need what any
    /// protected route needs: a valid token when one is configured.
    func healthResponse(_ request: Request) -> Response {
        let sources = registry.all
        let failing = sources.filter { $0.state == .failing }
        let statistics = hub.statistics
        let degraded = degradation()
        let waiting = unavailable()
        // Failing sources, or no stream yet (a gateway): not ready for traffic.
        let status: HTTPResponse.Status = failing.isEmpty && waiting == nil ? .ok : .serviceUnavailable
        var writer = JSONWriter()
        writer.beginObject()
        writer.field("status", !failing.isEmpty ? "failing" : waiting != nil ? "starting" : degraded.isEmpty ? "ok" : "degraded")
        guard case .success = configuration.access.check(AccessRequest(request)) else {
            writer.endObject()
            return jsonResponse(status, writer.bytes)
        }
        writer.field("version", LogcastVersion.string)
        if let waiting { writer.field("waiting", waiting) } else { writer.field("epoch", hub.epoch) }
        writer.field("uptime_seconds", (ContinuousClock.now - startedAt).components.seconds)
        writer.field("last_seq", statistics.lastSeq)
        writer.field("subscribers", statistics.subscribers)
        writer.key("sources")
        writer.beginObject()
        for source in sources { writer.field(source.name, source.state.rawValue) }
        writer.endObject()
        if !failing.isEmpty {
            writer.field("failing", strings: failing.map { "\($0.name): \($0.lastError ?? "failing")" })
        }
        if !degraded.isEmpty { writer.field("degraded", strings: degraded) }
        writer.endObject()
        return jsonResponse(status, writer.bytes)
    }
}
