public import EventSourcery
import Foundation
import EventSourceryAMQP
public import EventSourceryServices

/// The demo contexts `order`, `payment` and `invoice`, coordinated by commands (issue 16).
///
/// - `order`: ``placeOrder(_:amount:in:)`` publishes `OrderPlaced`. The context hosts the
///   ``Fulfilment`` process manager (event handler `fulfilment`), which sends `ChargePayment`
///   to payment with the deadline `payment-timeout`, `IssueInvoice` to invoice once paid, and
///   `SettleOrder` to its own context, whose ``Order`` aggregate records `OrderPaid`,
///   `OrderCompleted` or `OrderCancelled`.
/// - `payment`: answers `ChargePayment` with its ``Payment`` aggregate: a deterministic
///   simulated gateway declines amounts above ``defaultDeclineAbove`` and amounts of zero or
///   less → `PaymentSucceeded` or `PaymentFailed` (published); the stream `payment-<order>`
///   is charged once. `RefundPayment` (a late success after the timeout) → `PaymentRefunded`.
/// - `invoice`: answers `IssueInvoice` → `InvoiceIssued` numbered by the counter stream
///   `invoice-counter` in the same transaction (gapless per store); the stream
///   `invoice-<payment>` is written once (no second invoice for one payment).
///
/// Neither payment nor invoice subscribes to another context's events.
public enum DemoContext {
    /// Amounts above this are declined by the simulated gateway.
    public static let defaultDeclineAbove = 1000

    /// The default of the deadline `payment-timeout` (`contexts.order.deadlines.payment-timeout`).
    public static let defaultPaymentTimeout = Duration.seconds(5)

    /// Every demo event type (each demo store registers them all).
    public static let eventTypes: [any Event.Type] = [
        OrderPlaced.self, OrderPaid.self, OrderCancelled.self, OrderCompleted.self,
        PaymentSucceeded.self, PaymentFailed.self, InvoiceIssued.self, InvoiceNumberAssigned.self,
        HandlerFailed.self, HandlerSkipped.self, HandlerRerun.self, PaymentRefunded.self, FulfilmentAdvanced.self,
        CommandRejected.self, DeadlineChanged.self,
    ]

    /// The demo modules: `order` (the fulfilment process manager and the order aggregate),
    /// `payment` (declining above `declineAbove`) and `invoice`.
    ///
    /// - Parameters:
    ///   - publishOrderOutcomes: Whether `OrderPaid`, `OrderCancelled` and
    ///     `OrderCompleted` also go to the order outbox. No demo context subscribes to them, and
    ///     the relay parks messages the broker cannot route, so by default they are only
    ///     appended to the order's stream; turn this on once a consumer binds them.
    ///   - gatewayDownFile: While a file exists at this path, the simulated payment gateway is
    ///     down: `ChargePayment` throws ``PaymentGatewayUnavailable`` and the command is requeued.
    ///   - fulfilmentDownFile: While a file exists at this path, the order context's `fulfilment`
    ///     handler fails with ``FulfilmentUnavailable``: the consumer retries the event with
    ///     backoff and holds the later events of its stream behind it.
    public static func handlers(
        declineAbove: Int = defaultDeclineAbove, publishOrderOutcomes: Bool = false, gatewayDownFile: String? = nil,
        fulfilmentDownFile: String? = nil, contexts: FulfilmentContexts = .demo
    ) -> ContextHandlers {
        let options = CommandOptions(
            declineAbove: declineAbove, publishOrderOutcomes: publishOrderOutcomes, gatewayDownFile: gatewayDownFile)
        return ContextHandlers(
            [contexts.order, contexts.payment, contexts.invoice].map { context in
                ContextModule(
                    name: context, eventTypes: eventTypes,
                    deadlines: context == contexts.order ? [Fulfilment.paymentTimeoutName: defaultPaymentTimeout] : [:],
                    commandHandlers: { resources in
                        commandHandlers(
                            context: context, store: resources.store, options: options,
                            paymentTimeout: resources.deadlines[Fulfilment.paymentTimeoutName] ?? defaultPaymentTimeout,
                            contexts: contexts)
                    },
                    eventHandlers: { resources in
                        guard context == contexts.order else { return [] }
                        let runner = fulfilment(
                            store: resources.store, paymentTimeout: resources.deadline(Fulfilment.paymentTimeoutName), contexts: contexts)
                        let handler = fulfilmentHandler(runner)
                        guard let fulfilmentDownFile else { return [handler] }
                        return [
                            EventHandler(name: handler.name, subscriptions: handler.subscriptions) { input, batch in
                                if FileManager.default.fileExists(atPath: fulfilmentDownFile) {
                                    throw FulfilmentUnavailable(eventType: input.envelope.typeName)
                                }
                                try await handler.handle(input, &batch)
                            }
                        ]
                    })
            })
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

    // MARK: payment

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

/// The simulated payment gateway is down (see ``DemoContext/handlers(declineAbove:publishOrderOutcomes:gatewayDownFile:fulfilmentDownFile:contexts:)``).
public struct PaymentGatewayUnavailable: Error, CustomStringConvertible {
    /// The order that could not be charged.
    public var orderID: String

    public var description: String { "the payment gateway is unavailable; order \(orderID) was not charged" }
}
