import EventSourceryRabbitMQ
import EventSourcery
import Foundation
import Tracing

/// The spans of the bridge: the relay's publish (producer), a consumer's processing of a
/// delivery (consumer) and each handler run, with the trace context carried in the AMQP
/// headers `traceparent` and `tracestate` (``EventMessage``).
///
/// With the no-op tracer (no tracer bootstrapped) it starts no span and leaves the headers
/// as stored: the trace context an event carries passes through unchanged.
struct MessageTracing: Sendable {
    /// The names of the spans.
    enum SpanName {
        static func publish(_ exchange: String) -> String { "publish \(exchange)" }
        static func process(_ exchange: String) -> String { "process \(exchange)" }
        static func handle(_ handler: String) -> String { "handle \(handler)" }
    }

    let tracer: any Tracer

    var isRecording: Bool { TracePropagation.isRecording(tracer) }

    // MARK: Relay

    /// The messages of `events`, each with a producer span when the tracer records: the span is
    /// a child of the context stored with the event (its append span), and its own context goes
    /// into the message's headers.
    func publish(_ events: [RecordedEvent], context: String) -> (messages: [OutgoingMessage], spans: [any Span]) {
        guard isRecording else { return (events.map { EventMessage.outgoing($0, context: context) }, []) }
        var messages: [OutgoingMessage] = []
        var spans: [any Span] = []
        messages.reserveCapacity(events.count)
        spans.reserveCapacity(events.count)
        for event in events {
            let exchange = EventMessage.exchange(for: context)
            let parent = TracePropagation.context(from: event.event.metadata.traceContext, tracer: tracer)
            let span = tracer.startSpan(SpanName.publish(exchange), context: parent, ofKind: .producer)
            let message = EventMessage.outgoing(
                event, context: context, traceContext: TracePropagation.fields(of: span.context, tracer: tracer))
            span.updateAttributes { attributes in
                attributes["messaging.system"] = "rabbitmq"
                attributes["messaging.operation.type"] = "send"
                attributes["messaging.destination.name"] = exchange
                attributes["messaging.rabbitmq.destination.routing_key"] = message.routingKey
                attributes["messaging.message.id"] = message.properties.messageId
                attributes["messaging.message.conversation_id"] = message.properties.correlationId
                attributes["es.stream"] = event.streamID.rawValue
                attributes["es.stream_version"] = event.streamVersion
            }
            messages.append(message)
            spans.append(span)
        }
        return (messages, spans)
    }

    /// Ends the producer spans of a wave with the broker's answers (an error status for each
    /// message the broker did not confirm).
    func endPublish(_ spans: [any Span], outcomes: [PublishOutcome]) {
        for (span, outcome) in zip(spans, outcomes) {
            if !outcome.isConfirmed { span.setStatus(SpanStatus(code: .error, message: "\(outcome)")) }
            span.end()
        }
    }

    // MARK: Consumer

    /// The consumer span of processing `delivery` in `context`, a child of the context in the
    /// message's headers; `nil` when the tracer does not record.
    func startProcessing(_ delivery: Delivery, context: String) -> (any Span)? {
        guard isRecording else { return nil }
        var fields: [String: String] = [:]
        for key in EventMessage.traceHeaders {
            if let value = delivery.properties.headers?[key]?.stringValue { fields[key] = value }
        }
        let span = tracer.startSpan(
            SpanName.process(delivery.exchange), context: TracePropagation.context(from: fields, tracer: tracer), ofKind: .consumer)
        span.updateAttributes { attributes in
            attributes["messaging.system"] = "rabbitmq"
            attributes["messaging.operation.type"] = "process"
            attributes["messaging.destination.name"] = delivery.exchange
            attributes["messaging.rabbitmq.destination.routing_key"] = delivery.routingKey
            attributes["messaging.message.id"] = delivery.properties.messageId
            attributes["messaging.message.conversation_id"] = delivery.properties.correlationId
            attributes["messaging.consumer.group.name"] = context
        }
        return span
    }

    /// Ends a consumer span with the delivery's outcome.
    func endProcessing(_ span: (any Span)?, outcome: ContextConsumer.Outcome) {
        guard let span else { return }
        span.attributes["consumer.outcome"] = "\(outcome)"
        switch outcome {
        case .processed, .held: break
        case .failed, .poison, .requeued: span.setStatus(SpanStatus(code: .error, message: "\(outcome)"))
        }
        span.end()
    }

    /// Runs `body` (one handler run) in its span, a child of `parent` (the delivery's consumer
    /// span) or, for a retried held event, of the context the event carries. Returns the span's
    /// propagation fields, for the events the handler appended; empty when the tracer does not
    /// record.
    func handling(
        _ handler: String, _ input: HandlerInput, parent: ServiceContext?, _ body: () async throws -> Void
    ) async throws -> [String: String] {
        guard isRecording else {
            try await body()
            return [:]
        }
        let context = parent ?? TracePropagation.context(from: input.envelope.metadata.traceContext, tracer: tracer)
        let span = tracer.startSpan(SpanName.handle(handler), context: context, ofKind: .internal)
        span.updateAttributes { attributes in
            attributes["consumer.handler"] = handler
            attributes["consumer.attempt"] = input.attempt
            attributes["es.event_id"] = input.envelope.id.uuidString.lowercased()
            attributes["es.type"] = input.envelope.typeName
            attributes["es.source_context"] = input.sourceContext
            if let correlation = input.envelope.metadata.correlationID {
                attributes["es.correlation_id"] = correlation.uuidString.lowercased()
            }
        }
        defer { span.end() }
        do {
            try await ServiceContext.$current.withValue(span.context) { try await body() }
        } catch {
            span.recordError(error)
            span.setStatus(SpanStatus(code: .error))
            throw error
        }
        return TracePropagation.fields(of: span.context, tracer: tracer)
    }
}
