import EventSourcery
public import Foundation
import Logging
import Tracing

extension ContextConsumer {
    /// Forces the handler `name` to run for an event it skipped because of a condition: the
    /// rerun is recorded (``HandlerRerun`` in `skipped-<context>`) and the recorded event is
    /// handed to the handler, without its conditions, in one transaction under the inbox entry
    /// `<context>.<handler>.rerun` / rerun id. A handler that throws records nothing. With a
    /// tracer bootstrapped the handler runs in its `handle <handler>` span, a child of the
    /// task's current span or else of the trace context stored with the event.
    ///
    /// - Returns: The recorded rerun.
    /// - Throws: ``HandlerRerunError`` when no handler has that name or no skip of it for
    ///   `eventID` is recorded; what the handler throws.
    @discardableResult
    public func rerun(handler name: String, eventID: UUID, reason: String) async throws -> HandlerRerun {
        guard let handler = handlers.first(where: { $0.name == name }) else {
            throw HandlerRerunError(handler: name, eventID: eventID, problem: "the consumer has no handler by that name")
        }
        let skips = try await ContextAdmin.recordedWithMetadata(
            HandlerSkipped.self, in: HandlerSkipped.stream(for: configuration.context), store: store)
        guard let skip = skips.last(where: { $0.event.handler == name && $0.event.eventID == eventID }) else {
            throw HandlerRerunError(handler: name, eventID: eventID, problem: "no skip of that handler for that event is recorded")
        }
        var input = try skip.event.input(registry: store.registry)
        // The skip record carries the trace context of the event it skipped: the rerun continues that trace.
        input.envelope.metadata.traceContext = skip.metadata.traceContext
        let rerun = HandlerRerun(rerunID: .timeOrdered(), handler: name, eventID: eventID, reason: reason, ranAt: Date())
        _ = try await store.processOnce(consumer: "\(configuration.context).\(name).rerun", eventID: rerun.rerunID) { batch in
            try batch.append([EventEnvelope(rerun, metadata: input.causedMetadata)], to: HandlerSkipped.stream(for: configuration.context))
            // The handler's span continues the event's trace (or the caller's span); what the
            // rerun writes names that span, so the next hop's spans are its children.
            let trace = try await tracing.handling(name, input, parent: ServiceContext.current) { try await handler.handle(input, &batch) }
            batch.setTraceContext(trace)
        }
        logger.info(
            "Handler rerun forced",
            metadata: ["consumer.handler": "\(name)", "es.event_id": "\(eventID)", "consumer.reason": "\(reason)"])
        return rerun
    }
}
