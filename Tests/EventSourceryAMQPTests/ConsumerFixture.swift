import AMQPClient
import AMQPTestSupport
import EventSourcery
import EventSourceryAMQP
import EventSourcerySQLite
import Foundation
import Synchronization

/// An event a consumer-test handler appends for each event it handled.
struct ItemHandled: Event, Equatable {
    var index: Int
}

/// A counter shared between a test and its handlers.
final class Counter: Sendable {
    private let value = Mutex(0)
    func next() -> Int { value.withLock { $0 += 1; return $0 } }
    var current: Int { value.withLock { $0 } }
}

/// A switch shared between a test and its handlers.
final class Flag: Sendable {
    private let value = Mutex(false)
    func set(_ on: Bool = true) { value.withLock { $0 = on } }
    var isSet: Bool { value.withLock { $0 } }
}

/// A consuming context and a source context with names unique to the test, a SQLite store for
/// the consumer, and a broker connection to publish the source's events with.
struct ConsumerFixture {
    let context: String
    let source: String
    let directory: URL
    let storage: SQLiteEventStorage
    let store: EventStore
    let connection: AMQPConnection
    let publisher: AMQPPublisher

    init() async throws {
        let suffix = UUID().uuidString.prefix(8).lowercased()
        context = "ctest-\(suffix)"
        source = "csrc-\(suffix)"
        directory = FileManager.default.temporaryDirectory.appendingPathComponent(context)
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        storage = try SQLiteEventStorage(path: directory.appendingPathComponent("store.sqlite").path)
        store = EventStore(storage: storage, registry: EventRegistry([ItemCounted.self, ItemHandled.self, HandlerFailed.self]))
        connection = try await TestBroker.connect()
        publisher = AMQPPublisher(connection: connection)
    }

    var subscription: EventSubscription { EventSubscription(source: source, type: ItemCounted.typeName) }

    /// A handler that appends `ItemHandled` to `handled-<index>` (and runs `before` first).
    func handler(_ name: String = "count", before: @escaping @Sendable (HandlerInput) async throws -> Void = { _ in }) -> EventHandler {
        EventHandler(name: name, subscriptions: [subscription]) { input, batch in
            try await before(input)
            guard let item = input.as(ItemCounted.self) else { return }
            try batch.append([input.caused(ItemHandled(index: item.index))], to: StreamID("handled-\(item.index)"))
        }
    }

    func configuration(
        deliveryLimit: Int = 5, ackBatchSize: Int = 1, maximumBodySize: Int = EventMessage.defaultMaximumBodySize, concurrency: Int = 16
    ) -> ContextConsumer.Configuration {
        ContextConsumer.Configuration(
            context: context, prefetch: 50, deliveryLimit: deliveryLimit, maximumBodySize: maximumBodySize, ackBatchSize: ackBatchSize,
            concurrency: concurrency
        )
    }

    func consumer(_ handlers: [EventHandler], configuration: ContextConsumer.Configuration? = nil) -> ContextConsumer {
        ContextConsumer(connection: connection, store: store, handlers: handlers, configuration: configuration ?? self.configuration(), logger: TestBroker.logger)
    }

    /// Declares the topology and runs the consumer in the background; cancel the task to stop it.
    func start(_ consumer: ContextConsumer) async throws -> Task<Void, any Error> {
        try await consumer.topology.declare(on: connection)
        return Task { try await consumer.run() }
    }

    /// The message of the source's event `index` (a fresh event id unless given).
    func message(_ index: Int, id: UUID = UUID(), version: Int64 = 1) -> OutgoingMessage {
        let envelope = EventEnvelope(ItemCounted(index: index), id: id)
        let encoded = try! EventRegistry.encode(envelope)
        let recorded = RecordedEvent(streamID: try! StreamID("item-\(index)"), streamVersion: version, position: Int64(index + 1), event: encoded)
        return EventMessage.outgoing(recorded, context: source)
    }

    func publish(_ messages: [OutgoingMessage]) async throws {
        let outcomes = try await publisher.publish(messages)
        precondition(outcomes.allSatisfy(\.isConfirmed), "publish failed: \(outcomes)")
    }

    /// How many `ItemHandled` events the store holds for `index`.
    func handledCount(_ index: Int) async throws -> Int {
        try await store.load(StreamID("handled-\(index)")).count
    }

    func failures() async throws -> [HandlerFailed] {
        try await ContextAdmin.handlerFailures(context: context, store: store)
    }

    /// Waits until `condition` holds or `timeout` passes; returns whether it held.
    func eventually(timeout: Duration = .seconds(20), _ condition: () async throws -> Bool) async rethrows -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if try await condition() { return true }
            try? await Task.sleep(for: .milliseconds(50))
        }
        return try await condition()
    }

    func messageCount(_ queue: String) async throws -> Int {
        Int(try await connection.queueState(queue).messageCount)
    }

    func tearDown() async {
        _ = try? await connection.deleteQueue(ContextTopology.inboxQueue(for: context))
        _ = try? await connection.deleteQueue(ContextTopology.deadLetterQueue(for: context))
        for exchange in [EventMessage.exchange(for: context), EventMessage.exchange(for: source), ContextTopology.deadLetterExchange(for: context)] {
            try? await connection.deleteExchange(exchange)
        }
        await connection.close()
        try? storage.close()
        try? FileManager.default.removeItem(at: directory)
    }
}
