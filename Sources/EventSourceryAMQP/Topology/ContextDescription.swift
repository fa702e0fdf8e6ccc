/// What the topology of one consuming context is computed from: the events it publishes and
/// the subscriptions of its handlers (usually read from `config/eventsourcery.yaml`).
public struct ContextDescription: Sendable, Hashable {
    /// The context name, e.g. `payment`.
    public var name: String
    /// The event types the context publishes.
    public var publishes: [String]
    /// The subscriptions of each handler, by handler name.
    public var handlers: [String: [EventSubscription]]
    /// Deliveries of one message (first delivery included) before the inbox queue
    /// dead-letters it.
    public var deliveryLimit: Int
    /// Whether the context handles commands: its topology then has the command exchange and
    /// queue `<context>.commands`.
    public var acceptsCommands: Bool
    /// The contexts it sends commands to: their command exchanges are declared too, so the
    /// relay's publishes have somewhere to go.
    public var commandTargets: [String]
    /// The inbox partitions: 1 is the single queue `<context>.inbox`; more are the queues
    /// `<context>.inbox.0` … `<context>.inbox.<partitions - 1>` behind a consistent-hash
    /// exchange on the source stream (see ``ContextTopology``).
    public var partitions: Int

    /// Creates a description.
    public init(
        name: String, publishes: [String] = [], handlers: [String: [EventSubscription]] = [:], deliveryLimit: Int = 5,
        acceptsCommands: Bool = false, commandTargets: [String] = [], partitions: Int = 1
    ) {
        self.name = name
        self.publishes = publishes
        self.handlers = handlers
        self.deliveryLimit = deliveryLimit
        self.acceptsCommands = acceptsCommands
        self.commandTargets = commandTargets
        self.partitions = partitions
    }

    /// Every subscription of every handler, without duplicates, sorted by routing key.
    public var subscriptions: [EventSubscription] {
        Set(handlers.values.joined()).sorted { $0.routingKey < $1.routingKey }
    }
}
