import Hummingbird
import HummingbirdCore
import LogcastProtocol
import Logging
import NIOCore
import NIOExtras
import NIOHTTP1
import NIOPosix
import ServiceLifecycle

/// Serves on a listening socket systemd passed (socket activation) instead
/// of binding one: connections systemd queued before logcast started are
/// accepted, and the port can be privileged without logcast holding any
/// capability.
///
/// Hummingbird binds its own socket, so this runs the accept loop itself,
/// with the same child channel (TLS, refusals, WebSocket upgrade, HTTP
/// responder) as the normal path. On graceful shutdown it stops accepting
/// and closes idle connections; streams are ended by ``ShutdownDrainer``.
struct ActivatedServer<Child: ServerChildChannel>: Service {
    let socket: Int32
    let child: Child
    let logger: Logger
    /// Called with the port and address of the adopted socket.
    let onListening: @Sendable (Int, String) async -> Void

    func run() async throws {
        let group = MultiThreadedEventLoopGroup.singleton
        let quiescing = ServerQuiescingHelper(group: group)
        let child = self.child
        let logger = self.logger
        let server = try await ServerBootstrap(group: group)
            .serverChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(quiescing.makeServerChannelHandler(channel: channel))
                }
            }
            .childChannelOption(ChannelOptions.socketOption(.tcp_nodelay), value: 1)
            .bind(socket, cleanupExistingSocketFile: false, serverBackPressureStrategy: nil) { channel in
                child.setup(channel: channel, logger: logger)
            }
        await withGracefulShutdownHandler {
            let local = server.channel.localAddress
            await onListening(local?.port ?? 0, local?.ipAddress ?? "?")
            await withDiscardingTaskGroup { tasks in
                do {
                    try await server.executeThenClose { inbound in
                        for try await connection in inbound {
                            tasks.addTask { await child.handle(value: connection, logger: logger) }
                        }
                    }
                } catch {
                    logger.error("accepting connections failed", metadata: ["error": "\(error)"])
                }
            }
        } onGracefulShutdown: {
            quiescing.initiateShutdown(promise: nil)
        }
    }
}

/// The Hummingbird responder for a router, as `Application` would wrap it:
/// a request context per request, the `Server` header, and a bare 500 for
/// an error nothing else turned into a response.
func makeHTTPResponder(router: Router<LogcastRequestContext>, logger: Logger) -> HTTPChannelHandler.Responder {
    let responder = router.buildResponder()
    return { request, responseWriter, channel in
        let context = LogcastRequestContext(source: .init(channel: channel, logger: logger))
        var response: Response
        do {
            response = try await responder.respond(to: request, context: context)
        } catch let error as HTTPParserError {
            throw error
        } catch {
            logger.debug("unhandled error", metadata: ["error": "\(error)"])
            response = Response(status: .internalServerError)
        }
        response.headers[.server] = LogcastVersion.server
        try await responseWriter.write(response: response.head, body: response.body)
    }
}
