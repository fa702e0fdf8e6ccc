public import EventSourcery
public import Foundation

/// An operator forced a handler to run again for one event (without its conditions),
/// recorded in `skipped-<context>` in the same transaction as the handler's writes.
public struct HandlerRerun: Event, Equatable {
    /// The rerun's id: its inbox key, so one request runs the handler once.
    public var rerunID: UUID
    /// The handler's name.
    public var handler: String
    /// The event's id.
    public var eventID: UUID
    /// Why the operator forced it.
    public var reason: String
    /// When.
    public var ranAt: Date

    public init(rerunID: UUID, handler: String, eventID: UUID, reason: String, ranAt: Date) {
        self.rerunID = rerunID
        self.handler = handler
        self.eventID = eventID
        self.reason = reason
        self.ranAt = ranAt
    }
}

/// A forced rerun that found no handler by that name, or no recorded skip of that handler
/// for that event.
public struct HandlerRerunError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The handler the command named.
    public var handler: String
    /// The event the command named.
    public var eventID: UUID
    /// What is missing.
    public var problem: String

    public init(handler: String, eventID: UUID, problem: String) {
        self.handler = handler
        self.eventID = eventID
        self.problem = problem
    }

    public var description: String { "Cannot rerun \(handler) for event \(eventID): \(problem)." }
}
