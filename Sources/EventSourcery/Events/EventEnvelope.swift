public import Foundation

/// An event together with its identity, creation time and tracing metadata.
public struct EventEnvelope: Sendable {
    /// The event's unique id; the dedupe key across the whole system.
    public var id: UUID
    /// When the event was created.
    public var createdAt: Date
    /// Correlation, causation and trace context.
    public var metadata: EventMetadata
    /// The event itself.
    public var event: any Event

    /// Wraps an event with a fresh time-ordered id (`UUID.timeOrdered(at:)`) and the current time.
    ///
    /// When `metadata` has no correlation id, the event starts a new flow and its own id
    /// becomes the correlation id.
    public init(_ event: any Event, id: UUID = .timeOrdered(), createdAt: Date = Date(), metadata: EventMetadata = EventMetadata()) {
        self.id = id
        self.createdAt = createdAt
        self.event = event
        self.metadata = metadata
        if self.metadata.correlationID == nil {
            self.metadata.correlationID = id
        }
    }

    /// The registered type name of ``event``.
    public var typeName: String { type(of: event).typeName }
    /// The schema version of ``event``'s type.
    public var schemaVersion: Int { type(of: event).schemaVersion }

    /// Returns the event as `E`, or `nil` when it is of another type.
    public func `as`<E: Event>(_ type: E.Type) -> E? { event as? E }
}
