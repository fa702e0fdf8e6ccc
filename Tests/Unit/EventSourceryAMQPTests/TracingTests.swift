@testable import EventSourceryRabbitMQ
@testable import EventSourceryAMQP
import EventSourcery
import EventSourceryTesting
import Foundation
import TestSupport
import Testing
import Tracing

/// The spans of one flow, from an incoming request through the append, the relay's publish,
/// a consumer's processing and a handler run to the handler's append, without a broker.
struct TracingTests {
    private let registry = EventRegistry([ItemCounted.self, ItemHandled.self])

    /// The handler of the consuming context: one `ItemHandled` per `ItemCounted`, appended plainly.
    private let handler = EventHandler(name: "count", subscriptions: [EventSubscription(source: "order", type: "ItemCounted")]) {
        input, batch in
        guard let counted = input.as(ItemCounted.self) else { return }
        try batch.publish([EventEnvelope(ItemHandled(index: counted.index))], to: StreamID("handled-\(counted.index)"))
    }

    /// A delivery of `message` as the broker would hand it to a consumer.
    private func delivery(_ message: OutgoingMessage) -> Delivery {
        Delivery(
            body: message.body, properties: message.properties, exchange: message.exchange, routingKey: message.routingKey,
            isRedelivered: false, deliveryTag: 1, consumerTag: "test", generation: 1)
    }

    /// Appends one `ItemCounted` in a request span, publishes it through the relay's tracing and
    /// processes its delivery in a consumer; returns the consumer's store.
    private func flow(tracer: any Tracer, request: ServiceContext) async throws -> (source: EventStore, target: EventStore) {
        let source = EventStore(storage: InMemoryEventStorage(), registry: registry, tracer: tracer)
        try await ServiceContext.$current.withValue(request) {
            try await source.publish([EventEnvelope(ItemCounted(index: 7))], to: "item-7")
        }
        let entries = try await source.storage.claimOutboxEntries(limit: 10, now: Date(), leaseDuration: 30)
        let tracing = MessageTracing(tracer: tracer)
        let (messages, spans) = tracing.publish(entries.map(\.event), context: "order")
        tracing.endPublish(spans, outcomes: [.confirmed])

        let target = EventStore(storage: InMemoryEventStorage(), registry: registry, tracer: tracer)
        let connection = try AMQPConnection(url: "amqp://guest:guest@127.0.0.1:1/")
        let consumer = ContextConsumer(
            connection: connection, store: target, handlers: [handler], configuration: .init(context: "billing"))
        let outcomes = await consumer.process(
            messages.map(delivery), publisher: AMQPPublisher(connection: connection), held: HeldStreams([]))
        #expect(outcomes == [.processed(handlersRun: 1, alreadyProcessed: 0, skipped: 0)])
        return (source, target)
    }

    @Test func oneFlowIsOneTraceWithASpanPerHop() async throws {
        let tracer = RecordingTracer()
        let request = tracer.startSpan("POST /orders", context: .topLevel, ofKind: .server)
        let (source, target) = try await flow(tracer: tracer, request: request.context)
        request.end()

        let traceID = try #require(RecordingTracer.identity(of: request.context)?.traceID)
        let spans = tracer.spans(inTrace: traceID)
        #expect(spans.count == 6)
        #expect(tracer.spans.count == 6)
        func span(_ name: String, _ kind: SpanKind, parent: RecordedSpan?) throws -> RecordedSpan {
            let found = spans.filter { $0.name == name && $0.parentSpanID == parent?.spanID }
            try #require(found.count == 1, "one span \(name) under \(parent?.name ?? "no parent"), found \(found.count)")
            #expect(found[0].kind == kind)
            #expect(found[0].status == nil)
            return found[0]
        }
        let root = try span("POST /orders", .server, parent: nil)
        let append = try span("append", .internal, parent: root)
        let publish = try span("publish order.events", .producer, parent: append)
        let process = try span("process order.events", .consumer, parent: publish)
        let handle = try span("handle count", .internal, parent: process)
        let handlerAppend = try span("append", .internal, parent: handle)

        // The stored events: correlation and causation follow the flow, and each event's
        // trace context names the span that produced it.
        let counted = try #require(try await source.load("item-7").first)
        let handled = try #require(try await target.load("handled-7").first)
        let correlation = try #require(counted.envelope.metadata.correlationID)
        #expect(correlation == counted.envelope.id)
        #expect(handled.envelope.metadata.correlationID == correlation)
        #expect(handled.envelope.metadata.causationID == counted.envelope.id)
        #expect(counted.envelope.metadata.traceContext == ["traceparent": "00-\(traceID)-\(append.spanID)-01"])
        #expect(handled.envelope.metadata.traceContext == ["traceparent": "00-\(traceID)-\(handle.spanID)-01"])

        // Attributes tie the spans to the events and the flow.
        let flow = correlation.uuidString.lowercased()
        let countedID = counted.envelope.id.uuidString.lowercased()
        #expect(append.string("es.stream") == "item-7")
        #expect(append.attribute("es.event_count") == .int64(1))
        #expect(append.string("es.event_id") == countedID)
        #expect(append.string("es.correlation_id") == flow)
        #expect(publish.string("messaging.system") == "rabbitmq")
        #expect(publish.string("messaging.destination.name") == "order.events")
        #expect(publish.string("messaging.rabbitmq.destination.routing_key") == "order.ItemCounted")
        #expect(publish.string("messaging.message.id") == countedID)
        #expect(publish.string("messaging.message.conversation_id") == flow)
        #expect(process.string("messaging.message.id") == countedID)
        #expect(process.string("messaging.message.conversation_id") == flow)
        #expect(process.string("messaging.consumer.group.name") == "billing")
        #expect(handle.string("consumer.handler") == "count")
        #expect(handle.string("es.event_id") == countedID)
        #expect(handle.string("es.correlation_id") == flow)
        #expect(handle.attribute("consumer.attempt") == .int64(1))
        #expect(handlerAppend.string("es.stream") == "handled-7")
        #expect(handlerAppend.string("es.correlation_id") == flow)

        // The handler's event, relayed in turn, continues the trace under the handler run.
        let entries = try await target.storage.claimOutboxEntries(limit: 10, now: Date(), leaseDuration: 30)
        let tracing = MessageTracing(tracer: tracer)
        let (messages, next) = tracing.publish(entries.map(\.event), context: "billing")
        tracing.endPublish(next, outcomes: [.nacked])
        let nextPublish = try #require(tracer.spans(inTrace: traceID).last)
        #expect(nextPublish.name == "publish billing.events")
        #expect(nextPublish.parentSpanID == handle.spanID)
        #expect(nextPublish.status?.code == .error)
        #expect(messages[0].properties.headers?["traceparent"]?.stringValue == "00-\(traceID)-\(nextPublish.spanID)-01")
    }

    @Test func anIncomingTraceParentIsTheParentOfTheAppend() async throws {
        let tracer = RecordingTracer()
        let store = EventStore(storage: InMemoryEventStorage(), registry: registry, tracer: tracer)
        let remote = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
        // No current span: the events' own trace context is the parent.
        try await store.append(
            [EventEnvelope(ItemCounted(index: 1), metadata: EventMetadata(traceContext: ["traceparent": remote]))], to: "item-1")
        let append = try #require(tracer.spans.first)
        #expect(tracer.spans.count == 1)
        #expect(append.traceID == "0af7651916cd43dd8448eb211c80319c")
        #expect(append.parentSpanID == "b7ad6b7169203331")
        // An event that already carries a trace context keeps it.
        #expect(try await store.load("item-1").first?.envelope.metadata.traceContext == ["traceparent": remote])
    }

    @Test func withoutATracerNothingIsStartedAndTheStoredContextPassesThrough() async throws {
        let stored = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
        let store = EventStore(storage: InMemoryEventStorage(), registry: registry, tracer: NoOpTracer())
        try await store.publish(
            [EventEnvelope(ItemCounted(index: 1), metadata: EventMetadata(traceContext: ["traceparent": stored]))], to: "item-1")
        try await store.publish([EventEnvelope(ItemCounted(index: 2))], to: "item-2")
        #expect(try await store.load("item-2").first?.envelope.metadata.traceContext == [:])

        let entries = try await store.storage.claimOutboxEntries(limit: 10, now: Date(), leaseDuration: 30)
        let tracing = MessageTracing(tracer: NoOpTracer())
        let (messages, spans) = tracing.publish(entries.map(\.event), context: "order")
        #expect(spans.isEmpty)
        #expect(messages.map { $0.properties.headers?["traceparent"]?.stringValue } == [stored, nil])
        #expect(tracing.startProcessing(delivery(messages[0]), context: "billing") == nil)
    }

    /// `consumer.outcome` is written without reflection, and reads as Swift prints the outcome.
    @Test(arguments: [
        ContextConsumer.Outcome.processed(handlersRun: 2, alreadyProcessed: 1, skipped: 0), .failed(handler: "count \"x\""), .held,
        .poison(.malformedJSON), .requeued(reason: "store unavailable\n"),
    ])
    func theOutcomeOfAProcessSpanReadsAsSwiftPrintsIt(_ outcome: ContextConsumer.Outcome) {
        #expect(outcome.spanText == "\(outcome)")
    }
}
