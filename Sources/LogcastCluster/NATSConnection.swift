import CNATS
import Foundation
import Synchronization

/// A NATS call that failed, with cnats's text for it.
public struct NATSError: Error, Sendable, CustomStringConvertible {
    public var description: String
    /// The JetStream API error code, when the server gave one (10059: stream not found).
    public var code: Int

    /// Whether the error is in the settings (the stream differs from them,
    /// credentials are refused), not a fault that retrying mends.
    public var isSettings = false

    public init(_ description: String, isSettings: Bool = false) {
        self.description = description
        self.code = 0
        self.isSettings = isSettings
    }

    init(_ what: String, _ status: natsStatus, code: jsErrCode = jsErrCode(rawValue: 0)) {
        let text = String(cString: natsStatus_GetText(status))
        var detail = text
        var lastStatus = status
        if let last = nats_GetLastError(&lastStatus), last.pointee != 0 {
            let message = String(cString: last)
            if message != text { detail += " (\(message))" }
        }
        self.description = "\(what): \(detail)"
        self.code = Int(code.rawValue)
    }
}

/// One connection to a NATS cluster with its JetStream context, over cnats
/// (Debian's libnats 3.4.1).
///
/// cnats reconnects by itself (forever, every second, with jitter) and
/// buffers publishes while it does; the connection's callbacks and message
/// handlers run on cnats's own threads, so everything here is thread-safe
/// and handlers must hand their work on quickly.
public final class NATSConnection: @unchecked Sendable {
    public struct Options: Sendable {
        /// `nats://HOST:PORT` or `tls://HOST:PORT`, one or more servers of one cluster.
        public var urls: [String]
        /// A `.creds` file (JWT and seed), as `nats context` writes it.
        public var credentialsFile: String?
        /// A CA bundle for `tls://` servers signed by a private CA.
        public var caFile: String?
        /// The client name the server shows (`/connz`).
        public var name = "logcast"
        /// How long connecting, and each JetStream API request, may take.
        public var timeout: Duration = .seconds(5)
        /// Whether cnats reconnects by itself after losing the server. An
        /// agent's publishing connection does not: what it sent on a lost
        /// connection and what it would send on the next must not overtake
        /// each other, so it starts over on a new connection instead.
        public var reconnects = true

        public init(urls: [String]) {
            self.urls = urls
        }

        /// Whether any server is given with `tls://` (cnats 3.4.1 needs TLS turned on for it).
        var wantsTLS: Bool { urls.contains { $0.lowercased().hasPrefix("tls://") } }
    }

    // natsConnection* and jsCtx*; cnats's calls on them are thread-safe.
    let connection: OpaquePointer
    let jetStream: OpaquePointer
    let options: Options
    /// The disconnect handler's key in ``CallbackTable/connections``.
    let events: UInt

    /// Connects, waiting up to ``Options/timeout``. `onDisconnect` is
    /// called (on cnats's thread) each time the connection to the server
    /// is lost.
    public init(options: Options, onDisconnect: @escaping @Sendable () -> Void = {}) throws(NATSError) {
        let events = NATSCallbacks.connections.add(onDisconnect)
        do {
            (connection, jetStream) = try Self.connect(options, events: events)
        } catch {
            NATSCallbacks.connections.remove(events)
            throw error
        }
        self.options = options
        self.events = events
    }

    private static func connect(_ options: Options, events: UInt) throws(NATSError) -> (OpaquePointer, OpaquePointer) {
        var opts: OpaquePointer?
        var status = natsOptions_Create(&opts)
        guard status == NATS_OK, let opts else { throw NATSError("cannot create NATS options", status) }
        defer { natsOptions_Destroy(opts) }
        var cURLs = options.urls.map { strdup($0) }
        defer { for url in cURLs { free(url) } }
        status = cURLs.withUnsafeMutableBufferPointer { buffer in
            buffer.baseAddress!.withMemoryRebound(to: UnsafePointer<CChar>?.self, capacity: buffer.count) {
                natsOptions_SetServers(opts, $0, Int32(buffer.count))
            }
        }
        guard status == NATS_OK else { throw NATSError("--nats \(options.urls.joined(separator: ","))", status) }
        if options.wantsTLS || options.caFile != nil { _ = natsOptions_SetSecure(opts, true) }
        if let ca = options.caFile {
            status = natsOptions_LoadCATrustedCertificates(opts, ca)
            guard status == NATS_OK else { throw NATSError("--nats-ca-file \(ca)", status) }
        }
        if let creds = options.credentialsFile {
            status = natsOptions_SetUserCredentialsFromFiles(opts, creds, nil)
            guard status == NATS_OK else { throw NATSError("--nats-creds \(creds)", status) }
        }
        let milliseconds = Int64(options.timeout.components.seconds * 1000)
        _ = natsOptions_SetName(opts, options.name)
        _ = natsOptions_SetTimeout(opts, milliseconds)
        if options.reconnects {
            _ = natsOptions_SetMaxReconnect(opts, -1)
            _ = natsOptions_SetReconnectWait(opts, 1000)
        } else {
            _ = natsOptions_SetAllowReconnect(opts, false)
        }
        _ = natsOptions_SetDisconnectedCB(opts, disconnected, UnsafeMutableRawPointer(bitPattern: events))

        var connection: OpaquePointer?
        status = natsConnection_Connect(&connection, opts)
        guard status == NATS_OK, let connection else {
            var error = NATSError("cannot connect to NATS at \(options.urls.joined(separator: ","))", status)
            // Refused credentials or certificates, or a URL without a host: retrying will not mend them.
            error.isSettings = [NATS_CONNECTION_AUTH_FAILED, NATS_NOT_PERMITTED, NATS_SSL_ERROR, NATS_ADDRESS_MISSING].contains(status)
            throw error
        }
        var jsOptions = jsOptions()
        jsOptions_Init(&jsOptions)
        jsOptions.Wait = milliseconds
        var context: OpaquePointer?
        status = natsConnection_JetStream(&context, connection, &jsOptions)
        guard status == NATS_OK, let context else {
            natsConnection_Destroy(connection)
            throw NATSError("cannot use JetStream", status)
        }
        return (connection, context)
    }

    deinit {
        jsCtx_Destroy(jetStream)
        natsConnection_Destroy(connection)
        // A callback cnats makes after this finds nothing and does nothing.
        NATSCallbacks.connections.remove(events)
    }

    /// Whether the connection is up now (it may be reconnecting).
    public var isConnected: Bool {
        natsConnection_Status(connection) == NATS_CONN_STATUS_CONNECTED
    }

    // MARK: Streams

    public struct StreamSettings: Sendable, Equatable {
        public var name: String
        public var subjects: [String]
        /// Messages older than this are deleted; nil keeps them until `maxBytes`.
        public var maxAge: Duration?
        /// The stream's size limit; nil: the server's.
        public var maxBytes: Int64?
        public var replicas = 1
        /// Where each limit was set (`--nats-max-age`, `c.yaml:4: nats-max-age`),
        /// for limits the user gave: an existing stream that differs from one
        /// of them is refused with its name. Limits left at their default
        /// yield to the stream's.
        public var givenLimits: [Limit: String] = [:]

        public enum Limit: Sendable, Hashable {
            case maxAge, maxBytes, replicas
        }

        public init(name: String, subjects: [String]) {
            self.name = name
            self.subjects = subjects
        }
    }

    /// What the server says of a stream.
    public struct StreamInfo: Sendable, Equatable {
        /// When the stream was created, in nanoseconds since 1970 (with the name, it names the stream for good).
        public var created: Int64
        public var firstSequence: UInt64
        public var lastSequence: UInt64
        /// When the oldest message was stored, in nanoseconds since 1970 (0: none).
        public var firstTime: Int64
        /// When the newest message was stored, in nanoseconds since 1970 (0: none).
        public var lastTime: Int64 = 0
    }

    /// What the stream `name` holds now.
    public func streamInfo(_ name: String) throws(NATSError) -> StreamInfo {
        var info: UnsafeMutablePointer<jsStreamInfo>?
        var code = jsErrCode(rawValue: 0)
        let status = js_GetStreamInfo(&info, jetStream, name, nil, &code)
        guard status == NATS_OK, let info else { throw NATSError("cannot read the stream \(name)", status, code: code) }
        defer { jsStreamInfo_Destroy(info) }
        return StreamInfo(info.pointee)
    }

    /// The stream, created with `settings` when it does not exist.
    public func ensureStream(_ settings: StreamSettings) throws(NATSError) -> StreamInfo {
        var info: UnsafeMutablePointer<jsStreamInfo>?
        var code = jsErrCode(rawValue: 0)
        var status = js_GetStreamInfo(&info, jetStream, settings.name, nil, &code)
        if status == NATS_NOT_FOUND {
            var cSubjects = settings.subjects.map { UnsafePointer(strdup($0)) }
            defer { for subject in cSubjects { free(UnsafeMutablePointer(mutating: subject)) } }
            var config = jsStreamConfig()
            jsStreamConfig_Init(&config)
            status = settings.name.withCString { name in
                cSubjects.withUnsafeMutableBufferPointer { subjects in
                    config.Name = name
                    config.Subjects = subjects.baseAddress!.withMemoryRebound(to: UnsafePointer<CChar>?.self, capacity: subjects.count) {
                        UnsafeMutablePointer($0)
                    }
                    config.SubjectsLen = Int32(subjects.count)
                    if let maxAge = settings.maxAge {
                        config.MaxAge = maxAge.components.seconds * 1_000_000_000 + maxAge.components.attoseconds / 1_000_000_000
                    }
                    if let maxBytes = settings.maxBytes { config.MaxBytes = maxBytes }
                    config.Replicas = Int64(settings.replicas)
                    config.Storage = js_FileStorage
                    return js_AddStream(&info, jetStream, &config, nil, &code)
                }
            }
            if status != NATS_OK, code.rawValue == 10058 {
                // Created by another process meanwhile.
                status = js_GetStreamInfo(&info, jetStream, settings.name, nil, &code)
            }
        }
        guard status == NATS_OK, let info else { throw NATSError("cannot use the stream \(settings.name)", status, code: code) }
        defer { jsStreamInfo_Destroy(info) }
        if let config = info.pointee.Config {
            try Self.check(config.pointee, against: settings)
        }
        return StreamInfo(info.pointee)
    }

    /// Refuses a stream that differs from the settings the user gave
    /// (``StreamSettings/givenLimits``), or whose subjects do not hold logcast's.
    static func check(_ config: jsStreamConfig, against settings: StreamSettings) throws(NATSError) {
        let subjects = (0..<Int(config.SubjectsLen)).compactMap { config.Subjects?[$0].map { String(cString: $0) } }
        for wanted in settings.subjects where !subjects.contains(wanted) && !subjects.contains(">") {
            throw NATSError(
                "the stream \(settings.name) exists for other subjects (\(subjects.joined(separator: ", "))), not \(wanted); "
                    + "choose another --nats-stream",
                isSettings: true
            )
        }
        func refuse(_ limit: StreamSettings.Limit, _ wanted: String, _ actual: String) throws(NATSError) {
            guard let origin = settings.givenLimits[limit] else { return }
            throw NATSError(
                "\(origin) is \(wanted), but the stream \(settings.name) exists with \(actual); give the stream's value, "
                    + "or change the stream (nats stream edit \(settings.name))",
                isSettings: true
            )
        }
        let maxAge = settings.maxAge.map { $0.components.seconds * 1_000_000_000 + $0.components.attoseconds / 1_000_000_000 } ?? 0
        if maxAge != config.MaxAge {
            try refuse(.maxAge, "\(maxAge / 1_000_000_000) s", config.MaxAge == 0 ? "no age limit" : "\(config.MaxAge / 1_000_000_000) s")
        }
        let maxBytes = settings.maxBytes ?? -1
        if maxBytes != config.MaxBytes, !(maxBytes <= 0 && config.MaxBytes <= 0) {
            try refuse(
                .maxBytes,
                maxBytes > 0 ? "\(maxBytes) bytes" : "no size limit",
                config.MaxBytes > 0 ? "\(config.MaxBytes) bytes" : "no size limit"
            )
        }
        if Int64(settings.replicas) != max(1, config.Replicas) {
            try refuse(.replicas, "\(settings.replicas)", "\(max(1, config.Replicas)) replicas")
        }
    }

    // MARK: Publishing

    /// Publishes `body` to `subject` and waits for the stream's
    /// acknowledgement. `messageID` (`Nats-Msg-Id`) makes a repeat within
    /// the stream's duplicate window a no-op that is acknowledged as
    /// `duplicate`.
    public func publish(subject: String, body: [UInt8], messageID: String) throws(NATSError) -> (sequence: UInt64, duplicate: Bool) {
        var message: OpaquePointer?
        var status = body.withUnsafeBufferPointer { bytes in
            bytes.baseAddress!.withMemoryRebound(to: CChar.self, capacity: max(1, bytes.count)) {
                natsMsg_Create(&message, subject, nil, $0, Int32(bytes.count))
            }
        }
        guard status == NATS_OK, let message else { throw NATSError("cannot make a message for \(subject)", status) }
        defer { natsMsg_Destroy(message) }
        status = natsMsgHeader_Set(message, "Nats-Msg-Id", messageID)
        guard status == NATS_OK else { throw NATSError("cannot set Nats-Msg-Id", status) }
        var ack: UnsafeMutablePointer<jsPubAck>?
        var code = jsErrCode(rawValue: 0)
        status = js_PublishMsg(&ack, jetStream, message, nil, &code)
        guard status == NATS_OK, let ack else { throw NATSError("publishing to \(subject) failed", status, code: code) }
        defer { jsPubAck_Destroy(ack) }
        return (ack.pointee.Sequence, ack.pointee.Duplicate)
    }

    /// The largest message body the server accepts (`max_payload`, 1 MiB by default).
    public var maxPayload: Int { Int(natsConnection_GetMaxPayload(connection)) }

    /// A publisher that keeps up to `maxInFlight` messages unacknowledged
    /// at once; `acknowledged` is called on cnats's thread for each, with
    /// its `Nats-Msg-Id`, in the order the acknowledgements arrive.
    public func asyncPublisher(
        maxInFlight: Int,
        maxWait: Duration,
        acknowledged: @escaping @Sendable (_ messageID: String, _ result: Result<UInt64, NATSError>) -> Void
    ) throws(NATSError) -> NATSAsyncPublisher {
        let box = NATSCallbacks.acknowledgements.add(acknowledged)
        var jsOptions = jsOptions()
        jsOptions_Init(&jsOptions)
        jsOptions.Wait = Int64(options.timeout.components.seconds * 1000)
        // cnats's own bound is above ours: the publisher waits for room before it would stall.
        jsOptions.PublishAsync.MaxPending = Int64(maxInFlight * 2)
        jsOptions.PublishAsync.AckHandler = acknowledge
        jsOptions.PublishAsync.AckHandlerClosure = UnsafeMutableRawPointer(bitPattern: box)
        var context: OpaquePointer?
        let status = natsConnection_JetStream(&context, connection, &jsOptions)
        guard status == NATS_OK, let context else {
            NATSCallbacks.acknowledgements.remove(box)
            throw NATSError("cannot use JetStream", status)
        }
        let milliseconds = maxWait.components.seconds * 1000 + maxWait.components.attoseconds / 1_000_000_000_000_000
        return NATSAsyncPublisher(connection: self, context: context, box: box, maxWaitMilliseconds: max(1, milliseconds))
    }

    /// The idle heartbeat of ordered consumers, in nanoseconds (cnats's default is 5 s).
    static let consumerHeartbeat: Int64 = 1_000_000_000

    // MARK: Reading

    /// Where a read of the stream begins.
    public enum ReadStart: Sendable, Equatable {
        case sequence(UInt64)
        /// The first message the stream stored at or after this time (nanoseconds since 1970).
        case time(Int64)
    }

    /// Reads messages of `subject` on the stream from `start` in order,
    /// up to and including sequence `through`, at most `limit` of them,
    /// with a short-lived ordered consumer; stops early at the end of the
    /// stream or at `deadline`. `complete` is false when the deadline cut
    /// it short.
    public func read(
        stream: String,
        subject: String,
        from start: ReadStart,
        through last: UInt64,
        limit: Int,
        deadline: ContinuousClock.Instant
    ) throws(NATSError) -> (messages: [Message], complete: Bool) {
        guard limit > 0 else { return ([], true) }
        // Nothing from there on: say so at once rather than wait for a first message until the deadline.
        let state = try streamInfo(stream)
        switch start {
        case .sequence(let sequence): if sequence > state.lastSequence { return ([], true) }
        case .time(let nanoseconds): if nanoseconds > state.lastTime { return ([], true) }
        }
        var options = jsSubOptions()
        jsSubOptions_Init(&options)
        options.Ordered = true
        switch start {
        case .sequence(let sequence):
            guard sequence <= last else { return ([], true) }
            options.Config.DeliverPolicy = js_DeliverByStartSequence
            options.Config.OptStartSeq = max(1, sequence)
        case .time(let nanoseconds):
            options.Config.DeliverPolicy = js_DeliverByStartTime
            options.Config.OptStartTime = nanoseconds
        }
        var subscription: OpaquePointer?
        var code = jsErrCode(rawValue: 0)
        let status = stream.withCString { name in
            options.Stream = name
            return js_SubscribeSync(&subscription, jetStream, subject, nil, &options, &code)
        }
        guard status == NATS_OK, let subscription else { throw NATSError("cannot read the stream \(stream)", status, code: code) }
        defer {
            _ = natsSubscription_Unsubscribe(subscription)
            natsSubscription_Destroy(subscription)
        }
        _ = natsSubscription_SetPendingLimits(subscription, -1, -1)
        var messages: [Message] = []
        while messages.count < limit {
            let left = deadline - ContinuousClock.now
            guard left > .zero else { return (messages, false) }
            var raw: OpaquePointer?
            let wait = max(1, left.components.seconds * 1000 + left.components.attoseconds / 1_000_000_000_000_000)
            let next = natsSubscription_NextMsg(&raw, subscription, wait)
            if next == NATS_TIMEOUT { return (messages, false) }
            guard next == NATS_OK, let raw else { throw NATSError("reading the stream \(stream) failed", next) }
            defer { natsMsg_Destroy(raw) }
            guard let message = Message(raw) else { continue }
            guard message.sequence <= last else { break }
            messages.append(message)
            if message.sequence == last || message.pending == 0 { break }
        }
        return (messages, true)
    }

    // MARK: Consuming

    /// A message of the stream, as a handler gets it (copied out of cnats's).
    public struct Message: Sendable {
        public var subject: String
        public var body: [UInt8]
        /// Its place in the stream (the merged order).
        public var sequence: UInt64
        /// When the stream stored it, in nanoseconds since 1970.
        public var timestamp: Int64
        /// How many messages of the subscription's subjects the stream holds after it.
        public var pending: UInt64
    }

    /// Reads the stream in order from `startSequence` (1: all of it) with an
    /// ordered push consumer on `subject`, calling `handler` for each
    /// message on cnats's delivery thread, one at a time. cnats recreates
    /// the consumer after the last message delivered when it misses one, on
    /// a reconnect, or after missed heartbeats, so nothing is repeated or
    /// skipped.
    public func subscribeOrdered(
        stream: String,
        subject: String,
        startSequence: UInt64,
        handler: @escaping @Sendable (Message) -> Void
    ) throws(NATSError) -> NATSSubscription {
        let box = NATSCallbacks.handlers.add(handler)
        var options = jsSubOptions()
        jsSubOptions_Init(&options)
        options.Ordered = true
        options.Config.OptStartSeq = max(1, startSequence)
        // A consumer lost with its node is noticed after two missed heartbeats, then made again.
        options.Config.Heartbeat = Self.consumerHeartbeat
        var subscription: OpaquePointer?
        var code = jsErrCode(rawValue: 0)
        let status = stream.withCString { name in
            options.Stream = name
            return js_Subscribe(&subscription, jetStream, subject, deliver, UnsafeMutableRawPointer(bitPattern: box), nil, &options, &code)
        }
        guard status == NATS_OK, let subscription else {
            NATSCallbacks.handlers.remove(box)
            throw NATSError("cannot read the stream \(stream)", status, code: code)
        }
        // The handler hands messages on at once; cnats must never drop one as a slow consumer.
        _ = natsSubscription_SetPendingLimits(subscription, -1, -1)
        return NATSSubscription(subscription: subscription, box: box)
    }
}

extension NATSConnection.StreamInfo {
    init(_ info: jsStreamInfo) {
        self.init(
            created: info.Created,
            firstSequence: info.State.FirstSeq,
            lastSequence: info.State.LastSeq,
            firstTime: info.State.FirstTime,
            lastTime: info.State.LastTime
        )
    }
}

/// The Swift handlers cnats calls back, each under a key that is passed to
/// cnats as the callback's closure pointer.
///
/// cnats may call back on its own threads after the object that set the
/// callback is gone (a publish's timeout fires after its connection was
/// destroyed, a delivery thread is still inside its callback): a callback
/// looks its key up and, once the owner has removed it, finds nothing and
/// returns. No pointer to a Swift object is ever handed to cnats, so no
/// late callback can reach freed memory. Keys are never reused.
final class CallbackTable<Handler: Sendable>: Sendable {
    private let state = Mutex<(next: UInt, handlers: [UInt: Handler])>((1, [:]))

    /// Registers `handler`; the key is never 0 (a null closure).
    func add(_ handler: Handler) -> UInt {
        state.withLock { state in
            defer { state.next += 1 }
            state.handlers[state.next] = handler
            return state.next
        }
    }

    func remove(_ key: UInt) {
        _ = state.withLock { $0.handlers.removeValue(forKey: key) }
    }

    /// The handler of the closure pointer cnats passed back (nil: removed).
    func handler(_ closure: UnsafeMutableRawPointer?) -> Handler? {
        let key = UInt(bitPattern: closure)
        return state.withLock { $0.handlers[key] }
    }

}

/// The callback tables of cnats's three kinds of callback.
enum NATSCallbacks {
    /// A connection's `onDisconnect`.
    static let connections = CallbackTable<@Sendable () -> Void>()
    /// An ordered consumer's message handler.
    static let handlers = CallbackTable<@Sendable (NATSConnection.Message) -> Void>()
    /// An asynchronous publisher's acknowledgement handler.
    static let acknowledgements = CallbackTable<@Sendable (String, Result<UInt64, NATSError>) -> Void>()
}

private let disconnected: natsConnectionHandler = { _, closure in
    NATSCallbacks.connections.handler(closure)?()
}

/// cnats's message callback: copies the message out, frees it, calls the handler.
private let deliver: natsMsgHandler = { _, _, message, closure in
    guard let message else { return }
    defer { natsMsg_Destroy(message) }
    guard let handler = NATSCallbacks.handlers.handler(closure) else { return }
    if let copied = NATSConnection.Message(message) { handler(copied) }
}

extension NATSConnection.Message {
    /// A JetStream message copied out of cnats's (nil: no JetStream metadata, not a stream message).
    init?(_ message: OpaquePointer) {
        var metadata: UnsafeMutablePointer<jsMsgMetaData>?
        guard natsMsg_GetMetaData(&metadata, message) == NATS_OK, let metadata else { return nil }
        defer { jsMsgMetaData_Destroy(metadata) }
        let length = Int(natsMsg_GetDataLength(message))
        let body = natsMsg_GetData(message).map { data in
            data.withMemoryRebound(to: UInt8.self, capacity: max(1, length)) { Array(UnsafeBufferPointer(start: $0, count: length)) }
        }
        self.init(
            subject: String(cString: natsMsg_GetSubject(message)),
            body: body ?? [],
            sequence: metadata.pointee.Sequence.Stream,
            timestamp: metadata.pointee.Timestamp,
            pending: metadata.pointee.NumPending
        )
    }
}

/// cnats's acknowledgement callback: the message's `Nats-Msg-Id` and its
/// stream sequence, or the error (a refusal, or no answer within `MaxWait`).
private let acknowledge: jsPubAckHandler = { _, message, ack, failure, closure in
    defer { natsMsg_Destroy(message) }
    guard let message else { return }
    guard let handler = NATSCallbacks.acknowledgements.handler(closure) else { return }
    var value: UnsafePointer<CChar>?
    guard natsMsgHeader_Get(message, "Nats-Msg-Id", &value) == NATS_OK, let value else { return }
    let id = String(cString: value)
    if let ack {
        handler(id, .success(ack.pointee.Sequence))
    } else if let failure {
        var text = String(cString: natsStatus_GetText(failure.pointee.Err))
        if let detail = failure.pointee.ErrText { text += " (\(String(cString: detail)))" }
        handler(id, .failure(NATSError("publishing failed: \(text)")))
    }
}

/// Publishes without waiting for each acknowledgement
/// (``NATSConnection/asyncPublisher(maxInFlight:maxWait:acknowledged:)``).
/// Acknowledgements, and errors for messages unanswered after `maxWait`,
/// come to its handler.
public final class NATSAsyncPublisher: @unchecked Sendable {
    let connection: NATSConnection  // kept open while this publishes
    let context: OpaquePointer  // jsCtx*
    /// The acknowledgement handler's key in ``CallbackTable/acknowledgements``.
    let box: UInt
    let maxWaitMilliseconds: Int64

    init(connection: NATSConnection, context: OpaquePointer, box: UInt, maxWaitMilliseconds: Int64) {
        self.connection = connection
        self.context = context
        self.box = box
        self.maxWaitMilliseconds = maxWaitMilliseconds
    }

    /// Sends `body` to `subject` with `Nats-Msg-Id` `messageID`; the
    /// acknowledgement comes later, to the handler.
    public func publish(subject: String, body: [UInt8], messageID: String) throws(NATSError) {
        var message: OpaquePointer?
        var status = body.withUnsafeBufferPointer { bytes in
            bytes.baseAddress!.withMemoryRebound(to: CChar.self, capacity: max(1, bytes.count)) {
                natsMsg_Create(&message, subject, nil, $0, Int32(bytes.count))
            }
        }
        guard status == NATS_OK, message != nil else { throw NATSError("cannot make a message for \(subject)", status) }
        defer { natsMsg_Destroy(message) }
        status = natsMsgHeader_Set(message, "Nats-Msg-Id", messageID)
        guard status == NATS_OK else { throw NATSError("cannot set Nats-Msg-Id", status) }
        var options = jsPubOptions()
        jsPubOptions_Init(&options)
        options.MaxWait = maxWaitMilliseconds
        status = js_PublishMsgAsync(context, &message, &options)
        guard status == NATS_OK else { throw NATSError("publishing to \(subject) failed", status) }
    }

    /// Waits (blocking) until every message sent has its answer, or `timeout` passed; true when all have.
    public func waitForAcknowledgements(timeout: Duration) -> Bool {
        var options = jsPubOptions()
        jsPubOptions_Init(&options)
        options.MaxWait = max(1, timeout.components.seconds * 1000 + timeout.components.attoseconds / 1_000_000_000_000_000)
        return js_PublishAsyncComplete(context, &options) == NATS_OK
    }

    deinit {
        jsCtx_Destroy(context)
        // Acknowledgements and timeouts that come later find no handler.
        NATSCallbacks.acknowledgements.remove(box)
    }
}

/// A running ordered consumer; ``cancel()`` stops it (also on deinit).
public final class NATSSubscription: Sendable {
    /// The natsSubscription* as its address (0 once cancelled): pointers are not Sendable.
    private let state: Mutex<UInt>
    /// The handler's key in ``CallbackTable/handlers``.
    let box: UInt

    init(subscription: OpaquePointer, box: UInt) {
        self.state = Mutex(UInt(bitPattern: Int(bitPattern: UnsafeRawPointer(subscription))))
        self.box = box
    }

    /// Stops delivery and removes the consumer from the server.
    public func cancel() {
        let address = state.withLock { current -> UInt in
            defer { current = 0 }
            return current
        }
        guard let subscription = OpaquePointer(bitPattern: address) else { return }
        _ = natsSubscription_Unsubscribe(subscription)
        natsSubscription_Destroy(subscription)
    }

    deinit {
        cancel()
        // A delivery thread still inside the callback finishes it; later ones find no handler.
        NATSCallbacks.handlers.remove(box)
    }
}
