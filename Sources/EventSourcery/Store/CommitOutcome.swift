import Foundation

/// The result of committing a ``WriteBatch``.
public enum CommitOutcome: Sendable {
    /// The batch committed; these are the recorded events in append order.
    case committed([RecordedEvent])
    /// The batch's inbox entry already existed; nothing was written.
    case alreadyProcessed
}
