public import EventSourceryRabbitMQ
public import EventSourcery
import Foundation

/// The wire contract of commands: one AMQP message per command, from the sender's command
/// outbox to the target context's command queue.
///
/// | AMQP field | value |
/// |---|---|
/// | exchange | `<target>.commands` (topic, durable) |
/// | routing key | `<target>.<CommandType>` |
/// | `message_id` | the command's UUID, lower case — the receiver's dedupe key |
/// | `type` | the command's registered type name |
/// | `content_type` | `application/json`; the body is the command's JSON |
/// | `delivery_mode` | 2 (persistent) |
/// | `timestamp` | `createdAt`, seconds |
/// | `app_id` | the sending context: the receiver names it as the sender of a ``CommandRejected`` |
/// | `correlation_id` | the correlation id |
/// | `x-causation-id` | the causation id (UUID string), when there is one |
/// | `x-schema-version` | the command's schema version (integer ≥ 1; 1 when absent) |
/// | `traceparent` | the W3C trace context, when there is one: the relay's send span when a tracer is bootstrapped, else the context stored with the command |
///
/// The queue `<target>.commands` (quorum, with a delivery limit, dead-lettered to
/// `<target>.dlx` like the inbox) is bound to the exchange with `<target>.#`.
public enum CommandMessage {
    /// The topic exchange a context receives commands on: `<context>.commands`.
    public static func exchange(for context: String) -> String { "\(context).commands" }
    /// The quorum queue a context consumes commands from: `<context>.commands`.
    public static func queue(for context: String) -> String { "\(context).commands" }
    /// The routing key of a command type sent to a context.
    public static func routingKey(target: String, typeName: String) -> String { "\(target).\(typeName)" }

    /// The message that carries `command`, sent by `sender`.
    ///
    /// - Parameter traceContext: The trace context for the headers (the relay's send span's); by
    ///   default the one stored with the command.
    public static func outgoing(_ command: EncodedCommand, sender: String, traceContext: [String: String]? = nil) -> OutgoingMessage {
        var headers: AMQPTable = [EventMessage.Header.schemaVersion: .int64(Int64(command.schemaVersion))]
        if let causation = command.metadata.causationID {
            headers[EventMessage.Header.causationID] = .string(causation.lowercasedString)
        }
        if let traceParent = (traceContext ?? command.metadata.traceContext)[EventMessage.Header.traceParent] {
            headers[EventMessage.Header.traceParent] = .string(traceParent)
        }
        let properties = AMQPProperties(
            contentType: EventMessage.contentType,
            headers: headers,
            deliveryMode: .persistent,
            correlationId: command.metadata.correlationID?.lowercasedString,
            messageId: command.id.lowercasedString,
            timestamp: Date(timeIntervalSince1970: command.createdAt.timeIntervalSince1970.rounded(.down)),
            type: command.typeName,
            appId: sender
        )
        return OutgoingMessage(
            exchange: exchange(for: command.target), routingKey: routingKey(target: command.target, typeName: command.typeName),
            body: command.payload, properties: properties, mandatory: true)
    }

    /// Reads and decodes the command a delivery carries: the incoming half of the contract.
    ///
    /// - Parameters:
    ///   - context: The receiving context; the delivery must come from `<context>.commands`.
    ///   - registry: The command types the context handles.
    /// - Throws: ``PoisonMessage``: `missingMessageID`/`invalidMessageID`, `wrongContentType`,
    ///   `missingHeaders` (no `type`), `invalidHeaders`, `misrouted`, `unknownCommandType`,
    ///   `undecodablePayload`.
    public static func incoming(_ delivery: Delivery, context: String, registry: CommandRegistry) throws(PoisonMessage) -> ReceivedCommand {
        let properties = delivery.properties
        guard let messageID = properties.messageId else {
            throw PoisonMessage(.missingMessageID, detail: "a command needs a message_id, its dedupe key")
        }
        guard let id = UUID(uuidString: messageID) else {
            throw PoisonMessage(.invalidMessageID, detail: "message_id '\(messageID.prefix(60))' is not a UUID")
        }
        guard let contentType = properties.contentType, EventMessage.isJSONContentType(contentType) else {
            throw PoisonMessage(.wrongContentType, detail: "content_type is '\(properties.contentType ?? "")', not application/json")
        }
        guard let typeName = properties.type, !typeName.isEmpty else {
            throw PoisonMessage(.missingHeaders, detail: "a command needs its type name in the type property")
        }
        guard delivery.exchange == exchange(for: context), delivery.routingKey == routingKey(target: context, typeName: typeName) else {
            throw PoisonMessage(
                .misrouted,
                detail: "a \(typeName) command for \(context) must come from \(exchange(for: context)) with routing key "
                    + "\(routingKey(target: context, typeName: typeName)), not \(delivery.exchange) / \(delivery.routingKey)")
        }
        let headers = properties.headers ?? [:]
        var metadata = EventMetadata(correlationID: properties.correlationId.flatMap(UUID.init(uuidString:)))
        if let causation = headers[EventMessage.Header.causationID] {
            guard let text = causation.stringValue, let causationID = UUID(uuidString: text) else {
                throw PoisonMessage(.invalidHeaders, detail: "x-causation-id is not a UUID")
            }
            metadata.causationID = causationID
        }
        if let traceParent = headers[EventMessage.Header.traceParent]?.stringValue {
            metadata.traceContext[EventMessage.Header.traceParent] = traceParent
        }
        let createdAt = properties.timestamp ?? Date()
        do {
            let envelope = try registry.decode(typeName: typeName, id: id, createdAt: createdAt, metadata: metadata, payload: delivery.body)
            return ReceivedCommand(envelope: envelope, sender: properties.appId ?? "unknown")
        } catch {
            throw error.code == .unknownEventType
                ? PoisonMessage(.unknownCommandType, detail: error.message) : PoisonMessage(.undecodablePayload, detail: error.message)
        }
    }
}
