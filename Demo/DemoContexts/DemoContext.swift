public import EventSourcery
import Foundation
import EventSourceryAMQP
public import EventSourceryServices

/// The demo contexts `order`, `payment` and `invoice`, minimal versions of issue 5's flow.
///
/// - `order`: ``placeOrder(_:amount:in:)`` publishes `OrderPlaced`; on `PaymentSucceeded`
///   → `OrderPaid`, on `PaymentFailed` → `OrderCancelled`, on `InvoiceIssued` →
///   `OrderCompleted` (with `OrderPaid` first if the invoice overtook the payment).
/// - `payment`: on `OrderPlaced` charges a deterministic simulated gateway that declines
///   amounts above ``defaultDeclineAbove`` and amounts of zero or less → `PaymentSucceeded`
///   or `PaymentFailed` with the reason; the
///   stream `payment-<order>` is written once (no double payment for one order).
/// - `invoice`: on `PaymentSucceeded` → `InvoiceIssued` numbered by the aggregate
///   `invoice-counter` in the same transaction (gapless per store); the stream
///   `invoice-<payment>` is written once (no second invoice for one payment).
///
/// Handlers append with `publish`, so the context's outbox relays the events on (the order
/// outcomes only with `publishOrderOutcomes`), and with the consumed event as cause.
public enum DemoContext {
    /// Amounts above this are declined by the simulated gateway.
    public static let defaultDeclineAbove = 1000

    /// Every demo event type (each demo store registers them all).
    public static let eventTypes: [any Event.Type] = [
        OrderPlaced.self, OrderPaid.self, OrderCancelled.self, OrderCompleted.self,
        PaymentSucceeded.self, PaymentFailed.self, InvoiceIssued.self, InvoiceNumberAssigned.self,
        HandlerFailed.self, HandlerSkipped.self, HandlerRerun.self, PaymentRefunded.self, FulfilmentAdvanced.self,
        CommandRejected.self, DeadlineChanged.self,
    ]

    /// The demo modules: `order`, `payment` (declining above `declineAbove`) and `invoice`.
    ///
    /// - Parameters:
    ///   - publishOrderOutcomes: Whether `OrderPaid`, `OrderCancelled` and
    ///     `OrderCompleted` also go to the order outbox. No demo context subscribes to them, and
    ///     the relay parks messages the broker cannot route, so by default they are only
    ///     appended to the order's stream; turn this on once a consumer binds them.
    ///   - gatewayDownFile: While a file exists at this path, the simulated payment gateway is
    ///     down: `charge-order` throws ``PaymentGatewayUnavailable`` and the consumer retries.
    public static func handlers(
        declineAbove: Int = defaultDeclineAbove, publishOrderOutcomes: Bool = false, gatewayDownFile: String? = nil
    ) -> ContextHandlers {
        ContextHandlers([
            ContextModule(
                name: "order", eventTypes: eventTypes, makeHandlers: { orderHandlers(store: $0, publishes: publishOrderOutcomes) }),
            ContextModule(
                name: "payment", eventTypes: eventTypes,
                makeHandlers: { paymentHandlers(store: $0, declineAbove: declineAbove, gatewayDownFile: gatewayDownFile) }),
            ContextModule(name: "invoice", eventTypes: eventTypes, makeHandlers: { invoiceHandlers(store: $0) }),
        ])
    }

    // MARK: order

    /// The command that starts a flow: publishes `OrderPlaced` to `order-<id>`.
    @discardableResult
    public static func placeOrder(_ orderID: String, amount: Int, in store: EventStore) async throws -> EventEnvelope {
        let placed = EventEnvelope(OrderPlaced(orderID: orderID, amount: amount))
        try await store.publish([placed], to: StreamID(category: "order", id: orderID), expectedVersion: .noStream)
        return placed
    }

    /// The state of an order, folded from its stream.
    public enum OrderState: String, Sendable {
        case none, placed, paid, cancelled, completed
    }

    /// Loads an order's state and stream version.
    public static func orderState(_ orderID: String, in store: EventStore) async throws -> (state: OrderState, version: Int64) {
        var state = OrderState.none
        let events = try await store.load(StreamID(category: "order", id: orderID))
        for event in events {
            switch event.event {
            case is OrderPlaced: state = .placed
            case is OrderPaid: state = .paid
            case is OrderCancelled: state = .cancelled
            case is OrderCompleted: state = .completed
            default: break
            }
        }
        return (state, events.last?.streamVersion ?? 0)
    }

    static func orderHandlers(store: EventStore, publishes: Bool) -> [EventHandler] {
        @Sendable func write(_ events: [EventEnvelope], orderID: String, version: Int64, to batch: inout WriteBatch) throws {
            let stream = try StreamID(category: "order", id: orderID)
            if publishes {
                try batch.publish(events, to: stream, expectedVersion: .exact(version))
            } else {
                try batch.append(events, to: stream, expectedVersion: .exact(version))
            }
        }
        return [
            EventHandler(name: "mark-paid", subscriptions: [EventSubscription(source: "payment", type: "PaymentSucceeded")]) {
                input, batch in
                guard let payment = input.as(PaymentSucceeded.self) else { return }
                let (state, version) = try await orderState(payment.orderID, in: store)
                guard state == .placed else { return }
                try write(
                    [input.caused(OrderPaid(orderID: payment.orderID, paymentID: payment.paymentID))], orderID: payment.orderID,
                    version: version, to: &batch)
            },
            EventHandler(name: "cancel-unpaid", subscriptions: [EventSubscription(source: "payment", type: "PaymentFailed")]) {
                input, batch in
                guard let payment = input.as(PaymentFailed.self) else { return }
                let (state, version) = try await orderState(payment.orderID, in: store)
                guard state == .placed else { return }
                try write(
                    [input.caused(OrderCancelled(orderID: payment.orderID, reason: payment.reason))], orderID: payment.orderID,
                    version: version, to: &batch)
            },
            EventHandler(name: "complete-invoiced", subscriptions: [EventSubscription(source: "invoice", type: "InvoiceIssued")]) {
                input, batch in
                guard let invoice = input.as(InvoiceIssued.self) else { return }
                let (state, version) = try await orderState(invoice.orderID, in: store)
                var events: [EventEnvelope] = []
                switch state {
                case .placed:  // the invoice overtook the payment: the payment succeeded.
                    events = [input.caused(OrderPaid(orderID: invoice.orderID, paymentID: invoice.paymentID))]
                    fallthrough
                case .paid:
                    events.append(input.caused(OrderCompleted(orderID: invoice.orderID, invoiceNumber: invoice.invoiceNumber)))
                case .none, .cancelled, .completed:
                    return
                }
                try write(events, orderID: invoice.orderID, version: version, to: &batch)
            },
        ]
    }

    // MARK: payment

    static func paymentHandlers(store: EventStore, declineAbove: Int, gatewayDownFile: String?) -> [EventHandler] {
        [
            EventHandler(name: "charge-order", subscriptions: [EventSubscription(source: "order", type: "OrderPlaced")]) { input, batch in
                guard let order = input.as(OrderPlaced.self) else { return }
                if let gatewayDownFile, FileManager.default.fileExists(atPath: gatewayDownFile) {
                    throw PaymentGatewayUnavailable(orderID: order.orderID)
                }
                let stream = try StreamID(category: "payment", id: order.orderID)
                // No double payment: the order's payment stream is written once.
                guard try await store.streamVersion(stream) == 0 else { return }
                try batch.publish([input.caused(charge(order, declineAbove: declineAbove))], to: stream, expectedVersion: .noStream)
            }
        ]
    }

    /// The simulated gateway's answer to an order's charge. An amount of zero or less is
    /// declined as a business outcome: the order API refuses such orders, but an
    /// `OrderPlaced` may come from any publisher on `order.events`.
    static func charge(_ order: OrderPlaced, declineAbove: Int) -> any Event {
        if order.amount <= 0 {
            return PaymentFailed(orderID: order.orderID, amount: order.amount, reason: "declined: amount \(order.amount) is not positive")
        }
        if order.amount > declineAbove {
            return PaymentFailed(
                orderID: order.orderID, amount: order.amount, reason: "declined: amount \(order.amount) above \(declineAbove)")
        }
        return PaymentSucceeded(orderID: order.orderID, paymentID: "pay-\(order.orderID)", amount: order.amount)
    }

    // MARK: invoice

    /// The stream of the invoice number counter aggregate.
    public static let invoiceCounterStream: StreamID = "invoice-counter"

    static func invoiceHandlers(store: EventStore) -> [EventHandler] {
        [
            EventHandler(name: "issue-invoice", subscriptions: [EventSubscription(source: "payment", type: "PaymentSucceeded")]) {
                input, batch in
                guard let payment = input.as(PaymentSucceeded.self) else { return }
                try await issueInvoice(
                    orderID: payment.orderID, paymentID: payment.paymentID, amount: payment.amount, metadata: input.causedMetadata,
                    store: store, in: &batch)
            }
        ]
    }

    /// Stages the invoice of a payment: `InvoiceNumberAssigned` on the counter and a published
    /// `InvoiceIssued` in `invoice-<payment>`; nothing when the payment has its invoice.
    static func issueInvoice(
        orderID: String, paymentID: String, amount: Int, metadata: EventMetadata, store: EventStore, in batch: inout WriteBatch
    ) async throws {
        let stream = try StreamID(category: "invoice", id: paymentID)
        // No second invoice for one payment.
        guard try await store.streamVersion(stream) == 0 else { return }
        // Gapless: the counter's next version is the number, committed with the invoice.
        let counter = try await store.streamVersion(invoiceCounterStream)
        let number = Int(counter) + 1
        try batch.append(
            [EventEnvelope(InvoiceNumberAssigned(invoiceNumber: number, paymentID: paymentID), metadata: metadata)],
            to: invoiceCounterStream, expectedVersion: .exact(counter))
        try batch.publish(
            [
                EventEnvelope(
                    InvoiceIssued(orderID: orderID, paymentID: paymentID, invoiceNumber: number, amount: amount), metadata: metadata)
            ],
            to: stream, expectedVersion: .noStream)
    }
}

/// The simulated payment gateway is down (see ``DemoContext/handlers(declineAbove:publishOrderOutcomes:gatewayDownFile:)``).
public struct PaymentGatewayUnavailable: Error, CustomStringConvertible {
    /// The order that could not be charged.
    public var orderID: String

    public var description: String { "the payment gateway is unavailable; order \(orderID) was not charged" }
}
