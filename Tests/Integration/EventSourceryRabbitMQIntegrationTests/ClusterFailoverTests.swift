import EventSourceryRabbitMQ
import Foundation
import TestSupport
import Testing

/// Kills the cluster node a connection is on (SIGKILL of its Erlang VM) while it publishes to
/// and consumes from a quorum queue: the connection moves to another node by itself.
@Suite(.serialized, .timeLimit(.minutes(10)), .requiresCluster)
struct ClusterFailoverTests {
    /// A list mixing an unreachable plain endpoint and the TLS listener of the first node
    /// (`scripts/rabbitmq` puts it at the AMQP port + 100, with its CA under `.run/cluster`):
    /// whatever the shuffled order, the connection ends up on the TLS endpoint.
    @Test func aMixedListSkipsAnUnreachableNodeAndUsesTLSWhereAsked() async throws {
        let first = try AMQPConnection.Configuration(url: try #require(TestCluster.url))
        let caFile = TestRepository.root.appendingPathComponent(".run/cluster/es1/tls/ca.pem").path
        try #require(FileManager.default.fileExists(atPath: caFile), "no CA at \(caFile)")
        let url = "amqp://guest:guest@127.0.0.1:1/,amqps://guest:guest@localhost:\(first.port + 100)/?cacertfile=\(caFile)"
        let configuration = try AMQPConnection.Configuration(url: url)
        #expect(configuration.endpoints.map { $0.tls != nil } == [false, true])
        let connection = AMQPConnection(configuration: configuration, logger: TestBroker.logger)
        try await connection.connect()
        let endpoint = try #require(await connection.connectedEndpoint)
        #expect(endpoint.port == first.port + 100)
        #expect(endpoint.tls?.caFile == caFile)
        let queue = TestBroker.uniqueName("cluster.tls")
        try await connection.declare(AMQPQueue(name: queue, arguments: ["x-queue-type": "quorum"]))
        let outcome = try await AMQPPublisher(connection: connection).publish(OutgoingMessage.test(queue: queue))
        #expect(outcome.isConfirmed)
        try await connection.deleteQueue(queue)
        await connection.close()
    }

    @Test func killingTheConnectedNodeMovesTheConnectionWithoutLosingMessages() async throws {
        var configuration = try AMQPConnection.Configuration(url: try #require(TestCluster.url))
        configuration.heartbeat = .seconds(2)
        #expect(configuration.endpoints.count == 3)
        let connection = AMQPConnection(configuration: configuration, logger: TestBroker.logger)
        try await connection.connect()
        let queue = TestBroker.uniqueName("cluster.failover")
        try await connection.declare(AMQPQueue(name: queue, arguments: ["x-queue-type": "quorum"]))

        // The quorum queue has a member on every node, each running: killing one node must
        // leave a majority (a member still starting when its neighbour dies leaves one alone,
        // and the broker then refuses every publish to the queue).
        let nodes = ["es1@localhost", "es2@localhost", "es3@localhost"]
        var line = ""
        try await waitUntil(timeout: .seconds(30)) {
            let queues = try await TestCluster.script(
                "cluster-ctl", "1", "list_queues", "name", "members", "online", "--quiet", "--no-table-headers")
            line = queues.split(separator: "\n").first { $0.hasPrefix(queue) }.map(String.init) ?? ""
            let columns = line.split(separator: "\t")
            return columns.count == 3 && nodes.allSatisfy { columns[1].contains($0) && columns[2].contains($0) }
        }
        print("cluster failover: members and online members: \(line)")

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
        // Measured from just before the kill: an upper bound of the time without a node.
        let killedAt = ContinuousClock.now
        try await TestCluster.script("cluster-kill", "\(before.port)")
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
