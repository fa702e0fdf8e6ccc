public import Tracing

/// An ended span of ``RecordingTracer``.
public struct RecordedSpan: Sendable {
    public var name: String
    public var kind: SpanKind
    public var traceID: String
    public var spanID: String
    /// The span id of the parent, `nil` for a root span.
    public var parentSpanID: String?
    public var attributes: SpanAttributes = [:]
    public var status: SpanStatus?
    public var errors: [String] = []
    var ended = false

    /// The attribute `key`.
    public func attribute(_ key: String) -> SpanAttribute? { attributes.get(key) }

    /// The string value of the attribute `key`, if it is one.
    public func string(_ key: String) -> String? {
        if case .string(let value)? = attributes.get(key) { return value }
        return nil
    }
}
