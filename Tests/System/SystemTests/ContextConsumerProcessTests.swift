import EventSourceryRabbitMQ
import TestSupport
import EventSourcery
import EventSourceryAMQP
import EventSourcerySQLite
import EventSourceryServices
import Foundation
import Testing

/// The `context-consumer` executable's admin modes and start-up checks, run as a real process.
@Suite(.timeLimit(.minutes(1)), .requiresBroker)
struct ContextConsumerProcessTests {
    private func directory() throws -> URL {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("context-consumer-\(UUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        return directory
    }

    @Test func exportsTheDefinitionsOfEveryContext() async throws {
        let directory = try directory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let config = TestRepository.root.appendingPathComponent("config/eventsourcery.yaml").path
        let output = directory.appendingPathComponent("definitions.json").path
        let result = try await ChildProcess.run(
            BuiltProducts.path("context-consumer"), ["--context", "payment", "--config", config, "--export-definitions", output])
        #expect(result.status == 0, "\(result.standardError)")
        let document = try #require(
            try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: output))) as? [String: Any])
        let queues = try #require(document["queues"] as? [[String: Any]])
        let contexts = ["order", "payment", "invoice"]
        #expect(
            Set(queues.compactMap { $0["name"] as? String })
                == Set(contexts.flatMap { ContextTopology.inboxQueues(for: $0, partitions: 4) + ["\($0).dead", "\($0).commands"] }))
        let paymentInbox = try #require(queues.first { $0["name"] as? String == "payment.inbox.0" })
        #expect((paymentInbox["arguments"] as? [String: Any])?["x-queue-type"] as? String == "quorum")
        #expect((paymentInbox["arguments"] as? [String: Any])?["x-single-active-consumer"] as? Bool == true)
        let bindings = try #require(document["bindings"] as? [[String: Any]])
        #expect(
            bindings.contains {
                $0["source"] as? String == "payment.events" && $0["destination"] as? String == "order.partitions"
                    && $0["destination_type"] as? String == "exchange" && $0["routing_key"] as? String == "payment.PaymentSucceeded"
            })
        #expect(
            bindings.filter { $0["source"] as? String == "payment.partitions" }.compactMap { $0["destination"] as? String }.sorted()
                == ContextTopology.inboxQueues(for: "payment", partitions: 4))
        #expect(
            bindings.contains {
                $0["source"] as? String == "payment.commands" && $0["destination"] as? String == "payment.commands"
                    && $0["routing_key"] as? String == "payment.#"
            })
    }

    @Test func anInvalidSubscriptionIsRejectedNamingTheFileAndEntry() async throws {
        let directory = try directory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let config = directory.appendingPathComponent("eventsourcery.yaml").path
        try """
        contexts:
          order:
            store: sqlite:\(directory.path)/order.sqlite
            publishes: [OrderPlaced]
          payment:
            store: sqlite:\(directory.path)/payment.sqlite
            publishes: [PaymentSucceeded]
            handlers:
              charge-order:
                subscribes: [order.OrderShipped]
        """.write(toFile: config, atomically: true, encoding: .utf8)
        let result = try await ChildProcess.run(
            BuiltProducts.path("demo-service"), ["--context", "payment", "--role", "consumer", "--config", config])
        #expect(result.status == 78)
        #expect(result.standardError.contains("\(config):10:9: contexts.payment.handlers.charge-order.subscribes: 'order.OrderShipped'"))
    }

    @Test func theGenericBuildHasNoHandlerCodeAndSaysWhereItIs() async throws {
        let config = TestRepository.root.appendingPathComponent("config/eventsourcery.yaml").path
        let result = try await ChildProcess.run(
            BuiltProducts.path("context-consumer"), ["--context", "payment", "--config", config], environment: ["AMQP_URL": ""])
        #expect(result.status == 78, "\(result.standardError)")
        #expect(result.standardError.contains("no handler code is built in for context 'payment'; built in: none"))
    }

    @Test func adminModesListAndReplayDeadLettersAndListFailures() async throws {
        let fixture = try await ConsumerFixture()
        defer { Task { await fixture.tearDown() } }
        let config = fixture.directory.appendingPathComponent("eventsourcery.yaml").path
        let storePath = fixture.directory.appendingPathComponent("store.sqlite").path
        try """
        broker:
          url: \(TestBroker.url)
        contexts:
          \(fixture.source):
            store: sqlite:\(fixture.directory.path)/source.sqlite
            publishes: [ItemCounted]
          \(fixture.context):
            store: sqlite:\(storePath)
            publishes: []
            handlers:
              count:
                subscribes: [\(fixture.source).ItemCounted]
        """.write(toFile: config, atomically: true, encoding: .utf8)
        let topology = fixture.consumer([fixture.handler()]).topology
        try await topology.declare(on: fixture.connection)
        var letter = fixture.message(1)
        letter.exchange = topology.deadLetterExchange
        letter.properties.headers?[EventMessage.deathReasonHeader] = "malformedJSON"
        try await fixture.publish([letter])
        #expect(try await fixture.eventually { try await fixture.messageCount(topology.deadLetterQueue) == 1 })

        let environment = ["AMQP_URL": ""]
        let consumer = BuiltProducts.path("context-consumer")
        let listed = try await ChildProcess.run(
            consumer, ["--context", fixture.context, "--config", config, "--list-dead"], environment: environment)
        #expect(listed.status == 0, "\(listed.standardError)")
        #expect(listed.standardOutput.contains("1 dead letter(s)"))
        #expect(listed.standardOutput.contains("\(letter.properties.messageId ?? "?")\tevent\t\(letter.routingKey)\tmalformedJSON"))
        #expect(try await fixture.eventually { try await fixture.messageCount(topology.deadLetterQueue) == 1 }, "listing keeps the letters")

        let replayed = try await ChildProcess.run(
            consumer, ["--context", fixture.context, "--config", config, "--replay-dead"], environment: environment)
        #expect(replayed.status == 0, "\(replayed.standardError)")
        #expect(replayed.standardOutput.contains("moved 1 message(s)"))
        // The configuration's default partitions: the letter goes back into its stream's partition.
        let partitions = ContextTopology.inboxQueues(for: fixture.context, partitions: ServiceConfiguration.defaultPartitions)
        #expect(
            try await fixture.eventually {
                var total = 0
                for queue in partitions { total += try await fixture.messageCount(queue) }
                return total == 1
            })
        #expect(try await fixture.messageCount(topology.deadLetterQueue) == 0)

        let failure = HandlerFailed(
            eventID: UUID(), eventType: "ItemCounted", sourceContext: fixture.source, handler: "count", error: "disk full", attempt: 2,
            failedAt: Date()
        )
        try await fixture.store.append([EventEnvelope(failure)], to: HandlerFailed.stream(for: fixture.context))
        let failures = try await ChildProcess.run(
            consumer, ["--context", fixture.context, "--config", config, "--list-failures"], environment: environment)
        #expect(failures.status == 0, "\(failures.standardError)")
        #expect(failures.standardOutput.contains("1 handler failure(s)"))
        #expect(failures.standardOutput.contains("count\tItemCounted\t\(failure.eventID)\tattempt 2\tdisk full"))
    }
}
