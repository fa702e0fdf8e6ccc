public import EventSourcery
public import Foundation

/// A handler's failure, recorded as data in the stream `failures-<context>` of the
/// consuming context's store ("failures are data"): what failed, on which event, and how.
public struct HandlerFailed: Event, Equatable {
    /// The consumed event's id.
    public var eventID: UUID
    /// The consumed event's type name.
    public var eventType: String
    /// The context that published the consumed event.
    public var sourceContext: String
    /// The handler's name.
    public var handler: String
    /// The error's description.
    public var error: String
    /// The attempt that failed: 1 for the first delivery.
    public var attempt: Int
    /// When it failed.
    public var failedAt: Date

    public init(eventID: UUID, eventType: String, sourceContext: String, handler: String, error: String, attempt: Int, failedAt: Date) {
        self.eventID = eventID
        self.eventType = eventType
        self.sourceContext = sourceContext
        self.handler = handler
        self.error = error
        self.attempt = attempt
        self.failedAt = failedAt
    }

    /// The stream a context's failures are recorded in: `failures-<context>`.
    public static func stream(for context: String) -> StreamID {
        StreamID(stringLiteral: "failures-\(context)")
    }
}
