public import EventSourceryRabbitMQ
public import EventSourcery
public import Foundation

/// When a consumer tries a failed event again and when it parks it: capped exponential
/// backoff over a fixed number of attempts. Pure: no clock, no randomness.
public struct RetrySchedule: Sendable, Equatable {
    /// The delays between attempts (no jitter: one consumer retries its own events).
    public let backoff: ReconnectBackoff
    /// Attempts of an event, the first included, before it is parked.
    public let attempts: Int

    /// Creates a schedule; see ``ContextConsumer/Configuration`` for the checks.
    init(firstDelay: Duration, maximumDelay: Duration, attempts: Int) {
        backoff = ReconnectBackoff(initialDelay: firstDelay, maximumDelay: maximumDelay, jitter: 0)
        self.attempts = attempts
    }

    /// The delay after the `failedAttempts`-th failed attempt: the first delay after the
    /// first, then doubling, never more than the maximum.
    public func delay(afterFailedAttempts failedAttempts: Int) -> Duration {
        backoff.delay(forAttempt: max(failedAttempts, 1) - 1, randomFraction: 0)
    }

    /// The held event after one more failed attempt at `now`: the attempt counted, the
    /// error kept, and either the next attempt scheduled or, once it has had ``attempts``
    /// attempts, the event parked.
    public func failed(_ event: HeldEvent, error: String, at now: Date) -> HeldEvent {
        var event = event
        event.attempts += 1
        event.lastError = error
        if event.attempts >= attempts {
            event.state = .parked
            event.nextAttemptAt = now
        } else {
            event.state = .waiting
            event.nextAttemptAt = now.addingTimeInterval(delay(afterFailedAttempts: event.attempts).seconds)
        }
        return event
    }
}

/// A consumer's held events grouped into their sequences, and the decisions taken on them:
/// which sequences are due, when the next one will be, which are parked. Pure.
public struct HeldSequences: Sendable {
    /// One source stream's held events, head first.
    public struct Entry: Sendable, Hashable {
        /// The consumer and source stream.
        public var sequence: HeldEvent.Sequence
        /// The first held event: the one to try next (or the parked one).
        public var head: HeldEvent
        /// How many events wait behind the head.
        public var waitingBehind: Int
    }

    /// The sequences in the order of their heads.
    public let entries: [Entry]

    /// Groups `events` (in sequence-number order, as the store lists them).
    public init(_ events: [HeldEvent]) {
        var entries: [Entry] = []
        var index: [HeldEvent.Sequence: Int] = [:]
        for event in events {
            if let position = index[event.sequence] {
                entries[position].waitingBehind += 1
            } else {
                index[event.sequence] = entries.count
                entries.append(Entry(sequence: event.sequence, head: event, waitingBehind: 0))
            }
        }
        self.entries = entries
    }

    /// The sequences whose head is waiting and due at `now`, earliest head first.
    public func due(at now: Date) -> [Entry] {
        entries.filter { $0.head.state == .waiting && $0.head.nextAttemptAt <= now }
    }

    /// The earliest next attempt of a waiting head, or `nil` when every sequence is parked.
    public var nextAttemptAt: Date? {
        entries.lazy.filter { $0.head.state == .waiting }.map(\.head.nextAttemptAt).min()
    }

    /// The parked sequences, for an operator.
    public var parked: [Entry] {
        entries.filter { $0.head.state == .parked }
    }

    /// The sequence of `event`, if it is held.
    public func entry(for sequence: HeldEvent.Sequence) -> Entry? {
        entries.first { $0.sequence == sequence }
    }
}
