import LogcastProtocol
import Testing

@testable import LogcastHub

/// Small builders shared by the LogcastHub tests.
enum TestSupport {
    static func record(
        _ message: String,
        source: String = "app",
        micros: Int64 = 0,
        host: String? = nil,
        path: String? = nil,
        priority: Int? = nil,
        unit: String? = nil,
        identifier: String? = nil,
        pid: Int? = nil,
        cursor: String? = nil
    ) -> LogRecord {
        LogRecord(
            timestamp: Timestamp(microseconds: micros),
            source: source,
            message: message,
            host: host,
            path: path,
            priority: priority,
            unit: unit,
            identifier: identifier,
            pid: pid,
            cursor: cursor
        )
    }

    /// A line entry whose `byteCount` is exactly `size` (json is `size - 64` bytes).
    static func lineEntry(_ seq: UInt64, size: Int = 100) -> HubEntry {
        precondition(size >= 64)
        return HubEntry(
            position: seq,
            payload: .line(record("line \(seq)")),
            json: [UInt8](repeating: UInt8(ascii: "x"), count: size - 64)
        )
    }

    static func eventEntry(_ position: UInt64, size: Int = 100) -> HubEntry {
        HubEntry(
            position: position,
            payload: .event(SourceEvent(source: "app", kind: .rotated)),
            json: [UInt8](repeating: UInt8(ascii: "e"), count: size - 64)
        )
    }

    static func string(_ bytes: [UInt8]) -> String { String(decoding: bytes, as: UTF8.self) }
}

extension SubscriberQueue.Item {
    /// `seq` of a line entry, nil otherwise.
    var lineSeq: UInt64? {
        if case .entry(let entry) = self, entry.isLine { return entry.position }
        return nil
    }

    var isControl: Bool {
        if case .control = self { return true }
        return false
    }

    /// The JSON bytes as text (control or entry).
    var text: String {
        switch self {
        case .control(let bytes): TestSupport.string(bytes)
        case .entry(let entry), .selected(let entry), .context(let entry): TestSupport.string(entry.json)
        case .separator: "--"
        case .prime(let entry, _): "prime " + TestSupport.string(entry.json)
        case .adopt: "adopt"
        case .run(let lines, _, _): lines.map { TestSupport.string($0.json) }.joined(separator: "\n")
        }
    }
}

extension Subscription {
    /// ``nextBatch(maxBytes:readOnExecutor:keepingRuns:)`` with a deadline:
    /// a batch that never comes fails the test after `limit` instead of
    /// hanging the whole run. The wait is cancelled then, which makes it
    /// return ``Batch/finished``; the recorded issue says why.
    ///
    /// The limit is far above any honest wait; it is not a timing check.
    func boundedBatch(
        maxBytes: Int,
        readOnExecutor: (any TaskExecutor)? = nil,
        keepingRuns: Bool = false,
        within limit: Duration = .seconds(60),
        sourceLocation: SourceLocation = #_sourceLocation
    ) async -> Batch {
        await withTaskGroup(of: Batch?.self) { group in
            group.addTask { await self.nextBatch(maxBytes: maxBytes, readOnExecutor: readOnExecutor, keepingRuns: keepingRuns) }
            group.addTask {
                try? await Task.sleep(for: limit)
                return nil
            }
            let first = await group.next()!
            group.cancelAll()
            if let batch = first {
                return batch
            }
            Issue.record("no batch within \(limit)", sourceLocation: sourceLocation)
            return await group.next()! ?? .finished
        }
    }
}
