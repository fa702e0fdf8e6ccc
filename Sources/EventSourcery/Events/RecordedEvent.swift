/// An event as the store recorded it: where it sits in its stream and in the global order.
public struct RecordedEvent: Sendable, Hashable {
    /// The stream the event belongs to.
    public var streamID: StreamID
    /// The event's version in its stream, starting at 1.
    public var streamVersion: Int64
    /// The event's position in the store's global order, starting at 1.
    public var position: Int64
    /// The encoded event.
    public var event: EncodedEvent

    public init(streamID: StreamID, streamVersion: Int64, position: Int64, event: EncodedEvent) {
        self.streamID = streamID
        self.streamVersion = streamVersion
        self.position = position
        self.event = event
    }
}
