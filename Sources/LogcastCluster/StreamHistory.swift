import Foundation
import LogcastHub
import LogcastProtocol
import Synchronization

/// A gateway's history beyond memory: the cluster stream itself. A resume
/// (`after`) or a `since` older than the lines the gateway holds is read
/// from the stream with a short-lived ordered consumer, as far as the
/// stream keeps them; older than that, the client gets an `evicted` gap.
///
/// The stream already has every line, so ``append(_:source:position:)``
/// stores nothing.
public final class StreamHistory: DurableHistory {
    let stream: String
    let connection = Mutex<NATSConnection?>(nil)
    /// How long one read of the stream may take.
    static let readTimeout: Duration = .seconds(2)

    public init(stream: String) {
        self.stream = stream
    }

    /// The connection reads go through (set when the gateway reaches the stream).
    func connect(_ nats: NATSConnection) {
        connection.withLock { $0 = nats }
    }

    public func append(_ entries: [HubEntry], source: String?, position: SourcePosition?) {}

    public func lines(after: UInt64, before: UInt64, limit: Int) -> [HubEntry] {
        guard before > after + 1 else { return [] }
        return read(from: .sequence(after + 1), before: before, limit: limit)?.entries ?? []
    }

    public func lines(since: Timestamp, before: UInt64, limit: Int) -> [HubEntry] {
        // The server wants a start time after 1970; anything before is the whole stream.
        read(from: since.microseconds > 0 ? .time(since.microseconds * 1000) : .sequence(1), before: before, limit: limit)?.entries ?? []
    }

    /// Reads only the subject of the host and source (pushed down to the consumer's subject filter).
    public func lines(after: UInt64, before: UInt64, limit: Int, host: String?, source: String?) -> SelectedRead? {
        guard before > after + 1 else { return SelectedRead(entries: [], firstKept: 1, complete: true) }
        return selectedRead(from: .sequence(after + 1), before: before, limit: limit, host: host, source: source)
    }

    public func lines(since: Timestamp, before: UInt64, limit: Int, host: String?, source: String?) -> SelectedRead? {
        selectedRead(
            from: since.microseconds > 0 ? .time(since.microseconds * 1000) : .sequence(1),
            before: before,
            limit: limit,
            host: host,
            source: source
        )
    }

    func selectedRead(from start: NATSConnection.ReadStart, before: UInt64, limit: Int, host: String?, source: String?) -> SelectedRead? {
        // Without the stream (NATS down), the hub's own reading gives what there is.
        guard let nats = connection.withLock({ $0 }), let info = try? nats.streamInfo(stream) else { return nil }
        // A read that fails must not pass for one that found nothing: nil, and the hub reads on its own.
        guard let (entries, complete) = read(from: start, before: before, limit: limit, subject: ClusterSubject.filter(host: host, source: source))
        else { return nil }
        return SelectedRead(entries: entries, firstKept: info.firstSequence, complete: complete)
    }

    public var oldestLineTime: Timestamp? {
        guard let nats = connection.withLock({ $0 }), let info = try? nats.streamInfo(stream), info.firstTime > 0,
            info.lastSequence >= info.firstSequence
        else { return nil }
        return Timestamp(microseconds: info.firstTime / 1000)
    }

    /// Lines of the stream from `start` with sequences below `before`.
    /// A read that fails (NATS down) gives what it got: the hub reports the
    /// rest as `evicted`.
    func read(
        from start: NATSConnection.ReadStart,
        before: UInt64,
        limit: Int,
        subject: String = ClusterSubject.all
    ) -> (
        entries: [HubEntry], complete: Bool
    )? {
        guard before > 1, limit > 0 else { return ([], true) }
        guard let nats = connection.withLock({ $0 }),
            let (messages, complete) = try? nats.read(
                stream: stream,
                subject: subject,
                from: start,
                through: before - 1,
                limit: limit,
                deadline: .now + Self.readTimeout
            )
        else { return nil }
        let entries = messages.compactMap { message -> HubEntry? in
            guard case .success(let record) = Self.record(of: message) else { return nil }
            return HubEntry(position: message.sequence, payload: .line(record), json: ProtocolObject.encodedLine(record, seq: message.sequence))
        }
        return (entries, complete)
    }

    /// The record a message of the stream carries, with the host and source of its subject.
    static func record(of message: NATSConnection.Message) -> Result<LogRecord, ClusterRecord.Refusal> {
        let names = ClusterSubject.parse(message.subject)
        return Result { () throws(ClusterRecord.Refusal) in
            try ClusterRecord.decode(message.body, host: names?.host, source: names?.source)
        }
    }
}
