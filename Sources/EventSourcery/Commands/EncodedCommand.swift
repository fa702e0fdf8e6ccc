public import Foundation

/// A command encoded for the command outbox: the envelope fields, the JSON payload, the
/// context it goes to and when it is due.
public struct EncodedCommand: Sendable, Hashable {
    public var id: UUID
    public var typeName: String
    public var schemaVersion: Int
    public var createdAt: Date
    public var metadata: EventMetadata
    /// The command's own JSON.
    public var payload: Data
    /// The context that handles it, such as `payment`: the relay publishes it to
    /// `<target>.commands`.
    public var target: String
    /// When the relay may deliver it: the creation time for a command sent now, a later time
    /// for a deadline.
    public var dueAt: Date

    public init(
        id: UUID, typeName: String, schemaVersion: Int, createdAt: Date, metadata: EventMetadata, payload: Data, target: String,
        dueAt: Date
    ) {
        self.id = id
        self.typeName = typeName
        self.schemaVersion = schemaVersion
        self.createdAt = createdAt
        self.metadata = metadata
        self.payload = payload
        self.target = target
        self.dueAt = dueAt
    }
}
