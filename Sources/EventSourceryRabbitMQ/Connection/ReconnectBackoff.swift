/// Capped exponential backoff between reconnection attempts.
///
/// Attempt `n` (counting from 0) waits `initialDelay * multiplier^n`, capped at
/// ``maximumDelay``, then reduced by up to ``jitter`` (a fraction) so many clients do not
/// reconnect in lock-step. The type is pure: ``delay(forAttempt:randomFraction:)`` takes the
/// random number as input.
public struct ReconnectBackoff: Sendable, Equatable {
    /// The delay before the first retry. Default 100 ms.
    public var initialDelay: Duration
    /// The largest delay. Default 5 s.
    public var maximumDelay: Duration
    /// The growth factor per attempt. Default 2.
    public var multiplier: Double
    /// The fraction of the delay that is randomised away, 0...1. Default 0.2.
    public var jitter: Double

    /// Creates a backoff policy. Its owner checks it with ``validate()`` before use.
    public init(
        initialDelay: Duration = .milliseconds(100), maximumDelay: Duration = .seconds(5), multiplier: Double = 2, jitter: Double = 0.2
    ) {
        self.initialDelay = initialDelay
        self.maximumDelay = maximumDelay
        self.multiplier = multiplier
        self.jitter = jitter
    }

    /// Checks the fields: no negative delay, a maximum no smaller than the initial delay, a
    /// multiplier of at least 1 and a jitter within 0...1.
    ///
    /// - Throws: ``AMQPError`` ``AMQPError/Code/invalidArgument`` naming the ``AMQPError/field``.
    public func validate() throws(AMQPError) {
        guard initialDelay >= .zero else { throw .invalidField("initialDelay", "must not be negative, got \(initialDelay)") }
        guard maximumDelay >= initialDelay else {
            throw .invalidField("maximumDelay", "must not be below initialDelay (\(initialDelay)), got \(maximumDelay)")
        }
        guard multiplier.isFinite, multiplier >= 1 else { throw .invalidField("multiplier", "must be at least 1, got \(multiplier)") }
        guard (0...1).contains(jitter) else { throw .invalidField("jitter", "must be within 0...1, got \(jitter)") }
    }

    /// The delay before attempt `attempt` (0 = the first retry).
    ///
    /// - Parameters:
    ///   - attempt: The number of failed attempts so far.
    ///   - randomFraction: A number in 0...1; 0 gives the full delay.
    /// - Returns: The delay, never more than ``maximumDelay`` and never negative.
    public func delay(forAttempt attempt: Int, randomFraction: Double) -> Duration {
        let initial = initialDelay.seconds
        let cap = maximumDelay.seconds
        let exponent = Double(max(0, min(attempt, 64)))
        let raw = min(cap, initial * pow(multiplier, exponent))
        let jittered = raw * (1 - jitter * min(max(randomFraction, 0), 1))
        return .nanoseconds(Int64(max(0, jittered) * 1e9))
    }

    /// The delay before attempt `attempt` with a random jitter.
    public func delay(forAttempt attempt: Int) -> Duration {
        delay(forAttempt: attempt, randomFraction: Double.random(in: 0...1))
    }

    private func pow(_ base: Double, _ exponent: Double) -> Double {
        var result = 1.0
        var remaining = Int(exponent)
        while remaining > 0 && result < 1e12 {
            result *= base
            remaining -= 1
        }
        return result
    }
}
