public import Foundation

/// A command in its sender's command outbox: waiting until it is due, sent, parked after too
/// many refusals, or cancelled before it was sent.
public struct CommandOutboxEntry: Sendable, Hashable {
    /// The state of an entry.
    public enum State: String, Sendable, Hashable, CaseIterable {
        /// Waiting until due, or for its next attempt.
        case pending
        /// Reached its attempt limit; kept, visible, until an operator acts.
        case parked
        /// Confirmed by the broker.
        case sent
        /// Cancelled before it was sent (a deadline that is no longer needed).
        case cancelled
    }

    /// The command.
    public var command: EncodedCommand
    /// The entry's state.
    public var state: State
    /// Failed attempts so far.
    public var attempts: Int
    /// The error of the last failed attempt.
    public var lastError: String?
    /// When the entry may be attempted again after a failure.
    public var nextAttemptAt: Date?

    public init(command: EncodedCommand, state: State, attempts: Int = 0, lastError: String? = nil, nextAttemptAt: Date? = nil) {
        self.command = command
        self.state = state
        self.attempts = attempts
        self.lastError = lastError
        self.nextAttemptAt = nextAttemptAt
    }
}
