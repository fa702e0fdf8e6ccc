public import Foundation

/// A message to publish.
///
/// Messages are persistent (delivery mode 2) unless ``properties`` says otherwise.
public struct OutgoingMessage: Sendable, Hashable {
    /// The exchange to publish to; `""` is the default exchange (routing key = queue name).
    public var exchange: String
    /// The routing key.
    public var routingKey: String
    /// The body.
    public var body: Data
    /// The basic properties.
    public var properties: AMQPProperties
    /// Whether the broker returns the message (``PublishOutcome/returned(replyCode:replyText:)``)
    /// when no queue is bound to receive it. Default `true`.
    public var mandatory: Bool

    /// Creates a message.
    ///
    /// - Parameters:
    ///   - exchange: The exchange; `""` is the default exchange.
    ///   - routingKey: The routing key.
    ///   - body: The body.
    ///   - properties: The basic properties; ``AMQPProperties/deliveryMode`` defaults to persistent.
    ///   - mandatory: Whether an unroutable message is returned. Default `true`.
    public init(exchange: String, routingKey: String, body: Data, properties: AMQPProperties = AMQPProperties(), mandatory: Bool = true) {
        self.exchange = exchange
        self.routingKey = routingKey
        self.body = body
        self.properties = properties
        if self.properties.deliveryMode == nil {
            self.properties.deliveryMode = .persistent
        }
        self.mandatory = mandatory
    }
}
