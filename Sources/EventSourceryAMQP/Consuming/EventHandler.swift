public import EventSourcery

/// Code that reacts to events of other contexts, run exactly once per event by a
/// ``ContextConsumer``.
///
/// The handler adds its writes to the batch (``WriteBatch/append(_:to:expectedVersion:)``,
/// or ``WriteBatch/publish(_:to:expectedVersion:)`` to hand events on through the outbox);
/// they commit in one transaction with the inbox entry `<context>.<name>`. A handler that
/// throws writes nothing; its error is recorded as a ``HandlerFailed`` event and the message
/// is retried.
///
/// ```swift
/// let issueInvoice = EventHandler(
///     name: "issue-invoice",
///     subscriptions: [EventSubscription(source: "payment", type: "PaymentSucceeded")]
/// ) { input, batch in
///     guard let payment = input.as(PaymentSucceeded.self) else { return }
///     try batch.publish([input.caused(InvoiceIssued(orderID: payment.orderID))],
///                       to: StreamID(category: "invoice", id: payment.orderID), expectedVersion: .noStream)
/// }
/// ```
public struct EventHandler: Sendable {
    /// The writes of one handler run.
    public typealias Body = @Sendable (HandlerInput, inout WriteBatch) async throws -> Void

    /// The handler's name; the inbox consumer name is `<context>.<name>`.
    public var name: String
    /// The events it handles.
    public var subscriptions: [EventSubscription]
    /// Conditions that must all hold for it to run.
    public var conditions: [HandlerCondition]
    /// The handler's code.
    public var handle: Body

    /// Creates a handler.
    public init(name: String, subscriptions: [EventSubscription], conditions: [HandlerCondition] = [], handle: @escaping Body) {
        self.name = name
        self.subscriptions = subscriptions
        self.conditions = conditions
        self.handle = handle
    }

    /// Whether the handler subscribes to `type` from `source`.
    public func handles(source: String, type: String) -> Bool {
        subscriptions.contains { $0.source == source && $0.type == type }
    }
}
