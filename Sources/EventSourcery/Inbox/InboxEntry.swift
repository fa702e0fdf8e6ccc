public import Foundation

/// A record that a consumer has processed an event.
public struct InboxEntry: Sendable, Hashable {
    /// The consumer's name, such as `payment.charge-order`.
    public var consumer: String
    /// The processed event's id.
    public var eventID: UUID

    public init(consumer: String, eventID: UUID) {
        self.consumer = consumer
        self.eventID = eventID
    }
}

/// What ``EventStore/processOnce(consumer:eventID:_:)`` did.
public enum InboxOutcome: Sendable {
    /// The closure ran and its writes committed with the inbox entry.
    case processed([StoredEvent])
    /// The event had been processed before; the closure did not run.
    case alreadyProcessed

    /// Whether the closure ran.
    public var wasProcessed: Bool {
        if case .processed = self { return true }
        return false
    }
}
