public import EventSourceryRabbitMQ
public import Foundation

/// The broker objects one context needs, computed from a ``ContextDescription``.
///
/// - the topic exchange `<context>.events` it publishes to, and `<source>.events` of every
///   context it subscribes to;
/// - the durable quorum queue `<context>.inbox` with `x-delivery-limit` and
///   `x-dead-letter-exchange: <context>.dlx`, bound to `<source>.events` with the routing
///   key `<source>.<EventType>` of each subscription;
/// - the fanout exchange `<context>.dlx` and the durable classic queue `<context>.dead`
///   bound to it, where messages past the delivery limit and poison messages end up;
/// - for a context that accepts commands, the topic exchange `<context>.commands` and the
///   quorum queue `<context>.commands` (same delivery limit and dead-lettering as the inbox)
///   bound to it with `<context>.#`; and the command exchanges of the contexts it sends
///   commands to (``CommandMessage``).
///
/// ```swift
/// let topology = ContextTopology(ContextDescription(
///     name: "invoice",
///     handlers: ["issue-invoice": [EventSubscription(source: "payment", type: "PaymentSucceeded")]],
///     deliveryLimit: 5))
/// try await topology.declare(on: connection)
/// try topology.definitionsJSON().write(to: URL(fileURLWithPath: "compose/definitions.json"))
/// ```
public struct ContextTopology: Sendable, Hashable {
    /// The consuming context.
    public var context: String
    /// Exchanges, in declaration order.
    public var exchanges: [AMQPExchange]
    /// Queues, in declaration order.
    public var queues: [AMQPQueue]
    /// Bindings, in declaration order.
    public var bindings: [AMQPBinding]

    /// The inbox queue of a context: `<context>.inbox`.
    public static func inboxQueue(for context: String) -> String { "\(context).inbox" }
    /// The dead-letter exchange of a context: `<context>.dlx`.
    public static func deadLetterExchange(for context: String) -> String { "\(context).dlx" }
    /// The dead-letter queue of a context: `<context>.dead`.
    public static func deadLetterQueue(for context: String) -> String { "\(context).dead" }

    /// Computes the topology of a context.
    public init(_ description: ContextDescription) {
        let name = description.name
        context = name
        let sources = Set(description.subscriptions.map(\.source)).subtracting([name]).sorted()
        exchanges = ([name] + sources).map { AMQPExchange(name: EventMessage.exchange(for: $0), kind: .topic, durable: true) }
        exchanges.append(AMQPExchange(name: Self.deadLetterExchange(for: name), kind: .fanout, durable: true))
        queues = [
            Self.quorumQueue(Self.inboxQueue(for: name), of: description),
            AMQPQueue(name: Self.deadLetterQueue(for: name), durable: true),
        ]
        bindings = description.subscriptions.map { subscription in
            AMQPBinding(
                queue: Self.inboxQueue(for: name), exchange: EventMessage.exchange(for: subscription.source),
                routingKey: subscription.routingKey)
        }
        bindings.append(AMQPBinding(queue: Self.deadLetterQueue(for: name), exchange: Self.deadLetterExchange(for: name), routingKey: "#"))
        let commandExchanges = Set(description.commandTargets + (description.acceptsCommands ? [name] : [])).sorted()
        exchanges += commandExchanges.map { AMQPExchange(name: CommandMessage.exchange(for: $0), kind: .topic, durable: true) }
        if description.acceptsCommands {
            queues.append(Self.quorumQueue(CommandMessage.queue(for: name), of: description))
            bindings.append(
                AMQPBinding(queue: CommandMessage.queue(for: name), exchange: CommandMessage.exchange(for: name), routingKey: "\(name).#"))
        }
    }

    /// A durable quorum queue of the context with its delivery limit, dead-lettered to `<context>.dlx`.
    private static func quorumQueue(_ queue: String, of description: ContextDescription) -> AMQPQueue {
        AMQPQueue(
            name: queue, durable: true,
            arguments: [
                "x-queue-type": "quorum",
                "x-delivery-limit": .int64(Int64(max(1, description.deliveryLimit))),
                "x-dead-letter-exchange": .string(deadLetterExchange(for: description.name)),
            ])
    }

    /// The inbox queue's name.
    public var inboxQueue: String { Self.inboxQueue(for: context) }
    /// The dead-letter exchange's name.
    public var deadLetterExchange: String { Self.deadLetterExchange(for: context) }
    /// The dead-letter queue's name.
    public var deadLetterQueue: String { Self.deadLetterQueue(for: context) }

    /// Declares every exchange, queue and binding; declaring again changes nothing.
    ///
    /// - Throws: ``AMQPError`` with code ``AMQPError/Code/preconditionFailed`` when an object
    ///   exists with other settings (e.g. an inbox declared with another delivery limit).
    public func declare(on connection: AMQPConnection) async throws {
        for exchange in exchanges { try await connection.declare(exchange) }
        for queue in queues { try await connection.declare(queue) }
        for binding in bindings { try await connection.bind(binding) }
    }

    /// This topology as a RabbitMQ definitions document (vhost `/`), for `load_definitions`
    /// in compose.
    public func definitionsJSON() throws -> Data {
        try Self.definitionsJSON([self])
    }

    /// Several contexts' topologies merged into one RabbitMQ definitions document (vhost
    /// `/`); objects several contexts share (a source's exchange) appear once.
    public static func definitionsJSON(_ topologies: [ContextTopology]) throws -> Data {
        var exchanges: [String: [String: Any]] = [:]
        var queues: [String: [String: Any]] = [:]
        var bindings: [String: [String: Any]] = [:]
        for topology in topologies {
            for exchange in topology.exchanges {
                exchanges[exchange.name] = [
                    "name": exchange.name, "vhost": "/", "type": exchange.kind.name, "durable": exchange.durable,
                    "auto_delete": exchange.autoDelete, "internal": exchange.internal, "arguments": jsonObject(exchange.arguments),
                ]
            }
            for queue in topology.queues {
                queues[queue.name] = [
                    "name": queue.name, "vhost": "/", "durable": queue.durable, "auto_delete": queue.autoDelete,
                    "arguments": jsonObject(queue.arguments),
                ]
            }
            for binding in topology.bindings {
                bindings["\(binding.exchange)|\(binding.queue)|\(binding.routingKey)"] = [
                    "source": binding.exchange, "vhost": "/", "destination": binding.queue, "destination_type": "queue",
                    "routing_key": binding.routingKey, "arguments": jsonObject(binding.arguments),
                ]
            }
        }
        let document: [String: Any] = [
            "vhosts": [["name": "/"]],
            "exchanges": exchanges.keys.sorted().compactMap { exchanges[$0] },
            "queues": queues.keys.sorted().compactMap { queues[$0] },
            "bindings": bindings.keys.sorted().compactMap { bindings[$0] },
        ]
        return try JSONSerialization.data(withJSONObject: document, options: [.prettyPrinted, .sortedKeys])
    }

    private static func jsonObject(_ table: AMQPTable) -> [String: Any] {
        table.mapValues(jsonValue)
    }

    private static func jsonValue(_ value: AMQPFieldValue) -> Any {
        switch value {
        case .string(let text): text
        case .bool(let flag): flag
        case .int32(let number): Int(number)
        case .int64(let number): Int(number)
        case .double(let number): number
        case .timestamp(let seconds): Int(seconds)
        case .table(let table): jsonObject(table)
        case .array(let values): values.map(jsonValue)
        case .bytes(let bytes): Data(bytes).base64EncodedString()
        case .void: NSNull()
        }
    }
}
