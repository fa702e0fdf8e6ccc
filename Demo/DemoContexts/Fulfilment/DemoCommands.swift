public import EventSourcery

// The commands of the coordinated demo flow: the fulfilment process manager in the order
// context sends them; payment, invoice and order answer them with their own events.

/// Charge an order's amount (to `payment`).
public struct ChargePayment: Command, Equatable {
    public var orderID: String
    public var amount: Int
    public init(orderID: String, amount: Int) {
        self.orderID = orderID
        self.amount = amount
    }
}

/// Refund an order's payment (to `payment`): the order was cancelled before the payment answered.
public struct RefundPayment: Command, Equatable {
    public var orderID: String
    public var reason: String
    public init(orderID: String, reason: String) {
        self.orderID = orderID
        self.reason = reason
    }
}

/// Issue the invoice of a payment (to `invoice`).
public struct IssueInvoice: Command, Equatable {
    public var orderID: String
    public var paymentID: String
    public var amount: Int
    public init(orderID: String, paymentID: String, amount: Int) {
        self.orderID = orderID
        self.paymentID = paymentID
        self.amount = amount
    }
}

/// Record an order's outcome (to `order`, from its own process manager).
public struct SettleOrder: Command, Equatable {
    /// The outcomes of an order.
    public enum Outcome: Codable, Sendable, Equatable {
        case paid(paymentID: String)
        case completed(paymentID: String, invoiceNumber: Int)
        case cancelled(reason: String)
    }

    public var orderID: String
    public var outcome: Outcome
    public init(orderID: String, outcome: Outcome) {
        self.orderID = orderID
        self.outcome = outcome
    }
}
