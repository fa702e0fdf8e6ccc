import EventSourceryRabbitMQ
import TestSupport
import DemoContexts
import EventSourcery
import EventSourceryAMQP
import EventSourceryPostgres
import EventSourceryServices
import Foundation
import Testing

/// Three consumer replicas (`demo-service --role consumer`) of the order context share its four inbox partitions
/// and its PostgreSQL store (its `fulfilment` handler starts a flow per `OrderPlaced`); replicas are SIGKILLed while events flow, one is restarted and
/// one stopped gracefully.
/// Every event is applied exactly once and each source stream's events in stream order,
/// asserted from the store.
///
/// It kills processes (not the broker) and uses the fixed exchange `order.events`, so it runs
/// on the vhost `es-test` and, by its name, alone after the other suites.
@Suite(.serialized, .timeLimit(.minutes(4)), .requiresBroker, .requiresPostgres)
struct PartitionReplicaFaultTests {
    static let streams = 40
    static let versions = 25

    private func configuration(orderStore: String, directory: URL) -> String {
        DemoConfiguration.yaml(
            brokerURL: DemoFlowFaultTests.vhostURL, directory: directory, stores: ["order": orderStore],
            consumer: ["prefetch: 50", "partitions: 4"])
    }

    /// `OrderPlaced` of the order `s<stream>v<version>`, as version `version` of the source
    /// stream `order-s<stream>`: every event of a stream starts a fulfilment flow of its own, so
    /// the order store shows the order in which a stream's events were applied.
    private func messages(versions: ClosedRange<Int>) throws -> [OutgoingMessage] {
        try versions.flatMap { version in
            try (0..<Self.streams).map { stream in
                let envelope = EventEnvelope(OrderPlaced(orderID: "s\(stream)v\(version)", amount: 100))
                let recorded = RecordedEvent(
                    streamID: try StreamID("order-s\(stream)"), streamVersion: Int64(version), position: 1,
                    event: try EventRegistry.encode(envelope))
                return EventMessage.outgoing(recorded, context: "order")
            }
        }
    }

    /// The order ids whose flow the fulfilment handler started, in commit order.
    private func charged(_ store: EventStore) async throws -> [String] {
        try await DemoConfiguration.flowsStarted(store)
    }

    @Test func replicasKilledWhileEventsFlowLeaveEveryStreamAppliedInOrderExactlyOnce() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("partition-replicas-\(UUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let schema = TestDatabase.freshSchemaName()
        let storage = try await TestDatabase.connect(try TestDatabase.configuration(schema: schema))
        let order = EventStore(storage: storage, registry: EventRegistry(DemoContext.eventTypes))
        let configPath = directory.appendingPathComponent("eventsourcery.yaml").path
        try configuration(orderStore: TestDatabase.url + "?schema=\(schema)", directory: directory)
            .write(toFile: configPath, atomically: true, encoding: .utf8)
        let topologies = try ServiceConfiguration.load(path: configPath, environment: [:]).topologies
        let connection = try await TestBroker.freshTopology(topologies, url: DemoFlowFaultTests.vhostURL)
        let topology = try #require(topologies.first { $0.context == "order" })
        #expect(topology.inboxQueues.count == 4)

        var replicas: [ChildProcess] = []
        func startReplica() throws {
            replicas.append(
                try ChildProcess.start(
                    BuiltProducts.path("demo-service"), ["--context", "order", "--role", "consumer", "--config", configPath],
                    environment: ["AMQP_URL": DemoFlowFaultTests.vhostURL, "LOG_LEVEL": "warning"]))
        }
        defer {
            for replica in replicas { replica.signal(SIGKILL) }
            for replica in replicas { _ = waitpid(replica.pid, nil, 0) }
            // The queues stay: the next suite's `freshTopology` purges them.
            Task {
                await connection.close()
                await TestDatabase.drop(storage)
            }
        }
        for _ in 0..<3 { try startReplica() }
        try await waitUntil(timeout: .seconds(60)) {
            for queue in topology.inboxQueues where try await connection.queueState(queue).consumerCount == 0 { return false }
            return true
        }

        let publisher = AMQPPublisher(connection: connection)
        func publish(_ versions: ClosedRange<Int>) async throws {
            let outcomes = try await publisher.publish(try messages(versions: versions))
            #expect(outcomes.allSatisfy { $0.isConfirmed })
        }
        // Replicas go while deliveries are in flight; one comes back.
        try await publish(1...10)
        try await waitUntil(timeout: .seconds(60)) { try await charged(order).count >= 100 }
        replicas[0].signal(SIGKILL)
        try await publish(11...18)
        try startReplica()
        try await waitUntil(timeout: .seconds(60)) { try await charged(order).count >= 500 }
        let chargedBeforeSecondKill = try await charged(order).count
        replicas[1].signal(SIGKILL)
        try await publish(19...Self.versions)
        // A graceful stop hands its partitions over too: what it had not started goes back
        // ahead of newer messages.
        let graceful = replicas.remove(at: 2)
        graceful.signal(SIGTERM)
        let stopped = try await graceful.wait()
        #expect(stopped.status == 0, "\(stopped.standardError)")

        let total = Self.streams * Self.versions
        try await waitUntil(timeout: .seconds(90)) { try await charged(order).count >= total }
        #expect(chargedBeforeSecondKill < total, "the second kill happened while events flowed")
        let orders = try await charged(order)
        #expect(orders.count == total, "every event charged once")
        #expect(Set(orders).count == total)
        let position = Dictionary(uniqueKeysWithValues: orders.enumerated().map { ($1, $0) })
        for stream in 0..<Self.streams {
            let applied = (1...Self.versions).compactMap { position["s\(stream)v\($0)"] }
            #expect(applied == applied.sorted(), "order-s\(stream) applied in stream order")
        }
        #expect(try await storage.heldEvents(consumer: "order", sequence: nil).isEmpty, "nothing held or parked")
        #expect(try await order.streamVersion(HandlerFailed.stream(for: "order")) == 0, "no handler failure")
        #expect(try await connection.queueState(topology.deadLetterQueue).messageCount == 0, "nothing dead-lettered")
        for queue in topology.inboxQueues {
            #expect(try await connection.queueState(queue).messageCount == 0, "\(queue) drained")
        }
    }
}
