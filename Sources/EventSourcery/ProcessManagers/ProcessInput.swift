public import Foundation

/// What a process manager reacts to: an event, or one of its deadlines coming due.
public enum ProcessInput: Sendable {
    /// An event of any context.
    case event(EventEnvelope)
    /// A deadline the flow scheduled came due and was not cancelled.
    case deadline(Deadline)

    /// The input's own time: the event's creation time, or the deadline's due time. An event
    /// read from the broker carries whole seconds (the AMQP `timestamp`), so schedule timeouts
    /// with ``ProcessReaction/schedule(_:after:)``, which counts from the decision.
    public var time: Date {
        switch self {
        case .event(let envelope): envelope.createdAt
        case .deadline(let deadline): deadline.dueAt
        }
    }

    /// The event as `E`, or `nil` when the input is a deadline or an event of another type.
    public func event<E: Event>(_ type: E.Type) -> E? {
        guard case .event(let envelope) = self else { return nil }
        return envelope.as(type)
    }

    /// Whether the input is the deadline named `name`.
    public func isDeadline(_ name: String) -> Bool {
        guard case .deadline(let deadline) = self else { return false }
        return deadline.name == name
    }
}
