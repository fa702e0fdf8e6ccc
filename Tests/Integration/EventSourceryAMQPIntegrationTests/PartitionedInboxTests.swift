import EventSourceryRabbitMQ
import TestSupport
import EventSourcery
import EventSourceryAMQP
import Foundation
import Testing

/// Partitioned inboxes on a broker with the consistent-hash exchange plugin: streams spread
/// over the partitions, one partition per stream, replicas that take over each other's
/// partitions in stream order and exactly once, and the migration from a single inbox.
@Suite(.timeLimit(.minutes(3)), .requiresBroker)
struct PartitionedInboxTests {
    private static let partitions = 4

    private func description(_ fixture: ConsumerFixture, partitions: Int = Self.partitions) -> ContextDescription {
        ContextDescription(name: fixture.context, handlers: ["apply": [fixture.subscription]], partitions: partitions)
    }

    /// Versions 1...`versions` of the streams `item-0`…, interleaved: every stream's version 1,
    /// then every stream's version 2, …
    private func messages(_ fixture: ConsumerFixture, streams: Int, versions: ClosedRange<Int>) -> [OutgoingMessage] {
        versions.flatMap { version in
            (0..<streams).map { stream in fixture.message(version, stream: "item-\(stream)", version: Int64(version)) }
        }
    }

    /// A handler that appends `ItemHandled(version)` to `applied-<source stream>` and counts
    /// its runs in `runs`.
    private func applying(_ fixture: ConsumerFixture, runs: Counter, pause: Duration = .zero) -> EventHandler {
        EventHandler(name: "apply", subscriptions: [fixture.subscription]) { input, batch in
            _ = runs.next()
            if pause > .zero { try await Task.sleep(for: pause) }
            guard let item = input.as(ItemCounted.self) else { return }
            try batch.append([input.caused(ItemHandled(index: item.index))], to: StreamID("applied-\(input.streamID)"))
        }
    }

    /// The versions applied to each stream, in the order the store holds them.
    private func applied(_ fixture: ConsumerFixture, streams: Int) async throws -> [[Int]] {
        var result: [[Int]] = []
        for stream in 0..<streams {
            result.append(
                try await fixture.store.load(StreamID("applied-item-\(stream)")).compactMap { $0.envelope.as(ItemHandled.self)?.index })
        }
        return result
    }

    private func configuration(_ fixture: ConsumerFixture, partitions: Int = Self.partitions) -> ContextConsumer.Configuration {
        var configuration = fixture.configuration()
        configuration.partitions = partitions
        configuration.heldPollInterval = .milliseconds(100)
        return configuration
    }

    /// A partitioned consumer applying with ``applying(_:runs:pause:)``, running in the background.
    private func start(_ fixture: ConsumerFixture, runs: Counter) -> (ContextConsumer, Task<Void, any Error>) {
        let consumer = ContextConsumer(
            connection: fixture.connection, store: fixture.store, handlers: [applying(fixture, runs: runs)],
            configuration: configuration(fixture), logger: TestBroker.logger)
        return (consumer, Task { try await consumer.run() })
    }

    @Test func theEventsOfOneStreamLandInOnePartitionInStreamOrder() async throws {
        let fixture = try await ConsumerFixture()
        defer { Task { await fixture.tearDown() } }
        let topology = ContextTopology(description(fixture))
        try await topology.declare(on: fixture.connection)
        let streams = 40
        try await fixture.publish(messages(fixture, streams: streams, versions: 1...5))

        var partitionOfStream: [String: Set<String>] = [:]
        var versionsOfStream: [String: [Int64]] = [:]
        var perPartition: [String: Int] = [:]
        for queue in topology.inboxQueues {
            let count = Int(try await fixture.connection.queueState(queue).messageCount)
            perPartition[queue] = count
            guard count > 0 else { continue }
            let consumer = try await fixture.connection.consume(queue: queue, prefetch: 1000)
            var received = 0
            for try await delivery in consumer.deliveries {
                let stream = try #require(delivery.properties.headers?[EventMessage.Header.streamID]?.stringValue)
                let version = try #require(delivery.properties.headers?[EventMessage.Header.streamVersion]?.intValue)
                partitionOfStream[stream, default: []].insert(queue)
                versionsOfStream[stream, default: []].append(Int64(version))
                received += 1
                if received == count { break }
            }
            await consumer.cancel()
        }
        #expect(perPartition.values.reduce(0, +) == streams * 5, "every event reached exactly one partition")
        #expect(perPartition.values.filter { $0 > 0 }.count >= 3, "40 streams spread over the partitions: \(perPartition)")
        #expect(partitionOfStream.count == streams)
        for (stream, partitions) in partitionOfStream {
            #expect(partitions.count == 1, "\(stream) is in \(partitions)")
            #expect(versionsOfStream[stream] == [1, 2, 3, 4, 5], "\(stream)")
        }
    }

    @Test func aMessageWithoutAStreamLandsInOnePartitionAndIsDeadLettered() async throws {
        let fixture = try await ConsumerFixture()
        defer { Task { await fixture.tearDown() } }
        let topology = ContextTopology(description(fixture))
        try await topology.declare(on: fixture.connection)
        var message = fixture.message(1)
        message.properties.headers?[EventMessage.Header.streamID] = nil
        try await fixture.publish([message])
        var counts: [Int] = []
        for queue in topology.inboxQueues { counts.append(try await fixture.messageCount(queue)) }
        #expect(counts.sorted() == [0, 0, 0, 1], "the hash of a missing header picks one partition: \(counts)")

        let (_, task) = start(fixture, runs: Counter())
        defer { task.cancel() }
        #expect(try await fixture.eventually { try await fixture.messageCount(topology.deadLetterQueue) == 1 })
        let letters = try await ContextAdmin(context: fixture.context, connection: fixture.connection, partitions: Self.partitions)
            .deadLetters()
        #expect(letters.map(\.reason) == ["missingHeaders"])
    }

    @Test func aSecondReplicaTakesOverThePartitionsOfOneThatStopsInOrderAndExactlyOnce() async throws {
        let fixture = try await ConsumerFixture()
        defer { Task { await fixture.tearDown() } }
        let streams = 30
        let versions = 20
        let firstRuns = Counter()
        let secondRuns = Counter()
        let firstConnection = try await TestBroker.connect()
        let secondConnection = try await TestBroker.connect()
        defer { Task { await secondConnection.close() } }
        let first = ContextConsumer(
            connection: firstConnection, store: fixture.store,
            handlers: [applying(fixture, runs: firstRuns, pause: .milliseconds(2))],
            configuration: configuration(fixture), logger: TestBroker.logger)
        let secondLog = LogCapture()
        let second = ContextConsumer(
            connection: secondConnection, store: fixture.store, handlers: [applying(fixture, runs: secondRuns)],
            configuration: configuration(fixture), logger: secondLog.logger)
        try await first.topology.declare(on: fixture.connection)

        let firstTask = Task { try await first.run() }
        try await waitUntil(timeout: .seconds(20)) {
            try await allPartitions(of: first.topology, haveConsumers: 1, on: fixture.connection)
        }
        let secondTask = Task { try await second.run() }
        defer { secondTask.cancel() }
        // A waiting single-active consumer does not count in the queue's consumers.
        try await waitUntil(timeout: .seconds(20)) { secondLog.count("Subscribed to the inbox queues") == 1 }
        try await fixture.publish(messages(fixture, streams: streams, versions: 1...versions))
        // The first replica holds every partition (it subscribed first); it goes away
        // abruptly mid-way, with deliveries committed but not acknowledged.
        try await waitUntil(timeout: .seconds(30)) { firstRuns.current >= 100 }
        #expect(secondRuns.current == 0, "a single active consumer per partition: the second replica waits")
        // Its lanes still finish what they had taken, racing the second replica for the
        // same events, as a replica cut off from the broker does.
        await firstConnection.close()
        _ = await firstTask.result

        try await waitUntil(timeout: .seconds(60)) {
            try await applied(fixture, streams: streams).allSatisfy { $0.count == versions }
        }
        #expect(secondRuns.current > 0, "the second replica took over")
        let result = try await applied(fixture, streams: streams)
        #expect(try await fixture.failures().isEmpty)
        for (stream, applied) in result.enumerated() {
            #expect(applied == Array(1...versions), "item-\(stream) applied in stream order, each event once")
        }
        for queue in first.topology.inboxQueues {
            #expect(try await fixture.connection.queueState(queue).messageCount == 0, "\(queue)")
        }
    }

    @Test func aPartitionedConsumerDrainsTheSingleInboxFirstThenDeletesIt() async throws {
        let fixture = try await ConsumerFixture()
        defer { Task { await fixture.tearDown() } }
        let streams = 10
        // A single-inbox deployment left events in <context>.inbox.
        let single = ContextTopology(description(fixture, partitions: 1))
        try await single.declare(on: fixture.connection)
        try await fixture.publish(messages(fixture, streams: streams, versions: 1...5))
        #expect(try await fixture.messageCount(single.inboxQueue) == streams * 5)

        let runs = Counter()
        let (consumer, task) = start(fixture, runs: runs)
        defer { task.cancel() }
        // Newer events arrive while the consumer changes the bindings and drains: they
        // reach the single inbox, the partitions or both, and are applied after the older ones.
        try await fixture.publish(messages(fixture, streams: streams, versions: 6...10))
        try await waitUntil(timeout: .seconds(30)) {
            try await applied(fixture, streams: streams).allSatisfy { $0.count == 10 }
        }
        let result = try await applied(fixture, streams: streams)
        for (stream, applied) in result.enumerated() {
            #expect(applied == Array(1...10), "item-\(stream): the single inbox's events before the partitions' ones")
        }
        #expect(runs.current == streams * 10, "a copy in both queues is applied once")
        try await waitUntil(timeout: .seconds(20)) { (try? await fixture.connection.queueState(single.inboxQueue)) == nil }
        await #expect(throws: AMQPError.self) { try await fixture.connection.queueState(single.inboxQueue) }
        try await waitUntil(timeout: .seconds(20)) {
            try await allPartitions(of: consumer.topology, haveConsumers: 1, on: fixture.connection)
        }
        try await fixture.publish(messages(fixture, streams: 1, versions: 11...11))
        #expect(try await fixture.eventually { try await applied(fixture, streams: 1)[0].count == 11 })
    }

    @Test func deadLettersAreReplayedIntoTheirStreamsPartition() async throws {
        let fixture = try await ConsumerFixture()
        defer { Task { await fixture.tearDown() } }
        let topology = ContextTopology(description(fixture))
        try await topology.declare(on: fixture.connection)
        // Two events dead-lettered as they would be past the delivery limit.
        let dead = [fixture.message(1, stream: "item-7", version: 1), fixture.message(2, stream: "item-7", version: 2)].map { message in
            var message = message
            message.exchange = topology.deadLetterExchange
            return message
        }
        try await fixture.publish(dead)
        #expect(try await fixture.eventually { try await fixture.messageCount(topology.deadLetterQueue) == 2 })
        let admin = ContextAdmin(context: fixture.context, connection: fixture.connection, partitions: Self.partitions)
        #expect(try await admin.replayDeadLetters() == 2)
        var holding: [String] = []
        for queue in topology.inboxQueues where try await fixture.messageCount(queue) > 0 {
            holding.append(queue)
        }
        #expect(holding.count == 1, "both events of item-7 are in one partition: \(holding)")

        let runs = Counter()
        let (_, task) = start(fixture, runs: runs)
        defer { task.cancel() }
        #expect(
            try await fixture.eventually {
                try await fixture.store.load(StreamID("applied-item-7")).count == 2
            })
        #expect(try await fixture.messageCount(topology.deadLetterQueue) == 0, "replayed through the partition exchange, not poison")
    }
}

/// Whether every inbox queue of `topology` has `count` consumers.
private func allPartitions(of topology: ContextTopology, haveConsumers count: UInt32, on connection: AMQPConnection) async throws -> Bool {
    for queue in topology.inboxQueues where try await connection.queueState(queue).consumerCount != count {
        return false
    }
    return true
}
