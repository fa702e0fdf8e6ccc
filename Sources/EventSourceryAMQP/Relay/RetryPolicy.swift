public import EventSourceryRabbitMQ

/// How the relay retries an entry the broker did not take: capped exponential backoff and
/// an attempt limit after which the entry is parked.
public struct RetryPolicy: Sendable, Equatable {
    /// The delays between attempts.
    public var backoff: ReconnectBackoff
    /// Broker refusals (`basic.nack`, unroutable returns) after which an entry is parked.
    /// Connection losses are recorded too but never park an entry: they say nothing about it.
    public var attemptLimit: Int

    /// Creates a policy. The defaults retry after about 0.2 s, 0.4 s, 0.8 s, … up to 30 s,
    /// and park after 10 refusals. ``validate()`` checks the values; ``OutboxRelay`` calls it
    /// before it runs.
    public init(initialBackoff: Duration = .milliseconds(200), maximumBackoff: Duration = .seconds(30), attemptLimit: Int = 10) {
        self.backoff = ReconnectBackoff(initialDelay: initialBackoff, maximumDelay: maximumBackoff)
        self.attemptLimit = attemptLimit
    }

    /// Checks the backoff (see ``ReconnectBackoff/validate()``) and that the attempt limit is positive.
    ///
    /// - Throws: ``AMQPError`` ``AMQPError/Code/invalidArgument`` naming the ``AMQPError/field``,
    ///   e.g. `attemptLimit` or `backoff.maximumDelay`.
    public func validate() throws(AMQPError) {
        do {
            try backoff.validate()
        } catch {
            throw error.nested(under: "backoff")
        }
        guard attemptLimit > 0 else { throw .invalidField("attemptLimit", "must be positive, got \(attemptLimit)") }
    }

    /// The delay before the next attempt of an entry that has failed `attempts` times.
    ///
    /// - Parameter randomFraction: A number in 0...1 for the jitter; 0 gives the full delay.
    public func delay(afterAttempts attempts: Int, randomFraction: Double = .random(in: 0...1)) -> Duration {
        backoff.delay(forAttempt: max(attempts, 1), randomFraction: randomFraction)
    }
}
