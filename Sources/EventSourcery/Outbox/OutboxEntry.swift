public import Foundation

/// An event waiting to be published to the broker, or parked after too many failed attempts.
public struct OutboxEntry: Sendable, Hashable {
    /// The state of an entry.
    public enum State: String, Sendable, Hashable {
        /// Waiting to be published (possibly after a failed attempt).
        case pending
        /// Reached its attempt limit; kept until requeued.
        case parked
        /// Confirmed by the broker.
        case published
    }

    /// The entry's id; outbox order is ascending id order.
    public var id: Int64
    /// The event to publish.
    public var event: RecordedEvent
    /// The entry's state.
    public var state: State
    /// Failed attempts so far.
    public var attempts: Int
    /// The error of the last failed attempt.
    public var lastError: String?
    /// When the entry may be attempted again.
    public var nextAttemptAt: Date?

    public init(id: Int64, event: RecordedEvent, state: State, attempts: Int, lastError: String?, nextAttemptAt: Date?) {
        self.id = id
        self.event = event
        self.state = state
        self.attempts = attempts
        self.lastError = lastError
        self.nextAttemptAt = nextAttemptAt
    }
}
