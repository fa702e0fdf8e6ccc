@testable import EventSourceryRabbitMQ
@testable import EventSourceryAMQP
import EventSourcery
import EventSourceryTesting
import Foundation
import NIOConcurrencyHelpers
import TestSupport
import Testing

/// An event delivered again is applied once: a redelivery is looked up in the inbox before
/// its handler runs; a first delivery of an event published twice runs the handler, and the
/// commit, which inserts the inbox entry with the handler's writes, discards them.
struct DuplicateDeliveryTests {
    private let registry = EventRegistry([ItemCounted.self, ItemHandled.self])

    private func delivery(_ message: OutgoingMessage, redelivered: Bool, tag: UInt64) -> Delivery {
        Delivery(
            body: message.body, properties: message.properties, exchange: message.exchange, routingKey: message.routingKey,
            isRedelivered: redelivered, deliveryTag: tag, consumerTag: "test", generation: 1)
    }

    @Test func anEventIsAppliedOnceWhetherItComesAgainAsARedeliveryOrAsAFirstDelivery() async throws {
        let source = EventStore(storage: InMemoryEventStorage(), registry: registry)
        try await source.publish([EventEnvelope(ItemCounted(index: 3))], to: "item-3")
        let entries = try await source.storage.claimOutboxEntries(limit: 10, now: Date(), leaseDuration: 30)
        let message = EventMessage.outgoing(entries[0].event, context: "order")

        let runs = NIOLockedValueBox(0)
        let handler = EventHandler(name: "count", subscriptions: [EventSubscription(source: "order", type: "ItemCounted")]) {
            input, batch in
            runs.withLockedValue { $0 += 1 }
            guard let counted = input.as(ItemCounted.self) else { return }
            try batch.append([input.caused(ItemHandled(index: counted.index))], to: StreamID("handled-\(counted.index)"))
        }
        let target = EventStore(storage: InMemoryEventStorage(), registry: registry)
        let connection = try AMQPConnection(url: "amqp://guest:guest@127.0.0.1:1/")
        let consumer = ContextConsumer(connection: connection, store: target, handlers: [handler], configuration: .init(context: "billing"))
        func process(redelivered: Bool, tag: UInt64) async -> [ContextConsumer.Outcome] {
            await consumer.process(
                [delivery(message, redelivered: redelivered, tag: tag)], publisher: AMQPPublisher(connection: connection),
                held: HeldStreams([]))
        }

        #expect(await process(redelivered: false, tag: 1) == [.processed(handlersRun: 1, alreadyProcessed: 0, skipped: 0)])
        #expect(runs.withLockedValue { $0 } == 1)
        // Published twice: a first delivery again. The handler runs; its writes are discarded.
        #expect(await process(redelivered: false, tag: 2) == [.processed(handlersRun: 0, alreadyProcessed: 1, skipped: 0)])
        #expect(runs.withLockedValue { $0 } == 2)
        // Redelivered: found in the inbox before the handler runs.
        #expect(await process(redelivered: true, tag: 3) == [.processed(handlersRun: 0, alreadyProcessed: 1, skipped: 0)])
        #expect(runs.withLockedValue { $0 } == 2)

        let handled = try await target.load("handled-3")
        #expect(handled.count == 1)
        #expect(handled.first?.envelope.metadata.causationID == entries[0].event.event.id)
    }

    @Test func aHandlerRefusingAnEventItAlreadyAppliedMakesADuplicateNotAFailure() async throws {
        let source = EventStore(storage: InMemoryEventStorage(), registry: registry)
        try await source.publish([EventEnvelope(ItemCounted(index: 5))], to: "item-5")
        let entries = try await source.storage.claimOutboxEntries(limit: 10, now: Date(), leaseDuration: 30)
        let message = EventMessage.outgoing(entries[0].event, context: "order")

        struct AlreadyCounted: Error {}
        let target = EventStore(storage: InMemoryEventStorage(), registry: registry)
        // Refuses an item whose handled stream exists, as a handler guarding its own state does.
        let handler = EventHandler(name: "count", subscriptions: [EventSubscription(source: "order", type: "ItemCounted")]) {
            input, batch in
            guard let counted = input.as(ItemCounted.self) else { return }
            let stream = try StreamID("handled-\(counted.index)")
            guard try await target.load(stream).isEmpty else { throw AlreadyCounted() }
            try batch.append([input.caused(ItemHandled(index: counted.index))], to: stream)
        }
        let connection = try AMQPConnection(url: "amqp://guest:guest@127.0.0.1:1/")
        let consumer = ContextConsumer(connection: connection, store: target, handlers: [handler], configuration: .init(context: "billing"))
        for (tag, expected) in [
            (UInt64(1), ContextConsumer.Outcome.processed(handlersRun: 1, alreadyProcessed: 0, skipped: 0)),
            (2, .processed(handlersRun: 0, alreadyProcessed: 1, skipped: 0)),
        ] {
            let outcomes = await consumer.process(
                [delivery(message, redelivered: false, tag: tag)], publisher: AMQPPublisher(connection: connection), held: HeldStreams([]))
            #expect(outcomes == [expected])
        }
        #expect(try await target.load("handled-5").count == 1)
        #expect(try await target.load(HandlerFailed.stream(for: "billing")).isEmpty)
    }
}
