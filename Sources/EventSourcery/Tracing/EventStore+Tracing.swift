import Foundation
import Tracing

extension EventStore {
    /// The name of the span of a commit that appends events.
    public static let appendSpanName = "append"

    /// Starts the span of committing `batch` when the batch appends events and a tracer records,
    /// and gives the span's context to the batch's events that carry no trace context.
    ///
    /// The span's parent is the task's current context (an HTTP request's span, a caller's own
    /// span) or, when there is none, the trace context of the batch's first event that has
    /// one (a consumer's handler run). So a stored event's `traceContext` names the span that
    /// wrote it, and the relay's publish span becomes its child.
    func startAppendSpan(_ batch: inout WriteBatch) -> (any Span)? {
        guard TracePropagation.isRecording(tracer), let first = batch.appends.first(where: { !$0.events.isEmpty }) else { return nil }
        let parent = ServiceContext.current ?? TracePropagation.context(from: batch.firstTraceContext, tracer: tracer)
        let span = tracer.startSpan(Self.appendSpanName, context: parent, ofKind: .internal)
        let event = first.events[0]
        if span.isRecording {
            span.updateAttributes { attributes in
                attributes.reserveCapacity(5)
                attributes["es.stream"] = first.streamID.rawValue
                attributes["es.event_count"] = batch.eventCount
                attributes["es.event_id"] = event.id.lowercasedString
                attributes["es.type"] = event.typeName
                if let correlation = event.metadata.correlationID { attributes["es.correlation_id"] = correlation.lowercasedString }
            }
        }
        batch.fillTraceContext(TracePropagation.fields(of: span.context, tracer: tracer))
        return span
    }

    /// Ends an append span, recording `error` when the commit failed.
    func endAppendSpan(_ span: (any Span)?, error: (any Error)? = nil) {
        guard let span else { return }
        if let error {
            span.recordError(error)
            span.setStatus(SpanStatus(code: .error))
        }
        span.end()
    }

    /// Runs `commit` with `batch` inside its append span (see ``startAppendSpan(_:)``).
    func traced<Result>(_ batch: WriteBatch, _ commit: (WriteBatch) async throws -> Result) async throws -> Result {
        var batch = batch
        let span = startAppendSpan(&batch)
        do {
            let result = try await commit(batch)
            endAppendSpan(span)
            return result
        } catch {
            endAppendSpan(span, error: error)
            throw error
        }
    }
}
