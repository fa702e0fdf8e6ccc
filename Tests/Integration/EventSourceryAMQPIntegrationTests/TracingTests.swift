import EventSourceryRabbitMQ
import TestSupport
import EventSourcery
import EventSourceryAMQP
import EventSourcerySQLite
import Foundation
import Testing
import Tracing

/// One flow across the real broker: append in a request span, the relay's publish, a
/// consumer's processing and handler run, and the handler's append form one trace.
@Suite(.timeLimit(.minutes(2)), .requiresBroker)
struct TracingIntegrationTests {
    @Test func oneFlowAcrossTheBrokerIsOneTrace() async throws {
        let fixture = try await ConsumerFixture()
        defer { Task { await fixture.tearDown() } }
        let tracer = RecordingTracer()
        let consumer = ContextConsumer(
            connection: fixture.connection,
            store: EventStore(storage: fixture.storage, registry: fixture.store.registry, tracer: tracer),
            handlers: [fixture.handler()], configuration: fixture.configuration(), logger: TestBroker.logger)
        let consuming = try await fixture.start(consumer)
        defer { consuming.cancel() }

        let sourceStorage = try SQLiteEventStorage(path: fixture.directory.appendingPathComponent("source.sqlite").path)
        defer { try? sourceStorage.close() }
        let source = EventStore(storage: sourceStorage, registry: EventRegistry([ItemCounted.self]), tracer: tracer)
        let request = tracer.startSpan("POST /items", context: .topLevel, ofKind: .server)
        let placed = try await ServiceContext.$current.withValue(request.context) {
            try await source.publish([EventEnvelope(ItemCounted(index: 3))], to: "item-3")
        }
        request.end()
        let relay = OutboxRelay(
            storage: sourceStorage, publisher: AMQPPublisher(connection: fixture.connection),
            configuration: OutboxRelay.Configuration(context: fixture.source), logger: TestBroker.logger, tracer: tracer)
        #expect(try await relay.runOnce().published == 1)

        let traceID = try #require(RecordingTracer.identity(of: request.context)?.traceID)
        #expect(await fixture.eventually { tracer.spans(inTrace: traceID).count == 6 })
        let spans = tracer.spans(inTrace: traceID)
        func child(of parent: RecordedSpan?, named name: String) throws -> RecordedSpan {
            try #require(spans.first { $0.name == name && $0.parentSpanID == parent?.spanID }, "\(name) under \(parent?.name ?? "none")")
        }
        let root = try child(of: nil, named: "POST /items")
        let append = try child(of: root, named: "append")
        let publish = try child(of: append, named: "publish \(fixture.source).events")
        let process = try child(of: publish, named: "process \(fixture.source).events")
        let handle = try child(of: process, named: "handle count")
        let handlerAppend = try child(of: handle, named: "append")
        #expect([publish.kind, process.kind] == [.producer, .consumer])
        #expect(process.string("consumer.outcome") == "processed(handlersRun: 1, alreadyProcessed: 0, skipped: 0)")
        #expect(handlerAppend.string("es.stream") == "handled-3")

        let handled = try #require(try await fixture.store.load("handled-3").first)
        let cause = try #require(placed.first)
        #expect(handled.envelope.metadata.causationID == cause.envelope.id)
        #expect(handled.envelope.metadata.correlationID == cause.envelope.metadata.correlationID)
        #expect(handled.envelope.metadata.traceContext == ["traceparent": "00-\(traceID)-\(handle.spanID)-01"])
    }
}
