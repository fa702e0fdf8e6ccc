public import EventSourceryRabbitMQ
public import EventSourcery
public import EventSourceryAMQP
import EventSourcerySQLite
public import Foundation

/// An event the relay tests publish.
public struct ItemCounted: Event, Equatable {
    public var index: Int
    public init(index: Int) { self.index = index }
}

/// A store (a SQLite file in a temporary folder, or a PostgreSQL schema), a broker connection, and an exchange + queue for one
/// test's context, all unique to the test.
public struct RelayFixture: Sendable {
    public let context: String
    public let queue: String
    public let directory: URL
    public let storage: any EventStorage
    public let store: EventStore
    public let connection: AMQPConnection

    public init(bindQueue: Bool = true, queueArguments: AMQPTable = [:], store kind: TestStore.Kind = .sqlite) async throws {
        context = "relaytest-\(UUID().uuidString.prefix(8).lowercased())"
        queue = "\(context).received"
        directory = FileManager.default.temporaryDirectory.appendingPathComponent(context)
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        storage = try await TestStore(kind, name: "store", in: directory).open()
        store = EventStore(storage: storage, registry: EventRegistry([ItemCounted.self]))
        connection = try await TestBroker.connect()
        try await connection.declare(AMQPExchange(name: EventMessage.exchange(for: context), kind: .topic))
        _ = try await connection.declare(AMQPQueue(name: queue, durable: true, arguments: queueArguments))
        if bindQueue { try await bind() }
    }

    public func bind() async throws {
        try await connection.bind(AMQPBinding(queue: queue, exchange: EventMessage.exchange(for: context), routingKey: "\(context).#"))
    }

    public func relay(batchSize: Int = 500, attemptLimit: Int = 10, window: Int = 1000, linger: Duration = .zero) -> OutboxRelay {
        OutboxRelay(
            storage: storage,
            publisher: AMQPPublisher(connection: connection, window: window),
            configuration: OutboxRelay.Configuration(
                context: context,
                batchSize: batchSize,
                retry: RetryPolicy(initialBackoff: .milliseconds(1), maximumBackoff: .milliseconds(1), attemptLimit: attemptLimit),
                idlePollInterval: .milliseconds(200),
                linger: linger
            ),
            logger: TestBroker.logger
        )
    }

    /// Publishes `count` events spread round-robin over `streams` streams; returns them in commit order.
    @discardableResult
    public func publishEvents(_ count: Int, streams: Int) async throws -> [StoredEvent] {
        var stored: [StoredEvent] = []
        for index in 0..<count {
            let stream = try StreamID("item-\(index % streams)")
            stored += try await store.publish([EventEnvelope(ItemCounted(index: index))], to: stream)
        }
        return stored
    }

    /// Publishes `count` events over `streams` streams in batches of 500 per transaction; returns their ids.
    public func prefill(_ count: Int, streams: Int) async throws -> [UUID] {
        var ids: [UUID] = []
        var index = 0
        while index < count {
            var batch = WriteBatch()
            for _ in 0..<min(500, count - index) {
                let envelope = EventEnvelope(ItemCounted(index: index))
                ids.append(envelope.id)
                try batch.publish([envelope], to: try StreamID("item-\(index % streams)"))
                index += 1
            }
            try await store.commit(batch)
        }
        return ids
    }

    /// Reads up to `count` messages from the test queue (acking them), waiting at most `timeout`.
    public func receive(_ count: Int, timeout: Duration = .seconds(20)) async throws -> [Delivery] {
        let consumer = try await connection.consume(queue: queue, prefetch: 500)
        let collector = DeliveryCollector(consumer) { consumer.ack($0) }
        let deliveries = await collector.waitFor(count: count, timeout: timeout)
        collector.stop()
        await consumer.cancel()
        return deliveries
    }

    /// The stream versions of `deliveries` by stream id, in arrival order.
    public static func versionsByStream(_ deliveries: [Delivery]) throws -> [String: [Int]] {
        var versions: [String: [Int]] = [:]
        for delivery in deliveries {
            let headers = delivery.properties.headers ?? [:]
            guard let stream = headers[EventMessage.Header.streamID]?.stringValue,
                let version = headers[EventMessage.Header.streamVersion]?.intValue
            else { throw EventStoreError(.invalidArgument, message: "a delivery without stream headers: \(delivery.properties)") }
            versions[stream, default: []].append(version)
        }
        return versions
    }

    public func tearDown() async {
        _ = try? await connection.deleteQueue(queue)
        try? await connection.deleteExchange(EventMessage.exchange(for: context))
        await connection.close()
        await TestStore.close(storage)
        try? FileManager.default.removeItem(at: directory)
    }
}
