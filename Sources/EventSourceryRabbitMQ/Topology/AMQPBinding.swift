/// A binding of a queue, or of another exchange, to an exchange.
///
/// ```swift
/// let inbox = AMQPBinding(queue: "payment.inbox", exchange: "order.events", routingKey: "order.*")
/// let partitions = AMQPBinding(destinationExchange: "payment.inbox-hash", exchange: "order.events", routingKey: "order.*")
/// ```
public struct AMQPBinding: Sendable, Hashable {
    /// What receives the messages of a binding.
    public enum DestinationKind: String, Sendable, Hashable {
        /// A queue (`queue.bind`).
        case queue
        /// Another exchange, which routes them on (`exchange.bind`, a RabbitMQ extension).
        case exchange
    }

    /// The queue, or the exchange of a ``DestinationKind/exchange`` binding, that receives
    /// messages.
    public var queue: String
    /// Whether ``queue`` names a queue or an exchange. Default ``DestinationKind/queue``.
    public var destinationKind: DestinationKind
    /// The exchange messages come from.
    public var exchange: String
    /// The routing key or pattern, e.g. `order.*`; for a consistent-hash exchange the
    /// binding's weight, e.g. `1`.
    public var routingKey: String
    /// Extra arguments (for headers exchanges).
    public var arguments: AMQPTable

    /// Creates a binding of a queue.
    public init(queue: String, exchange: String, routingKey: String, arguments: AMQPTable = [:]) {
        self.queue = queue
        self.destinationKind = .queue
        self.exchange = exchange
        self.routingKey = routingKey
        self.arguments = arguments
    }

    /// Creates a binding of the exchange `destinationExchange` to `exchange`: what `exchange`
    /// routes with `routingKey` goes on to `destinationExchange`, which routes it by its own type.
    public init(destinationExchange: String, exchange: String, routingKey: String, arguments: AMQPTable = [:]) {
        self.init(queue: destinationExchange, exchange: exchange, routingKey: routingKey, arguments: arguments)
        self.destinationKind = .exchange
    }
}
