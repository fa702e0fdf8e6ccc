import Synchronization
import Tracing

/// A span of ``BenchTracer``: its mutable parts behind a lock, as an SDK's span keeps them.
final class BenchSpan: Span, Sendable {
    private struct State {
        var name: String
        var attributes: SpanAttributes = [:]
        var status: SpanStatus?
        var ended = false
    }

    let context: ServiceContext
    private let kind: SpanKind
    private let identity: BenchSpanContext
    private let parentSpanID: UInt64?
    private let startNanoseconds: UInt64
    private let state: Mutex<State>
    private let tracer: BenchTracer

    init(
        name: String, kind: SpanKind, context: ServiceContext, identity: BenchSpanContext, parentSpanID: UInt64?,
        startNanoseconds: UInt64, tracer: BenchTracer
    ) {
        self.context = context
        self.kind = kind
        self.identity = identity
        self.parentSpanID = parentSpanID
        self.startNanoseconds = startNanoseconds
        self.state = Mutex(State(name: name))
        self.tracer = tracer
    }

    var operationName: String {
        get { state.withLock { $0.name } }
        set { state.withLock { $0.name = newValue } }
    }

    var attributes: SpanAttributes {
        get { state.withLock { $0.attributes } }
        set { state.withLock { $0.attributes = newValue } }
    }

    var isRecording: Bool { identity.isSampled && state.withLock { !$0.ended } }

    func setStatus(_ status: SpanStatus) { state.withLock { $0.status = status } }
    func addEvent(_ event: SpanEvent) {}
    func recordError<Instant: TracerInstant>(_ error: any Error, attributes: SpanAttributes, at instant: @autoclosure () -> Instant) {}
    func addLink(_ link: SpanLink) {}

    func end<Instant: TracerInstant>(at instant: @autoclosure () -> Instant) {
        guard identity.isSampled else { return }  // an unsampled span is not exported
        let finished = state.withLock { state -> BenchTracer.FinishedSpan? in
            guard !state.ended else { return nil }
            state.ended = true
            return BenchTracer.FinishedSpan(
                name: state.name, kind: kind, context: identity, parentSpanID: parentSpanID, start: startNanoseconds,
                end: instant().nanosecondsSinceEpoch, attributes: state.attributes, status: state.status)
        }
        if let finished { tracer.finished(finished) }
    }
}
