public import Foundation

/// A command together with its identity, creation time and tracing metadata.
///
/// The command's ``id`` is its dedupe key: the receiving context's inbox records it, so a
/// command delivered twice is handled once.
public struct CommandEnvelope: Sendable {
    /// The command's unique id.
    public var id: UUID
    /// When the command was created.
    public var createdAt: Date
    /// Correlation, causation and trace context, as for events.
    public var metadata: EventMetadata
    /// The command itself.
    public var command: any Command

    /// Wraps a command with a fresh time-ordered id and the current time.
    ///
    /// When `metadata` has no correlation id, the command starts a new flow and its own id
    /// becomes the correlation id.
    public init(_ command: any Command, id: UUID = .timeOrdered(), createdAt: Date = Date(), metadata: EventMetadata = EventMetadata()) {
        self.id = id
        self.createdAt = createdAt
        self.command = command
        self.metadata = metadata
        if self.metadata.correlationID == nil {
            self.metadata.correlationID = id
        }
    }

    /// The registered type name of ``command``.
    public var typeName: String { type(of: command).typeName }

    /// Returns the command as `C`, or `nil` when it is of another type.
    public func `as`<C: Command>(_ type: C.Type) -> C? { command as? C }

    /// Metadata for events and commands this command causes: causation id = the command's
    /// id, its correlation id and trace context.
    public var causedMetadata: EventMetadata {
        EventMetadata(correlationID: metadata.correlationID ?? id, causationID: id, traceContext: metadata.traceContext)
    }
}
