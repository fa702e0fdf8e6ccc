@testable import EventSourceryRabbitMQ
@testable import EventSourceryAMQP
import EventSourcery
import EventSourceryTesting
import Foundation
import TestSupport
import Testing
import Tracing

/// The spans of the command path (the relay's send, the command consumer's processing) and of
/// a forced rerun of a skipped handler, without a broker: each continues the flow's trace.
struct CommandTracingTests {
    struct Ship: Command, Equatable {
        var index: Int
    }

    private let registry = EventRegistry([ItemCounted.self, ItemHandled.self])
    private let connection: AMQPConnection

    init() throws {
        connection = try AMQPConnection(url: "amqp://guest:guest@127.0.0.1:1/")
    }

    /// A delivery of `message` as the broker would hand it to a consumer.
    private func delivery(_ message: OutgoingMessage) -> Delivery {
        Delivery(
            body: message.body, properties: message.properties, exchange: message.exchange, routingKey: message.routingKey,
            isRedelivered: false, deliveryTag: 1, consumerTag: "test", generation: 1)
    }

    /// Appends `ItemCounted(index)` in context `order` and hands its relayed message to a
    /// `billing` consumer with `handlers`; returns the consumer and its store.
    private func consume(
        _ index: Int, tracer: any Tracer, handlers: [EventHandler]
    ) async throws -> (consumer: ContextConsumer, store: EventStore, outcomes: [ContextConsumer.Outcome]) {
        let source = EventStore(storage: InMemoryEventStorage(), registry: registry, tracer: tracer)
        try await source.publish([EventEnvelope(ItemCounted(index: index))], to: StreamID("item-\(index)"))
        let entries = try await source.storage.claimOutboxEntries(limit: 10, now: Date(), leaseDuration: 30)
        let tracing = MessageTracing(tracer: tracer)
        let (messages, spans) = tracing.publish(entries.map(\.event), context: "order")
        tracing.endPublish(spans, outcomes: [.confirmed])
        let store = EventStore(storage: InMemoryEventStorage(), registry: registry, tracer: tracer)
        let consumer = ContextConsumer(connection: connection, store: store, handlers: handlers, configuration: .init(context: "billing"))
        let outcomes = await consumer.process(
            messages.map(delivery), publisher: AMQPPublisher(connection: connection), held: HeldStreams([]))
        return (consumer, store, outcomes)
    }

    /// The one span named `name` whose parent is `parent` (a root span for `nil`).
    private func span(_ name: String, _ kind: SpanKind, parent: RecordedSpan?, in spans: [RecordedSpan]) throws -> RecordedSpan {
        let found = spans.filter { $0.name == name && $0.parentSpanID == parent?.spanID }
        try #require(found.count == 1, "one span \(name) under \(parent?.name ?? "no parent"), found \(found.count)")
        #expect(found[0].kind == kind)
        return found[0]
    }

    @Test func aCommandAHandlerSendsIsSentAndProcessedUnderTheHandlerRun() async throws {
        let tracer = RecordingTracer()
        let sender = EventHandler(name: "ship", subscriptions: [EventSubscription(source: "order", type: "ItemCounted")]) { input, batch in
            guard let counted = input.as(ItemCounted.self) else { return }
            try batch.send(Ship(index: counted.index), to: "shipping", metadata: input.causedMetadata)
        }
        let (_, billing, outcomes) = try await consume(4, tracer: tracer, handlers: [sender])
        #expect(outcomes == [.processed(handlersRun: 1, alreadyProcessed: 0, skipped: 0)])

        // The relay of the consuming context sends the command in a producer span.
        let commands = try await billing.storage.claimCommands(limit: 10, now: Date(), leaseDuration: 30)
        #expect(commands.count == 1)
        let tracing = MessageTracing(tracer: tracer)
        let (messages, sendSpans) = tracing.send(commands.map(\.command), sender: "billing")
        tracing.endPublish(sendSpans, outcomes: [.confirmed])

        // The receiving context processes it in a consumer span; the handler's commit is its child.
        let shipping = EventStore(storage: InMemoryEventStorage(), registry: registry, tracer: tracer)
        let handler = CommandHandler(Ship.self) { ship, received, batch in
            try batch.append([received.caused(ItemHandled(index: ship.index))], to: StreamID("shipped-\(ship.index)"))
        }
        let consumer = CommandConsumer(context: "shipping", store: shipping, connection: connection, handlers: [handler])
        #expect(await consumer.process(delivery(messages[0]), publisher: AMQPPublisher(connection: connection)) == .handled)

        let spans = tracer.spans
        #expect(spans.count == 7)
        #expect(Set(spans.map(\.traceID)).count == 1)
        let append = try span("append", .internal, parent: nil, in: spans)
        let publish = try span("publish order.events", .producer, parent: append, in: spans)
        let process = try span("process order.events", .consumer, parent: publish, in: spans)
        let handle = try span("handle ship", .internal, parent: process, in: spans)
        let send = try span("publish shipping.commands", .producer, parent: handle, in: spans)
        let processCommand = try span("process shipping.commands", .consumer, parent: send, in: spans)
        let commandAppend = try span("append", .internal, parent: processCommand, in: spans)
        #expect(messages[0].properties.headers?["traceparent"]?.stringValue == "00-\(send.traceID)-\(send.spanID)-01")
        let commandID = commands[0].command.id.lowercasedString
        #expect(send.string("messaging.destination.name") == "shipping.commands")
        #expect(send.string("messaging.rabbitmq.destination.routing_key") == "shipping.Ship")
        #expect(send.string("messaging.message.id") == commandID)
        #expect(send.string("es.command_type") == "Ship")
        #expect(send.string("es.command_target") == "shipping")
        #expect(processCommand.string("messaging.message.id") == commandID)
        #expect(processCommand.string("consumer.outcome") == "handled")
        #expect(processCommand.status == nil)
        #expect(commandAppend.string("es.stream") == "shipped-4")
        // The stored event names the span that processed the command, over the command's own context.
        let shipped = try #require(try await shipping.load("shipped-4").first)
        #expect(shipped.envelope.metadata.traceContext == ["traceparent": "00-\(send.traceID)-\(processCommand.spanID)-01"])
    }

    @Test func aCommandThatIsNotConfirmedOrFailsEndsItsSpanWithAnError() async throws {
        struct Unavailable: Error {}
        let tracer = RecordingTracer()
        let command = try CommandRegistry.encode(CommandEnvelope(Ship(index: 1)), to: "shipping", dueAt: nil)
        let tracing = MessageTracing(tracer: tracer)
        let (messages, spans) = tracing.send([command], sender: "billing")
        tracing.endPublish(spans, outcomes: [.nacked])
        let consumer = CommandConsumer(
            context: "shipping", store: EventStore(storage: InMemoryEventStorage(), registry: registry, tracer: tracer),
            connection: connection, handlers: [CommandHandler(Ship.self) { _, _, _ in throw Unavailable() }])
        #expect(await consumer.process(delivery(messages[0]), publisher: AMQPPublisher(connection: connection)) == .requeued)
        let send = try span("publish shipping.commands", .producer, parent: nil, in: tracer.spans)
        let process = try span("process shipping.commands", .consumer, parent: send, in: tracer.spans)
        #expect(tracer.spans.count == 2)
        #expect(send.status?.code == .error)
        #expect(process.status?.code == .error)
        #expect(process.string("consumer.outcome") == "requeued")
    }

    @Test func aForcedRerunRunsInAHandlerSpanOfTheEventsTrace() async throws {
        let tracer = RecordingTracer()
        let odd = HandlerCondition("index is even") { input in (input.as(ItemCounted.self)?.index ?? 1) % 2 == 0 }
        let handler = EventHandler(
            name: "count", subscriptions: [EventSubscription(source: "order", type: "ItemCounted")], conditions: [odd]
        ) { input, batch in
            guard let counted = input.as(ItemCounted.self) else { return }
            try batch.publish([EventEnvelope(ItemHandled(index: counted.index))], to: StreamID("handled-\(counted.index)"))
        }
        let (consumer, store, outcomes) = try await consume(3, tracer: tracer, handlers: [handler])
        #expect(outcomes == [.processed(handlersRun: 0, alreadyProcessed: 0, skipped: 1)])
        let skip = try #require(try await ContextAdmin.skippedHandlers(context: "billing", store: store).first)
        let before = tracer.spans.count

        try await consumer.rerun(handler: "count", eventID: skip.eventID, reason: "the rule changed")
        let spans = tracer.spans
        #expect(spans.count == before + 2)
        let publish = try span("publish order.events", .producer, parent: try span("append", .internal, parent: nil, in: spans), in: spans)
        // The rerun continues the trace of the event it runs for: the message's span is its parent.
        let handle = try span("handle count", .internal, parent: publish, in: spans)
        let append = try span("append", .internal, parent: handle, in: spans)
        #expect(handle.string("consumer.handler") == "count")
        #expect(handle.string("es.event_id") == skip.eventID.lowercasedString)
        let handled = try #require(try await store.load("handled-3").first)
        #expect(handled.envelope.metadata.traceContext == ["traceparent": "00-\(handle.traceID)-\(handle.spanID)-01"])
        #expect(append.string("es.stream") != nil)
    }
}
