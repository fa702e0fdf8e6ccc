import EventSourceryRabbitMQ
import TestSupport
import EventSourcery
import EventSourceryAMQP
import EventSourceryPostgres
import Foundation
import Testing

/// Several `OutboxRelay` replicas on one PostgreSQL store, publishing to the real broker.
@Suite(.timeLimit(.minutes(3)), .requiresPostgres, .requiresBroker)
struct CompetingRelayTests {
    struct Tick: Event { var index: Int }

    @Test func threeRelayReplicasPublishEveryEntryOnceInStreamOrder() async throws {
        try await TestDatabase.withStorage { storage in
            let context = "pgrelay-\(UUID().uuidString.prefix(8).lowercased())"
            let queue = "\(context).received"
            let setup = try await TestBroker.connect()
            try await setup.declare(AMQPExchange(name: EventMessage.exchange(for: context), kind: .topic))
            try await setup.declare(AMQPQueue(name: queue, durable: true))
            try await setup.bind(AMQPBinding(queue: queue, exchange: EventMessage.exchange(for: context), routingKey: "#"))

            // 10,000 events over 50 streams, 500 per transaction.
            let store = EventStore(storage: storage, registry: EventRegistry([Tick.self]))
            for first in stride(from: 0, to: 10_000, by: 500) {
                var batch = WriteBatch()
                for index in first..<first + 500 {
                    try batch.publish([EventEnvelope(Tick(index: index))], to: try StreamID("tick-\(index % 50)"))
                }
                try await store.commit(batch)
            }

            let replicas = try await TestDatabase.replicas(of: storage, count: 3)
            var connections: [AMQPConnection] = []
            var relays: [Task<Void, any Error>] = []
            for replica in replicas {
                let connection = try await TestBroker.connect()
                connections.append(connection)
                let relay = OutboxRelay(
                    storage: replica,
                    publisher: AMQPPublisher(connection: connection, window: 200),
                    configuration: OutboxRelay.Configuration(context: context, batchSize: 100, idlePollInterval: .milliseconds(100)),
                    logger: TestBroker.logger
                )
                relays.append(Task { try await relay.run() })
            }
            let deadline = ContinuousClock.now + .seconds(120)
            while try await storage.outboxCounts().published < 10_000, ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(100))
            }
            for relay in relays { relay.cancel() }
            for relay in relays { _ = await relay.result }
            #expect(try await storage.outboxCounts() == OutboxCounts(pending: 0, parked: 0, published: 10_000))

            let consumer = try await setup.consume(queue: queue, prefetch: 1000)
            let collector = DeliveryCollector(consumer) { consumer.ack($0) }
            let deliveries = await collector.waitFor(count: 10_000, timeout: .seconds(60))
            try await Task.sleep(for: .milliseconds(500))  // a duplicate would arrive now
            collector.stop()
            await consumer.cancel()
            let all = collector.deliveries
            #expect(all.count == 10_000, "every entry published exactly once")
            #expect(Set(all.compactMap(\.properties.messageId)).count == 10_000)
            var lastVersion: [String: Int] = [:]
            var outOfOrder = 0
            for delivery in deliveries {
                let headers = delivery.properties.headers ?? [:]
                guard let stream = headers[EventMessage.Header.streamID]?.stringValue,
                    let version = headers[EventMessage.Header.streamVersion]?.intValue
                else { continue }
                if version != (lastVersion[stream] ?? 0) + 1 { outOfOrder += 1 }
                lastVersion[stream] = version
            }
            #expect(outOfOrder == 0, "each stream arrives in stream order")
            #expect(lastVersion.count == 50)

            for replica in replicas { await replica.shutdown() }
            for connection in connections { await connection.close() }
            _ = try? await setup.deleteQueue(queue)
            try? await setup.deleteExchange(EventMessage.exchange(for: context))
            await setup.close()
        }
    }
}
