import EventSourceryRabbitMQ
import TestSupport
import EventSourcery
import EventSourceryAMQP
import Foundation
import Logging
import ServiceLifecycle
import NIOConcurrencyHelpers
import Testing

@Suite(.timeLimit(.minutes(2)), .requiresBroker)
struct ContextConsumerTests {
    @Test func aDuplicatePublishWithTheSameMessageIDIsAppendedOnce() async throws {
        let fixture = try await ConsumerFixture()
        defer { Task { await fixture.tearDown() } }
        let consumer = fixture.consumer([fixture.handler()])
        let task = try await fixture.start(consumer)
        defer { task.cancel() }
        let id = UUID()
        try await fixture.publish([fixture.message(1, id: id), fixture.message(2), fixture.message(1, id: id)])
        try await fixture.publish([fixture.message(1, id: id)])
        #expect(try await fixture.eventually { try await fixture.handledCount(2) == 1 })
        #expect(try await fixture.eventually { try await fixture.messageCount(consumer.topology.inboxQueue) == 0 })
        try await Task.sleep(for: .milliseconds(300))
        #expect(try await fixture.handledCount(1) == 1)
        #expect(try await fixture.handledCount(2) == 1)
    }

    @Test func eventsAHandlerAppendsWithoutACauseContinueTheConsumedEventsFlow() async throws {
        let fixture = try await ConsumerFixture()
        defer { Task { await fixture.tearDown() } }
        let flow = UUID()
        let handler = EventHandler(name: "count", subscriptions: [fixture.subscription]) { input, batch in
            guard let item = input.as(ItemCounted.self) else { return }
            let plain = EventEnvelope(ItemHandled(index: item.index))
            let ownFlow = EventEnvelope(ItemHandled(index: -item.index), metadata: EventMetadata(correlationID: flow))
            try batch.append([plain, ownFlow], to: StreamID("handled-\(item.index)"))
        }
        let consumer = try await fixture.start(fixture.consumer([handler]))
        defer { consumer.cancel() }
        let id = UUID()
        try await fixture.publish([fixture.message(7, id: id)])
        #expect(try await fixture.eventually { try await fixture.handledCount(7) == 2 })
        let handled = try await fixture.store.load(StreamID("handled-7"))
        #expect(handled.map { $0.envelope.metadata.causationID } == [id, id], "the consumed event caused both")
        #expect(handled[0].envelope.metadata.correlationID == id, "a plain envelope joins the consumed event's flow")
        #expect(handled[1].envelope.metadata.correlationID == flow, "an explicit correlation id is kept")
    }

    @Test func inboxEntriesOlderThanTheRetentionArePrunedAndTheEventsKept() async throws {
        let fixture = try await ConsumerFixture()
        defer { Task { await fixture.tearDown() } }
        var configuration = fixture.configuration()
        configuration.inboxRetention = .milliseconds(300)
        configuration.inboxPruneInterval = .milliseconds(100)
        let task = try await fixture.start(fixture.consumer([fixture.handler()], configuration: configuration))
        defer { task.cancel() }
        try await fixture.publish([fixture.message(1), fixture.message(2)])
        #expect(try await fixture.eventually { try await fixture.handledCount(1) + fixture.handledCount(2) == 2 })
        #expect(try await fixture.eventually { try await fixture.store.storage.sizes().inboxEntries == 0 })
        #expect(try await fixture.store.storage.sizes().events == 2, "pruning the inbox keeps what the handler appended")
    }

    @Test func aRetryAfterAFailureIsAppendedOncePerHandler() async throws {
        let fixture = try await ConsumerFixture()
        defer { Task { await fixture.tearDown() } }
        // The first handler commits; the second fails once, so the event is held and
        // retried: the first handler's inbox entry must stop it from appending again.
        let attempts = Counter()
        let second = EventHandler(name: "second", subscriptions: [fixture.subscription]) { _, _ in
            if attempts.next() == 1 { throw TestFailure(message: "first attempt fails") }
        }
        let task = try await fixture.start(fixture.consumer([fixture.handler("first"), second]))
        defer { task.cancel() }
        try await fixture.publish([fixture.message(7)])
        #expect(
            try await fixture.eventually {
                let held = try await fixture.heldEvents()
                return attempts.current >= 2 && held.isEmpty
            })
        #expect(try await fixture.handledCount(7) == 1)
        #expect(attempts.current == 2)
        #expect(try await fixture.failures().count == 1)
        #expect(try await fixture.messageCount(ContextTopology.inboxQueue(for: fixture.context)) == 0, "the message was acked")
    }

    @Test func everyPoisonKindIsDeadLetteredWithItsReasonWhileGoodMessagesFlow() async throws {
        let fixture = try await ConsumerFixture()
        defer { Task { await fixture.tearDown() } }
        let consumer = fixture.consumer([fixture.handler()], configuration: fixture.configuration(maximumBodySize: 200))
        let task = try await fixture.start(consumer)
        defer { task.cancel() }

        var malformed = fixture.message(100)
        malformed.body = Data("{not json".utf8)
        var unknownType = fixture.message(101)
        unknownType.properties.type = "NobodyKnowsMe"
        var missingID = fixture.message(102)
        missingID.properties.messageId = nil
        var wrongContentType = fixture.message(103)
        wrongContentType.properties.contentType = "text/plain"
        var oversized = fixture.message(104)
        oversized.body = Data("{\"index\": 104, \"padding\": \"\(String(repeating: "x", count: 400))\"}".utf8)
        var invalidID = fixture.message(105)
        invalidID.properties.messageId = "not-a-uuid"
        var missingHeaders = fixture.message(106)
        missingHeaders.properties.headers?[EventMessage.Header.streamID] = nil

        let poison = [malformed, unknownType, missingID, wrongContentType, oversized, invalidID, missingHeaders]
        var messages: [OutgoingMessage] = []
        for (offset, bad) in poison.enumerated() {
            messages.append(fixture.message(offset))
            messages.append(bad)
        }
        messages.append(fixture.message(poison.count))
        try await fixture.publish(messages)

        let dead = ContextTopology.deadLetterQueue(for: fixture.context)
        #expect(try await fixture.eventually { try await fixture.messageCount(dead) == poison.count })
        for index in 0...poison.count {
            #expect(try await fixture.eventually { try await fixture.handledCount(index) == 1 }, "good message \(index) was not processed")
        }
        let letters = try await ContextAdmin(context: fixture.context, connection: fixture.connection).deadLetters()
        #expect(letters.count == poison.count)
        #expect(
            Set(letters.map(\.reason)) == [
                "malformedJSON", "unknownEventType", "missingMessageID", "wrongContentType", "oversizedBody", "invalidMessageID",
                "missingHeaders",
            ])
        #expect(letters.allSatisfy { $0.detail?.isEmpty == false })
        // Listing does not remove them.
        #expect(try await fixture.eventually { try await fixture.messageCount(dead) == poison.count })
    }

    @Test func aHandlerFailingTwiceThenSucceedingIsProcessedOnceWithTwoRecordedFailures() async throws {
        let fixture = try await ConsumerFixture()
        defer { Task { await fixture.tearDown() } }
        let attempts = Counter()
        let handler = fixture.handler { _ in
            if attempts.next() <= 2 { throw TestFailure(message: "flaky downstream") }
        }
        let task = try await fixture.start(fixture.consumer([handler]))
        defer { task.cancel() }
        try await fixture.publish([fixture.message(3)])
        #expect(try await fixture.eventually { try await fixture.handledCount(3) == 1 })
        try await Task.sleep(for: .milliseconds(300))
        #expect(try await fixture.handledCount(3) == 1)
        let failures = try await fixture.failures()
        #expect(failures.count == 2)
        #expect(failures.map(\.attempt) == [1, 2])
        #expect(
            failures.allSatisfy { $0.handler == "count" && $0.error.contains("flaky downstream") && $0.sourceContext == fixture.source })
        #expect(try await fixture.messageCount(ContextTopology.deadLetterQueue(for: fixture.context)) == 0)
    }

    @Test func appendedEventsCarryTheCausationAndCorrelation() async throws {
        let fixture = try await ConsumerFixture()
        defer { Task { await fixture.tearDown() } }
        let task = try await fixture.start(fixture.consumer([fixture.handler()], configuration: fixture.configuration(ackBatchSize: 10)))
        defer { task.cancel() }
        let correlation = UUID()
        var message = fixture.message(4)
        message.properties.correlationId = correlation.uuidString.lowercased()
        try await fixture.publish([message] + (10..<30).map { fixture.message($0) })
        #expect(try await fixture.eventually { try await fixture.handledCount(4) == 1 })
        let handled = try #require(try await fixture.store.load("handled-4").first)
        #expect(handled.envelope.metadata.causationID?.uuidString.lowercased() == message.properties.messageId)
        #expect(handled.envelope.metadata.correlationID == correlation)
        for index in 10..<30 { #expect(try await fixture.eventually { try await fixture.handledCount(index) == 1 }) }
        // Batched acks go out once idle: after the consumer stops, nothing comes back to the queue.
        try await Task.sleep(for: .milliseconds(300))
        task.cancel()
        _ = await task.result
        try await Task.sleep(for: .milliseconds(300))
        #expect(try await fixture.messageCount(ContextTopology.inboxQueue(for: fixture.context)) == 0)
    }

    @Test func aFalseConditionSkipsTheHandler() async throws {
        let fixture = try await ConsumerFixture()
        defer { Task { await fixture.tearDown() } }
        var handler = fixture.handler()
        handler.conditions = [HandlerCondition("even-index-only") { input in (input.as(ItemCounted.self)?.index ?? 0) % 2 == 0 }]
        let task = try await fixture.start(fixture.consumer([handler]))
        defer { task.cancel() }
        try await fixture.publish([fixture.message(1), fixture.message(2)])
        #expect(try await fixture.eventually { try await fixture.handledCount(2) == 1 })
        #expect(try await fixture.eventually { try await fixture.messageCount(ContextTopology.inboxQueue(for: fixture.context)) == 0 })
        #expect(try await fixture.handledCount(1) == 0)
    }

    @Test func gracefulShutdownFinishesTheDeliveryInFlightAndAcksWhatCommitted() async throws {
        let fixture = try await ConsumerFixture()
        defer { Task { await fixture.tearDown() } }
        let started = Flag()
        let handler = fixture.handler { input in
            if input.as(ItemCounted.self)?.index == 0 {
                started.set()
                try await Task.sleep(for: .milliseconds(500))
            }
        }
        let consumer = fixture.consumer([handler], configuration: fixture.configuration(ackBatchSize: 100, concurrency: 1))
        try await consumer.topology.declare(on: fixture.connection)
        try await fixture.publish((0..<10).map { fixture.message($0) })
        let group = ServiceGroup(services: [consumer], logger: TestBroker.logger)
        let running = Task { try await group.run() }
        #expect(await fixture.eventually { started.isSet })
        await group.triggerGracefulShutdown()
        try await running.value
        // The slow delivery finished and committed; it was acked before the subscription closed,
        // so only the nine prefetched but unstarted deliveries went back to the queue.
        #expect(try await fixture.handledCount(0) == 1)
        #expect(try await fixture.eventually { try await fixture.messageCount(consumer.topology.inboxQueue) == 9 })
        try await Task.sleep(for: .milliseconds(300))
        #expect(try await fixture.messageCount(consumer.topology.inboxQueue) == 9)
    }

    @Test func gracefulShutdownWithConcurrentLanesAcksEveryCommittedDeliveryAndReturnsTheRest() async throws {
        let fixture = try await ConsumerFixture()
        defer { Task { await fixture.tearDown() } }
        let started = Counter()
        let handler = fixture.handler { _ in
            _ = started.next()
            try await Task.sleep(for: .milliseconds(300))
        }
        let consumer = fixture.consumer([handler], configuration: fixture.configuration(ackBatchSize: 100, concurrency: 4))
        try await consumer.topology.declare(on: fixture.connection)
        try await fixture.publish((0..<40).map { fixture.message($0) })
        let group = ServiceGroup(services: [consumer], logger: TestBroker.logger)
        let running = Task { try await group.run() }
        #expect(await fixture.eventually { started.current > 0 })
        await group.triggerGracefulShutdown()
        try await running.value
        // Every started delivery finished, committed and was acked; the others went back.
        var handled = 0
        for index in 0..<40 {
            let count = try await fixture.handledCount(index)
            #expect(count <= 1)
            handled += count
        }
        #expect(handled == started.current)
        #expect(handled < 40)
        #expect(try await fixture.eventually { try await fixture.messageCount(consumer.topology.inboxQueue) == 40 - handled })
    }

    @Test func concurrentLanesKeepEachSourceStreamInOrder() async throws {
        let fixture = try await ConsumerFixture()
        defer { Task { await fixture.tearDown() } }
        let seen = NIOLockedValueBox<[String: [Int64]]>([:])
        let handler = fixture.handler { input in
            seen.withLockedValue { $0[input.streamID.rawValue, default: []].append(input.streamVersion) }
            // Uneven handling times: later events of a stream would overtake earlier ones
            // if a stream's events could run in parallel.
            try await Task.sleep(for: .milliseconds(Int.random(in: 0...5)))
        }
        let task = try await fixture.start(
            fixture.consumer([handler], configuration: fixture.configuration(ackBatchSize: 10, concurrency: 8)))
        defer { task.cancel() }
        // Ten streams, twenty versions each, interleaved.
        let messages = (1...20).flatMap { version in (0..<10).map { stream in fixture.message(stream, version: Int64(version)) } }
        try await fixture.publish(messages)
        #expect(await fixture.eventually { seen.withLockedValue { $0.values.reduce(0) { $0 + $1.count } } == 200 })
        let orders = seen.withLockedValue { $0 }
        #expect(orders.count == 10)
        #expect(orders.values.allSatisfy { $0 == Array(1...20) })
    }

    @Test func handlersRacingForOneStreamAreRunAgainInsteadOfFailing() async throws {
        let fixture = try await ConsumerFixture()
        defer { Task { await fixture.tearDown() } }
        let shared: StreamID = "tally"
        let store = fixture.store
        let handler = EventHandler(name: "tally", subscriptions: [fixture.subscription]) { input, batch in
            guard let item = input.as(ItemCounted.self) else { return }
            // Every event extends one stream at the version it read: lanes race for it.
            let version = try await store.streamVersion(shared)
            try batch.append([input.caused(ItemHandled(index: item.index))], to: shared, expectedVersion: .exact(version))
        }
        let task = try await fixture.start(fixture.consumer([handler], configuration: fixture.configuration(concurrency: 8)))
        defer { task.cancel() }
        try await fixture.publish((0..<60).map { fixture.message($0) })
        #expect(try await fixture.eventually { try await store.streamVersion(shared) == 60 })
        let indices = try await store.load(shared).compactMap { ($0.event as? ItemHandled)?.index }
        #expect(Set(indices) == Set(0..<60))
        #expect(try await fixture.failures().isEmpty)
        #expect(try await fixture.eventually { try await fixture.messageCount(ContextTopology.inboxQueue(for: fixture.context)) == 0 })
    }

    @Test func aBatchWritesNothingForTheEventsItsInboxAlreadyHolds() async throws {
        let fixture = try await ConsumerFixture()
        defer { Task { await fixture.tearDown() } }
        let ids = (0..<20).map { _ in UUID.timeOrdered() }
        // Half of the events were processed before and come again as first deliveries (published
        // twice). Their handlers run (only redeliveries are looked up first), and the commit,
        // which inserts the inbox entry with the writes, discards what they wrote.
        for id in ids[..<10] {
            _ = try await fixture.store.processOnce(consumer: "\(fixture.context).count", eventID: id) { _ in }
        }
        let runs = Counter()
        let task = try await fixture.start(
            fixture.consumer([fixture.handler { _ in _ = runs.next() }], configuration: fixture.configuration(concurrency: 1)))
        defer { task.cancel() }
        try await fixture.publish(ids.enumerated().map { fixture.message($0.offset, id: $0.element) })
        // The queue counts ready messages only: wait for the new events' appends instead.
        #expect(
            try await fixture.eventually {
                for index in 10..<20 where try await fixture.handledCount(index) == 0 { return false }
                return true
            })
        // One lane commits its batches in arrival order, and the processed events were published
        // first: their commits are done once the new events' appends are visible.
        #expect(runs.current == 20, "the handler ran for every first delivery")
        for index in 0..<20 {
            #expect(try await fixture.handledCount(index) == (index < 10 ? 0 : 1), "event \(index)")
        }
    }

    @Test func aHandlerFailingInABatchFailsOnlyItsOwnDelivery() async throws {
        let fixture = try await ConsumerFixture()
        defer { Task { await fixture.tearDown() } }
        let failed = Flag()
        let handler = fixture.handler { input in
            if input.as(ItemCounted.self)?.index == 3, !failed.isSet {
                failed.set()
                throw TestFailure(message: "event 3 fails once")
            }
        }
        let task = try await fixture.start(fixture.consumer([handler], configuration: fixture.configuration(concurrency: 1)))
        defer { task.cancel() }
        try await fixture.publish((0..<30).map { fixture.message($0) })
        #expect(try await fixture.eventually { try await fixture.handledCount(3) == 1 })
        #expect(try await fixture.eventually { try await fixture.messageCount(ContextTopology.inboxQueue(for: fixture.context)) == 0 })
        for index in 0..<30 {
            #expect(try await fixture.handledCount(index) == 1, "event \(index)")
        }
        let failures = try await fixture.failures()
        #expect(failures.map(\.error) == ["event 3 fails once"])
        #expect(failures.first?.attempt == 1)
    }
}

struct TestFailure: Error, CustomStringConvertible {
    var message: String
    var description: String { message }
}
