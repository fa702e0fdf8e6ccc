/// A recorded event decoded into its Swift type.
public struct StoredEvent: Sendable {
    /// The stream the event belongs to.
    public var streamID: StreamID
    /// The event's version in its stream, starting at 1.
    public var streamVersion: Int64
    /// The event's position in the store's global order.
    public var position: Int64
    /// The decoded event with its id, time and metadata.
    public var envelope: EventEnvelope

    public init(streamID: StreamID, streamVersion: Int64, position: Int64, envelope: EventEnvelope) {
        self.streamID = streamID
        self.streamVersion = streamVersion
        self.position = position
        self.envelope = envelope
    }

    /// The decoded event.
    public var event: any Event { envelope.event }
}
