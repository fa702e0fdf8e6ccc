import NIOConcurrencyHelpers
public import Tracing

/// A span of ``RecordingTracer``: it keeps its name, attributes and status and hands itself
/// to the tracer as a ``RecordedSpan`` when it ends.
public final class RecordingSpan: Span, Sendable {
    public let context: ServiceContext
    private let state: NIOLockedValueBox<RecordedSpan>
    private let onEnd: @Sendable (RecordedSpan) -> Void

    init(
        name: String, kind: SpanKind, context: ServiceContext, identity: RecordingTracer.Identity, parentSpanID: String?,
        onEnd: @escaping @Sendable (RecordedSpan) -> Void
    ) {
        self.context = context
        self.state = NIOLockedValueBox(
            RecordedSpan(name: name, kind: kind, traceID: identity.traceID, spanID: identity.spanID, parentSpanID: parentSpanID))
        self.onEnd = onEnd
    }

    public var operationName: String {
        get { state.withLockedValue { $0.name } }
        set { state.withLockedValue { $0.name = newValue } }
    }

    public var attributes: SpanAttributes {
        get { state.withLockedValue { $0.attributes } }
        set { state.withLockedValue { $0.attributes = newValue } }
    }

    public var isRecording: Bool { state.withLockedValue { !$0.ended } }

    public func setStatus(_ status: SpanStatus) {
        state.withLockedValue { $0.status = status }
    }

    public func addEvent(_ event: SpanEvent) {}

    public func recordError<Instant: TracerInstant>(_ error: any Error, attributes: SpanAttributes, at instant: @autoclosure () -> Instant)
    {
        state.withLockedValue { $0.errors.append("\(error)") }
    }

    public func addLink(_ link: SpanLink) {}

    public func end<Instant: TracerInstant>(at instant: @autoclosure () -> Instant) {
        let ended: RecordedSpan? = state.withLockedValue { span in
            guard !span.ended else { return nil }
            span.ended = true
            return span
        }
        if let ended { onEnd(ended) }
    }
}
