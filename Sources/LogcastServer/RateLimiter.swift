import LogcastHub
import LogcastProtocol

/// A token bucket: up to `burst` events at once, refilled at `perSecond`.
///
/// A pure value: the caller passes the time, so tests drive it without
/// sleeping. Used to bound how fast one client may send messages.
public struct RateLimiter: Sendable {
    public let perSecond: Double
    public let burst: Double
    private var available: Double
    private var last: ContinuousClock.Instant?

    public init(perSecond: Double, burst: Int) {
        precondition(perSecond > 0 && burst > 0)
        self.perSecond = perSecond
        self.burst = Double(burst)
        available = Double(burst)
    }

    /// Takes one token if there is one; false means over the rate (nothing taken).
    public mutating func allow(at now: ContinuousClock.Instant = .now) -> Bool {
        if let last {
            let elapsed = now - last
            let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
            available = min(burst, available + max(0, seconds) * perSecond)
        }
        last = now
        guard available >= 1 else { return false }
        available -= 1
        return true
    }
}
