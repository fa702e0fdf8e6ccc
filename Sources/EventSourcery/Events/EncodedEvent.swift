public import Foundation

/// An event encoded for storage: the envelope fields plus the event's JSON payload.
///
/// Storage backends deal only in encoded events; ``EventStore`` encodes and decodes
/// them through an ``EventRegistry``.
public struct EncodedEvent: Sendable, Hashable {
    public var id: UUID
    public var typeName: String
    public var schemaVersion: Int
    public var createdAt: Date
    public var metadata: EventMetadata
    /// The event's own JSON.
    public var payload: Data

    public init(id: UUID, typeName: String, schemaVersion: Int, createdAt: Date, metadata: EventMetadata, payload: Data) {
        self.id = id
        self.typeName = typeName
        self.schemaVersion = schemaVersion
        self.createdAt = createdAt
        self.metadata = metadata
        self.payload = payload
    }
}

/// An event as the store recorded it: where it sits in its stream and in the global order.
public struct RecordedEvent: Sendable, Hashable {
    /// The stream the event belongs to.
    public var streamID: StreamID
    /// The event's version in its stream, starting at 1.
    public var streamVersion: Int64
    /// The event's position in the store's global order, starting at 1.
    public var position: Int64
    /// The encoded event.
    public var event: EncodedEvent

    public init(streamID: StreamID, streamVersion: Int64, position: Int64, event: EncodedEvent) {
        self.streamID = streamID
        self.streamVersion = streamVersion
        self.position = position
        self.event = event
    }
}

/// A recorded event decoded into its Swift type.
public struct StoredEvent: Sendable {
    /// The stream the event belongs to.
    public var streamID: StreamID
    /// The event's version in its stream, starting at 1.
    public var streamVersion: Int64
    /// The event's position in the store's global order.
    public var position: Int64
    /// The decoded event with its id, time and metadata.
    public var envelope: EventEnvelope

    public init(streamID: StreamID, streamVersion: Int64, position: Int64, envelope: EventEnvelope) {
        self.streamID = streamID
        self.streamVersion = streamVersion
        self.position = position
        self.envelope = envelope
    }

    /// The decoded event.
    public var event: any Event { envelope.event }
}
