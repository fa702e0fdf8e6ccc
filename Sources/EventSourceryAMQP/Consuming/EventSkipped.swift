public import EventSourcery
public import Foundation

/// An operator's decision to skip a parked event, recorded as data in the stream
/// `failures-<context>` next to the ``HandlerFailed`` events: the event is not applied, the
/// events of its source stream behind it go on. It keeps the skipped event's payload.
public struct EventSkipped: Event, Equatable {
    /// The skipped event's id.
    public var eventID: UUID
    /// The skipped event's type name.
    public var eventType: String
    /// The context that published it.
    public var sourceContext: String
    /// Its stream in the source context's store.
    public var sourceStream: String
    /// Its version in that stream.
    public var streamVersion: Int64
    /// Its JSON payload as it arrived.
    public var payload: String
    /// The attempts it had.
    public var attempts: Int
    /// The error of its last attempt.
    public var lastError: String?
    /// Why the operator skipped it.
    public var reason: String
    /// When it was skipped.
    public var skippedAt: Date

    public init(
        eventID: UUID, eventType: String, sourceContext: String, sourceStream: String, streamVersion: Int64, payload: String,
        attempts: Int, lastError: String?, reason: String, skippedAt: Date
    ) {
        self.eventID = eventID
        self.eventType = eventType
        self.sourceContext = sourceContext
        self.sourceStream = sourceStream
        self.streamVersion = streamVersion
        self.payload = payload
        self.attempts = attempts
        self.lastError = lastError
        self.reason = reason
        self.skippedAt = skippedAt
    }
}

/// A parked-sequence command that found no parked sequence.
public struct ParkedSequenceError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The sequence the command named.
    public var sequence: HeldEvent.Sequence

    public init(sequence: HeldEvent.Sequence) {
        self.sequence = sequence
    }

    public var description: String {
        "No parked sequence for the stream \(sequence) in the consumer \(sequence.consumer); list them with --list-parked."
    }
}
