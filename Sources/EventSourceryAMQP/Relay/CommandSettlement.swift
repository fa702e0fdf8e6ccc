import EventSourceryRabbitMQ
import EventSourcery

/// What the relay does with a command once the broker answered: a pure decision, with the
/// same rules as for events (``RelaySettlement``) but no stream order to keep.
enum CommandSettlement {
    enum Action: Sendable, Hashable {
        /// The broker confirmed it: mark it sent.
        case markSent
        /// Record a failed attempt; the command is due again after `retryIn`.
        case retry(attempts: Int, reason: String, retryIn: Duration)
        /// Record the refusal that reaches the attempt limit: the command is parked.
        case park(attempts: Int, reason: String)
    }

    /// The action for `entry` after `outcome`. A refusal (`basic.nack`, `basic.return`) counts
    /// toward the attempt limit; a lost confirm never parks.
    static func action(
        for entry: CommandOutboxEntry, outcome: PublishOutcome, retry: RetryPolicy, randomFraction: Double = .random(in: 0...1)
    ) -> Action {
        guard !outcome.isConfirmed else { return .markSent }
        let attempts = entry.attempts + 1
        let (reason, isRefusal) = RelaySettlement.describe(outcome)
        if isRefusal && attempts >= retry.attemptLimit {
            return .park(attempts: attempts, reason: reason)
        }
        return .retry(attempts: attempts, reason: reason, retryIn: retry.delay(afterAttempts: attempts, randomFraction: randomFraction))
    }
}
