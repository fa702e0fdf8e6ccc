import DemoContexts
import EventSourcery
import EventSourceryAMQP
import EventSourceryRabbitMQ
import EventSourceryServices
import EventSourcerySQLite
import Foundation
import TestSupport
import Testing

/// The example `shipping-service` (Examples/Shipping, written with the service kit) as a
/// process beside the demo's contexts (`demo-service` for order, payment and invoice): one
/// order placed in the order store is paid, invoiced, completed and shipped, and
/// `OrderShipped` leaves through the shipping outbox to `shipping.events`, in the order's flow.
///
/// The demo's context names are fixed (`order.events`, `payment.inbox`, …); this suite keeps
/// them on the broker's default vhost, where no other suite declares them (the others use
/// unique names or the vhost `es-test`).
@Suite(.timeLimit(.minutes(3)), .requiresBroker)
struct ShippingExampleProcessTests {
    /// The demo's contexts and the example's `shipping`.
    private func configuration(directory: URL) -> String {
        DemoConfiguration.yaml(
            brokerURL: TestBroker.url, directory: directory,
            moreContexts: """
                  shipping:
                    store: sqlite:\(directory.appendingPathComponent("shipping.sqlite").path)
                    publishes: [OrderShipped]
                    handlers:
                      ship-order:
                        subscribes: [order.OrderCompleted]
                """)
    }

    @Test func theExampleConfigurationIsValid() throws {
        let path = TestRepository.root.appendingPathComponent("Examples/Shipping/shipping.yaml").path
        let configuration = try ServiceConfiguration.load(path: path, environment: [:])
        #expect(configuration.contexts["shipping"]?.handlers["ship-order"]?.subscribes == ["order.OrderCompleted"])
    }

    @Test func shipsOneOrderEndToEnd() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("shipping-example-\(UUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let configPath = directory.appendingPathComponent("eventsourcery.yaml").path
        try configuration(directory: directory).write(toFile: configPath, atomically: true, encoding: .utf8)
        let topologies = try ServiceConfiguration.load(path: configPath, environment: [:]).topologies
        let connection = try await TestBroker.freshTopology(topologies, url: TestBroker.url)
        let watch = TestBroker.uniqueName("shipped")
        _ = try await connection.declare(AMQPQueue(name: watch, durable: false, autoDelete: true))
        try await connection.bind(AMQPBinding(queue: watch, exchange: "shipping.events", routingKey: "shipping.OrderShipped"))
        let shipped = DeliveryCollector(try await connection.consume(queue: watch))
        // With --publish-order-outcomes the order context also publishes OrderPaid and
        // OrderCancelled, which no context here subscribes to: a sink takes them, since the
        // relay holds an unroutable event's stream back (and OrderCompleted with it).
        let sink = TestBroker.uniqueName("order-outcomes")
        _ = try await connection.declare(AMQPQueue(name: sink, durable: false, autoDelete: true))
        for type in ["OrderPaid", "OrderCancelled"] {
            try await connection.bind(AMQPBinding(queue: sink, exchange: "order.events", routingKey: "order.\(type)"))
        }

        let environment = ["AMQP_URL": TestBroker.url, "LOG_LEVEL": "warning"]
        let arguments = ["--config", configPath]
        let processes = [
            try ChildProcess.start(
                BuiltProducts.path("demo-service"), ["--context", "order", "--publish-order-outcomes"] + arguments,
                environment: environment),
            try ChildProcess.start(BuiltProducts.path("demo-service"), ["--context", "payment"] + arguments, environment: environment),
            try ChildProcess.start(BuiltProducts.path("demo-service"), ["--context", "invoice"] + arguments, environment: environment),
            try ChildProcess.start(
                BuiltProducts.path("shipping-service"), ["--context", "shipping"] + arguments, environment: environment),
        ]
        let order = try SQLiteEventStorage(path: directory.appendingPathComponent("order.sqlite").path)
        var stopped = false
        defer {
            if !stopped {
                for process in processes { process.signal(SIGKILL) }
                for process in processes { _ = waitpid(process.pid, nil, 0) }
            }
            try? order.close()
            // The context queues stay: the next run's `freshTopology` purges them.
            Task {
                _ = try? await connection.deleteQueue(sink)
                await connection.close()
            }
        }
        let placed = try await DemoContext.placeOrder(
            "ship-1", amount: 250, in: EventStore(storage: order, registry: EventRegistry(DemoContext.eventTypes)))

        let deliveries = await shipped.waitFor(count: 1, timeout: .seconds(60))
        let delivery = try #require(
            deliveries.first, "OrderShipped reached shipping.events; \(processes.map(\.standardErrorSoFar).joined(separator: "\n"))")
        let incoming = try EventMessage.incoming(
            body: delivery.body, properties: delivery.properties, exchange: delivery.exchange, routingKey: delivery.routingKey)
        #expect(incoming.sourceContext == "shipping")
        #expect(incoming.streamID == "shipment-ship-1")
        #expect(incoming.streamVersion == 1)
        #expect(incoming.event.typeName == "OrderShipped")
        #expect(incoming.event.metadata.correlationID == placed.metadata.correlationID, "the shipment continues the order's flow")
        let payload = try #require(try JSONSerialization.jsonObject(with: incoming.event.payload) as? [String: Any])
        #expect(payload["orderID"] as? String == "ship-1")
        #expect(payload["trackingNumber"] as? String == "TRK-SHIP-1")

        let shipping = try SQLiteEventStorage(path: directory.appendingPathComponent("shipping.sqlite").path)
        defer { try? shipping.close() }
        let recorded = try await EventStore(storage: shipping, registry: EventRegistry()).readAllRecorded()
        #expect(recorded.filter { $0.event.typeName == "OrderShipped" }.count == 1, "shipped once")
        try await waitUntil(timeout: .seconds(30)) { try await shipping.checkpoint(named: "shipped-orders") != nil }
        let projection = try #require(try await shipping.checkpoint(named: "shipped-orders"))
        #expect(try JSONDecoder().decode([String].self, from: projection.state) == ["ship-1"], "the projection runs beside the consumer")

        stopped = true
        for process in processes { process.signal(SIGTERM) }
        for process in processes {
            let result = try await process.wait()
            #expect(result.status == 0, "every service stops cleanly on SIGTERM: \(result.standardError)")
        }
    }
}
