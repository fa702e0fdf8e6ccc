import EventSourceryRabbitMQ
import Foundation
import TestSupport
import Testing

/// Kills the cluster node a connection is on (SIGKILL of its Erlang VM) while it publishes to
/// and consumes from a quorum queue: the connection moves to another node by itself.
@Suite(.serialized, .timeLimit(.minutes(10)), .requiresCluster)
struct ClusterFailoverTests {
    @Test func killingTheConnectedNodeMovesTheConnectionWithoutLosingMessages() async throws {
        var configuration = try AMQPConnection.Configuration(url: try #require(TestCluster.url))
        configuration.heartbeat = .seconds(2)
        #expect(configuration.endpoints.count == 3)
        let connection = AMQPConnection(configuration: configuration, logger: TestBroker.logger)
        try await connection.connect()
        let queue = TestBroker.uniqueName("cluster.failover")
        try await connection.declare(AMQPQueue(name: queue, arguments: ["x-queue-type": "quorum"]))

        // The quorum queue has a member on every node.
        let members = try await TestCluster.script("cluster-ctl", "1", "list_queues", "name", "members", "--quiet", "--no-table-headers")
        let line = try #require(members.split(separator: "\n").first { $0.hasPrefix(queue) })
        #expect(["es1@localhost", "es2@localhost", "es3@localhost"].allSatisfy { line.contains($0) }, "members: \(line)")

        let consumer = try await connection.consume(queue: queue, prefetch: 100)
        let collector = DeliveryCollector(consumer) { consumer.ack($0) }
        let publisher = AMQPPublisher(connection: connection, window: 20)

        var confirmed: Set<String> = []
        var notConfirmed: Set<String> = []
        /// Records the outcomes; whether every message was confirmed.
        func record(_ messages: [OutgoingMessage], _ outcomes: [PublishOutcome]) -> Bool {
            #expect(outcomes.count == messages.count)
            for (message, outcome) in zip(messages, outcomes) {
                let id = message.properties.messageId!
                switch outcome {
                case .confirmed: confirmed.insert(id)
                case .notConfirmed: notConfirmed.insert(id)
                case .nacked, .returned: Issue.record("unexpected outcome \(outcome)")
                }
            }
            return outcomes.allSatisfy(\.isConfirmed)
        }
        func batch() -> [OutgoingMessage] { (0..<20).map { OutgoingMessage.test(queue: queue, index: $0) } }
        func publishBatch() async throws -> Bool {
            let messages = batch()
            return record(messages, try await publisher.publish(messages))
        }

        for _ in 0..<5 { _ = try await publishBatch() }
        await collector.waitFor(count: confirmed.count, timeout: .seconds(30))
        let before = try #require(await connection.connectedEndpoint)

        // Kill the node while a batch is in flight.
        let inFlight = batch()
        let inFlightOutcomes = Task { try await publisher.publish(inFlight) }
        try await TestCluster.script("cluster-kill", "\(before.port)")
        let killedAt = ContinuousClock.now
        _ = record(inFlight, try await inFlightOutcomes.value)

        // Publish until a whole batch is confirmed again: the connection works on another node.
        var working = false
        while !working, ContinuousClock.now - killedAt < .seconds(120) {
            working = try await publishBatch()
        }
        let recovery = ContinuousClock.now - killedAt
        #expect(working)
        let after = try #require(await connection.connectedEndpoint)
        #expect(after.port != before.port)
        print("cluster failover: \(before.address) killed, working again on \(after.address) after \(recovery)")
        for _ in 0..<5 { _ = try await publishBatch() }

        // Every confirmed message arrives; not-confirmed ones may or may not (none is lost silently).
        var received: Set<String> = []
        try await waitUntil(timeout: .seconds(60)) {
            received = Set(collector.deliveries.compactMap(\.properties.messageId))
            return confirmed.isSubset(of: received)
        }
        #expect(confirmed.isSubset(of: received), "\(confirmed.subtracting(received).count) confirmed messages are missing")
        #expect(received.isSubset(of: confirmed.union(notConfirmed)))
        print("cluster failover: \(confirmed.count) confirmed, \(notConfirmed.count) not confirmed, \(received.count) received")

        // The killed node restarts and rejoins the cluster.
        try await TestCluster.script("cluster-start")
        let status = try await TestCluster.script("cluster-ctl", "1", "cluster_status", "--formatter", "json")
        let running = try #require(
            (try JSONSerialization.jsonObject(with: Data(status.utf8)) as? [String: Any])?["running_nodes"] as? [String])
        #expect(Set(running) == ["es1@localhost", "es2@localhost", "es3@localhost"])

        await consumer.cancel()
        collector.stop()
        try await connection.deleteQueue(queue)
        await connection.close()
    }
}
