import Synchronization
import Tracing

/// A span of ``BenchTracer``.
final class BenchSpan: Span, Sendable {
    private struct State {
        var name: String
        var attributes: SpanAttributes = [:]
        var status: SpanStatus?
        var ended = false
    }

    let context: ServiceContext
    let startNanoseconds: UInt64
    private let state: Mutex<State>
    private let tracer: BenchTracer

    init(name: String, context: ServiceContext, startNanoseconds: UInt64, tracer: BenchTracer) {
        self.context = context
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

    var isRecording: Bool { state.withLock { !$0.ended } }

    func setStatus(_ status: SpanStatus) { state.withLock { $0.status = status } }
    func addEvent(_ event: SpanEvent) {}
    func recordError<Instant: TracerInstant>(_ error: any Error, attributes: SpanAttributes, at instant: @autoclosure () -> Instant) {}
    func addLink(_ link: SpanLink) {}

    func end<Instant: TracerInstant>(at instant: @autoclosure () -> Instant) {
        let first = state.withLock { state in
            defer { state.ended = true }
            return !state.ended
        }
        if first { tracer.ended.add(1, ordering: .relaxed) }
    }
}
