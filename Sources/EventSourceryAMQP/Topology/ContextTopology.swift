public import EventSourceryRabbitMQ
public import Foundation

/// The broker objects one context needs, computed from a ``ContextDescription``.
///
/// - the topic exchange `<context>.events` it publishes to, and `<source>.events` of every
///   context it subscribes to;
/// - with one partition (``ContextDescription/partitions`` 1), the durable quorum queue
///   `<context>.inbox` with `x-delivery-limit` and `x-dead-letter-exchange: <context>.dlx`,
///   bound to `<source>.events` with the routing key `<source>.<EventType>` of each
///   subscription;
/// - with P > 1 partitions, the consistent-hash exchange `<context>.partitions`
///   (`x-consistent-hash`, plugin `rabbitmq_consistent_hash_exchange`) hashing the header
///   `x-stream-id`, bound to `<source>.events` with those routing keys, and the P quorum
///   queues `<context>.inbox.0` … `<context>.inbox.<P-1>` with the same delivery limit and
///   dead-lettering and `x-single-active-consumer`, bound to it with equal weight: every
///   event of one source stream lands in one partition, and each partition delivers to one
///   consumer at a time;
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
///     deliveryLimit: 5, partitions: 4))
/// try await topology.declare(on: connection)
/// try topology.definitionsJSON().write(to: URL(fileURLWithPath: "compose/definitions.json"))
/// ```
public struct ContextTopology: Sendable, Hashable {
    /// The consuming context.
    public var context: String
    /// The inbox partitions (1: the single queue `<context>.inbox`).
    public var partitions: Int
    /// Exchanges, in declaration order.
    public var exchanges: [AMQPExchange]
    /// Queues, in declaration order.
    public var queues: [AMQPQueue]
    /// Bindings, in declaration order.
    public var bindings: [AMQPBinding]
    /// The command exchanges among ``exchanges``: those of the command targets and, when the
    /// context accepts commands, its own (`<context>.commands`).
    public var commandExchanges: [String]

    /// The single inbox queue of a context: `<context>.inbox`.
    public static func inboxQueue(for context: String) -> String { "\(context).inbox" }
    /// Inbox partition `partition` of a context: `<context>.inbox.<partition>`.
    public static func partitionQueue(for context: String, partition: Int) -> String { "\(context).inbox.\(partition)" }
    /// The consistent-hash exchange that feeds a context's partitions: `<context>.partitions`.
    public static func partitionExchange(for context: String) -> String { "\(context).partitions" }
    /// The inbox queues of a context with `partitions` partitions: `<context>.inbox` for one,
    /// `<context>.inbox.0` … for more.
    public static func inboxQueues(for context: String, partitions: Int) -> [String] {
        partitions > 1 ? (0..<partitions).map { partitionQueue(for: context, partition: $0) } : [inboxQueue(for: context)]
    }
    /// The dead-letter exchange of a context: `<context>.dlx`.
    public static func deadLetterExchange(for context: String) -> String { "\(context).dlx" }
    /// The dead-letter queue of a context: `<context>.dead`.
    public static func deadLetterQueue(for context: String) -> String { "\(context).dead" }

    /// Computes the topology of a context.
    public init(_ description: ContextDescription) {
        let name = description.name
        context = name
        partitions = max(1, description.partitions)
        let partitioned = partitions > 1
        let sources = Set(description.subscriptions.map(\.source)).subtracting([name]).sorted()
        exchanges = ([name] + sources).map { AMQPExchange(name: EventMessage.exchange(for: $0), kind: .topic, durable: true) }
        if partitioned {
            exchanges.append(
                AMQPExchange(
                    name: Self.partitionExchange(for: name), kind: AMQPExchange.Kind("x-consistent-hash"), durable: true,
                    arguments: ["hash-header": .string(EventMessage.Header.streamID)]))
        }
        exchanges.append(AMQPExchange(name: Self.deadLetterExchange(for: name), kind: .fanout, durable: true))
        let inboxes = Self.inboxQueues(for: name, partitions: partitions)
        queues = inboxes.map { inbox in
            var queue = Self.quorumQueue(inbox, of: description)
            if partitioned { queue.arguments["x-single-active-consumer"] = .bool(true) }
            return queue
        }
        // A quorum queue too, so dead letters survive a node and stay reachable while it is down.
        queues.append(AMQPQueue(name: Self.deadLetterQueue(for: name), durable: true, arguments: ["x-queue-type": "quorum"]))
        bindings = description.subscriptions.map { subscription in
            partitioned
                ? AMQPBinding(
                    destinationExchange: Self.partitionExchange(for: name), exchange: EventMessage.exchange(for: subscription.source),
                    routingKey: subscription.routingKey)
                : AMQPBinding(
                    queue: Self.inboxQueue(for: name), exchange: EventMessage.exchange(for: subscription.source),
                    routingKey: subscription.routingKey)
        }
        if partitioned {
            // The routing key of a consistent-hash binding is its weight: equal shares.
            bindings += inboxes.map { AMQPBinding(queue: $0, exchange: Self.partitionExchange(for: name), routingKey: "1") }
        }
        bindings.append(AMQPBinding(queue: Self.deadLetterQueue(for: name), exchange: Self.deadLetterExchange(for: name), routingKey: "#"))
        commandExchanges = Set(description.commandTargets + (description.acceptsCommands ? [name] : [])).sorted().map(
            CommandMessage.exchange(for:))
        exchanges += commandExchanges.map { AMQPExchange(name: $0, kind: .topic, durable: true) }
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

    /// The queues the context's consumer consumes: ``inboxQueue`` alone, or the partitions.
    public var inboxQueues: [String] { Self.inboxQueues(for: context, partitions: partitions) }
    /// Whether the inbox is partitioned (``partitions`` > 1).
    public var isPartitioned: Bool { partitions > 1 }
    /// The single inbox queue's name, `<context>.inbox`: the inbox of a context with one
    /// partition, and the queue a partitioned context drains once when it migrates from a
    /// single inbox.
    public var inboxQueue: String { Self.inboxQueue(for: context) }
    /// The consistent-hash exchange's name (declared only when partitioned).
    public var partitionExchange: String { Self.partitionExchange(for: context) }
    /// The bindings of the single inbox `<context>.inbox` to the subscribed sources, as a
    /// context with one partition declares them; a partitioned context removes them when it
    /// migrates.
    public var singleInboxBindings: [AMQPBinding] {
        bindings.filter { $0.exchange != deadLetterExchange && $0.exchange != partitionExchange }.map {
            AMQPBinding(queue: inboxQueue, exchange: $0.exchange, routingKey: $0.routingKey)
        }
    }
    /// The dead-letter exchange's name.
    public var deadLetterExchange: String { Self.deadLetterExchange(for: context) }
    /// The dead-letter queue's name.
    public var deadLetterQueue: String { Self.deadLetterQueue(for: context) }

    /// Declares every exchange, queue and binding; declaring again changes nothing.
    ///
    /// - Throws: ``AMQPError`` with code ``AMQPError/Code/preconditionFailed`` when an object
    ///   exists with other settings (e.g. an inbox declared with another delivery limit).
    ///
    /// A dead-letter queue that an earlier version declared as a classic queue is kept as it
    /// is (a queue's type cannot change): it works, but lives on one node only. To make it a
    /// quorum queue, empty it (`context-consumer --replay-dead`), delete it and start again.
    public func declare(on connection: AMQPConnection) async throws {
        for exchange in exchanges { try await connection.declare(exchange) }
        for queue in queues {
            do {
                try await connection.declare(queue)
            } catch let error as AMQPError
                where error.code == .preconditionFailed && queue.name == deadLetterQueue
                && (error.replyText ?? error.message).contains("'x-queue-type'")
            {
                _ = try await connection.queueState(queue.name)
            }
        }
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
                    "source": binding.exchange, "vhost": "/", "destination": binding.queue,
                    "destination_type": binding.destinationKind.rawValue,
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
