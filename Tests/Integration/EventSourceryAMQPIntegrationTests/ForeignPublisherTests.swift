import EventSourceryRabbitMQ
import TestSupport
import EventSourcery
import EventSourceryAMQP
import EventSourcerySQLite
import Foundation
import NIOConcurrencyHelpers
import Testing

/// The source contexts a handler saw, shared with the test.
private final class SourceLog: Sendable {
    private let sources = NIOLockedValueBox<[String]>([])
    func append(_ source: String) { sources.withLockedValue { $0.append(source) } }
    var all: [String] { sources.withLockedValue { $0 } }
}

/// Messages another AMQP client publishes, bending the wire contract: each is applied
/// exactly once where it is valid, or dead-lettered with its reason — never acked silently.
@Suite(.timeLimit(.minutes(2)), .requiresBroker)
struct ForeignPublisherTests {
    /// A handler that records each input's source context, and appends (or, with
    /// `publishing`, publishes through the outbox) `ItemHandled` to `handled-<index>`.
    private func recordingHandler(_ fixture: ConsumerFixture, sources: SourceLog, publishing: Bool = false) -> EventHandler {
        EventHandler(name: "count", subscriptions: [fixture.subscription]) { input, batch in
            sources.append(input.sourceContext)
            guard let item = input.as(ItemCounted.self) else { return }
            let event = input.caused(ItemHandled(index: item.index))
            if publishing {
                try batch.publish([event], to: StreamID("handled-\(item.index)"))
            } else {
                try batch.append([event], to: StreamID("handled-\(item.index)"))
            }
        }
    }

    private func deadLetters(_ fixture: ConsumerFixture, count: Int) async throws -> [DeadLetter] {
        let dead = ContextTopology.deadLetterQueue(for: fixture.context)
        #expect(try await fixture.eventually { try await fixture.messageCount(dead) == count })
        return try await ContextAdmin(context: fixture.context, connection: fixture.connection).deadLetters()
    }

    @Test func aValidEventWithAnotherAppIDIsAppliedOnceAsComingFromItsExchange() async throws {
        let fixture = try await ConsumerFixture()
        defer { Task { await fixture.tearDown() } }
        let sources = SourceLog()
        let task = try await fixture.start(fixture.consumer([recordingHandler(fixture, sources: sources)]))
        defer { task.cancel() }
        var shop = fixture.message(1)
        shop.properties.appId = "shop"
        var anonymous = fixture.message(2)
        anonymous.properties.appId = nil
        try await fixture.publish([shop, anonymous])

        #expect(try await fixture.eventually { try await fixture.handledCount(1) + fixture.handledCount(2) == 2 })
        #expect(try await fixture.eventually { try await fixture.messageCount(ContextTopology.inboxQueue(for: fixture.context)) == 0 })
        #expect(sources.all == [fixture.source, fixture.source])
        #expect(try await fixture.messageCount(ContextTopology.deadLetterQueue(for: fixture.context)) == 0)
    }

    @Test func aRegisteredTypeUnderAnotherTypesRoutingKeyIsDeadLetteredAsMisrouted() async throws {
        let fixture = try await ConsumerFixture()
        defer { Task { await fixture.tearDown() } }
        let sources = SourceLog()
        let task = try await fixture.start(fixture.consumer([recordingHandler(fixture, sources: sources)]))
        defer { task.cancel() }
        var disguised = fixture.message(5)  // routing key <source>.ItemCounted
        disguised.properties.type = ItemHandled.typeName
        try await fixture.publish([disguised, fixture.message(6)])

        let letters = try await deadLetters(fixture, count: 1)
        #expect(letters.map(\.reason) == ["misrouted"])
        #expect(letters.first?.detail?.contains("\(fixture.source).\(ItemHandled.typeName)") == true)
        #expect(letters.first?.messageID == disguised.properties.messageId)
        #expect(try await fixture.eventually { try await fixture.handledCount(6) == 1 })
        #expect(try await fixture.handledCount(5) == 0)
        #expect(sources.all == [fixture.source], "only the valid message reached the handler")
    }

    @Test func aDeliveryNoHandlerTakesIsDeadLetteredAsUnhandled() async throws {
        let fixture = try await ConsumerFixture()
        defer { Task { await fixture.tearDown() } }
        let sources = SourceLog()
        let consumer = fixture.consumer([recordingHandler(fixture, sources: sources)])
        let task = try await fixture.start(consumer)
        defer { task.cancel() }
        // A binding no handler asked for (say, left over from a removed handler).
        try await fixture.connection.bind(
            AMQPBinding(
                queue: consumer.topology.inboxQueue, exchange: EventMessage.exchange(for: fixture.source),
                routingKey: "\(fixture.source).\(ItemHandled.typeName)"))
        var leftover = fixture.message(7)
        leftover.properties.type = ItemHandled.typeName
        leftover.routingKey = "\(fixture.source).\(ItemHandled.typeName)"
        // Straight into the inbox through the default exchange, naming a source no handler takes.
        var direct = fixture.message(8)
        direct.exchange = ""
        direct.routingKey = consumer.topology.inboxQueue
        direct.properties.appId = "shop"
        try await fixture.publish([leftover, direct])

        let letters = try await deadLetters(fixture, count: 2)
        #expect(letters.map(\.reason) == ["unhandled", "unhandled"])
        #expect(letters.allSatisfy { $0.detail?.contains("no handler of \(fixture.context)") == true })
        #expect(sources.all.isEmpty)
        #expect(try await fixture.handledCount(7) == 0)
        #expect(try await fixture.handledCount(8) == 0)
    }

    @Test func wronglyTypedContractHeadersAreDeadLetteredWithTheReason() async throws {
        let fixture = try await ConsumerFixture()
        defer { Task { await fixture.tearDown() } }
        let sources = SourceLog()
        let task = try await fixture.start(fixture.consumer([recordingHandler(fixture, sources: sources)]))
        defer { task.cancel() }
        var schemaAsString = fixture.message(10)
        schemaAsString.properties.headers?[EventMessage.Header.schemaVersion] = .string("2")
        var versionAsString = fixture.message(11)
        versionAsString.properties.headers?[EventMessage.Header.streamVersion] = .string("1")
        try await fixture.publish([schemaAsString, versionAsString, fixture.message(12)])

        let letters = try await deadLetters(fixture, count: 2)
        #expect(letters.map(\.reason) == ["invalidHeaders", "invalidHeaders"])
        let schemaLetter = try #require(letters.first { $0.messageID == schemaAsString.properties.messageId })
        let versionLetter = try #require(letters.first { $0.messageID == versionAsString.properties.messageId })
        #expect(schemaLetter.detail?.contains("\(EventMessage.Header.schemaVersion) is the string '2'") == true)
        #expect(versionLetter.detail?.contains("\(EventMessage.Header.streamVersion) is the string '1'") == true)
        #expect(try await fixture.eventually { try await fixture.handledCount(12) == 1 })
        #expect(try await fixture.handledCount(10) == 0)
        #expect(try await fixture.handledCount(11) == 0)
    }

    @Test func headersOutsideTheContractNeverBecomeMetadataNorArePublishedOn() async throws {
        let fixture = try await ConsumerFixture()
        defer { Task { await fixture.tearDown() } }
        let sources = SourceLog()
        let task = try await fixture.start(fixture.consumer([recordingHandler(fixture, sources: sources, publishing: true)]))
        defer { task.cancel() }
        let traceParent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
        var garbage = fixture.message(20)
        garbage.properties.headers?["traceparent"] = "garbage-not-w3c"
        garbage.properties.headers?["evil"] = "injected"
        garbage.properties.headers?["content-type"] = "text/html"
        var traced = fixture.message(21)
        traced.properties.headers?["traceparent"] = .string(traceParent)
        traced.properties.headers?["evil"] = "injected"
        try await fixture.publish([garbage, traced])

        #expect(try await fixture.eventually { try await fixture.handledCount(20) + fixture.handledCount(21) == 2 })
        let garbageHandled = try #require(try await fixture.store.load(StreamID("handled-20")).first)
        let tracedHandled = try #require(try await fixture.store.load(StreamID("handled-21")).first)
        #expect(garbageHandled.envelope.metadata.traceContext.isEmpty)
        #expect(tracedHandled.envelope.metadata.traceContext == ["traceparent": traceParent])

        // What the consuming context publishes on carries the contract's headers only.
        let outbox = try await fixture.storage.claimOutboxEntries(limit: 10, now: Date(), leaseDuration: 0)
        #expect(outbox.count == 2)
        let published = outbox.map { EventMessage.outgoing($0.event, context: fixture.context).properties.headers ?? [:] }
        let contract: Set<String> = [
            EventMessage.Header.streamID, EventMessage.Header.streamVersion, EventMessage.Header.schemaVersion,
            EventMessage.Header.causationID,
        ]
        #expect(Set(published.map { Set($0.keys) }) == [contract, contract.union(["traceparent"])])
        #expect(try await fixture.messageCount(ContextTopology.deadLetterQueue(for: fixture.context)) == 0)
    }
}
