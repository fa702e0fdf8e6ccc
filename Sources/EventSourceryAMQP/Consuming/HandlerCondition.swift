import EventSourcery

/// A named predicate a handler runs under (the seeds' `has_action(..., conditions=[...])`).
///
/// Conditions are evaluated in order, inside the handler's inbox transaction. When one is
/// false, the handler is skipped for that event and the consumer logs the condition's
/// ``name`` as the reason; the inbox entry is still recorded, so the decision is final for
/// that event (a redelivery does not evaluate it again). A condition that throws counts as
/// a handler failure.
public struct HandlerCondition: Sendable {
    /// The name logged as the reason when the handler is skipped.
    public var name: String
    /// Whether the handler should run.
    public var isSatisfied: @Sendable (HandlerInput) async throws -> Bool

    /// Creates a condition.
    public init(_ name: String, _ isSatisfied: @escaping @Sendable (HandlerInput) async throws -> Bool) {
        self.name = name
        self.isSatisfied = isSatisfied
    }
}
