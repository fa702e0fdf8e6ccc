public import EventSourcery

// The events of the demo contexts. Each context's store registers its own events and
// those it consumes (``DemoContext/eventTypes``).

/// `order`: a customer placed an order.
public struct OrderPlaced: Event, Equatable {
    public var orderID: String
    public var amount: Int
    public init(orderID: String, amount: Int) {
        self.orderID = orderID
        self.amount = amount
    }
}

/// `order`: the order's payment succeeded.
public struct OrderPaid: Event, Equatable {
    public var orderID: String
    public var paymentID: String
    public init(orderID: String, paymentID: String) {
        self.orderID = orderID
        self.paymentID = paymentID
    }
}

/// `order`: the order was cancelled because its payment failed.
public struct OrderCancelled: Event, Equatable {
    public var orderID: String
    public var reason: String
    public init(orderID: String, reason: String) {
        self.orderID = orderID
        self.reason = reason
    }
}

/// `order`: the order was paid and invoiced.
public struct OrderCompleted: Event, Equatable {
    public var orderID: String
    public var invoiceNumber: Int
    public init(orderID: String, invoiceNumber: Int) {
        self.orderID = orderID
        self.invoiceNumber = invoiceNumber
    }
}

/// `payment`: the simulated gateway charged the order.
public struct PaymentSucceeded: Event, Equatable {
    public var orderID: String
    public var paymentID: String
    public var amount: Int
    public init(orderID: String, paymentID: String, amount: Int) {
        self.orderID = orderID
        self.paymentID = paymentID
        self.amount = amount
    }
}

/// `payment`: the simulated gateway declined the charge.
public struct PaymentFailed: Event, Equatable {
    public var orderID: String
    public var amount: Int
    public var reason: String
    public init(orderID: String, amount: Int, reason: String) {
        self.orderID = orderID
        self.amount = amount
        self.reason = reason
    }
}

/// `invoice`: an invoice with a gapless per-store number was issued for a payment.
public struct InvoiceIssued: Event, Equatable {
    public var orderID: String
    public var paymentID: String
    public var invoiceNumber: Int
    public var amount: Int
    public init(orderID: String, paymentID: String, invoiceNumber: Int, amount: Int) {
        self.orderID = orderID
        self.paymentID = paymentID
        self.invoiceNumber = invoiceNumber
        self.amount = amount
    }
}

/// `invoice`: the counter aggregate `invoice-counter` handed out a number.
public struct InvoiceNumberAssigned: Event, Equatable {
    public var invoiceNumber: Int
    public var paymentID: String
    public init(invoiceNumber: Int, paymentID: String) {
        self.invoiceNumber = invoiceNumber
        self.paymentID = paymentID
    }
}

/// A succeeded payment was refunded (the order was cancelled before the payment answered).
public struct PaymentRefunded: Event, Equatable {
    public var orderID: String
    public var paymentID: String
    public var amount: Int
    public var reason: String
    public init(orderID: String, paymentID: String, amount: Int, reason: String) {
        self.orderID = orderID
        self.paymentID = paymentID
        self.amount = amount
        self.reason = reason
    }
}

/// The order-fulfilment flow reached a stage (recorded in `fulfilment-<order>`).
public struct FulfilmentAdvanced: Event, Equatable {
    /// The stages of one order's fulfilment.
    public enum Stage: String, Codable, Sendable {
        /// `ChargePayment` sent; waiting for the payment's answer or the timeout.
        case charging
        /// Paid; `IssueInvoice` sent.
        case invoicing
        /// Invoiced; the order completes.
        case completed
        /// Declined or timed out; the order is cancelled.
        case cancelled
        /// A payment that succeeded after the cancellation is refunded.
        case refunding
    }

    public var orderID: String
    public var stage: Stage
    public init(orderID: String, stage: Stage) {
        self.orderID = orderID
        self.stage = stage
    }
}
