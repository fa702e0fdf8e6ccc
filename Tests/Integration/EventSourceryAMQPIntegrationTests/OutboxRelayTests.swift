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
        var versionsByStream: [String: [Int]] = [:]
        for delivery in deliveries {
            let headers = delivery.properties.headers ?? [:]
            let stream = try #require(headers[EventMessage.Header.streamID]?.stringValue)
            versionsByStream[stream, default: []].append(try #require(headers[EventMessage.Header.streamVersion]?.intValue))
        }
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

    @Test func unroutableEventsAreRetriedThenParkedThenRequeuedAndDelivered() async throws {
        let fixture = try await RelayFixture(bindQueue: false)
        defer { Task { await fixture.tearDown() } }
        try await fixture.publishEvents(3, streams: 1)
        let relay = fixture.relay(attemptLimit: 2)

        let firstRound = try await relay.runOnce()
        #expect(firstRound.published == 0)
        #expect(firstRound.failed == 3)
        #expect(firstRound.parked == 0)
        try await Task.sleep(for: .milliseconds(20))
        let secondRound = try await relay.runOnce()
        #expect(secondRound.parked == 3, "each returned entry reached the attempt limit")

        let parked = try await fixture.storage.parkedOutboxEntries(limit: 10)
        #expect(parked.map(\.event.streamVersion) == [1, 2, 3])
        #expect(parked.allSatisfy { $0.attempts == 2 && $0.lastError?.contains("unroutable") == true })
        #expect(try await relay.runOnce().published == 0, "parked entries stay until requeued")
        #expect(try await fixture.storage.outboxCounts() == OutboxCounts(pending: 0, parked: 3, published: 0))

        try await fixture.bind()
        #expect(try await fixture.storage.requeueParked(parked.map(\.id)) == 3)
        #expect(try await relay.runOnce().published == 3)
        let deliveries = try await fixture.receive(3)
        #expect(deliveries.compactMap { $0.properties.headers?[EventMessage.Header.streamVersion]?.intValue } == [1, 2, 3])
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
