import EventSourceryRabbitMQ
import TestSupport
import EventSourcery
import EventSourceryAMQP
import EventSourceryPostgres
import Foundation
import Testing

/// The `outbox-publisher` executable with a `postgres://` store URL.
@Suite(.timeLimit(.minutes(2)), .requiresBroker, .requiresPostgres)
struct PublisherProcessTests {
    struct Tick: Event { var index: Int }

    @Test func outboxPublisherDrainsAPostgresStore() async throws {
        try await TestDatabase.withStorage { storage in
            let context = "pgpub-\(UUID().uuidString.prefix(8).lowercased())"
            let queue = "\(context).received"
            let broker = try await TestBroker.connect()
            try await broker.declare(AMQPExchange(name: EventMessage.exchange(for: context), kind: .topic))
            try await broker.declare(AMQPQueue(name: queue, durable: true))
            try await broker.bind(AMQPBinding(queue: queue, exchange: EventMessage.exchange(for: context), routingKey: "#"))

            let store = EventStore(storage: storage, registry: EventRegistry([Tick.self]))
            for index in 0..<50 {
                try await store.publish([EventEnvelope(Tick(index: index))], to: try StreamID("tick-\(index % 5)"))
            }
            let directory = FileManager.default.temporaryDirectory.appendingPathComponent(context)
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: directory) }
            let config = directory.appendingPathComponent("eventsourcery.yaml").path
            try """
            broker:
              url: \(TestBroker.url)
            contexts:
              \(context):
                store: sqlite:/nonexistent/overridden.sqlite
            """.write(toFile: config, atomically: true, encoding: .utf8)
            let storeURL = TestDatabase.url + (TestDatabase.url.contains("?") ? "&" : "?") + "schema=\(storage.configuration.schema)"
            let result = try await ChildProcess.run(
                BuiltProducts.path("outbox-publisher"),
                ["--context", context, "--config", config, "--once"],
                environment: ["ES_STORE_URL": storeURL]
            )
            #expect(result.status == 0, "\(result.standardError)")
            #expect(try await storage.outboxCounts() == OutboxCounts(pending: 0, parked: 0, published: 50))
            #expect(try await broker.queueState(queue).messageCount == 50)

            _ = try? await broker.deleteQueue(queue)
            try? await broker.deleteExchange(EventMessage.exchange(for: context))
            await broker.close()
        }
    }
}
