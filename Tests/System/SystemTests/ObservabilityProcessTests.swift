import DemoContexts
import EventSourcery
import EventSourceryAMQP
import EventSourceryRabbitMQ
import EventSourcerySQLite
import EventSourceryServices
import Foundation
import TestSupport
import Testing

/// The health and metrics endpoint of `outbox-publisher` and of a consumer built with the
/// kit (`demo-service --role consumer`), run as processes: readiness while they work, metrics that move as events flow, and readiness
/// that drops when the broker stops.
@Suite(.serialized, .timeLimit(.minutes(3)))
struct ObservabilityProcessTests {
    /// The broker's second vhost `es-test`, where the demo's context names are kept apart.
    static var vhostURL: String {
        var url = URLComponents(string: TestBroker.url)!
        url.user = "es-test"
        url.password = "es-test"
        url.path = "/es-test"
        return url.string!
    }

    private func write(_ text: String, in directory: URL) throws -> String {
        let path = directory.appendingPathComponent("eventsourcery.yaml").path
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    /// Stops a service with SIGTERM and expects a clean exit.
    private func stop(_ process: ChildProcess) async throws {
        process.signal(SIGTERM)
        let result = try await process.wait()
        #expect(result.status == 0, "\(result.standardError)")
    }

    /// The demo's configuration on `brokerURL`: the order context's `fulfilment` handler
    /// consumes `OrderPlaced`.
    private func orderConfiguration(brokerURL: String, directory: URL) -> String {
        DemoConfiguration.yaml(brokerURL: brokerURL, directory: directory)
    }

    private func orderPlaced(_ index: Int) throws -> OutgoingMessage {
        let envelope = EventEnvelope(OrderPlaced(orderID: "o\(index)", amount: 100 + index))
        let recorded = RecordedEvent(
            streamID: try StreamID("order-o\(index)"), streamVersion: 1, position: Int64(index + 1),
            event: try EventRegistry.encode(envelope))
        return EventMessage.outgoing(recorded, context: "order")
    }

    @Test(.requiresBroker) func publisherIsReadyAndCountsWhatItPublishes() async throws {
        let fixture = try await RelayFixture()
        defer { Task { await fixture.tearDown() } }
        let port = try HTTPScrape.freePort()
        let config = try write(
            """
            broker:
              url: \(TestBroker.url)
            contexts:
              \(fixture.context):
                store: sqlite:\(fixture.directory.path)/store.sqlite
                publishes: [ItemCounted]
            """, in: fixture.directory)
        let publisher = try ChildProcess.start(
            BuiltProducts.path("outbox-publisher"), ["--context", fixture.context, "--config", config, "--http-port", "\(port)"],
            environment: ["AMQP_URL": ""])
        let http = HTTPScrape(port: port)
        let labels = "context=\"\(fixture.context)\""

        try await waitUntil(timeout: .seconds(60)) { await http.readiness()?.status == 200 }
        #expect(await http.get("/health/live")?.status == 200)
        #expect(await http.readiness()?.body == #"{"checks":{"broker":"ok","relay":"ok","store":"ok"},"reasons":[],"status":"ready"}"#)
        #expect(await http.metric(MetricName.outboxPublished, labels) == 0)

        _ = try await fixture.prefill(250, streams: 5)
        try await waitUntil(timeout: .seconds(60)) { await http.metric(MetricName.outboxPublished, labels) == 250 }
        try await waitUntil(timeout: .seconds(10)) { await http.metric(MetricName.outboxPending, labels) == 0 }
        #expect(try await fixture.storage.outboxCounts().published == 250)
        #expect(try #require(await http.metric(MetricName.outboxConfirmDuration + "_count", labels)) >= 1)
        #expect(await http.metric(MetricName.outboxParked, labels) == 0)
        #expect(await http.readiness()?.status == 200)
        try await stop(publisher)
    }

    @Test(.requiresBroker) func consumerIsReadyAndCountsWhatItConsumes() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("observe-consumer-\(UUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let config = try write(orderConfiguration(brokerURL: Self.vhostURL, directory: directory), in: directory)
        let topology = ContextTopology(
            try #require(try ServiceConfiguration.load(path: config, environment: [:]).contextDescription("order")))
        let connection = try await TestBroker.freshTopology([topology], url: Self.vhostURL)
        defer { Task { await connection.close() } }
        let port = try HTTPScrape.freePort()
        let consumer = try ChildProcess.start(
            BuiltProducts.path("demo-service"),
            ["--context", "order", "--role", "consumer", "--config", config, "--http-port", "\(port)"],
            environment: ["AMQP_URL": Self.vhostURL])
        let http = HTTPScrape(port: port)
        let labels = #"context="order""#

        try await waitUntil(timeout: .seconds(60)) { await http.readiness()?.status == 200 }
        #expect(await http.readiness()?.body.contains(#""consumer":"ok""#) == true)
        #expect(await http.metric(MetricName.consumerConsumed, labels) == 0)

        // 30 events, one of them twice, and one poison message.
        var messages = try (0..<30).map(orderPlaced)
        messages.append(messages[0])
        var poison = try orderPlaced(99)
        poison.body = Data("{not json".utf8)
        messages.append(poison)
        let outcomes = try await AMQPPublisher(connection: connection).publish(messages)
        #expect(outcomes.allSatisfy { $0.isConfirmed })

        try await waitUntil(timeout: .seconds(60)) { await http.metric(MetricName.consumerConsumed, labels) == 31 }
        #expect(await http.metric(MetricName.consumerDuplicatesSkipped, labels) == 1)
        #expect(await http.metric(MetricName.consumerDeadLettered, labels) == 1)
        #expect(await http.metric(MetricName.consumerHandlerFailures, labels) == 0)
        // The duplicate is a first delivery (published twice): its handler runs, and the commit
        // discards its writes.
        #expect(await http.metric(MetricName.consumerHandlerDuration + "_count", #"context="order",handler="fulfilment""#) == 31)
        try await waitUntil(timeout: .seconds(10)) {
            await http.metric(MetricName.queueMessages, #"context="order",queue="order.dead""#) == 1
        }
        var received = 0.0
        for queue in topology.inboxQueues {
            #expect(await http.metric(MetricName.queueConsumers, #"context="order",queue=""# + queue + #"""#) == 1, "\(queue)")
            received += await http.metric(MetricName.consumerPartitionDeliveries, #"context="order",queue=""# + queue + #"""#) ?? 0
        }
        #expect(received == 32, "every delivery counted against the partition it came from")
        try await stop(consumer)
    }

    @Test(.requiresPrivateBroker) func readinessDropsWhenTheBrokerStops() async throws {
        try await PrivateBroker.start()
        do {
            try await checkReadinessDropsWhenTheBrokerStops()
        } catch {
            await PrivateBroker.remove()
            throw error
        }
        await PrivateBroker.remove()
    }

    /// Starts a publisher and a consumer on the private broker, waits until both are ready,
    /// stops the broker and waits until both answer 503 naming the broker, then stops them.
    private func checkReadinessDropsWhenTheBrokerStops() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("observe-broker-\(UUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let config = try write(orderConfiguration(brokerURL: PrivateBroker.url, directory: directory), in: directory)
        let environment = ["AMQP_URL": PrivateBroker.url]
        let ports = [try HTTPScrape.freePort(), try HTTPScrape.freePort()]
        let processes = try zip([("outbox-publisher", "relay"), ("demo-service", "consumer")], ports).map { process, port in
            try ChildProcess.start(
                BuiltProducts.path(process.0), ["--context", "order", "--role", process.1, "--config", config, "--http-port", "\(port)"],
                environment: environment)
        }
        let endpoints = ports.map(HTTPScrape.init(port:))
        for http in endpoints {
            try await waitUntil(timeout: .seconds(60)) { await http.readiness()?.status == 200 }
        }

        try await PrivateBroker.stop()
        for http in endpoints {
            try await waitUntil(timeout: .seconds(60)) { await http.readiness()?.status == 503 }
            let body = await http.readiness()?.body ?? ""
            #expect(body.contains(#""status":"not ready""#), "\(body)")
            #expect(body.contains(#""broker":"#) && !body.contains(#""broker":"ok""#), "\(body)")
            #expect(await http.get("/health/live")?.status == 200, "the process still runs")
        }
        for process in processes { try await stop(process) }
    }
}
