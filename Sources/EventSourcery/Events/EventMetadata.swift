public import Foundation

/// Tracing information carried with every event.
///
/// The *correlation id* names the whole flow an event belongs to (usually the id of
/// the first event of the flow); the *causation id* names the event or command that
/// directly caused it. ``traceContext`` holds free-form propagation fields such as a
/// W3C `traceparent`: with a tracer bootstrapped, the context of the span that produced the
/// event (``EventStore/tracer``, ``TracePropagation``).
public struct EventMetadata: Codable, Hashable, Sendable {
    /// The id of the flow this event belongs to.
    public var correlationID: UUID?
    /// The id of the event that caused this one.
    public var causationID: UUID?
    /// Free-form trace propagation fields, for example `traceparent`.
    public var traceContext: [String: String]

    /// Creates metadata.
    public init(correlationID: UUID? = nil, causationID: UUID? = nil, traceContext: [String: String] = [:]) {
        self.correlationID = correlationID
        self.causationID = causationID
        self.traceContext = traceContext
    }

    /// Metadata for an event caused by `cause`: same correlation id, causation id = the
    /// cause's id, same trace context.
    public static func causedBy(_ cause: EventEnvelope) -> EventMetadata {
        EventMetadata(
            correlationID: cause.metadata.correlationID ?? cause.id,
            causationID: cause.id,
            traceContext: cause.metadata.traceContext
        )
    }
}
