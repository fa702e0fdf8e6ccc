public import EventSourcery

/// An event read back from an AMQP message of the wire contract (``EventMessage``), not yet
/// decoded into its Swift type.
public struct IncomingEvent: Sendable, Hashable {
    /// The context that published it: the exchange name without `.events` (`app_id` only for
    /// a message put straight into a queue through the default exchange).
    public var sourceContext: String
    /// The stream the event belongs to in its source store.
    public var streamID: StreamID
    /// The event's version in that stream.
    public var streamVersion: Int64
    /// The encoded event: id, type, schema version, time, metadata and JSON payload.
    public var event: EncodedEvent
    /// How often the broker delivered the message before (the quorum queue's
    /// `x-delivery-count` header; 0 on the first delivery).
    public var previousDeliveries: Int
    /// A `traceparent` header that was not valid W3C trace context, as received (shortened):
    /// it was dropped from the event's metadata, for the consumer to log.
    public var invalidTraceParent: String?

    /// Creates an incoming event.
    public init(
        sourceContext: String, streamID: StreamID, streamVersion: Int64, event: EncodedEvent, previousDeliveries: Int = 0,
        invalidTraceParent: String? = nil
    ) {
        self.sourceContext = sourceContext
        self.streamID = streamID
        self.streamVersion = streamVersion
        self.event = event
        self.previousDeliveries = previousDeliveries
        self.invalidTraceParent = invalidTraceParent
    }
}
