public import EventSourceryRabbitMQ
public import EventSourcery
import Foundation

/// The wire contract between the outbox relay and context consumers: one AMQP message per
/// event.
///
/// | AMQP field | value |
/// |---|---|
/// | exchange | `<context>.events` |
/// | routing key | `<context>.<EventType>` |
/// | `message_id` | the event's UUID, lower case |
/// | `type` | the event's registered type name |
/// | `content_type` | `application/json`; the body is the event's JSON |
/// | `delivery_mode` | 2 (persistent) |
/// | `timestamp` | `createdAt`, seconds |
/// | `app_id` | the source context |
/// | `correlation_id` | the correlation id |
/// | headers | `x-stream-id`, `x-stream-version`, `x-causation-id`, `x-schema-version`, and the trace context (`traceparent`) |
public enum EventMessage {
    /// The content type of every event message.
    public static let contentType = "application/json"

    /// The topic exchange a context publishes its events to.
    public static func exchange(for context: String) -> String { "\(context).events" }

    /// The routing key of an event type published by a context.
    public static func routingKey(context: String, typeName: String) -> String { "\(context).\(typeName)" }

    /// Header names of the wire contract.
    public enum Header {
        public static let streamID = "x-stream-id"
        public static let streamVersion = "x-stream-version"
        public static let causationID = "x-causation-id"
        public static let schemaVersion = "x-schema-version"
    }

    /// The message that carries `event`, published by `context`.
    public static func outgoing(_ event: RecordedEvent, context: String) -> OutgoingMessage {
        var headers: AMQPTable = [
            Header.streamID: .string(event.streamID.rawValue),
            Header.streamVersion: .int64(event.streamVersion),
            Header.schemaVersion: .int64(Int64(event.event.schemaVersion)),
        ]
        if let causation = event.event.metadata.causationID {
            headers[Header.causationID] = .string(causation.uuidString.lowercased())
        }
        for (key, value) in event.event.metadata.traceContext {
            headers[key] = .string(value)
        }
        let properties = AMQPProperties(
            contentType: contentType,
            headers: headers,
            deliveryMode: .persistent,
            correlationId: event.event.metadata.correlationID?.uuidString.lowercased(),
            messageId: event.event.id.uuidString.lowercased(),
            timestamp: Date(timeIntervalSince1970: event.event.createdAt.timeIntervalSince1970.rounded(.down)),
            type: event.event.typeName,
            appId: context
        )
        return OutgoingMessage(
            exchange: exchange(for: context),
            routingKey: routingKey(context: context, typeName: event.event.typeName),
            body: event.event.payload,
            properties: properties,
            mandatory: true
        )
    }
}
