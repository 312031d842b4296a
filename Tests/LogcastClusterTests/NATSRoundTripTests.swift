import Foundation
import LogcastHub
import LogcastProtocol
import Synchronization
import Testing

@testable import LogcastCluster

/// A real `nats-server` with JetStream on a free loopback port, in a fresh directory.
final class NATSServer {
    let process = Process()
    let directory: String
    let url: String

    init() throws {
        var template = Array((NSTemporaryDirectory() + "logcast-nats-XXXXXX").utf8CString)
        directory = String(cString: mkdtemp(&template)!)
        process.executableURL = URL(fileURLWithPath: "/usr/sbin/nats-server")
        process.arguments = ["-js", "-a", "127.0.0.1", "-p", "-1", "-sd", directory, "--ports_file_dir", directory]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        let portsFile = directory + "/nats-server_\(process.processIdentifier).ports"
        let deadline = ContinuousClock.now + .seconds(30)
        var found: String?
        while found == nil, ContinuousClock.now < deadline {
            if let data = FileManager.default.contents(atPath: portsFile),
                let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
                let urls = object["nats"] as? [String], let first = urls.first
            {
                found = first
            } else {
                usleep(10_000)
            }
        }
        guard let found else { throw NATSError("nats-server did not start") }
        url = found
    }

    deinit {
        process.terminate()
        process.waitUntilExit()
        try? FileManager.default.removeItem(atPath: directory)
    }
}

/// Waits for `condition`, failing after 30 s.
func eventually(_ what: String, _ condition: () -> Bool) {
    let deadline = ContinuousClock.now + .seconds(30)
    while !condition() {
        if ContinuousClock.now > deadline {
            Issue.record("timed out waiting for \(what)")
            return
        }
        usleep(5_000)
    }
}

@Suite(.serialized) struct NATSRoundTripTests {
    func record(_ message: String, host: String = "web1") -> LogRecord {
        LogRecord(timestamp: Timestamp(microseconds: 1_764_579_929_000_000), source: "app", message: message, host: host)
    }

    @Test func linesGoThroughAStreamOnceInOrderAndReadFromAnySequence() throws {
        let server = try NATSServer()
        let nats = try NATSConnection(options: .init(urls: [server.url]))
        #expect(nats.isConnected)
        var settings = NATSConnection.StreamSettings(name: "LOGCAST", subjects: [ClusterSubject.all])
        settings.maxAge = .seconds(3600)
        let info = try nats.ensureStream(settings)
        #expect(info.created > 0 && info.lastSequence == 0)
        #expect(try nats.ensureStream(settings) == info, "a second call finds the same stream")

        let subject = ClusterSubject.subject(host: "web1", source: "app")
        func publish(_ subject: String, _ record: LogRecord, id: String) throws -> String {
            let ack = try nats.publish(subject: subject, body: ClusterRecord.encode(record), messageID: id)
            return "\(ack.sequence)\(ack.duplicate ? " duplicate" : "")"
        }
        #expect(try publish(subject, record("one"), id: "web1/e/1") == "1")
        #expect(try publish(subject, record("two"), id: "web1/e/2") == "2")
        #expect(try publish(subject, record("two"), id: "web1/e/2") == "2 duplicate", "a retry is a duplicate")
        let other = ClusterSubject.subject(host: "db.1", source: "pg")
        #expect(try publish(other, record("three", host: "db.1"), id: "db/e/1") == "3")

        let received = Mutex<[NATSConnection.Message]>([])
        let all = try nats.subscribeOrdered(stream: "LOGCAST", subject: ClusterSubject.all, startSequence: 1) { message in
            received.withLock { $0.append(message) }
        }
        eventually("three messages") { received.withLock { $0.count } == 3 }
        all.cancel()
        let messages = received.withLock { $0 }
        #expect(messages.map(\.sequence) == [1, 2, 3])
        #expect(messages.map(\.pending) == [2, 1, 0])
        let decoded = try messages.map { message in
            let names = try #require(ClusterSubject.parse(message.subject))
            return try ClusterRecord.decode(message.body, host: names.host, source: names.source)
        }
        #expect(decoded.map(\.message) == ["one", "two", "three"])
        #expect(decoded.map(\.host) == ["web1", "web1", "db.1"])

        // From a sequence, and through a subject filter for one host.
        let later = Mutex<[UInt64]>([])
        let fromTwo = try nats.subscribeOrdered(stream: "LOGCAST", subject: ClusterSubject.filter(host: "web1", source: nil), startSequence: 2) {
            message in
            later.withLock { $0.append(message.sequence) }
        }
        eventually("the web1 message from 2") { later.withLock { $0.count } == 1 }
        fromTwo.cancel()
        #expect(later.withLock { $0 } == [2])
    }

    @Test func aStreamThatDiffersFromAGivenLimitIsRefusedAndDefaultsYield() throws {
        let server = try NATSServer()
        let nats = try NATSConnection(options: .init(urls: [server.url]))
        var settings = NATSConnection.StreamSettings(name: "LOGCAST", subjects: [ClusterSubject.all])
        settings.maxAge = .seconds(3600)
        _ = try nats.ensureStream(settings)
        var other = settings
        other.maxAge = .seconds(60)
        #expect(throws: Never.self, "a limit left at its default yields to the stream's") { _ = try nats.ensureStream(other) }
        other.givenLimits[.maxAge] = "--nats-max-age"
        #expect {
            _ = try nats.ensureStream(other)
        } throws: { error in
            guard let error = error as? NATSError else { return false }
            return error.isSettings && error.description.hasPrefix("--nats-max-age is 60 s, but the stream LOGCAST exists with 3600 s")
        }
        var replicas = settings
        replicas.replicas = 3
        replicas.givenLimits[.replicas] = "c.yaml:3: nats-replicas"
        #expect(throws: NATSError.self) { _ = try nats.ensureStream(replicas) }
    }

    @Test func historyBeyondMemoryIsReadFromTheStream() throws {
        let server = try NATSServer()
        let nats = try NATSConnection(options: .init(urls: [server.url]))
        _ = try nats.ensureStream(.init(name: "LOGCAST", subjects: [ClusterSubject.all]))
        for i in 1...10 {
            _ = try nats.publish(
                subject: ClusterSubject.subject(host: "h", source: "app"),
                body: ClusterRecord.encode(record("n\(i)")),
                messageID: "h/e/\(i)"
            )
        }
        _ = try nats.publish(subject: "logcast.h.app", body: Array("not a record".utf8), messageID: "x")
        let history = StreamHistory(stream: "LOGCAST")
        #expect(history.lines(after: 0, before: 5, limit: 100).isEmpty, "not connected yet")
        history.connect(nats)
        #expect(history.lines(after: 2, before: 6, limit: 100).map(\.position) == [3, 4, 5])
        #expect(history.lines(after: 2, before: 100, limit: 3).map(\.position) == [3, 4, 5], "at most limit")
        #expect(history.lines(after: 8, before: 100, limit: 100).map(\.position) == [9, 10], "a message that is no record is skipped")
        #expect(history.lines(after: 11, before: 100, limit: 100).isEmpty, "past the end, at once")
        #expect(history.lines(since: Timestamp(microseconds: 0), before: 3, limit: 100).map(\.position) == [1, 2])
        let hourAgo = Timestamp(microseconds: Timestamp.now().microseconds - 3_600_000_000)
        #expect(history.lines(since: hourAgo, before: 4, limit: 100).map(\.position) == [1, 2, 3])
        let soon = Timestamp(microseconds: Timestamp.now().microseconds + 3_600_000_000)
        #expect(history.lines(since: soon, before: 100, limit: 100).isEmpty)
        let first = try #require(history.oldestLineTime)
        #expect(abs(first.microseconds - Timestamp.now().microseconds) < 60_000_000)
        let line = try #require(history.lines(after: 0, before: 2, limit: 1).first)
        #expect(String(decoding: line.json, as: UTF8.self).contains(#""seq":1"#))
    }

    @Test func asynchronousPublishesAreAcknowledgedByMessageID() throws {
        let server = try NATSServer()
        let nats = try NATSConnection(options: .init(urls: [server.url]))
        _ = try nats.ensureStream(.init(name: "LOGCAST", subjects: [ClusterSubject.all]))
        let answers = Mutex<[String: UInt64]>([:])
        let publisher = try nats.asyncPublisher(maxInFlight: 16, maxWait: .seconds(5)) { id, result in
            if case .success(let sequence) = result { answers.withLock { $0[id] = sequence } }
        }
        for i in 1...100 {
            try publisher.publish(subject: "logcast.h.app", body: ClusterRecord.encode(record("n\(i)")), messageID: "h/e/\(i)")
        }
        #expect(publisher.waitForAcknowledgements(timeout: .seconds(10)))
        eventually("every answer") { answers.withLock { $0.count } == 100 }
        #expect(answers.withLock { $0["h/e/1"] } == 1 && answers.withLock { $0["h/e/100"] } == 100)
        try publisher.publish(subject: "logcast.h.app", body: ClusterRecord.encode(record("n1")), messageID: "h/e/1")
        #expect(publisher.waitForAcknowledgements(timeout: .seconds(10)))
        #expect(try nats.streamInfo("LOGCAST").lastSequence == 100, "a repeat is a duplicate, not stored")
    }

    @Test func callbacksAfterTheirOwnerIsGoneFindNoHandler() throws {
        let server = try NATSServer()
        var nats: NATSConnection? = try NATSConnection(options: .init(urls: [server.url]))
        _ = try nats!.ensureStream(.init(name: "LOGCAST", subjects: [ClusterSubject.all]))
        var publisher: NATSAsyncPublisher? = try nats!.asyncPublisher(maxInFlight: 4, maxWait: .seconds(5)) { _, _ in }
        var subscription: NATSSubscription? = try nats!.subscribeOrdered(stream: "LOGCAST", subject: ClusterSubject.all, startSequence: 1) { _ in }
        let keys = (connection: nats!.events, acknowledgement: publisher!.box, handler: subscription!.box)
        func key(_ value: UInt) -> UnsafeMutableRawPointer? { UnsafeMutableRawPointer(bitPattern: value) }
        #expect(NATSCallbacks.connections.handler(key(keys.connection)) != nil)
        #expect(NATSCallbacks.acknowledgements.handler(key(keys.acknowledgement)) != nil)
        #expect(NATSCallbacks.handlers.handler(key(keys.handler)) != nil)
        subscription = nil
        #expect(NATSCallbacks.handlers.handler(key(keys.handler)) == nil, "a delivery after cancel reaches nobody")
        publisher = nil
        #expect(NATSCallbacks.acknowledgements.handler(key(keys.acknowledgement)) == nil, "a late acknowledgement or timeout reaches nobody")
        nats = nil
        #expect(NATSCallbacks.connections.handler(key(keys.connection)) == nil, "a late disconnect reaches nobody")
        let fresh = NATSCallbacks.connections.add {}
        #expect(fresh > keys.connection, "keys are never reused")
        NATSCallbacks.connections.remove(fresh)
        _ = (nats, publisher, subscription)
    }

    @Test func anUnreachableServerIsAClearError() {
        var options = NATSConnection.Options(urls: ["nats://127.0.0.1:9"])
        options.timeout = .seconds(1)
        #expect {
            _ = try NATSConnection(options: options)
        } throws: { error in
            "\(error)".contains("cannot connect to NATS at nats://127.0.0.1:9")
        }
    }
}
