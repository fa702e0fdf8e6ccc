import EventSourceryRabbitMQ
import TestSupport
import EventSourceryAMQP
import Foundation
import Testing

@Suite(.timeLimit(.minutes(1)), .requiresBroker)
struct ContextTopologyTests {
    private func description(_ context: String, source: String) -> ContextDescription {
        ContextDescription(
            name: context,
            publishes: ["InvoiceIssued"],
            handlers: [
                "issue": [EventSubscription(source: source, type: "PaymentSucceeded")],
                "audit": [
                    EventSubscription(source: source, type: "PaymentSucceeded"), EventSubscription(source: source, type: "PaymentFailed"),
                ],
            ],
            deliveryLimit: 4
        )
    }

    @Test func computesExchangesQueuesAndBindings() {
        let topology = ContextTopology(description("invoice", source: "payment"))
        #expect(topology.exchanges.map(\.name) == ["invoice.events", "payment.events", "invoice.dlx"])
        #expect(topology.exchanges.last?.kind == .fanout)
        #expect(topology.queues.map(\.name) == ["invoice.inbox", "invoice.dead"])
        #expect(topology.queues[0].arguments["x-queue-type"] == "quorum")
        #expect(topology.queues[0].arguments["x-delivery-limit"]?.intValue == 4)
        #expect(topology.queues[0].arguments["x-dead-letter-exchange"] == "invoice.dlx")
        #expect(topology.queues[1].arguments["x-queue-type"] == "quorum")
        #expect(topology.bindings.map(\.routingKey) == ["payment.PaymentFailed", "payment.PaymentSucceeded", "#"])
        #expect(topology.bindings.prefix(2).allSatisfy { $0.exchange == "payment.events" && $0.queue == "invoice.inbox" })
    }

    @Test func exportsADefinitionsDocumentWithTheQuorumQueue() throws {
        let data = try ContextTopology(description("invoice", source: "payment")).definitionsJSON()
        let document = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        let queues = try #require(document["queues"] as? [[String: Any]])
        let inbox = try #require(queues.first { $0["name"] as? String == "invoice.inbox" })
        #expect(inbox["vhost"] as? String == "/")
        #expect(inbox["durable"] as? Bool == true)
        let arguments = try #require(inbox["arguments"] as? [String: Any])
        #expect(arguments["x-queue-type"] as? String == "quorum")
        #expect(arguments["x-delivery-limit"] as? Int == 4)
        #expect(arguments["x-dead-letter-exchange"] as? String == "invoice.dlx")
        let bindings = try #require(document["bindings"] as? [[String: Any]])
        #expect(
            bindings.contains { $0["source"] as? String == "payment.events" && $0["routing_key"] as? String == "payment.PaymentSucceeded" })
        let exchanges = try #require(document["exchanges"] as? [[String: Any]])
        #expect(Set(exchanges.compactMap { $0["name"] as? String }) == ["invoice.events", "payment.events", "invoice.dlx"])
        #expect((document["vhosts"] as? [[String: Any]])?.first?["name"] as? String == "/")
    }

    @Test func declaringTwiceIsIdempotent() async throws {
        try await withFreshContext { topology, connection in
            try await topology.declare(on: connection)
            try await topology.declare(on: connection)
            #expect(try await connection.queueState(topology.inboxQueue).messageCount == 0)
            #expect(try await connection.queueState(topology.deadLetterQueue).messageCount == 0)
        }
    }

    /// An earlier version declared `<context>.dead` as a classic queue; its type cannot
    /// change, so declaring the topology keeps it and everything else is declared.
    @Test func aClassicDeadLetterQueueOfAnEarlierVersionIsKept() async throws {
        try await withFreshContext { topology, connection in
            try await connection.declare(AMQPQueue(name: topology.deadLetterQueue, durable: true))
            let outcome = try await AMQPPublisher(connection: connection).publish(
                OutgoingMessage(exchange: "", routingKey: topology.deadLetterQueue, body: Data("kept".utf8)))
            #expect(outcome.isConfirmed)
            try await topology.declare(on: connection)
            try await waitUntil(timeout: .seconds(10)) { try await connection.queueState(topology.deadLetterQueue).messageCount == 1 }
            #expect(try await connection.queueState(topology.inboxQueue).messageCount == 0)
            // The queue is still the classic one: declaring it as a quorum queue is refused.
            await #expect(throws: AMQPError.self) {
                try await connection.declare(
                    AMQPQueue(name: topology.deadLetterQueue, durable: true, arguments: ["x-queue-type": "quorum"]))
            }
        }
    }

    /// Runs `body` with the topology of a context of its own and a connection, then removes
    /// the topology.
    private func withFreshContext(_ body: (ContextTopology, AMQPConnection) async throws -> Void) async throws {
        let suffix = UUID().uuidString.prefix(8).lowercased()
        let topology = ContextTopology(description("topo-\(suffix)", source: "topsrc-\(suffix)"))
        let connection = try await TestBroker.connect()
        defer {
            Task {
                for queue in topology.queues { _ = try? await connection.deleteQueue(queue.name) }
                for exchange in topology.exchanges { try? await connection.deleteExchange(exchange.name) }
                await connection.close()
            }
        }
        try await body(topology, connection)
    }
}
