public import EventSourcery
public import Foundation

/// What a handler receives: the decoded event and where it came from.
public struct HandlerInput: Sendable {
    /// The decoded event with its id, time and metadata.
    public var envelope: EventEnvelope
    /// The context that published it.
    public var sourceContext: String
    /// The stream it belongs to in the source's store.
    public var streamID: StreamID
    /// Its version in that stream.
    public var streamVersion: Int64
    /// Which attempt this is: 1 on the first delivery, then 2, 3, ... after failures.
    public var attempt: Int

    /// Creates an input.
    public init(envelope: EventEnvelope, sourceContext: String, streamID: StreamID, streamVersion: Int64, attempt: Int = 1) {
        self.envelope = envelope
        self.sourceContext = sourceContext
        self.streamID = streamID
        self.streamVersion = streamVersion
        self.attempt = attempt
    }

    /// The decoded event.
    public var event: any Event { envelope.event }

    /// The event as `E`, or `nil` when it is of another type.
    public func `as`<E: Event>(_ type: E.Type) -> E? { envelope.as(type) }

    /// Metadata for events this handler appends: causation id = the consumed event's id,
    /// correlation id and trace context of the consumed event.
    public var causedMetadata: EventMetadata { .causedBy(envelope) }

    /// Wraps an event the handler appends with ``causedMetadata``.
    public func caused(_ event: any Event, createdAt: Date = Date()) -> EventEnvelope {
        EventEnvelope(event, createdAt: createdAt, metadata: causedMetadata)
    }
}
