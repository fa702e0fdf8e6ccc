import EventSourcery

/// A named predicate a handler runs under (the seeds' `has_action(..., conditions=[...])`).
///
/// Conditions are evaluated in order, inside the handler's inbox transaction. When one is
/// false, the handler is skipped for that event: the consumer records a ``HandlerSkipped``
/// (handler, condition, event) in `skipped-<context>` with the inbox entry, so the decision is
/// visible and final for that event (a redelivery does not evaluate it again). An operator
/// lists skips with ``ContextAdmin/skippedHandlers(context:store:)`` and forces the handler to
/// run for one event with ``ContextConsumer/rerun(handler:eventID:reason:)``. A condition that throws counts as
/// a handler failure.
public struct HandlerCondition: Sendable {
    /// The name recorded as the reason when the handler is skipped.
    public var name: String
    /// Whether the handler should run.
    public var isSatisfied: @Sendable (HandlerInput) async throws -> Bool

    /// Creates a condition.
    public init(_ name: String, _ isSatisfied: @escaping @Sendable (HandlerInput) async throws -> Bool) {
        self.name = name
        self.isSatisfied = isSatisfied
    }
}
