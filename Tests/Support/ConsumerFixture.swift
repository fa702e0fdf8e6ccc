public import EventSourceryRabbitMQ
public import EventSourcery
public import EventSourceryAMQP
public import EventSourcerySQLite
public import Foundation
import NIOConcurrencyHelpers

/// An event a consumer-test handler appends for each event it handled.
public struct ItemHandled: Event, Equatable {
    public var index: Int
    public init(index: Int) { self.index = index }
}

/// A counter shared between a test and its handlers.
public final class Counter: Sendable {
    public init() {}
    private let value = NIOLockedValueBox(0)
    public func next() -> Int {
        value.withLockedValue {
            $0 += 1; return $0
        }
    }
    public var current: Int { value.withLockedValue { $0 } }
}

/// A switch shared between a test and its handlers.
public final class Flag: Sendable {
    public init() {}
    private let value = NIOLockedValueBox(false)
    public func set(_ on: Bool = true) { value.withLockedValue { $0 = on } }
    public var isSet: Bool { value.withLockedValue { $0 } }
}

/// A consuming context and a source context with names unique to the test, a SQLite store for
/// the consumer, and a broker connection to publish the source's events with.
public struct ConsumerFixture: Sendable {
    public let context: String
    public let source: String
    public let directory: URL
    public let storage: SQLiteEventStorage
    public let store: EventStore
    public let connection: AMQPConnection
    public let publisher: AMQPPublisher

    public init() async throws {
        let suffix = UUID().uuidString.prefix(8).lowercased()
        context = "ctest-\(suffix)"
        source = "csrc-\(suffix)"
        directory = FileManager.default.temporaryDirectory.appendingPathComponent(context)
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        storage = try SQLiteEventStorage(path: directory.appendingPathComponent("store.sqlite").path)
        store = EventStore(
            storage: storage, registry: EventRegistry([ItemCounted.self, ItemHandled.self, HandlerFailed.self, EventSkipped.self]))
        connection = try await TestBroker.connect()
        publisher = AMQPPublisher(connection: connection)
    }

    public var subscription: EventSubscription { EventSubscription(source: source, type: ItemCounted.typeName) }

    /// A handler that appends `ItemHandled` to `handled-<index>` (and runs `before` first).
    public func handler(
        _ name: String = "count", before: @escaping @Sendable (HandlerInput) async throws -> Void = { _ in }
    ) -> EventHandler {
        EventHandler(name: name, subscriptions: [subscription]) { input, batch in
            try await before(input)
            guard let item = input.as(ItemCounted.self) else { return }
            try batch.append([input.caused(ItemHandled(index: item.index))], to: StreamID("handled-\(item.index)"))
        }
    }

    public func configuration(
        deliveryLimit: Int = 5, ackBatchSize: Int = 1, maximumBodySize: Int = EventMessage.defaultMaximumBodySize, concurrency: Int = 16,
        retryFirstDelay: Duration = .milliseconds(200), retryMaximumDelay: Duration = .seconds(2)
    ) -> ContextConsumer.Configuration {
        ContextConsumer.Configuration(
            context: context, prefetch: 50, deliveryLimit: deliveryLimit, maximumBodySize: maximumBodySize, ackBatchSize: ackBatchSize,
            concurrency: concurrency, retryFirstDelay: retryFirstDelay, retryMaximumDelay: retryMaximumDelay,
            heldPollInterval: .milliseconds(200)
        )
    }

    public func consumer(_ handlers: [EventHandler], configuration: ContextConsumer.Configuration? = nil) -> ContextConsumer {
        ContextConsumer(
            connection: connection, store: store, handlers: handlers, configuration: configuration ?? self.configuration(),
            logger: TestBroker.logger)
    }

    /// Declares the topology and runs the consumer in the background; cancel the task to stop it.
    public func start(_ consumer: ContextConsumer) async throws -> Task<Void, any Error> {
        try await consumer.topology.declare(on: connection)
        return Task { try await consumer.run() }
    }

    /// The message of the source's event `index` (a fresh event id unless given), in the
    /// source stream `stream` (default `item-<index>`).
    public func message(_ index: Int, id: UUID = UUID(), stream: String? = nil, version: Int64 = 1) -> OutgoingMessage {
        let envelope = EventEnvelope(ItemCounted(index: index), id: id)
        let encoded = try! EventRegistry.encode(envelope)
        let recorded = RecordedEvent(
            streamID: try! StreamID(stream ?? "item-\(index)"), streamVersion: version, position: Int64(index + 1), event: encoded)
        return EventMessage.outgoing(recorded, context: source)
    }

    public func publish(_ messages: [OutgoingMessage]) async throws {
        let outcomes = try await publisher.publish(messages)
        precondition(outcomes.allSatisfy(\.isConfirmed), "publish failed: \(outcomes)")
    }

    /// How many `ItemHandled` events the store holds for `index`.
    public func handledCount(_ index: Int) async throws -> Int {
        try await store.load(StreamID("handled-\(index)")).count
    }

    /// The indices of the `ItemHandled` events in the store, in the order they were applied.
    public func appliedOrder() async throws -> [Int] {
        try await store.readAll(limit: 100_000).compactMap { $0.envelope.as(ItemHandled.self)?.index }
    }

    /// The events the consumer holds (waiting or parked), in sequence order.
    public func heldEvents() async throws -> [HeldEvent] {
        try await storage.heldEvents(consumer: context, sequence: nil)
    }

    public func failures() async throws -> [HandlerFailed] {
        try await ContextAdmin.handlerFailures(context: context, store: store)
    }

    /// Waits until `condition` holds or `timeout` passes; returns whether it held.
    public func eventually(timeout: Duration = .seconds(20), _ condition: () async throws -> Bool) async rethrows -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if try await condition() { return true }
            try? await Task.sleep(for: .milliseconds(50))
        }
        return try await condition()
    }

    public func messageCount(_ queue: String) async throws -> Int {
        Int(try await connection.queueState(queue).messageCount)
    }

    /// Deletes the queues and exchanges of the context (with up to 8 inbox partitions), closes
    /// the connection and removes the store.
    public func tearDown() async {
        let queues =
            [ContextTopology.inboxQueue(for: context), ContextTopology.deadLetterQueue(for: context)]
            + ContextTopology.inboxQueues(for: context, partitions: 8)
        for queue in queues {
            _ = try? await connection.deleteQueue(queue)
        }
        for exchange in [
            EventMessage.exchange(for: context), EventMessage.exchange(for: source), ContextTopology.deadLetterExchange(for: context),
            ContextTopology.partitionExchange(for: context),
        ] {
            try? await connection.deleteExchange(exchange)
        }
        await connection.close()
        try? storage.close()
        try? FileManager.default.removeItem(at: directory)
    }
}
