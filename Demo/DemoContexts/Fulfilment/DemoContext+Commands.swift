public import EventSourcery
public import EventSourceryAMQP
import Foundation

/// The demo rebuilt on commands: the ``Fulfilment`` process manager in the order context
/// coordinates; payment and invoice answer commands instead of following the order's events.
///
/// Wiring, per context process: the order context runs ``fulfilmentHandler(_:)`` in its
/// `ContextConsumer` (subscribed to `order.OrderPlaced`, `payment.PaymentSucceeded`,
/// `payment.PaymentFailed`, `invoice.InvoiceIssued`) and a `CommandConsumer` with
/// ``commandHandlers(context:store:options:paymentTimeout:contexts:)``; payment and invoice run
/// only a `CommandConsumer`. Each context's topology accepts commands, and the order context
/// lists `payment` and `invoice` as command targets.
extension DemoContext {
    /// The command types the coordinated flow sends.
    public static let commandTypes: [any Command.Type] = [
        ChargePayment.self, RefundPayment.self, IssueInvoice.self, SettleOrder.self, DeadlineDue.self,
    ]

    /// The subscriptions of the order context's fulfilment handler.
    public static func fulfilmentSubscriptions(_ contexts: FulfilmentContexts = .demo) -> [EventSubscription] {
        [
            EventSubscription(source: contexts.order, type: OrderPlaced.typeName),
            EventSubscription(source: contexts.payment, type: PaymentSucceeded.typeName),
            EventSubscription(source: contexts.payment, type: PaymentFailed.typeName),
            EventSubscription(source: contexts.invoice, type: InvoiceIssued.typeName),
        ]
    }

    /// The fulfilment process manager over the order context's store.
    public static func fulfilment(
        store: EventStore, paymentTimeout: Duration = defaultPaymentTimeout, contexts: FulfilmentContexts = .demo
    ) -> ProcessManagerRunner<Fulfilment> {
        ProcessManagerRunner(Fulfilment(paymentTimeout: paymentTimeout, contexts: contexts), store: store, context: contexts.order)
    }

    /// The order context's event handler `fulfilment`, feeding the process manager.
    public static func fulfilmentHandler(_ runner: ProcessManagerRunner<Fulfilment>) -> EventHandler {
        runner.eventHandler(name: "fulfilment", subscriptions: fulfilmentSubscriptions(runner.processManager.contexts))
    }

    /// The command handlers of `context` (the order, payment or invoice context of `contexts`);
    /// none for another name.
    public static func commandHandlers(
        context: String, store: EventStore, options: CommandOptions = CommandOptions(), paymentTimeout: Duration = defaultPaymentTimeout,
        contexts: FulfilmentContexts = .demo
    ) -> [CommandHandler] {
        switch context {
        case contexts.order:
            let orders = Repository<Order>(store: store, saveMode: options.publishOrderOutcomes ? .publish : .append)
            return [
                CommandHandler(SettleOrder.self) { command, received, batch in
                    try await orders.update(command.orderID, metadata: received.envelope.causedMetadata, in: &batch) {
                        try $0.settle(command.outcome)
                    }
                },
                fulfilment(store: store, paymentTimeout: paymentTimeout, contexts: contexts).deadlineHandler,
            ]
        case contexts.payment:
            // Charges are published for the fulfilment flow; refunds only recorded: no context binds them.
            let payments = Repository<Payment>(store: store, saveMode: .publish)
            let refunds = Repository<Payment>(store: store, saveMode: .append)
            let gatewayDownFile = options.gatewayDownFile
            return [
                CommandHandler.aggregate(ChargePayment.self, Payment.self, repository: payments, id: \.orderID) { command, payment in
                    if let gatewayDownFile, FileManager.default.fileExists(atPath: gatewayDownFile) {
                        throw PaymentGatewayUnavailable(orderID: command.orderID)
                    }
                    payment.charge(amount: command.amount, declineAbove: options.declineAbove)
                },
                CommandHandler.aggregate(RefundPayment.self, Payment.self, repository: refunds, id: \.orderID) { command, payment in
                    try payment.refund(reason: command.reason)
                },
            ]
        case contexts.invoice:
            return [
                CommandHandler(IssueInvoice.self) { command, received, batch in
                    try await issueInvoice(
                        orderID: command.orderID, paymentID: command.paymentID, amount: command.amount,
                        metadata: received.envelope.causedMetadata, store: store, in: &batch)
                }
            ]
        default:
            return []
        }
    }
}
