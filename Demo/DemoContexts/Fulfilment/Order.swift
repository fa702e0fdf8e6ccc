public import EventSourcery

/// The order aggregate: placed, then paid and completed, or cancelled.
public struct Order: Aggregate {
    public static let category = "order"
    public let id: String
    public private(set) var state = DemoContext.OrderState.none
    public var uncommittedEvents: [any Event] = []

    public init(id: String) { self.id = id }

    public mutating func apply(_ event: any Event) {
        switch event {
        case is OrderPlaced: state = .placed
        case is OrderPaid: state = .paid
        case is OrderCancelled: state = .cancelled
        case is OrderCompleted: state = .completed
        default: break
        }
    }

    /// Records an outcome. An outcome the order already has changes nothing; one that
    /// contradicts it (paying a cancelled order, cancelling a paid one) is refused.
    public mutating func settle(_ outcome: SettleOrder.Outcome) throws(DemoRefusal) {
        switch (outcome, state) {
        case (.paid(let paymentID), .placed):
            record(OrderPaid(orderID: id, paymentID: paymentID))
        case (.completed(let paymentID, let number), .placed):
            record(OrderPaid(orderID: id, paymentID: paymentID))
            record(OrderCompleted(orderID: id, invoiceNumber: number))
        case (.completed(_, let number), .paid):
            record(OrderCompleted(orderID: id, invoiceNumber: number))
        case (.cancelled(let reason), .placed):
            record(OrderCancelled(orderID: id, reason: reason))
        case (.paid, .paid), (.paid, .completed), (.completed, .completed), (.cancelled, .cancelled):
            return
        case (_, .none):
            throw DemoRefusal("order \(id) does not exist")
        default:
            throw DemoRefusal("order \(id) is \(state.rawValue); it cannot become \(outcome)")
        }
    }
}
