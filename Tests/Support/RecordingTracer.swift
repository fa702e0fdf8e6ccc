import Foundation
import NIOConcurrencyHelpers
public import Tracing

/// A tracer for tests: W3C trace context propagation (`traceparent`) like an OpenTelemetry
/// tracer, and every ended span kept as a ``RecordedSpan`` to assert the span tree.
public final class RecordingTracer: Tracer, Sendable {
    /// The identity of a span in a context: its trace and span ids (lower-case hex).
    public struct Identity: Sendable, Hashable {
        public var traceID: String
        public var spanID: String

        /// The W3C `traceparent` of this span, sampled.
        public var traceParent: String { "00-\(traceID)-\(spanID)-01" }

        /// The identity a W3C `traceparent` names; `nil` when it is not one.
        public init?(traceParent: String) {
            let parts = traceParent.split(separator: "-")
            guard parts.count == 4, parts[1].count == 32, parts[2].count == 16 else { return nil }
            self.init(traceID: String(parts[1]), spanID: String(parts[2]))
        }

        init(traceID: String, spanID: String) {
            self.traceID = traceID
            self.spanID = spanID
        }
    }

    /// The context key of the current span's identity.
    enum IdentityKey: ServiceContextKey {
        typealias Value = Identity
    }

    private let ended = NIOLockedValueBox<[RecordedSpan]>([])

    public init() {}

    /// The spans ended so far, in the order they ended.
    public var spans: [RecordedSpan] { ended.withLockedValue { $0 } }

    /// The ended spans of the trace `traceID`.
    public func spans(inTrace traceID: String) -> [RecordedSpan] { spans.filter { $0.traceID == traceID } }

    /// The identity of the span `context` carries, if any.
    public static func identity(of context: ServiceContext) -> Identity? { context[IdentityKey.self] }

    public func startSpan<Instant: TracerInstant>(
        _ operationName: String, context: @autoclosure () -> ServiceContext, ofKind kind: SpanKind,
        at instant: @autoclosure () -> Instant, function: String, file fileID: String, line: UInt
    ) -> RecordingSpan {
        var context = context()
        let parent = context[IdentityKey.self]
        let identity = Identity(traceID: parent?.traceID ?? Self.randomHex(bytes: 16), spanID: Self.randomHex(bytes: 8))
        context[IdentityKey.self] = identity
        return RecordingSpan(
            name: operationName, kind: kind, context: context, identity: identity, parentSpanID: parent?.spanID
        ) { [ended] span in
            ended.withLockedValue { $0.append(span) }
        }
    }

    public func forceFlush() {}

    public func inject<Carrier, Inject: Injector>(_ context: ServiceContext, into carrier: inout Carrier, using injector: Inject)
    where Inject.Carrier == Carrier {
        guard let identity = context[IdentityKey.self] else { return }
        injector.inject(identity.traceParent, forKey: "traceparent", into: &carrier)
    }

    public func extract<Carrier, Extract: Extractor>(_ carrier: Carrier, into context: inout ServiceContext, using extractor: Extract)
    where Extract.Carrier == Carrier {
        guard let text = extractor.extract(key: "traceparent", from: carrier), let identity = Identity(traceParent: text) else { return }
        context[IdentityKey.self] = identity
    }

    private static func randomHex(bytes: Int) -> String {
        (0..<bytes).map { _ in String(format: "%02x", UInt8.random(in: 0...255)) }.joined()
    }
}
