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
