public import EventSourcery

/// The payment aggregate of one order: charged once (no double payment), refunded at most once.
public struct Payment: Aggregate {
    public static let category = "payment"
    public let id: String
    /// The successful charge, if any.
    public private(set) var succeeded: PaymentSucceeded?
    public private(set) var isCharged = false
    public private(set) var isRefunded = false
    public var uncommittedEvents: [any Event] = []

    public init(id: String) { self.id = id }

    public mutating func apply(_ event: any Event) {
        switch event {
        case let success as PaymentSucceeded:
            isCharged = true
            succeeded = success
        case is PaymentFailed: isCharged = true
        case is PaymentRefunded: isRefunded = true
        default: break
        }
    }

    /// Charges `amount` through the simulated gateway (``DemoContext/charge(_:declineAbove:)``);
    /// a payment already charged changes nothing.
    public mutating func charge(amount: Int, declineAbove: Int) {
        guard !isCharged else { return }
        switch DemoContext.charge(OrderPlaced(orderID: id, amount: amount), declineAbove: declineAbove) {
        case let success as PaymentSucceeded: record(success)
        case let failure as PaymentFailed: record(failure)
        default: return
        }
    }

    /// Refunds a successful charge once; refuses when nothing was charged.
    public mutating func refund(reason: String) throws(DemoRefusal) {
        guard !isRefunded else { return }
        guard let succeeded else { throw DemoRefusal("payment \(id) has no successful charge to refund") }
        record(PaymentRefunded(orderID: id, paymentID: succeeded.paymentID, amount: succeeded.amount, reason: reason))
    }
}
