import EventSourcery
public import Foundation
import Logging

extension ContextConsumer {
    /// Forces the handler `name` to run for an event it skipped because of a condition: the
    /// rerun is recorded (``HandlerRerun`` in `skipped-<context>`) and the recorded event is
    /// handed to the handler, without its conditions, in one transaction under the inbox entry
    /// `<context>.<handler>.rerun` / rerun id. A handler that throws records nothing.
    ///
    /// - Returns: The recorded rerun.
    /// - Throws: ``HandlerRerunError`` when no handler has that name or no skip of it for
    ///   `eventID` is recorded; what the handler throws.
    @discardableResult
    public func rerun(handler name: String, eventID: UUID, reason: String) async throws -> HandlerRerun {
        guard let handler = handlers.first(where: { $0.name == name }) else {
            throw HandlerRerunError(handler: name, eventID: eventID, problem: "the consumer has no handler by that name")
        }
        let skips = try await ContextAdmin.skippedHandlers(context: configuration.context, store: store)
        guard let skip = skips.last(where: { $0.handler == name && $0.eventID == eventID }) else {
            throw HandlerRerunError(handler: name, eventID: eventID, problem: "no skip of that handler for that event is recorded")
        }
        let input = try skip.input(registry: store.registry)
        let rerun = HandlerRerun(rerunID: .timeOrdered(), handler: name, eventID: eventID, reason: reason, ranAt: Date())
        _ = try await store.processOnce(consumer: "\(configuration.context).\(name).rerun", eventID: rerun.rerunID) { batch in
            try batch.append([EventEnvelope(rerun, metadata: input.causedMetadata)], to: HandlerSkipped.stream(for: configuration.context))
            try await handler.handle(input, &batch)
        }
        logger.info(
            "Handler rerun forced",
            metadata: ["consumer.handler": "\(name)", "es.event_id": "\(eventID)", "consumer.reason": "\(reason)"])
        return rerun
    }
}
