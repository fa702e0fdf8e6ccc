/// Coordinates one flow across contexts: it reacts to events (of any context) and to its
/// own deadlines, and answers with commands, events of its own and deadlines.
///
/// A process manager is pure: ``react(to:in:)`` decides from the input and the flow's state,
/// and ``apply(_:to:)`` evolves the state from the flow's own events. The state is
/// event-sourced: each flow has a stream `<category>-<flow id>` holding the events the
/// process manager recorded (and the library's ``DeadlineChanged`` bookkeeping).
/// ``ProcessManagerRunner`` loads the flow, runs the decision and stages everything —
/// events, commands, deadlines — in one batch, committed exactly once per input with the
/// inbox entry.
///
/// ```swift
/// struct Fulfilment: ProcessManager {
///     static let category = "fulfilment"
///     var paymentTimeout: Duration = .seconds(5)
///     var initialState: FulfilmentState { .new }
///
///     func flowID(for event: EventEnvelope) -> String? {
///         (event.as(OrderPlaced.self)?.orderID) ?? (event.as(PaymentSucceeded.self)?.orderID)
///     }
///
///     func react(to input: ProcessInput, in state: FulfilmentState) -> ProcessReaction {
///         var reaction = ProcessReaction()
///         if case .event(let envelope) = input, let placed = envelope.as(OrderPlaced.self), state == .new {
///             reaction.record(ChargeRequested(orderID: placed.orderID))
///             reaction.send(ChargePayment(orderID: placed.orderID, amount: placed.amount), to: "payment")
///             reaction.schedule("payment-timeout", after: .seconds(5))
///         }
///         return reaction
///     }
///
///     func apply(_ event: any Event, to state: inout FulfilmentState) {
///         if event is ChargeRequested { state = .charging }
///     }
/// }
/// ```
public protocol ProcessManager: Sendable {
    /// The flow's state, rebuilt from the flow's own events.
    associatedtype State: Sendable

    /// The stream category of flows: flow `42` lives in stream `<category>-42`.
    static var category: String { get }

    /// The state of a flow before any of its events.
    var initialState: State { get }

    /// The flow `event` belongs to, or `nil` when the process manager ignores it.
    func flowID(for event: EventEnvelope) -> String?

    /// Decides what to do for one input, given the flow's state. Must be pure: the same input
    /// and state give the same reaction.
    func react(to input: ProcessInput, in state: State) -> ProcessReaction

    /// Changes the state for one of the flow's own events. Must not fail: events are facts.
    func apply(_ event: any Event, to state: inout State)
}
