import EventSourceryRabbitMQ
import TestSupport
import DemoContexts
import EventSourcery
import EventSourceryAMQP
import EventSourcerySQLite
import Foundation
import Testing

/// Held and parked sequences with a kit build (`demo-service --role consumer`): the order
/// context's consumer (its `fulfilment` handler switched off by `--fulfilment-down-file`)
/// killed while a stream waits for its retry, and the parked-sequence admin flags of
/// `context-consumer`.
///
/// Like ``ContextConsumerFaultTests`` it uses the broker's vhost `es-test` for the demo
/// context names; it restarts no broker and kills only its own child process.
@Suite(.serialized, .timeLimit(.minutes(3)), .requiresBroker)
struct ConsumerRetryFaultTests {
    private func orderPlaced(_ orderID: String, stream: String, version: Int64) throws -> OutgoingMessage {
        let envelope = EventEnvelope(OrderPlaced(orderID: orderID, amount: 10))
        let recorded = RecordedEvent(
            streamID: try StreamID(stream), streamVersion: version, position: version, event: try EventRegistry.encode(envelope))
        return EventMessage.outgoing(recorded, context: "order")
    }

    @Test(.serialized, .requiresPostgres, arguments: TestStore.Kind.allCases)
    func aConsumerKilledWhileAStreamWaitsForItsRetryLosesDoublesAndReordersNothing(store kind: TestStore.Kind) async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("consumer-retry-\(UUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let orderStore = TestStore(kind, name: "order", in: directory)
        let configPath = directory.appendingPathComponent("eventsourcery.yaml").path
        let fulfilmentDown = directory.appendingPathComponent("fulfilment-down").path
        try DemoConfiguration.yaml(
            brokerURL: ContextConsumerFaultTests.vhostURL, directory: directory, stores: ["order": orderStore.location],
            consumer: ["delivery_limit: 1000", "initial_backoff_ms: 200", "max_backoff_ms: 500"]
        ).write(toFile: configPath, atomically: true, encoding: .utf8)

        let (connection, topology) = try await ContextConsumerFaultTests.freshOrderTopology(configPath: configPath)
        // The queues stay: the next suite's `freshTopology` purges them.
        defer { Task { await connection.close() } }
        let storage = try await orderStore.open()
        let store = EventStore(storage: storage, registry: EventRegistry(DemoContext.eventTypes))
        let publisher = AMQPPublisher(connection: connection)

        // The fulfilment is down: the first order of the shared stream fails and the rest of the
        // stream waits behind it.
        #expect(FileManager.default.createFile(atPath: fulfilmentDown, contents: nil))
        let environment = ["AMQP_URL": ContextConsumerFaultTests.vhostURL, "LOG_LEVEL": "warning"]
        let arguments = ["--context", "order", "--role", "consumer", "--config", configPath, "--fulfilment-down-file", fulfilmentDown]
        let first = try ChildProcess.start(BuiltProducts.path("demo-service"), arguments, environment: environment)
        let shared = try (1...5).map { try orderPlaced("s\($0)", stream: "order-shared", version: Int64($0)) }
        #expect(try await publisher.publish(shared).allSatisfy(\.isConfirmed))
        let deadline = ContinuousClock.now + .seconds(60)
        while ContinuousClock.now < deadline, try await storage.heldEvents(consumer: "order", sequence: nil).count < 5 {
            try await Task.sleep(for: .milliseconds(20))
        }
        let held = try await storage.heldEvents(consumer: "order", sequence: nil)
        #expect(held.map(\.streamVersion) == [1, 2, 3, 4, 5], "the stream waits behind its first event")
        #expect(held.first?.lastError?.contains("the fulfilment is unavailable") == true)
        first.signal(SIGKILL)
        let killed = try await first.wait()
        #expect(killed.status == 128 + SIGKILL, "\(killed.standardError)")

        // While no consumer runs: the fulfilment recovers, the stream goes on, other orders arrive.
        try FileManager.default.removeItem(atPath: fulfilmentDown)
        let later = try (6...7).map { try orderPlaced("s\($0)", stream: "order-shared", version: Int64($0)) }
        let others = try (1...20).map { try orderPlaced("o\($0)", stream: "order-o\($0)", version: 1) }
        #expect(try await publisher.publish(later + others).allSatisfy(\.isConfirmed))

        let second = try ChildProcess.start(BuiltProducts.path("demo-service"), arguments, environment: environment)
        let finish = ContinuousClock.now + .seconds(90)
        while ContinuousClock.now < finish, try await DemoConfiguration.flowsStarted(store).count < 27 {
            try await Task.sleep(for: .milliseconds(50))
        }
        while ContinuousClock.now < finish, try await !storage.heldEvents(consumer: "order", sequence: nil).isEmpty {
            try await Task.sleep(for: .milliseconds(50))
        }
        second.signal(SIGTERM)
        let stopped = try await second.wait()
        #expect(stopped.status == 0, "\(stopped.standardError)")

        let payments = try await DemoConfiguration.flowsStarted(store)
        #expect(payments.count == 27, "nothing lost: one fulfilment flow per order")
        #expect(Set(payments).count == 27, "nothing doubled")
        #expect(payments.filter { $0.hasPrefix("s") } == (1...7).map { "s\($0)" }, "the shared stream applied in stream order")
        #expect(try await storage.heldEvents(consumer: "order", sequence: nil).isEmpty)
        for queue in topology.inboxQueues + [topology.deadLetterQueue] {
            #expect(try await connection.queueState(queue).messageCount == 0, "\(queue)")
        }
        await TestStore.close(storage)
    }

    @Test func theAdminFlagsListRetryAndSkipParkedSequences() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("consumer-parked-\(UUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let storePath = directory.appendingPathComponent("payment.sqlite").path
        let configPath = directory.appendingPathComponent("eventsourcery.yaml").path
        try """
        contexts:
          order:
            store: sqlite:\(directory.path)/order.sqlite
            publishes: [OrderPlaced]
          payment:
            store: sqlite:\(storePath)
            publishes: [PaymentSucceeded, PaymentFailed]
            handlers:
              charge-order:
                subscribes: [order.OrderPlaced]
        """.write(toFile: configPath, atomically: true, encoding: .utf8)
        let storage = try SQLiteEventStorage(path: storePath)
        defer { try? storage.close() }
        func hold(_ orderID: String, stream: StreamID, version: Int64, parked: Bool) async throws {
            let event = HeldEvent(
                sequence: HeldEvent.Sequence(consumer: "payment", sourceContext: "order", sourceStream: stream), streamVersion: version,
                event: try EventRegistry.encode(EventEnvelope(OrderPlaced(orderID: orderID, amount: 5))), attempts: parked ? 5 : 0,
                lastError: parked ? "gateway down" : nil, nextAttemptAt: Date(), state: parked ? .parked : .waiting)
            _ = try await storage.holdEvent(event, onlyBehindOthers: !parked)
        }
        try await hold("a1", stream: "order-a", version: 1, parked: true)
        try await hold("a2", stream: "order-a", version: 2, parked: false)
        try await hold("b1", stream: "order-b", version: 1, parked: true)

        let consumer = BuiltProducts.path("context-consumer")
        func run(_ flags: [String]) async throws -> ChildProcess.Result {
            try await ChildProcess.run(consumer, ["--context", "payment", "--config", configPath] + flags, environment: ["AMQP_URL": ""])
        }
        let listed = try await run(["--list-parked"])
        #expect(listed.status == 0, "\(listed.standardError)")
        #expect(listed.standardOutput.contains("2 parked sequence(s) in payment"))
        #expect(listed.standardOutput.contains("order/order-a\tversion 1\tOrderPlaced"))
        #expect(listed.standardOutput.contains("attempts 5\t1 waiting behind\tgateway down"))
        #expect(listed.standardOutput.contains("order/order-b\tversion 1"))

        let unreasoned = try await run(["--skip-parked", "order/order-b"])
        #expect(unreasoned.status == 64, "a skip needs a reason")

        let skipped = try await run(["--skip-parked", "order/order-b", "--reason", "order b was refunded by hand"])
        #expect(skipped.status == 0, "\(skipped.standardError)")
        #expect(skipped.standardOutput.contains("order/order-b: skipped OrderPlaced"))
        let store = EventStore(storage: storage, registry: EventRegistry(DemoContext.eventTypes + [EventSkipped.self]))
        let skips = try await ContextAdmin.skippedEvents(context: "payment", store: store)
        #expect(skips.map(\.reason) == ["order b was refunded by hand"])
        #expect(skips.first?.payload.contains("b1") == true)

        let retried = try await run(["--retry-parked", "order/order-a"])
        #expect(retried.status == 0, "\(retried.standardError)")
        let heads = HeldSequences(try await storage.heldEvents(consumer: "payment", sequence: nil))
        #expect(heads.entries.map(\.sequence.sourceStream) == ["order-a"])
        #expect(heads.entries.first?.head.state == .waiting, "due for the running consumer")
        #expect(heads.parked.isEmpty)

        let missing = try await run(["--retry-parked", "order/order-a"])
        #expect(missing.status == 1)
        #expect(missing.standardError.contains("No parked sequence for the stream order/order-a"))
    }
}
