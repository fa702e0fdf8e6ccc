/// The state of a queue as reported by the broker.
public struct AMQPQueueState: Sendable, Hashable {
    /// The queue name.
    public var name: String
    /// Messages ready for delivery (not counting unacknowledged ones).
    public var messageCount: UInt32
    /// Active consumers.
    public var consumerCount: UInt32
}
