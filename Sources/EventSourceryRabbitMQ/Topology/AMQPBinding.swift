/// A binding of a queue to an exchange.
public struct AMQPBinding: Sendable, Hashable {
    /// The queue that receives messages.
    public var queue: String
    /// The exchange messages come from.
    public var exchange: String
    /// The routing key or pattern, e.g. `order.*`.
    public var routingKey: String
    /// Extra arguments (for headers exchanges).
    public var arguments: AMQPTable

    /// Creates a binding.
    public init(queue: String, exchange: String, routingKey: String, arguments: AMQPTable = [:]) {
        self.queue = queue
        self.exchange = exchange
        self.routingKey = routingKey
        self.arguments = arguments
    }
}
