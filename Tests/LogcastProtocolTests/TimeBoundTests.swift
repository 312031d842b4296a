import Testing

@testable import LogcastProtocol

@Suite struct TimeBoundTests {
    let now = Timestamp(microseconds: 1_764_583_200_000_000)  // 2025-12-01T10:00:00Z

    @Test(arguments: [
        ("2025-12-01T10:00:00Z", 1_764_583_200_000_000),
        ("2025-12-01T10:00:00.5Z", 1_764_583_200_500_000),
        ("2025-12-01T10:00:00.123456789Z", 1_764_583_200_123_456),
        ("2025-12-01 11:00:00+01:00", 1_764_583_200_000_000),
        ("2025-12-01T05:30:00-04:30", 1_764_583_200_000_000),
        ("2025-12-01T10:00:00", 1_764_583_200_000_000),
        ("2025-12-01", 1_764_547_200_000_000),
        ("2024-02-29", 1_709_164_800_000_000),
        ("1970-01-01T00:00:00Z", 0),
        ("now", 1_764_583_200_000_000),
        ("-30s", 1_764_583_170_000_000),
        ("-10m", 1_764_582_600_000_000),
        ("-2h", 1_764_576_000_000_000),
        ("-1d", 1_764_496_800_000_000),
        ("  -1d ", 1_764_496_800_000_000),
    ])
    func parsesEveryForm(_ text: String, _ micros: Int64) {
        #expect(TimeBound.parse(text, now: now)?.microseconds == micros, "\(text)")
    }

    @Test(arguments: [
        "", "yesterday", "2025-13-01", "2025-02-30", "2023-02-29", "2025-12-01T25:00:00Z", "2025-12-01T10:00Z", "2025-12-01T10:00:00+1",
        "2025-12-01T10:00:00.Z", "-5y", "-m", "--5m", "-99999999999999999d", "2025-12-01T10:00:00Zjunk", "1764583200",
    ])
    func refusesTheRest(_ text: String) {
        #expect(TimeBound.parse(text, now: now) == nil, "\(text)")
    }

    @Test func roundTripsThroughTheWireForm() {
        for micros in [Int64(0), 1_764_583_200_123_456, 951_782_400_000_001] {
            let time = Timestamp(microseconds: micros)
            #expect(TimeBound.parse(time.rfc3339) == time)
        }
    }
}
