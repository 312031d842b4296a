#if canImport(Glibc)
import Glibc
#endif

/// The named values of one line: a journal entry's fields, or the fields
/// of a message that is a JSON object or logfmt (see ``FieldParser``).
///
/// One byte array holds them all, each as `NAME NUL VALUE NUL`, in the
/// order they were found: a line with thirty fields costs one allocation.
/// Names and values are valid UTF-8 without NUL bytes (``append(name:value:)``
/// skips anything else). A name may occur more than once (a journal entry
/// may repeat a field, a logfmt line a key): a test passes when any of the
/// values passes, and ``last(named:)`` (what `fields=` sends) is the last.
public struct LineFields: Sendable, Equatable {
    public private(set) var storage: [UInt8] = []
    public private(set) var count = 0

    public init() {}

    /// The fields `storage` holds, as ``storage`` gave them (a stored record
    /// read back): nil when the bytes are not a sequence of pairs.
    public init?(storage: [UInt8]) {
        var terminators = 0
        for byte in storage where byte == 0 { terminators += 1 }
        guard terminators % 2 == 0, storage.last == 0 || storage.isEmpty else { return nil }
        self.storage = storage
        self.count = terminators / 2
    }

    public var isEmpty: Bool { count == 0 }

    /// Adds a field. Skipped (returns false) when the name is empty or
    /// either side has a NUL byte or is not valid UTF-8.
    @discardableResult
    public mutating func append(name: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer) -> Bool {
        guard !name.isEmpty, !name.contains(0), !value.contains(0), Self.isValidUTF8(name), Self.isValidUTF8(value) else { return false }
        storage.append(contentsOf: name)
        storage.append(0)
        storage.append(contentsOf: value)
        storage.append(0)
        count += 1
        return true
    }

    @discardableResult
    public mutating func append(name: String, value: String) -> Bool {
        var name = name
        var value = value
        return name.withUTF8 { n in value.withUTF8 { v in append(name: UnsafeRawBufferPointer(n), value: UnsafeRawBufferPointer(v)) } }
    }

    /// Calls `body` with each name and value, in order; it returns false to stop.
    public func forEach(_ body: (_ name: UnsafeRawBufferPointer, _ value: UnsafeRawBufferPointer) -> Bool) {
        storage.withUnsafeBytes { bytes in
            guard let base = bytes.baseAddress else { return }
            let count = bytes.count
            var index = 0
            // memchr for each terminator: a line's fields are scanned at memory speed.
            while index < count, let nameStop = memchr(base + index, 0, count - index) {
                let nameEnd = base.distance(to: UnsafeRawPointer(nameStop))
                guard let valueStop = memchr(base + nameEnd + 1, 0, count - nameEnd - 1) else { return }
                let valueEnd = base.distance(to: UnsafeRawPointer(valueStop))
                let name = UnsafeRawBufferPointer(start: base + index, count: nameEnd - index)
                let value = UnsafeRawBufferPointer(start: base + nameEnd + 1, count: valueEnd - nameEnd - 1)
                guard body(name, value) else { return }
                index = valueEnd + 1
            }
        }
    }

    /// Whether `test` holds for some value of the field `name`.
    public func contains(named name: [UInt8], where test: (UnsafeRawBufferPointer) -> Bool) -> Bool {
        var found = false
        name.withUnsafeBytes { wanted in
            forEach { fieldName, value in
                if fieldName.count == wanted.count, memcmp(fieldName.baseAddress!, wanted.baseAddress!, wanted.count) == 0, test(value) {
                    found = true
                }
                return !found
            }
        }
        return found
    }

    /// The last value of the field `name`.
    public func last(named name: String) -> String? {
        let wanted = Array(name.utf8)
        var result: String?
        forEach { fieldName, value in
            if fieldName.elementsEqual(wanted) { result = String(decoding: value, as: UTF8.self) }
            return true
        }
        return result
    }

    /// The fields as a JSON object of strings, `{"status":"500",...}`: the
    /// last value of each name, in the order names first occur; only
    /// `names` (in their order) when given. Nil when none is there.
    public func jsonObject(selecting names: [String]?) -> [UInt8]? {
        var chosen: [(name: String, value: String)] = []
        if let names {
            for name in names {
                if let value = last(named: name) { chosen.append((name, value)) }
            }
        } else {
            var index: [String: Int] = [:]
            for pair in pairs {
                if let at = index[pair.name] {
                    chosen[at].value = pair.value
                } else {
                    index[pair.name] = chosen.count
                    chosen.append(pair)
                }
            }
        }
        guard !chosen.isEmpty else { return nil }
        var writer = JSONWriter(capacity: storage.count + 8 * chosen.count + 2)
        writer.beginObject()
        for pair in chosen { writer.field(pair.name, pair.value) }
        writer.endObject()
        return writer.bytes
    }

    /// `,"fields":{...}` (``jsonObject(selecting:)`` with its key and
    /// leading comma): what goes before a line object's closing `}`. Nil
    /// when none of the fields is there.
    public func member(selecting names: [String]?) -> [UInt8]? {
        jsonObject(selecting: names).map { Self.memberPrefix + $0 }
    }

    static let memberPrefix = Array(#","fields":"#.utf8)

    /// Every field as a pair of strings, in order (tests and clients).
    public var pairs: [(name: String, value: String)] {
        var out: [(name: String, value: String)] = []
        forEach { name, value in
            out.append((String(decoding: name, as: UTF8.self), String(decoding: value, as: UTF8.self)))
            return true
        }
        return out
    }

    /// The distinct names, in the order of their first occurrence.
    public var names: [String] {
        var seen = Set<String>()
        return pairs.map(\.name).filter { seen.insert($0).inserted }
    }

    public static func isValidUTF8(_ bytes: UnsafeRawBufferPointer) -> Bool {
        if bytes.allSatisfy({ $0 < 0x80 }) { return true }
        var iterator = bytes.makeIterator()
        var decoder = UTF8()
        while true {
            switch decoder.decode(&iterator) {
            case .scalarValue: continue
            case .emptyInput: return true
            case .error: return false
            }
        }
    }
}
