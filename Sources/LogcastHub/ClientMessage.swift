import Foundation
import LogcastProtocol

/// A message a client sends on an open stream.
public enum ClientMessage: Sendable, Equatable {
    /// `{"type":"subscribe","filter":{...},"backlog":N}`: replace the filter.
    case subscribe(SubscriptionRequest)

    /// Parses one text frame. `filter` takes the same keys as the query
    /// string, with JSON arrays for repeatable keys (a string also works);
    /// `backlog` may be given beside `filter` or inside it.
    public static func parse(_ text: String, knownSources: [String]) -> Result<ClientMessage, FilterError> {
        let hint = #"send {"type":"subscribe","filter":{"grep":["timeout"]},"backlog":100}"#
        guard let data = text.data(using: .utf8),
            let object = try? JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed]),
            let dictionary = object as? [String: Any]
        else {
            return .failure(FilterError("message is not a JSON object", hint: hint))
        }
        guard let type = dictionary["type"] as? String else {
            return .failure(FilterError("message has no \"type\"", hint: hint))
        }
        guard type == "subscribe" else {
            return .failure(FilterError("unknown message type '\(type)'", hint: "the only client message is subscribe; \(hint)"))
        }
        for key in dictionary.keys where !["type", "filter", "backlog"].contains(key) {
            return .failure(FilterError("unknown key '\(key)' in subscribe", hint: "subscribe takes type, filter and backlog"))
        }
        var items: [(key: String, value: String)] = []
        if let filter = dictionary["filter"] {
            guard let filter = filter as? [String: Any] else {
                return .failure(FilterError("\"filter\" is not an object", hint: hint))
            }
            for key in filter.keys.sorted() {
                guard let values = stringValues(filter[key]!) else {
                    return .failure(FilterError("filter key '\(key)' must be a string, a number or an array of strings", hint: hint))
                }
                // Array elements are separate values, commas and all; a plain string may list several.
                let splits = SubscriptionRequest.commaSeparatedKeys.contains(key) && filter[key] is String
                for value in values {
                    if splits {
                        for part in value.split(separator: ",") { items.append((key, String(part))) }
                    } else {
                        items.append((key, value))
                    }
                }
            }
        }
        if let backlog = dictionary["backlog"] {
            guard let values = stringValues(backlog), values.count == 1 else {
                return .failure(FilterError("\"backlog\" must be a number", hint: hint))
            }
            items.append(("backlog", values[0]))
        }
        for item in items where ["after", "epoch", "format", "fields"].contains(item.key) {
            return .failure(FilterError("'\(item.key)' cannot change on an open stream", hint: "reconnect with \(item.key) in the URL query"))
        }
        var limits = SubscriptionRequest.Limits(knownSources: knownSources)
        limits.maxValuesPerKey = 32
        do {
            let request = try SubscriptionRequest.parse(items, limits: limits, splitCommas: false)
            return .success(.subscribe(request))
        } catch {
            return .failure(error)
        }
    }

    private static func stringValues(_ value: Any) -> [String]? {
        if let string = value as? String { return [string] }
        if let number = value as? NSNumber {
            return [number.stringValue]
        }
        if let array = value as? [Any] {
            var out: [String] = []
            for element in array {
                guard let string = element as? String else { return nil }
                out.append(string)
            }
            return out
        }
        return nil
    }
}
