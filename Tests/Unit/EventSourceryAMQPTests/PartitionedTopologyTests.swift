@testable import EventSourceryAMQP
import EventSourceryRabbitMQ
import Foundation
import Testing

/// The topology of a partitioned inbox, computed without a broker: queue names, arguments,
/// the consistent-hash exchange and the bindings, and its definitions export.
struct PartitionedTopologyTests {
    private func description(partitions: Int) -> ContextDescription {
        ContextDescription(
            name: "invoice",
            handlers: [
                "issue": [EventSubscription(source: "payment", type: "PaymentSucceeded")],
                "audit": [
                    EventSubscription(source: "payment", type: "PaymentFailed"), EventSubscription(source: "order", type: "OrderPlaced"),
                ],
            ],
            deliveryLimit: 4, partitions: partitions)
    }

    @Test func partitionsAreQuorumQueuesWithASingleActiveConsumerBehindAConsistentHashExchange() throws {
        let topology = ContextTopology(description(partitions: 4))
        #expect(topology.isPartitioned)
        #expect(
            topology.exchanges.map(\.name) == ["invoice.events", "order.events", "payment.events", "invoice.partitions", "invoice.dlx"])
        let hash = try #require(topology.exchanges.first { $0.name == "invoice.partitions" })
        #expect(hash.kind.name == "x-consistent-hash")
        #expect(hash.durable)
        #expect(hash.arguments == ["hash-header": "x-stream-id"])
        #expect(topology.inboxQueues == ["invoice.inbox.0", "invoice.inbox.1", "invoice.inbox.2", "invoice.inbox.3"])
        #expect(topology.queues.map(\.name) == topology.inboxQueues + ["invoice.dead"])
        for queue in topology.queues.prefix(4) {
            #expect(queue.durable)
            #expect(
                queue.arguments == [
                    "x-queue-type": "quorum", "x-delivery-limit": .int64(4), "x-dead-letter-exchange": "invoice.dlx",
                    "x-single-active-consumer": .bool(true),
                ])
        }
        #expect(topology.queues.last?.arguments == ["x-queue-type": "quorum"], "the dead-letter queue")
    }

    @Test func subscriptionsFeedTheHashExchangeWhichFeedsEveryPartitionWithEqualWeight() {
        let topology = ContextTopology(description(partitions: 3))
        let subscriptions = topology.bindings.filter { $0.destinationKind == .exchange }
        #expect(
            subscriptions.map { "\($0.exchange) -> \($0.queue) [\($0.routingKey)]" } == [
                "order.events -> invoice.partitions [order.OrderPlaced]",
                "payment.events -> invoice.partitions [payment.PaymentFailed]",
                "payment.events -> invoice.partitions [payment.PaymentSucceeded]",
            ])
        let partitions = topology.bindings.filter { $0.exchange == "invoice.partitions" }
        #expect(partitions.map(\.queue) == ["invoice.inbox.0", "invoice.inbox.1", "invoice.inbox.2"])
        #expect(partitions.allSatisfy { $0.destinationKind == .queue && $0.routingKey == "1" })
        #expect(topology.bindings.last == AMQPBinding(queue: "invoice.dead", exchange: "invoice.dlx", routingKey: "#"))
        #expect(topology.bindings.count == 3 + 3 + 1)
    }

    @Test func theSingleInboxBindingsAreWhatOnePartitionDeclares() {
        let partitioned = ContextTopology(description(partitions: 4))
        let single = ContextTopology(description(partitions: 1))
        #expect(partitioned.singleInboxBindings == single.bindings.dropLast())
        #expect(partitioned.singleInboxBindings.allSatisfy { $0.queue == "invoice.inbox" && $0.destinationKind == .queue })
    }

    @Test func onePartitionIsTheSingleInboxWithoutTheHashExchange() {
        let topology = ContextTopology(description(partitions: 1))
        #expect(!topology.isPartitioned)
        #expect(topology.inboxQueues == ["invoice.inbox"])
        #expect(topology.queues.map(\.name) == ["invoice.inbox", "invoice.dead"])
        #expect(topology.queues[0].arguments["x-single-active-consumer"] == nil)
        #expect(!topology.exchanges.contains { $0.name == "invoice.partitions" })
        #expect(topology.bindings.allSatisfy { $0.destinationKind == .queue })
        #expect(ContextTopology(ContextDescription(name: "invoice")).partitions == 1, "the library's default is one inbox")
        #expect(ContextTopology(description(partitions: 0)).inboxQueues == ["invoice.inbox"])
    }

    @Test func theDefinitionsBindExchangesToExchanges() throws {
        let data = try ContextTopology(description(partitions: 2)).definitionsJSON()
        let document = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        let exchanges = try #require(document["exchanges"] as? [[String: Any]])
        let hash = try #require(exchanges.first { $0["name"] as? String == "invoice.partitions" })
        #expect(hash["type"] as? String == "x-consistent-hash")
        #expect((hash["arguments"] as? [String: Any])?["hash-header"] as? String == "x-stream-id")
        let bindings = try #require(document["bindings"] as? [[String: Any]])
        let toHash = bindings.filter { $0["destination"] as? String == "invoice.partitions" }
        #expect(toHash.count == 3)
        #expect(toHash.allSatisfy { $0["destination_type"] as? String == "exchange" })
        let toPartitions = bindings.filter { $0["source"] as? String == "invoice.partitions" }
        #expect(toPartitions.compactMap { $0["destination"] as? String }.sorted() == ["invoice.inbox.0", "invoice.inbox.1"])
        #expect(toPartitions.allSatisfy { $0["destination_type"] as? String == "queue" && $0["routing_key"] as? String == "1" })
        let queues = try #require(document["queues"] as? [[String: Any]])
        let partition = try #require(queues.first { $0["name"] as? String == "invoice.inbox.1" })
        #expect((partition["arguments"] as? [String: Any])?["x-single-active-consumer"] as? Bool == true)
    }

    @Test func replicasSubscribeFromARotatedStartSoTheySpread() {
        let queues = ContextTopology(description(partitions: 4)).inboxQueues
        #expect(ContextConsumer.subscriptionOrder(queues, start: 0) == queues)
        #expect(
            ContextConsumer.subscriptionOrder(queues, start: 6) == [
                "invoice.inbox.2", "invoice.inbox.3", "invoice.inbox.0", "invoice.inbox.1",
            ])
        #expect(ContextConsumer.subscriptionOrder(["invoice.inbox"], start: 3) == ["invoice.inbox"])
        #expect(ContextConsumer.subscriptionOrder([], start: 3) == [])
    }

    @Test func theConsumerConfigurationChecksThePartitionCount() {
        #expect(ContextConsumer.Configuration(context: "order").partitions == 1)
        for partitions in [0, -1, ContextConsumer.Configuration.maximumPartitions + 1] {
            do {
                try ContextConsumer.Configuration(context: "order", partitions: partitions).validate()
                Issue.record("\(partitions) partitions were accepted")
            } catch {
                #expect(error.field == "partitions")
                #expect(error.message == "partitions must be within 1...1024, got \(partitions)")
            }
        }
        #expect(throws: Never.self) { try ContextConsumer.Configuration(context: "order", partitions: 1024).validate() }
    }
}
