public import Foundation

extension EventStoreError {
    /// A command whose id is already in the command outbox.
    public static func duplicateCommand(_ id: UUID) -> EventStoreError {
        EventStoreError(
            .duplicateEventID,
            message: "A command with id \(id) is already in the command outbox. Command ids are unique: send a new command.")
    }
}
