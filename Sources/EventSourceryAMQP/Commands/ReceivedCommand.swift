public import EventSourcery
public import Foundation

/// What a command handler receives: the decoded command and who sent it.
public struct ReceivedCommand: Sendable {
    /// The decoded command with its id, time and metadata.
    public var envelope: CommandEnvelope
    /// The sending context (the message's `app_id`).
    public var sender: String

    public init(envelope: CommandEnvelope, sender: String) {
        self.envelope = envelope
        self.sender = sender
    }

    /// The command as `C`, or `nil` when it is of another type.
    public func `as`<C: Command>(_ type: C.Type) -> C? { envelope.as(type) }

    /// Wraps an event the handler records with causation id = the command's id and the
    /// command's correlation id and trace context.
    public func caused(_ event: any Event, createdAt: Date = Date()) -> EventEnvelope {
        EventEnvelope(event, createdAt: createdAt, metadata: envelope.causedMetadata)
    }
}
