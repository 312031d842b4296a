/// The values of `since` and `until` (and `logcast tail -S/-U`): a point in
/// time, absolute or relative to now, as `journalctl -S` takes them.
///
/// Accepted forms:
/// - RFC 3339: `2026-12-01T10:00:00Z`, `2026-12-01T10:00:00.5+01:00`, also
///   with a space for the `T`; without a zone it is UTC;
/// - a date: `2026-12-01` (its midnight, UTC);
/// - relative: `-30s`, `-10m`, `-2h`, `-1d` (before now), `now`.
public enum TimeBound {
    /// The time `text` names, or nil when it is none of the accepted forms.
    public static func parse(_ text: String, now: Timestamp = .now()) -> Timestamp? {
        let text = text.trimmingWhitespace()
        if text == "now" { return now }
        if text.hasPrefix("-") { return relative(text.dropFirst(), now: now) }
        return absolute(Array(text.utf8))
    }

    /// What a bad value should have been, for error hints.
    public static let hint =
        "give a time as RFC 3339 (2026-12-01T10:00:00Z), a date (2026-12-01), or relative to now (-30s, -10m, -2h, -1d, now)"

    static func relative(_ text: Substring, now: Timestamp) -> Timestamp? {
        guard let unit = text.last, let amount = Int64(text.dropLast()), amount >= 0 else { return nil }
        let seconds: Int64
        switch unit {
        case "s": seconds = 1
        case "m": seconds = 60
        case "h": seconds = 3600
        case "d": seconds = 86400
        default: return nil
        }
        let (product, overflow) = amount.multipliedReportingOverflow(by: seconds * 1_000_000)
        guard !overflow else { return nil }
        return Timestamp(microseconds: now.microseconds - product)
    }

    static func absolute(_ b: [UInt8]) -> Timestamp? {
        func number(_ range: Range<Int>) -> Int64? {
            guard range.upperBound <= b.count else { return nil }
            var value: Int64 = 0
            for index in range {
                guard b[index] >= 48, b[index] <= 57 else { return nil }
                value = value * 10 + Int64(b[index] - 48)
            }
            return value
        }
        guard b.count >= 10, b[4] == UInt8(ascii: "-"), b[7] == UInt8(ascii: "-"),
            let year = number(0..<4), let month = number(5..<7), let day = number(8..<10),
            (1...12).contains(month), day >= 1, day <= daysIn(month: month, year: year)
        else { return nil }
        var seconds = daysFromCivil(year: year, month: month, day: day) * 86400
        var micros: Int64 = 0
        if b.count > 10 {
            guard b.count >= 19, b[10] == UInt8(ascii: "T") || b[10] == UInt8(ascii: "t") || b[10] == UInt8(ascii: " "),
                b[13] == UInt8(ascii: ":"), b[16] == UInt8(ascii: ":"),
                let hour = number(11..<13), let minute = number(14..<16), let second = number(17..<19),
                hour < 24, minute < 60, second < 61
            else { return nil }
            seconds += hour * 3600 + minute * 60 + min(second, 59)
            var index = 19
            if index < b.count, b[index] == UInt8(ascii: ".") {
                index += 1
                var digits = 0
                while index < b.count, b[index] >= 48, b[index] <= 57 {
                    if digits < 6 { micros = micros * 10 + Int64(b[index] - 48) }
                    digits += 1
                    index += 1
                }
                guard digits > 0 else { return nil }
                for _ in digits..<max(digits, 6) { micros *= 10 }
            }
            if index < b.count {
                switch b[index] {
                case UInt8(ascii: "Z"), UInt8(ascii: "z"):
                    guard index + 1 == b.count else { return nil }
                case UInt8(ascii: "+"), UInt8(ascii: "-"):
                    guard index + 6 == b.count, b[index + 3] == UInt8(ascii: ":"),
                        let hours = number(index + 1..<index + 3), let minutes = number(index + 4..<index + 6), hours < 24, minutes < 60
                    else { return nil }
                    let offset = hours * 3600 + minutes * 60
                    seconds += b[index] == UInt8(ascii: "+") ? -offset : offset
                default:
                    return nil
                }
            }
        }
        return Timestamp(microseconds: seconds * 1_000_000 + micros)
    }

    static func daysIn(month: Int64, year: Int64) -> Int64 {
        switch month {
        case 2: (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 ? 29 : 28
        case 4, 6, 9, 11: 30
        default: 31
        }
    }

    /// Days since 1970-01-01 of a proleptic Gregorian date.
    static func daysFromCivil(year: Int64, month: Int64, day: Int64) -> Int64 {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yearOfEra = y - era * 400
        let dayOfYear = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146_097 + dayOfEra - 719_468
    }
}

extension String {
    func trimmingWhitespace() -> String {
        let scalars = unicodeScalars
        guard let first = scalars.firstIndex(where: { !$0.properties.isWhitespace }),
            let last = scalars.lastIndex(where: { !$0.properties.isWhitespace })
        else { return "" }
        return String(scalars[first...last])
    }
}
