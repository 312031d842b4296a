import LogcastProtocol

/// Where a source's lines, events and status go: the hub and the source
/// registry in the server, a collector in tests.
///
/// Sources call these from their own thread, in the order things happened
/// in the source; the closures must not block for long.
public struct SourceSink: Sendable {
    /// Lines in order, and the source's position after the last of them.
    public var lines: @Sendable ([LogRecord], SourcePosition?) -> Void
    public var event: @Sendable (SourceEvent) -> Void
    public var status: @Sendable ((inout SourceStatus) -> Void) -> Void

    public init(
        lines: @escaping @Sendable ([LogRecord], SourcePosition?) -> Void,
        event: @escaping @Sendable (SourceEvent) -> Void,
        status: @escaping @Sendable ((inout SourceStatus) -> Void) -> Void
    ) {
        self.lines = lines
        self.event = event
        self.status = status
    }

    /// Publishes into `hub` and records status in `registry`.
    public static func hub(_ hub: Hub, registry: SourceRegistry, name: String) -> SourceSink {
        SourceSink(
            lines: { hub.publish($0, source: name, position: $1) },
            event: { hub.publish($0) },
            status: { body in registry.update(name, body) }
        )
    }
}
