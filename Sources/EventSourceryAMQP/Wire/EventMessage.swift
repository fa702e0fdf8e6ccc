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
/// | `app_id` | the source context, informational: consumers take the source from the exchange |
/// | `correlation_id` | the correlation id |
/// | `x-stream-id` | the stream id (string) |
/// | `x-stream-version` | the event's version in its stream (integer ≥ 1) |
/// | `x-schema-version` | the event's schema version (integer ≥ 1; 1 when absent) |
/// | `x-causation-id` | the causation id (UUID string), when there is one |
/// | `traceparent` | the W3C trace context, when there is one: the relay's publish span when a tracer is bootstrapped, else the context stored with the event |
/// | `tracestate` | the W3C vendor trace state, when the tracer sets one |
///
/// A consumer reads exactly these: the source context is the exchange's, and the routing
/// key must match it and the type. A wrongly typed or out-of-range `x-` header makes the
/// message poison; other headers a publisher adds never become event metadata, and a
/// `traceparent` that is not valid W3C trace context is dropped (and logged).
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
        public static let traceParent = "traceparent"
        public static let traceState = "tracestate"
    }

    /// The headers that carry the trace context.
    public static let traceHeaders = [Header.traceParent, Header.traceState]

    /// The message that carries `event`, published by `context`.
    ///
    /// - Parameter traceContext: The trace context for the headers (the publish span's); by
    ///   default the one stored with the event.
    public static func outgoing(_ event: RecordedEvent, context: String, traceContext: [String: String]? = nil) -> OutgoingMessage {
        var headers: AMQPTable = [
            Header.streamID: .string(event.streamID.rawValue),
            Header.streamVersion: .int64(event.streamVersion),
            Header.schemaVersion: .int64(Int64(event.event.schemaVersion)),
        ]
        if let causation = event.event.metadata.causationID {
            headers[Header.causationID] = .string(causation.lowercasedString)
        }
        let trace = traceContext ?? event.event.metadata.traceContext
        for key in traceHeaders {
            if let value = trace[key] { headers[key] = .string(value) }
        }
        let properties = AMQPProperties(
            contentType: contentType,
            headers: headers,
            deliveryMode: .persistent,
            correlationId: event.event.metadata.correlationID?.lowercasedString,
            messageId: event.event.id.lowercasedString,
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
