public import Foundation

/// An incoming event a consumer holds back in its own store: its handler failed and waits
/// for a retry, or an earlier event of its source stream did.
///
/// Held events form one sequence per consumer and source stream, in ``sequence`` order. Only
/// the head of a sequence is ever run; the events behind it wait, so a source stream's events
/// are applied one after another in stream order even when one of them fails for a while.
/// The head's ``state``, ``attempts``, ``lastError`` and ``nextAttemptAt`` describe the whole
/// sequence: it is ``State/waiting`` for its next attempt, or ``State/parked`` until an
/// operator retries or skips the head.
public struct HeldEvent: Sendable, Hashable {
    /// Whether a sequence waits for its next attempt or for an operator.
    public enum State: String, Sendable, Hashable {
        /// The head is tried again at ``HeldEvent/nextAttemptAt``.
        case waiting
        /// The head used up its attempts; the sequence waits for an operator.
        case parked
    }

    /// The sequence a held event belongs to: the consumer and the source stream.
    public struct Sequence: Sendable, Hashable, CustomStringConvertible {
        /// The consuming context, such as `payment`.
        public var consumer: String
        /// The context that published the event.
        public var sourceContext: String
        /// The event's stream in the source context's store.
        public var sourceStream: StreamID

        public init(consumer: String, sourceContext: String, sourceStream: StreamID) {
            self.consumer = consumer
            self.sourceContext = sourceContext
            self.sourceStream = sourceStream
        }

        /// `<source context>/<source stream>`, as the admin commands name a sequence.
        public var description: String { "\(sourceContext)/\(sourceStream)" }
    }

    /// The store's order of held events, assigned when the event is held; 0 before.
    public var sequenceNumber: Int64
    /// The sequence (consumer and source stream) the event waits in.
    public var sequence: Sequence
    /// The event's version in its source stream.
    public var streamVersion: Int64
    /// The event as it arrived: id (the message id), type, schema version, time, metadata
    /// (correlation, causation, trace context) and JSON payload.
    public var event: EncodedEvent
    /// Failed attempts of this event so far; 0 for an event waiting behind another.
    public var attempts: Int
    /// The error of the last failed attempt.
    public var lastError: String?
    /// When the head may be tried again.
    public var nextAttemptAt: Date
    /// Waiting or parked (meaningful on the head of a sequence).
    public var state: State

    public init(
        sequenceNumber: Int64 = 0, sequence: Sequence, streamVersion: Int64, event: EncodedEvent, attempts: Int = 0,
        lastError: String? = nil, nextAttemptAt: Date, state: State = .waiting
    ) {
        self.sequenceNumber = sequenceNumber
        self.sequence = sequence
        self.streamVersion = streamVersion
        self.event = event
        self.attempts = attempts
        self.lastError = lastError
        self.nextAttemptAt = nextAttemptAt
        self.state = state
    }
}

/// What ``EventStorage/holdEvent(_:onlyBehindOthers:)`` did.
public enum HoldOutcome: Sendable, Hashable {
    /// The event was added at the end of its sequence, with this sequence number.
    case held(Int64)
    /// The consumer already holds an event with this id; nothing was written.
    case alreadyHeld
    /// The sequence was empty and the event was to be held only behind others; nothing was
    /// written, and the caller processes the event itself.
    case notHeld
}
