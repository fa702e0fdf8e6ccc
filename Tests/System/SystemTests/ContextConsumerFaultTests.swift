import EventSourceryRabbitMQ
import TestSupport
import DemoContexts
import EventSourcery
import EventSourceryAMQP
import EventSourcerySQLite
import EventSourceryServices
import Foundation
import Testing

/// The consumer of a kit build (`demo-service --context order --role consumer`: the fulfilment
/// process manager's event handler), run as a real process and killed.
///
/// The demo handlers know the context names `order` and `payment`, so these tests use the
/// broker's second vhost `es-test` (set up by `scripts/rabbitmq`) to keep those names apart
/// from anything else on the node.
@Suite(.serialized, .timeLimit(.minutes(3)), .requiresBroker)
struct ContextConsumerFaultTests {
    static var vhostURL: String {
        var url = URLComponents(string: TestBroker.url)!
        url.user = "es-test"
        url.password = "es-test"
        url.path = "/es-test"
        return url.string!
    }

    /// A connection to the fault vhost and the order context's topology of the file at
    /// `configPath`, declared, its queues empty.
    static func freshOrderTopology(configPath: String) async throws -> (AMQPConnection, ContextTopology) {
        let configuration = try ServiceConfiguration.load(path: configPath, environment: [:])
        let topology = ContextTopology(try #require(configuration.contextDescription("order")))
        return (try await TestBroker.freshTopology([topology], url: vhostURL), topology)
    }

    private func orderPlaced(_ index: Int) throws -> OutgoingMessage {
        let envelope = EventEnvelope(OrderPlaced(orderID: "o\(index)", amount: index % 1500))
        let recorded = RecordedEvent(
            streamID: try StreamID("order-o\(index)"), streamVersion: 1, position: Int64(index + 1),
            event: try EventRegistry.encode(envelope))
        return EventMessage.outgoing(recorded, context: "order")
    }

    @Test(.serialized, .requiresPostgres, arguments: TestStore.Kind.allCases)
    func aConsumerKilledMidBatchAndRestartedAppendsExactlyOncePerEvent(store kind: TestStore.Kind) async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("consumer-fault-\(UUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let orderStore = TestStore(kind, name: "order", in: directory)
        let configPath = directory.appendingPathComponent("eventsourcery.yaml").path
        try DemoConfiguration.yaml(
            brokerURL: Self.vhostURL, directory: directory, stores: ["order": orderStore.location],
            consumer: ["prefetch: 200", "delivery_limit: 5", "ack_batch: 50"]
        ).write(toFile: configPath, atomically: true, encoding: .utf8)

        let (connection, topology) = try await Self.freshOrderTopology(configPath: configPath)
        defer {
            // The queues stay: the next suite's `freshTopology` purges them.
            Task { await connection.close() }
        }
        let count = 3000
        let outcomes = try await AMQPPublisher(connection: connection).publish((0..<count).map(orderPlaced))
        #expect(outcomes.allSatisfy { $0.isConfirmed })

        let environment = ["AMQP_URL": Self.vhostURL, "LOG_LEVEL": "warning"]
        let arguments = ["--context", "order", "--role", "consumer", "--config", configPath]
        let storage = try await orderStore.open()
        let store = EventStore(storage: storage, registry: EventRegistry(DemoContext.eventTypes))

        let first = try ChildProcess.start(BuiltProducts.path("demo-service"), arguments, environment: environment)
        let deadline = ContinuousClock.now + .seconds(60)
        while ContinuousClock.now < deadline, try await DemoConfiguration.flowsStarted(store).count < 300 {
            try await Task.sleep(for: .milliseconds(10))
        }
        first.signal(SIGKILL)
        let killed = try await first.wait()
        #expect(killed.status == 128 + SIGKILL, "\(killed.standardError)")
        let appendedBeforeKill = try await DemoConfiguration.flowsStarted(store).count
        #expect(appendedBeforeKill >= 300 && appendedBeforeKill < count, "the kill came mid-stream")

        let second = try ChildProcess.start(BuiltProducts.path("demo-service"), arguments, environment: environment)
        let finish = ContinuousClock.now + .seconds(90)
        while ContinuousClock.now < finish, try await DemoConfiguration.flowsStarted(store).count < count {
            try await Task.sleep(for: .milliseconds(50))
        }
        try await Task.sleep(for: .milliseconds(500))
        second.signal(SIGTERM)
        let stopped = try await second.wait()
        #expect(stopped.status == 0, "\(stopped.standardError)")

        // Each OrderPlaced started its flow once: FulfilmentAdvanced and the scheduled deadline,
        // with one ChargePayment and one deadline in the command outbox.
        let events = try await store.readAll(limit: 10_000)
        #expect(events.count == 2 * count)
        let orders = try await DemoConfiguration.flowsStarted(store)
        #expect(orders.count == count)
        #expect(Set(orders).count == count, "exactly one flow per order")
        let commands = try await storage.commandOutboxEntries(in: Set(CommandOutboxEntry.State.allCases), limit: 10 * count)
        #expect(commands.filter { $0.command.typeName == ChargePayment.typeName }.count == count)
        #expect(commands.filter { $0.command.typeName == DeadlineDue.typeName }.count == count)
        for queue in topology.inboxQueues + [topology.deadLetterQueue] {
            #expect(try await connection.queueState(queue).messageCount == 0, "\(queue)")
        }
        await TestStore.close(storage)
    }

    /// A small flow through the three demo contexts in one process (the 1,000-order flow
    /// with separate processes is a test of its own): every order ends completed or
    /// cancelled, invoices equal succeeded payments and are numbered without gaps.
    @Test func theDemoContextsSettleASmallFlow() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("demo-flow-\(UUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let configuration = try ServiceConfiguration.load(
            path: TestRepository.root.appendingPathComponent("config/eventsourcery.yaml").path, environment: [:]
        )
        let consuming = try await TestBroker.freshTopology(configuration.topologies, url: Self.vhostURL)
        let publishing = try await TestBroker.connect { $0 = try! AMQPConnection.Configuration(url: Self.vhostURL) }
        let modules = DemoContext.handlers(declineAbove: 1000)
        var stores: [String: EventStore] = [:]
        var services: [@Sendable () async throws -> Void] = []
        for topology in configuration.topologies {
            let name = topology.context
            let module = try #require(modules.module(for: name))
            let storage = try SQLiteEventStorage(path: directory.appendingPathComponent("\(name).sqlite").path)
            let store = EventStore(storage: storage, registry: module.registry)
            stores[name] = store
            let consumer = ContextConsumer(
                connection: consuming, store: store, handlers: module.makeHandlers(store),
                configuration: ContextConsumer.Configuration(context: name), topology: topology, logger: TestBroker.logger
            )
            let commands = CommandConsumer(
                context: name, store: store, connection: consuming,
                handlers: module.makeCommandHandlers(ContextResources(store: store, deadlines: module.deadlines)), logger: TestBroker.logger
            )
            let relay = OutboxRelay(
                storage: storage, publisher: AMQPPublisher(connection: publishing),
                configuration: OutboxRelay.Configuration(context: name, idlePollInterval: .milliseconds(50)), logger: TestBroker.logger
            )
            services.append { try await consumer.run() }
            services.append { try await commands.run() }
            services.append { try await relay.run() }
        }
        defer {
            Task {
                await consuming.close()
                await publishing.close()
            }
        }
        let order = try #require(stores["order"])
        let invoice = try #require(stores["invoice"])
        let amounts = (0..<30).map { $0 * 70 + 1 }  // 1...2031: above 1000 is declined (as is 0 or less)
        let runners = services
        let tasks = runners.map { service in Task { try await service() } }
        defer { tasks.forEach { $0.cancel() } }
        for (index, amount) in amounts.enumerated() {
            try await DemoContext.placeOrder("o\(index)", amount: amount, in: order)
        }
        let deadline = ContinuousClock.now + .seconds(60)
        var states: [DemoContext.OrderState] = []
        while ContinuousClock.now < deadline {
            states = []
            for index in amounts.indices { states.append(try await DemoContext.orderState("o\(index)", in: order).state) }
            if states.allSatisfy({ $0 == .completed || $0 == .cancelled }) { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        for (index, amount) in amounts.enumerated() {
            #expect(states[index] == (amount > 1000 ? .cancelled : .completed), "order o\(index) of \(amount)")
        }
        let issued = try await invoice.readAll(limit: 1000).compactMap { $0.envelope.as(InvoiceIssued.self) }
        #expect(issued.count == amounts.filter { $0 <= 1000 }.count)
        #expect(issued.map(\.invoiceNumber).sorted() == Array(1...issued.count))
        // Causation: OrderCompleted <- SettleOrder <- InvoiceIssued, in the order's correlation.
        let orderEvents = try await order.readAll(limit: 10_000)
        let sent = try await order.storage.commandOutboxEntries(in: [.sent], limit: 10_000)
        let invoiceEvents = try await invoice.readAll(limit: 1000)
        for event in orderEvents where event.envelope.as(OrderCompleted.self) != nil {
            let settle = sent.first { $0.command.id == event.envelope.metadata.causationID }
            #expect(settle?.command.typeName == SettleOrder.typeName)
            let cause = invoiceEvents.first { $0.envelope.id == settle?.command.metadata.causationID }
            #expect(cause?.envelope.as(InvoiceIssued.self) != nil)
            #expect(cause?.envelope.metadata.correlationID == event.envelope.metadata.correlationID)
        }
    }
}
