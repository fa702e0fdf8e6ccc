import EventSourceryRabbitMQ
import TestSupport
import EventSourcery
import EventSourceryAMQP
import EventSourcerySQLite
import Foundation
import Testing

@Suite(.timeLimit(.minutes(2)), .requiresBroker)
struct OutboxRelayTests {
    @Test func relaysEveryEventInStreamOrderWithTheWireContract() async throws {
        let fixture = try await RelayFixture()
        defer { Task { await fixture.tearDown() } }
        let cause = UUID()
        let traced = EventEnvelope(
            ItemCounted(index: -1),
            metadata: EventMetadata(
                correlationID: cause, causationID: cause,
                traceContext: ["traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"])
        )
        let first = try await fixture.store.publish([traced], to: "item-traced")
        let stored = first + (try await fixture.publishEvents(300, streams: 7))

        let statistics = try await fixture.relay(batchSize: 64).runOnce()
        #expect(statistics.published == 301)
        #expect(statistics.failed == 0)
        #expect(try await fixture.storage.outboxCounts().pending == 0)

        let deliveries = try await fixture.receive(301)
        #expect(deliveries.count == 301)
        #expect(Set(deliveries.compactMap(\.properties.messageId)) == Set(stored.map { $0.envelope.id.uuidString.lowercased() }))

        // Per stream, versions arrive in order.
        let versionsByStream = try RelayFixture.versionsByStream(deliveries)
        #expect(versionsByStream.count == 8)
        for (stream, versions) in versionsByStream {
            #expect(versions == Array(1...versions.count), "stream \(stream) arrived out of order")
        }

        // Every property of the wire contract.
        let message = try #require(deliveries.first { $0.properties.messageId == traced.id.uuidString.lowercased() })
        #expect(message.exchange == "\(fixture.context).events")
        #expect(message.routingKey == "\(fixture.context).ItemCounted")
        #expect(message.properties.type == "ItemCounted")
        #expect(message.properties.contentType == "application/json")
        #expect(message.properties.deliveryMode == .persistent)
        #expect(message.properties.appId == fixture.context)
        #expect(message.properties.correlationId == cause.uuidString.lowercased())
        #expect(message.properties.timestamp.map { Int($0.timeIntervalSince1970) } == Int(traced.createdAt.timeIntervalSince1970))
        let headers = message.properties.headers ?? [:]
        #expect(headers[EventMessage.Header.causationID]?.stringValue == cause.uuidString.lowercased())
        #expect(headers[EventMessage.Header.schemaVersion]?.intValue == 1)
        #expect(headers["traceparent"]?.stringValue == traced.metadata.traceContext["traceparent"])
        #expect(try JSONDecoder().decode(ItemCounted.self, from: message.body) == ItemCounted(index: -1))
    }

    @Test func anUnroutableEntryIsRetriedThenParkedHoldingBackItsStreamThenRequeuedAndDelivered() async throws {
        let fixture = try await RelayFixture(bindQueue: false)
        defer { Task { await fixture.tearDown() } }
        try await fixture.publishEvents(3, streams: 1)
        let relay = fixture.relay(attemptLimit: 2)

        let firstRound = try await relay.runOnce()
        #expect(firstRound.published == 0)
        #expect(firstRound.failed == 1, "only the stream's first entry was sent")
        #expect(firstRound.heldBack == 2)
        #expect(firstRound.parked == 0)
        let secondRound = try await relayUntil(relay) { try await fixture.storage.outboxCounts().parked == 1 }
        #expect(secondRound.failed == 1)
        #expect(secondRound.parked == 1, "the returned entry reached the attempt limit")

        let parked = try await fixture.storage.parkedOutboxEntries(limit: 10)
        #expect(parked.map(\.event.streamVersion) == [1])
        #expect(parked.allSatisfy { $0.attempts == 2 && $0.lastError?.contains("unroutable") == true })
        #expect(try await relay.runOnce().published == 0, "parked entries stay until requeued, and hold back their stream")
        #expect(try await fixture.storage.outboxCounts() == OutboxCounts(pending: 2, parked: 1, published: 0))
        #expect(
            try await fixture.storage.claimOutboxEntries(limit: 10, now: Date(), leaseDuration: 0).allSatisfy { $0.attempts == 0 },
            "held-back entries have no attempts recorded")

        try await fixture.bind()
        #expect(try await fixture.storage.requeueParked(parked.map(\.id)) == 1)
        #expect(try await relay.runOnce().published == 3)
        let deliveries = try await fixture.receive(3)
        #expect(deliveries.compactMap { $0.properties.headers?[EventMessage.Header.streamVersion]?.intValue } == [1, 2, 3])
    }

    /// The mixed outcome in one batch: entry 2 of a stream is returned (its type has no
    /// binding) while entries 3 and 4 would be routed. The consumer never receives 3 or 4
    /// before 2, and receives everything once, in order, after the binding is made.
    @Test func aRefusedEntryInTheMiddleOfAStreamIsNeverOvertakenByItsSuccessors() async throws {
        let fixture = try await RelayFixture(bindQueue: false)
        defer { Task { await fixture.tearDown() } }
        let exchange = EventMessage.exchange(for: fixture.context)
        try await fixture.connection.bind(
            AMQPBinding(queue: fixture.queue, exchange: exchange, routingKey: "\(fixture.context).\(ItemCounted.typeName)"))
        let store = EventStore(storage: fixture.storage, registry: EventRegistry([ItemCounted.self, ItemHandled.self]))
        let a: StreamID = "item-a"
        let b: StreamID = "item-b"
        try await store.publish([EventEnvelope(ItemCounted(index: 1))], to: a)
        try await store.publish([EventEnvelope(ItemCounted(index: 101))], to: b)
        try await store.publish([EventEnvelope(ItemHandled(index: 2))], to: a)  // no binding
        try await store.publish([EventEnvelope(ItemCounted(index: 102))], to: b)
        try await store.publish([EventEnvelope(ItemCounted(index: 3)), EventEnvelope(ItemCounted(index: 4))], to: a)
        let relay = fixture.relay(attemptLimit: 2)

        let refused = try await relayUntil(relay) { try await fixture.storage.outboxCounts().parked == 1 }
        #expect(refused.published == 3, "a's 1 and b's 1 and 2")
        #expect(refused.failed == 2, "a's 2, returned twice, then parked")
        #expect(refused.heldBack == 4, "a's 3 and 4 were not sent, each time a's 2 was refused")
        var received = try await fixture.receive(3)
        #expect(streamVersions(received) == [["item-a": 1], ["item-b": 1], ["item-b": 2]])

        try await fixture.connection.bind(
            AMQPBinding(queue: fixture.queue, exchange: exchange, routingKey: "\(fixture.context).\(ItemHandled.typeName)"))
        let parked = try await fixture.storage.parkedOutboxEntries(limit: 10)
        #expect(try await fixture.storage.requeueParked(parked.map(\.id)) == 1)
        #expect(try await relay.runOnce().published == 3)
        received += try await fixture.receive(3)
        let versionsOfA = received.compactMap { delivery -> Int? in
            let headers = delivery.properties.headers ?? [:]
            guard headers[EventMessage.Header.streamID]?.stringValue == "item-a" else { return nil }
            return headers[EventMessage.Header.streamVersion]?.intValue
        }
        #expect(versionsOfA == [1, 2, 3, 4], "each once, in stream order")
        #expect(received.count == 6)
        #expect(try await fixture.storage.outboxCounts() == OutboxCounts(pending: 0, parked: 0, published: 6))
    }

    /// Runs the relay until `condition` holds (a retried entry is due only after its backoff);
    /// returns what it did.
    private func relayUntil(_ relay: OutboxRelay, _ condition: () async throws -> Bool) async throws -> OutboxRelay.Statistics {
        var total = OutboxRelay.Statistics()
        let deadline = ContinuousClock.now + .seconds(10)
        repeat {
            let round = try await relay.runOnce()
            total.published += round.published
            total.failed += round.failed
            total.parked += round.parked
            total.heldBack += round.heldBack
        } while try await !condition() && ContinuousClock.now < deadline
        return total
    }

    private func streamVersions(_ deliveries: [Delivery]) -> [[String: Int]] {
        deliveries.map { delivery in
            let headers = delivery.properties.headers ?? [:]
            return [headers[EventMessage.Header.streamID]?.stringValue ?? "?": headers[EventMessage.Header.streamVersion]?.intValue ?? -1]
        }
    }

    @Test func nackedEventsAreNotMarkedPublished() async throws {
        // The queue takes one message and refuses the rest with basic.nack.
        let fixture = try await RelayFixture(queueArguments: ["x-max-length": .int64(1), "x-overflow": .string("reject-publish")])
        defer { Task { await fixture.tearDown() } }
        try await fixture.publishEvents(4, streams: 4)
        let statistics = try await fixture.relay(attemptLimit: 1).runOnce()
        #expect(statistics.published == 1)
        #expect(statistics.parked == 3)
        let parked = try await fixture.storage.parkedOutboxEntries(limit: 10)
        #expect(parked.allSatisfy { $0.lastError?.contains("basic.nack") == true })
        #expect(try await fixture.storage.outboxCounts() == OutboxCounts(pending: 0, parked: 3, published: 1))
        #expect(try await fixture.connection.queueState(fixture.queue).messageCount == 1)
    }

    @Test func runningRelayPublishesNewEventsPromptlyAndStopsOnCancellation() async throws {
        let fixture = try await RelayFixture()
        defer { Task { await fixture.tearDown() } }
        let relay = fixture.relay()
        let running = Task { try await relay.run() }
        try await Task.sleep(for: .milliseconds(100))
        let stored = try await fixture.publishEvents(5, streams: 2)
        let deliveries = try await fixture.receive(5, timeout: .seconds(10))
        #expect(Set(deliveries.compactMap(\.properties.messageId)) == Set(stored.map { $0.envelope.id.uuidString.lowercased() }))
        // A consumer can see a message before the relay has its confirm and marks it.
        let deadline = ContinuousClock.now + .seconds(10)
        while try await fixture.storage.outboxCounts().published < 5, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(10))
        }
        #expect(try await fixture.storage.outboxCounts() == OutboxCounts(pending: 0, parked: 0, published: 5))
        running.cancel()
        let stopped = ContinuousClock.now
        _ = await running.result
        #expect(ContinuousClock.now - stopped < .seconds(5))
    }

    /// Four writers commit while a relay with a linger runs: every event arrives once, each
    /// stream in order, and the relay marks them all published.
    @Test func aLingeringRelayPublishesSteadyCommitsOnceEachInStreamOrder() async throws {
        let fixture = try await RelayFixture()
        defer { Task { await fixture.tearDown() } }
        let relay = fixture.relay(batchSize: 20, linger: .milliseconds(20))
        let running = Task { try await relay.run() }
        let stored = try await withThrowingTaskGroup(of: [StoredEvent].self) { group in
            for writer in 0..<4 {
                group.addTask {
                    var stored: [StoredEvent] = []
                    for index in 0..<50 {
                        let stream = try StreamID("item-\(writer)-\(index % 3)")
                        stored += try await fixture.store.publish([EventEnvelope(ItemCounted(index: index))], to: stream)
                    }
                    return stored
                }
            }
            return try await group.reduce(into: []) { $0 += $1 }
        }
        let deliveries = try await fixture.receive(200, timeout: .seconds(30))
        #expect(deliveries.count == 200)
        #expect(Set(deliveries.compactMap(\.properties.messageId)) == Set(stored.map { $0.envelope.id.uuidString.lowercased() }))
        let versionsByStream = try RelayFixture.versionsByStream(deliveries)
        #expect(versionsByStream.count == 12)
        for (stream, versions) in versionsByStream {
            #expect(versions == Array(1...versions.count), "stream \(stream) arrived out of order")
        }
        let deadline = ContinuousClock.now + .seconds(10)
        while try await fixture.storage.outboxCounts().published < 200, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(10))
        }
        #expect(try await fixture.storage.outboxCounts() == OutboxCounts(pending: 0, parked: 0, published: 200))
        running.cancel()
        _ = await running.result
    }

    @Test func housekeepingDeletesOnlyOldPublishedEntries() async throws {
        let fixture = try await RelayFixture()
        defer { Task { await fixture.tearDown() } }
        try await fixture.publishEvents(10, streams: 2)
        let keepAll = OutboxRelay(
            storage: fixture.storage,
            publisher: AMQPPublisher(connection: fixture.connection),
            configuration: OutboxRelay.Configuration(context: fixture.context, retention: .seconds(3600))
        )
        #expect(try await keepAll.runOnce().published == 10)
        #expect(try await fixture.storage.outboxCounts().published == 10, "younger than the retention")
        let deleteAll = OutboxRelay(
            storage: fixture.storage,
            publisher: AMQPPublisher(connection: fixture.connection),
            configuration: OutboxRelay.Configuration(context: fixture.context, retention: .zero)
        )
        #expect(try await deleteAll.housekeeping() == 10)
        #expect(try await fixture.storage.outboxCounts() == OutboxCounts(pending: 0, parked: 0, published: 0))
        #expect(try await fixture.store.readAll().count == 10, "events stay")
    }
}
