import Testing

@testable import LogcastProtocol

@Suite struct TimestampTests {
    private func rfc3339(seconds: Int64, micros: Int64 = 0) -> String {
        Timestamp(microseconds: seconds * 1_000_000 + micros).rfc3339
    }

    @Test func unixEpoch() {
        #expect(Timestamp(microseconds: 0).rfc3339 == "1970-01-01T00:00:00.000000Z")
    }

    @Test func leapDayWithOneMicrosecond() {
        #expect(Timestamp(microseconds: 1_709_210_096_000_001).rfc3339 == "2024-02-29T12:34:56.000001Z")
    }

    @Test func microsecondsArePrintedWithSixDigits() {
        #expect(rfc3339(seconds: 0, micros: 123_456) == "1970-01-01T00:00:00.123456Z")
        #expect(rfc3339(seconds: 0, micros: 999_999) == "1970-01-01T00:00:00.999999Z")
        #expect(rfc3339(seconds: 0, micros: 1_000) == "1970-01-01T00:00:00.001000Z")
    }

    @Test(arguments: [
        (Int64(951_782_400), "2000-02-29T00:00:00.000000Z"),
        (978_307_200, "2001-01-01T00:00:00.000000Z"),
        (-2_203_891_200, "1900-03-01T00:00:00.000000Z"),
        (4_107_542_399, "2100-02-28T23:59:59.000000Z"),
        (-11_670_998_400, "1600-02-29T00:00:00.000000Z"),
        (-62_135_596_800, "0001-01-01T00:00:00.000000Z"),
        (253_402_300_799, "9999-12-31T23:59:59.000000Z"),
    ])
    func knownInstants(seconds: Int64, text: String) {
        #expect(rfc3339(seconds: seconds) == text)
    }

    @Test func negativeValuesCountBackFromTheEpoch() {
        #expect(Timestamp(microseconds: -1).rfc3339 == "1969-12-31T23:59:59.999999Z")
        #expect(Timestamp(microseconds: -1_000_000).rfc3339 == "1969-12-31T23:59:59.000000Z")
        #expect(Timestamp(microseconds: -1_500_000).rfc3339 == "1969-12-31T23:59:58.500000Z")
        #expect(rfc3339(seconds: -86_400) == "1969-12-31T00:00:00.000000Z")
    }

    @Test func appendWritesTheSameBytes() {
        let stamp = Timestamp(microseconds: 1_709_210_096_123_456)
        var bytes: [UInt8] = Array("ts=".utf8)
        stamp.appendRFC3339(to: &bytes)
        #expect(String(decoding: bytes, as: UTF8.self) == "ts=" + stamp.rfc3339)
        #expect(stamp.rfc3339.utf8.count == 27)
    }

    @Test func orderingFollowsMicroseconds() {
        #expect(Timestamp(microseconds: -5) < Timestamp(microseconds: 3))
        #expect(!(Timestamp(microseconds: 3) < Timestamp(microseconds: 3)))
    }

    @Test func nowIsAfter2024() {
        #expect(Timestamp.now() > Timestamp(microseconds: 1_704_067_200_000_000))
    }
}

@Suite struct TimestampRangeTests {
    @Test func outOfRangeStampsAreClampedNotCrashing() {
        #expect(Timestamp(microseconds: Int64.min).rfc3339 == "0001-01-01T00:00:00.000000Z")
        #expect(Timestamp(microseconds: Int64.max).rfc3339 == "9999-12-31T23:59:59.999999Z")
    }
}
