import Hummingbird
import NIOCore

/// The request context of logcast's router: Hummingbird's core context plus
/// the connection, for the per-address stream limit and for releasing a
/// stream's place when its connection closes.
public struct LogcastRequestContext: RequestContext, RemoteAddressRequestContext {
    public var coreContext: CoreRequestContextStorage
    /// The connection the request arrived on.
    public let channel: any Channel

    public var remoteAddress: SocketAddress? { channel.remoteAddress }

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        channel = source.channel
    }
}
