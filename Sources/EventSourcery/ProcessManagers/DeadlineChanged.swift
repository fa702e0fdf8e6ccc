import Foundation

/// The library's record of a flow's deadlines, in the flow's stream: a deadline was
/// scheduled, cancelled, or fired. ``ProcessFlow`` folds these into the live deadlines.
public struct DeadlineChanged: Event, Equatable {
    /// What happened to the deadline.
    public enum Change: String, Codable, Sendable {
        case scheduled
        case cancelled
        case fired
    }

    /// The deadline.
    public var deadline: Deadline
    /// What happened to it.
    public var change: Change

    public init(_ deadline: Deadline, _ change: Change) {
        self.deadline = deadline
        self.change = change
    }
}
