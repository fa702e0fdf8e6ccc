/// A queue declaration.
///
/// Declarations are idempotent: declaring a queue that exists with the same settings
/// succeeds; different settings fail with ``AMQPError/Code/preconditionFailed``.
///
/// ```swift
/// let inbox = AMQPQueue(name: "payment.inbox", arguments: [
///     "x-queue-type": "quorum",
///     "x-delivery-limit": .int32(5),
///     "x-dead-letter-exchange": "payment.dlx",
/// ])
/// ```
public struct AMQPQueue: Sendable, Hashable {
    /// The queue name.
    public var name: String
    /// Whether the queue survives a broker restart. Default `true`.
    public var durable: Bool
    /// Whether only this connection may use it; it is deleted when the connection closes.
    /// Default `false`.
    public var exclusive: Bool
    /// Whether the broker deletes it when its last consumer cancels. Default `false`.
    public var autoDelete: Bool
    /// Extra arguments such as `x-queue-type`, `x-delivery-limit`, `x-dead-letter-exchange`,
    /// `x-max-length`, `x-overflow`.
    public var arguments: AMQPTable

    /// Creates a queue declaration.
    public init(name: String, durable: Bool = true, exclusive: Bool = false, autoDelete: Bool = false, arguments: AMQPTable = [:]) {
        self.name = name
        self.durable = durable
        self.exclusive = exclusive
        self.autoDelete = autoDelete
        self.arguments = arguments
    }
}
