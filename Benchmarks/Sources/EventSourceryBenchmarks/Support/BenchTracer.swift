import Synchronization
import Tracing

/// A tracer that does what a tracing SDK does on the hot path — random W3C trace and span
/// ids, a span object with its attributes and status, `traceparent` injection and
/// extraction — and drops each span when it ends (no exporter: with OTLP export, batching
/// and the network come on top). It counts the ended spans.
final class BenchTracer: Tracer, Sendable {
    /// The trace and span id of a span, in a context.
    struct Identity: Sendable {
        var traceID: String
        var spanID: String
    }

    enum IdentityKey: ServiceContextKey {
        typealias Value = Identity
    }

    /// Spans ended so far.
    let ended = Atomic<Int>(0)

    func startSpan<Instant: TracerInstant>(
        _ operationName: String, context: @autoclosure () -> ServiceContext, ofKind kind: SpanKind,
        at instant: @autoclosure () -> Instant, function: String, file fileID: String, line: UInt
    ) -> BenchSpan {
        var context = context()
        let identity = Identity(traceID: context[IdentityKey.self]?.traceID ?? Self.hex(16), spanID: Self.hex(8))
        context[IdentityKey.self] = identity
        return BenchSpan(name: operationName, context: context, startNanoseconds: instant().nanosecondsSinceEpoch, tracer: self)
    }

    func forceFlush() {}

    func inject<Carrier, Inject: Injector>(_ context: ServiceContext, into carrier: inout Carrier, using injector: Inject)
    where Inject.Carrier == Carrier {
        guard let identity = context[IdentityKey.self] else { return }
        injector.inject("00-\(identity.traceID)-\(identity.spanID)-01", forKey: "traceparent", into: &carrier)
    }

    func extract<Carrier, Extract: Extractor>(_ carrier: Carrier, into context: inout ServiceContext, using extractor: Extract)
    where Extract.Carrier == Carrier {
        guard let text = extractor.extract(key: "traceparent", from: carrier) else { return }
        let parts = text.split(separator: "-")
        guard parts.count == 4 else { return }
        context[IdentityKey.self] = Identity(traceID: String(parts[1]), spanID: String(parts[2]))
    }

    private static func hex(_ bytes: Int) -> String {
        var generator = SystemRandomNumberGenerator()
        var text = ""
        text.reserveCapacity(bytes * 2)
        for _ in 0..<bytes {
            let byte = UInt8.random(in: 0...255, using: &generator)
            text += byte < 16 ? "0" + String(byte, radix: 16) : String(byte, radix: 16)
        }
        return text
    }
}
