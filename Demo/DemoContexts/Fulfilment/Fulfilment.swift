public import EventSourcery

/// The order-fulfilment process manager of the order context, one flow per order
/// (`fulfilment-<order>`): it coordinates payment and invoice with commands, so neither of
/// them knows the order context's events.
///
/// - `OrderPlaced` → `ChargePayment` to `payment`, deadline `payment-timeout` after
///   ``paymentTimeout``.
/// - `PaymentSucceeded` → cancels the deadline, `SettleOrder(.paid)` to `order`,
///   `IssueInvoice` to `invoice`; `InvoiceIssued` → `SettleOrder(.completed)`.
/// - `PaymentFailed` → cancels the deadline, `SettleOrder(.cancelled)` with the reason.
/// - `payment-timeout` → `SettleOrder(.cancelled("payment timed out"))`.
/// - **A late answer** (after the timeout cancelled the order): a `PaymentSucceeded` is
///   refunded (`RefundPayment` to `payment`); a `PaymentFailed` changes nothing.
public struct Fulfilment: ProcessManager {
    public static let category = "fulfilment"
    /// The deadline's name.
    public static let paymentTimeoutName = "payment-timeout"
    /// The reason an order cancelled by the timeout carries.
    public static let timeoutReason = "payment timed out"

    /// How long the flow waits for the payment's answer.
    public var paymentTimeout: Duration
    /// The contexts the commands go to.
    public var contexts: FulfilmentContexts

    public init(paymentTimeout: Duration = .seconds(5), contexts: FulfilmentContexts = .demo) {
        self.paymentTimeout = paymentTimeout
        self.contexts = contexts
    }

    /// The state is the flow's last stage (with its order id); `nil` before `OrderPlaced`.
    public var initialState: FulfilmentAdvanced? { nil }

    public func flowID(for event: EventEnvelope) -> String? {
        switch event.event {
        case let placed as OrderPlaced: placed.orderID
        case let success as PaymentSucceeded: success.orderID
        case let failure as PaymentFailed: failure.orderID
        case let invoice as InvoiceIssued: invoice.orderID
        default: nil
        }
    }

    public func react(to input: ProcessInput, in last: FulfilmentAdvanced?) -> ProcessReaction {
        var reaction = ProcessReaction()
        guard let last else {
            guard let placed = input.event(OrderPlaced.self) else { return reaction }
            reaction.record(FulfilmentAdvanced(orderID: placed.orderID, stage: .charging))
            reaction.send(ChargePayment(orderID: placed.orderID, amount: placed.amount), to: contexts.payment)
            reaction.schedule(Self.paymentTimeoutName, after: paymentTimeout)
            return reaction
        }
        let orderID = last.orderID
        switch last.stage {
        case .charging:
            if let success = input.event(PaymentSucceeded.self) {
                reaction.cancel(Self.paymentTimeoutName)
                reaction.record(FulfilmentAdvanced(orderID: orderID, stage: .invoicing))
                reaction.send(SettleOrder(orderID: orderID, outcome: .paid(paymentID: success.paymentID)), to: contexts.order)
                reaction.send(IssueInvoice(orderID: orderID, paymentID: success.paymentID, amount: success.amount), to: contexts.invoice)
            } else if let failure = input.event(PaymentFailed.self) {
                reaction.cancel(Self.paymentTimeoutName)
                reaction.record(FulfilmentAdvanced(orderID: orderID, stage: .cancelled))
                reaction.send(SettleOrder(orderID: orderID, outcome: .cancelled(reason: failure.reason)), to: contexts.order)
            } else if input.isDeadline(Self.paymentTimeoutName) {
                reaction.record(FulfilmentAdvanced(orderID: orderID, stage: .cancelled))
                reaction.send(SettleOrder(orderID: orderID, outcome: .cancelled(reason: Self.timeoutReason)), to: contexts.order)
            }
        case .invoicing:
            guard let invoice = input.event(InvoiceIssued.self) else { break }
            reaction.record(FulfilmentAdvanced(orderID: orderID, stage: .completed))
            reaction.send(
                SettleOrder(orderID: orderID, outcome: .completed(paymentID: invoice.paymentID, invoiceNumber: invoice.invoiceNumber)),
                to: contexts.order)
        case .cancelled:
            // A late success after the timeout: the money is given back.
            guard input.event(PaymentSucceeded.self) != nil else { break }
            reaction.record(FulfilmentAdvanced(orderID: orderID, stage: .refunding))
            reaction.send(RefundPayment(orderID: orderID, reason: "order cancelled: \(Self.timeoutReason)"), to: contexts.payment)
        case .completed, .refunding:
            break
        }
        return reaction
    }

    public func apply(_ event: any Event, to last: inout FulfilmentAdvanced?) {
        if let advanced = event as? FulfilmentAdvanced { last = advanced }
    }
}
