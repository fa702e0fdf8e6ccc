import Synchronization
import Tracing

/// A tracer that does per span what an exporter-backed tracing SDK (swift-otel's) does on
/// the hot path: random binary W3C ids from a locked system generator (a trace id only for a
/// root span), a span object whose name, attributes and status sit behind a lock, and, when
/// the span ends, its finished record handed to a batch processor's buffer; `traceparent` is
/// formatted on injection and parsed on extraction. The "exporter" drops each full batch
/// (OTLP encoding and the network come on top). It counts the ended spans.
///
/// With a ratio below 1 it samples as an SDK's parent-based trace-id-ratio sampler does: a root
/// span records when its trace id falls under the ratio, a child follows its parent's `sampled`
/// flag; a span that does not record still gets its ids and propagates them (flag `00`), but
/// takes no attributes and is not exported.
final class BenchTracer: Tracer, Sendable {
    /// What an ended span hands to the batch.
    struct FinishedSpan: Sendable {
        var name: String
        var kind: SpanKind
        var context: BenchSpanContext
        var parentSpanID: UInt64?
        var start: UInt64
        var end: UInt64
        var attributes: SpanAttributes
        var status: SpanStatus?
    }

    /// The size at which the batch is "exported" (swift-otel's default batch size).
    static let batchSize = 512

    /// The share of root spans that record (1: all).
    let ratio: Double
    private let generator = Mutex(SystemRandomNumberGenerator())
    private let batch = Mutex<[FinishedSpan]>([])
    /// Spans ended so far.
    let ended = Atomic<Int>(0)

    init(ratio: Double = 1) {
        self.ratio = ratio
    }

    func startSpan<Instant: TracerInstant>(
        _ operationName: String, context: @autoclosure () -> ServiceContext, ofKind kind: SpanKind,
        at instant: @autoclosure () -> Instant, function: String, file fileID: String, line: UInt
    ) -> BenchSpan {
        var context = context()
        let parent = context[BenchSpanContext.Key.self]
        var identity = generator.withLock { generator in
            BenchSpanContext(
                traceIDHigh: parent?.traceIDHigh ?? generator.next(), traceIDLow: parent?.traceIDLow ?? generator.next(),
                spanID: generator.next(), isSampled: true)
        }
        // Parent-based: a child follows its parent; a root is sampled by the low bits of its trace id.
        identity.isSampled = parent?.isSampled ?? (Double(identity.traceIDLow >> 1) < ratio * Double(UInt64.max >> 1))
        context[BenchSpanContext.Key.self] = identity
        return BenchSpan(
            name: operationName, kind: kind, context: context, identity: identity, parentSpanID: parent?.spanID,
            startNanoseconds: instant().nanosecondsSinceEpoch, tracer: self)
    }

    /// The batch processor's `onEnd`: buffers the span; a full buffer goes to the "exporter".
    func finished(_ span: FinishedSpan) {
        let full = batch.withLock { buffer -> [FinishedSpan]? in
            buffer.append(span)
            guard buffer.count >= Self.batchSize else { return nil }
            defer { buffer = [] }
            return buffer
        }
        _ = full  // dropped here, outside the lock, where an exporter would encode and send it
        ended.add(1, ordering: .relaxed)
    }

    func forceFlush() {}

    func inject<Carrier, Inject: Injector>(_ context: ServiceContext, into carrier: inout Carrier, using injector: Inject)
    where Inject.Carrier == Carrier {
        guard let identity = context[BenchSpanContext.Key.self] else { return }
        injector.inject(identity.traceparent, forKey: "traceparent", into: &carrier)
    }

    func extract<Carrier, Extract: Extractor>(_ carrier: Carrier, into context: inout ServiceContext, using extractor: Extract)
    where Extract.Carrier == Carrier {
        guard let text = extractor.extract(key: "traceparent", from: carrier), let identity = BenchSpanContext(traceparent: text) else {
            return
        }
        context[BenchSpanContext.Key.self] = identity
    }
}
