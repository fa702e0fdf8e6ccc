/// A subscription to one event type of one source context, written `source.Type`
/// (e.g. `payment.PaymentSucceeded`) in configuration and used as the routing key.
public struct EventSubscription: Sendable, Hashable, CustomStringConvertible {
    /// The context that publishes the event.
    public var source: String
    /// The registered event type name.
    public var type: String

    /// Creates a subscription.
    public init(source: String, type: String) {
        self.source = source
        self.type = type
    }

    /// Parses `source.Type`; `nil` unless both parts are non-empty and there is exactly one dot.
    public init?(_ text: String) {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else { return nil }
        self.init(source: String(parts[0]), type: String(parts[1]))
    }

    /// The routing key the source publishes this event type with.
    public var routingKey: String { EventMessage.routingKey(context: source, typeName: type) }

    public var description: String { routingKey }
}
