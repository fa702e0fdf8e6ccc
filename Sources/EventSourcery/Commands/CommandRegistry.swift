public import Foundation

/// Maps stable type names to command types, for the receiving side.
///
/// A command handler's context registers every command type it handles; a delivery whose
/// type is not registered is poison (dead-lettered with the reason), never dropped.
public struct CommandRegistry: Sendable {
    private var types: [String: any Command.Type] = [:]

    /// Creates a registry holding `types`.
    public init(_ types: [any Command.Type] = []) {
        for type in types { register(type) }
    }

    /// Registers `type` under its ``Command/typeName``.
    public mutating func register(_ type: any Command.Type) {
        types[type.typeName] = type
    }

    /// The type registered under `typeName`, if any.
    public func type(named typeName: String) -> (any Command.Type)? { types[typeName] }

    /// All registered type names.
    public var typeNames: [String] { types.keys.sorted() }

    /// Encodes an envelope for the command outbox of its sender.
    ///
    /// - Parameters:
    ///   - target: The context that handles the command.
    ///   - dueAt: When it may be delivered; `nil` for now (its creation time).
    public static func encode(
        _ envelope: CommandEnvelope, to target: String, dueAt: Date? = nil
    ) throws(EventStoreError)
        -> EncodedCommand
    {
        guard !target.isEmpty else {
            throw EventStoreError(.invalidArgument, message: "A command needs a target context; '\(envelope.typeName)' has none.")
        }
        let payload: Data
        do {
            payload = try EventRegistry.payloadEncoder.encode(envelope.command)
        } catch {
            throw EventStoreError(
                .unencodableEvent, message: "Command '\(envelope.typeName)' could not be encoded as JSON.", typeName: envelope.typeName,
                underlying: error)
        }
        return EncodedCommand(
            id: envelope.id, typeName: envelope.typeName, schemaVersion: Swift.type(of: envelope.command).schemaVersion,
            createdAt: envelope.createdAt, metadata: envelope.metadata, payload: payload, target: target,
            dueAt: dueAt ?? envelope.createdAt)
    }

    /// Decodes a received command.
    ///
    /// - Throws: ``EventStoreError`` `unknownEventType` when no command type has that name,
    ///   `undecodablePayload` when the JSON does not decode into it.
    public func decode(
        typeName: String, id: UUID, createdAt: Date, metadata: EventMetadata, payload: Data
    ) throws(EventStoreError)
        -> CommandEnvelope
    {
        guard let type = types[typeName] else {
            throw EventStoreError(
                .unknownEventType, message: "No command type is registered under '\(typeName)' (command \(id)).", typeName: typeName)
        }
        do {
            let command = try EventRegistry.decoder.decode(type, from: payload)
            return CommandEnvelope(command, id: id, createdAt: createdAt, metadata: metadata)
        } catch {
            throw EventStoreError(
                .undecodablePayload, message: "The payload of command \(id) does not decode as '\(typeName)': \(error).",
                typeName: typeName, underlying: error)
        }
    }
}
