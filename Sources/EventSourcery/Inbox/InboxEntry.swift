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
