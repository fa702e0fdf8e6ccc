/// The names of the three contexts the fulfilment flow coordinates (the demo's by default;
/// tests on a shared broker use names of their own).
public struct FulfilmentContexts: Sendable, Hashable {
    public var order: String
    public var payment: String
    public var invoice: String

    public init(order: String = "order", payment: String = "payment", invoice: String = "invoice") {
        self.order = order
        self.payment = payment
        self.invoice = invoice
    }

    /// `order`, `payment`, `invoice`.
    public static let demo = FulfilmentContexts()
}
