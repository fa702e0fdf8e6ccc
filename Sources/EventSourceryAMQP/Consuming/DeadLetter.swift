public import EventSourceryRabbitMQ
public import Foundation

/// A message in a context's dead-letter queue `<context>.dead`, as ``ContextAdmin`` lists it.
public struct DeadLetter: Sendable, Hashable {
    /// The message id (the event id), if it had one.
    public var messageID: String?
    /// The event type name, if it had one.
    public var type: String?
    /// The publishing context (`app_id`), if known.
    public var sourceContext: String?
    /// The routing key it was published with.
    public var routingKey: String
    /// Why it is dead: the consumer's `x-death-reason` for poison messages (e.g.
    /// `malformedJSON`), or the broker's reason (`delivery_limit`, `rejected`, `expired`).
    public var reason: String
    /// More about the reason (the consumer's `x-death-detail`), if any.
    public var detail: String?
    /// The body.
    public var body: Data
    /// The properties and headers.
    public var properties: AMQPProperties
    /// The queue it was dead-lettered from (`x-first-death-queue`): an inbox queue, or
    /// `<context>.commands` for a command.
    public var queue: String?

    /// Whether it is a command (it died in a command queue `<context>.commands`).
    public var isCommand: Bool { queue?.hasSuffix(".commands") ?? false }

    /// The header naming the queue a message was dead-lettered from: set by the broker, and by
    /// the command consumer for the poison commands it dead-letters itself.
    public static let queueHeader = "x-first-death-queue"

    /// Reads a dead-lettered delivery.
    public init(_ delivery: Delivery) {
        let headers = delivery.properties.headers ?? [:]
        messageID = delivery.properties.messageId
        type = delivery.properties.type
        sourceContext = delivery.properties.appId
        routingKey = delivery.routingKey
        body = delivery.body
        properties = delivery.properties
        queue = headers[Self.queueHeader]?.stringValue
        detail = headers[EventMessage.deathDetailHeader]?.stringValue
        if let reason = headers[EventMessage.deathReasonHeader]?.stringValue {
            self.reason = reason
        } else if let reason = headers["x-first-death-reason"]?.stringValue {
            self.reason = reason
        } else if case .array(let deaths)? = headers["x-death"], case .table(let first)? = deaths.first,
            let reason = first["reason"]?.stringValue
        {
            self.reason = reason
        } else {
            reason = "unknown"
        }
    }
}
