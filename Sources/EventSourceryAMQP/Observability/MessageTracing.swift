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
        let exchange = EventMessage.exchange(for: context)
        let name = SpanName.publish(exchange)
        return produce(events, spanName: { _ in name }, storedContext: \.event.metadata.traceContext, attributeCount: 2) { event, fields in
            EventMessage.outgoing(event, context: context, traceContext: fields)
        } attributes: { event, attributes in
            attributes["es.stream"] = event.streamID.rawValue
            attributes["es.stream_version"] = event.streamVersion
        }
    }

    /// The messages of the commands `sender` sends, each with a producer span when the tracer
    /// records, a child of the context stored with the command (the span that sent it).
    func send(_ commands: [EncodedCommand], sender: String) -> (messages: [OutgoingMessage], spans: [any Span]) {
        guard isRecording else { return (commands.map { CommandMessage.outgoing($0, sender: sender) }, []) }
        return produce(
            commands, spanName: { SpanName.publish(CommandMessage.exchange(for: $0.target)) }, storedContext: \.metadata.traceContext,
            attributeCount: 2
        ) { command, fields in
            CommandMessage.outgoing(command, sender: sender, traceContext: fields)
        } attributes: { command, attributes in
            attributes["es.command_type"] = command.typeName
            attributes["es.command_target"] = command.target
        }
    }

    /// A producer span per item, a child of the trace context stored with it, and the item's
    /// message built with the span's context; the messaging attributes and the item's own
    /// (`attributes`, `attributeCount` of them) only on a span that records.
    private func produce<Item>(
        _ items: [Item], spanName: (Item) -> String, storedContext: (Item) -> [String: String], attributeCount: Int,
        message: (Item, [String: String]) -> OutgoingMessage,
        attributes: (Item, inout SpanAttributes) -> Void
    ) -> (messages: [OutgoingMessage], spans: [any Span]) {
        var messages: [OutgoingMessage] = []
        var spans: [any Span] = []
        messages.reserveCapacity(items.count)
        spans.reserveCapacity(items.count)
        for item in items {
            let parent = TracePropagation.context(from: storedContext(item), tracer: tracer)
            let span = tracer.startSpan(spanName(item), context: parent, ofKind: .producer)
            let outgoing = message(item, TracePropagation.fields(of: span.context, tracer: tracer))
            messages.append(outgoing)
            spans.append(span)
            // A span a sampler dropped takes no attributes: they would be built for nothing.
            guard span.isRecording else { continue }
            span.updateAttributes { spanAttributes in
                spanAttributes.reserveCapacity(Self.messagingAttributeCount + attributeCount)
                Self.setMessaging(
                    &spanAttributes, operation: "send", exchange: outgoing.exchange, routingKey: outgoing.routingKey,
                    properties: outgoing.properties)
                attributes(item, &spanAttributes)
            }
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
        var parent = ServiceContext.topLevel
        if let headers = delivery.properties.headers { tracer.extract(headers, into: &parent, using: HeadersExtractor()) }
        let span = tracer.startSpan(SpanName.process(delivery.exchange), context: parent, ofKind: .consumer)
        guard span.isRecording else { return span }
        span.updateAttributes { attributes in
            attributes.reserveCapacity(Self.messagingAttributeCount + 2)  // with the group and the outcome
            Self.setMessaging(
                &attributes, operation: "process", exchange: delivery.exchange, routingKey: delivery.routingKey,
                properties: delivery.properties)
            attributes["messaging.consumer.group.name"] = context
        }
        return span
    }

    /// How many attributes ``setMessaging(_:operation:exchange:routingKey:properties:)`` sets.
    private static let messagingAttributeCount = 6

    /// The OpenTelemetry messaging attributes a producer and a consumer span share.
    private static func setMessaging(
        _ attributes: inout SpanAttributes, operation: String, exchange: String, routingKey: String, properties: AMQPProperties
    ) {
        attributes["messaging.system"] = "rabbitmq"
        attributes["messaging.operation.type"] = operation
        attributes["messaging.destination.name"] = exchange
        attributes["messaging.rabbitmq.destination.routing_key"] = routingKey
        attributes["messaging.message.id"] = properties.messageId
        attributes["messaging.message.conversation_id"] = properties.correlationId
    }

    /// Ends a consumer span with the delivery's outcome (`failed`: an error status). The
    /// outcome's text is built only for a span that records.
    func endProcessing(_ span: (any Span)?, outcome: @autoclosure () -> String, failed: Bool) {
        guard let span else { return }
        if span.isRecording {
            let text = outcome()
            span.updateAttributes { $0["consumer.outcome"] = text }
            if failed { span.setStatus(SpanStatus(code: .error, message: text)) }
        }
        span.end()
    }

    /// Runs `body` (processing one delivery) in `span`'s context, so that what it appends is a
    /// child of the span; runs it as it is when there is no span.
    func within<Result>(_ span: (any Span)?, _ body: () async -> Result) async -> Result {
        guard let span else { return await body() }
        return await ServiceContext.$current.withValue(span.context) { await body() }
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
        if span.isRecording {
            span.updateAttributes { attributes in
                attributes.reserveCapacity(6)
                attributes["consumer.handler"] = handler
                attributes["consumer.attempt"] = input.attempt
                attributes["es.event_id"] = input.envelope.id.lowercasedString
                attributes["es.type"] = input.envelope.typeName
                attributes["es.source_context"] = input.sourceContext
                if let correlation = input.envelope.metadata.correlationID {
                    attributes["es.correlation_id"] = correlation.lowercasedString
                }
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

/// Reads the trace headers of a delivery (`traceparent`, `tracestate`) where they are, without
/// copying them into a dictionary first.
private struct HeadersExtractor: Extractor {
    func extract(key: String, from headers: AMQPTable) -> String? {
        headers[key]?.stringValue
    }
}
