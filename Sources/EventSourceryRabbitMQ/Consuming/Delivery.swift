public import Foundation

/// A message delivered to a consumer.
///
/// The body and properties are copied out of rabbitmq-c's buffers, so a delivery may be kept
/// and passed between tasks freely (copies share one immutable storage). Acknowledge it with
/// ``AMQPConsumer/ack(_:multiple:)``, ``AMQPConsumer/nack(_:multiple:requeue:)`` or
/// ``AMQPConsumer/reject(_:requeue:)``.
public struct Delivery: Sendable, Hashable {
    private final class Storage: Sendable {
        let body: Data
        let properties: AMQPProperties
        let exchange: String
        let routingKey: String
        let isRedelivered: Bool
        let deliveryTag: UInt64
        let consumerTag: String
        let generation: UInt64

        init(
            body: Data, properties: AMQPProperties, exchange: String, routingKey: String, isRedelivered: Bool, deliveryTag: UInt64,
            consumerTag: String, generation: UInt64
        ) {
            self.body = body
            self.properties = properties
            self.exchange = exchange
            self.routingKey = routingKey
            self.isRedelivered = isRedelivered
            self.deliveryTag = deliveryTag
            self.consumerTag = consumerTag
            self.generation = generation
        }
    }

    private let storage: Storage

    /// The body.
    public var body: Data { storage.body }
    /// The basic properties and headers.
    public var properties: AMQPProperties { storage.properties }
    /// The exchange the message was published to.
    public var exchange: String { storage.exchange }
    /// The routing key it was published with.
    public var routingKey: String { storage.routingKey }
    /// Whether the broker delivered this message before (to any consumer) without an ack.
    public var isRedelivered: Bool { storage.isRedelivered }
    /// The channel-scoped delivery tag.
    public var deliveryTag: UInt64 { storage.deliveryTag }
    /// The consumer tag of the subscription that received it.
    public var consumerTag: String { storage.consumerTag }
    /// The connection incarnation that delivered it; acknowledgements for deliveries of an
    /// earlier incarnation are dropped (the broker redelivers those messages).
    var generation: UInt64 { storage.generation }

    init(
        body: Data, properties: AMQPProperties, exchange: String, routingKey: String, isRedelivered: Bool, deliveryTag: UInt64,
        consumerTag: String, generation: UInt64
    ) {
        storage = Storage(
            body: body, properties: properties, exchange: exchange, routingKey: routingKey,
            isRedelivered: isRedelivered, deliveryTag: deliveryTag, consumerTag: consumerTag, generation: generation
        )
    }

    /// Deliveries are equal when every field is equal.
    public static func == (lhs: Delivery, rhs: Delivery) -> Bool {
        lhs.storage === rhs.storage
            || (lhs.deliveryTag == rhs.deliveryTag && lhs.generation == rhs.generation && lhs.consumerTag == rhs.consumerTag
                && lhs.isRedelivered == rhs.isRedelivered && lhs.exchange == rhs.exchange && lhs.routingKey == rhs.routingKey
                && lhs.body == rhs.body && lhs.properties == rhs.properties)
    }

    /// Hashes the delivery tag, connection incarnation and consumer tag.
    public func hash(into hasher: inout Hasher) {
        hasher.combine(deliveryTag)
        hasher.combine(generation)
        hasher.combine(consumerTag)
    }
}
