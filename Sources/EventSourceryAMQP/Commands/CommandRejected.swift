public import EventSourcery
public import Foundation

/// A command the receiving context refused (a ``CommandRefusal``), recorded and published by
/// the receiver in the stream `rejected-<command id>`, so the sender can react to the refusal.
public struct CommandRejected: Event, Equatable {
    /// The refused command's id.
    public var commandID: UUID
    /// Its type name.
    public var commandType: String
    /// The context that sent it.
    public var sender: String
    /// Why it was refused.
    public var reason: String

    public init(commandID: UUID, commandType: String, sender: String, reason: String) {
        self.commandID = commandID
        self.commandType = commandType
        self.sender = sender
        self.reason = reason
    }

    /// The stream a rejection is recorded in: `rejected-<command id>`.
    public static func stream(for commandID: UUID) throws(EventStoreError) -> StreamID {
        try StreamID(category: "rejected", id: commandID.lowercasedString)
    }
}
