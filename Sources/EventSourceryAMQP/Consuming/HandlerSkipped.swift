public import EventSourcery
public import Foundation

/// A handler skipped for one event because one of its conditions did not hold, recorded as
/// data in the stream `skipped-<context>` with the handler's inbox entry — the skip is
/// visible, never a silent disappearance. It keeps the event (type, metadata, JSON payload),
/// so an operator can force the handler to run for it later
/// (``ContextConsumer/rerun(handler:eventID:reason:)``).
public struct HandlerSkipped: Event, Equatable {
    /// The handler's name.
    public var handler: String
    /// The name of the condition that did not hold.
    public var condition: String
    /// The event's id.
    public var eventID: UUID
    /// The event's type name.
    public var eventType: String
    /// The event's schema version.
    public var schemaVersion: Int
    /// When the event was created.
    public var createdAt: Date
    /// The event's correlation id.
    public var correlationID: UUID?
    /// The event's causation id.
    public var causationID: UUID?
    /// The context that published it.
    public var sourceContext: String
    /// Its stream in the source context's store.
    public var sourceStream: String
    /// Its version in that stream.
    public var streamVersion: Int64
    /// Its JSON payload as it arrived.
    public var payload: String
    /// When the handler was skipped.
    public var skippedAt: Date

    /// Records that `handler` skipped `input` because of `condition`.
    public init(handler: String, condition: String, input: HandlerInput, skippedAt: Date = Date()) throws(EventStoreError) {
        let encoded = try EventRegistry.encode(input.envelope)
        self.handler = handler
        self.condition = condition
        eventID = encoded.id
        eventType = encoded.typeName
        schemaVersion = encoded.schemaVersion
        createdAt = encoded.createdAt
        correlationID = encoded.metadata.correlationID
        causationID = encoded.metadata.causationID
        sourceContext = input.sourceContext
        sourceStream = input.streamID.rawValue
        streamVersion = input.streamVersion
        payload = String(decoding: encoded.payload, as: UTF8.self)
        self.skippedAt = skippedAt
    }

    /// The stream a context's skipped handlers are recorded in: `skipped-<context>`.
    public static func stream(for context: String) -> StreamID {
        StreamID(stringLiteral: "skipped-\(context)")
    }

    /// The skipped event as the handler would have received it, decoded through `registry`.
    public func input(registry: EventRegistry) throws -> HandlerInput {
        let encoded = EncodedEvent(
            id: eventID, typeName: eventType, schemaVersion: schemaVersion, createdAt: createdAt,
            metadata: EventMetadata(correlationID: correlationID, causationID: causationID), payload: Data(payload.utf8))
        return HandlerInput(
            envelope: try registry.decode(encoded), sourceContext: sourceContext, streamID: try StreamID(sourceStream),
            streamVersion: streamVersion)
    }
}
