import DemoContexts
import EventSourcery
import EventSourceryTesting
import Foundation
import Testing

/// The coordinated demo flow's decisions, Given/When/Then: the order and payment aggregates
/// and the fulfilment process manager with its payment timeout.
struct DemoFulfilmentTests {
    // MARK: Order

    @Test func aPlacedOrderIsPaidThenCompleted() {
        AggregateScenario(Order.self, id: "42").given(OrderPlaced(orderID: "42", amount: 10))
            .when { try $0.settle(.paid(paymentID: "pay-42")) }
            .then(OrderPaid(orderID: "42", paymentID: "pay-42"))
        AggregateScenario(Order.self, id: "42").given(OrderPlaced(orderID: "42", amount: 10), OrderPaid(orderID: "42", paymentID: "pay-42"))
            .when { try $0.settle(.completed(paymentID: "pay-42", invoiceNumber: 7)) }
            .then(OrderCompleted(orderID: "42", invoiceNumber: 7))
    }

    @Test func anInvoiceThatOvertookThePaymentPaysAndCompletes() {
        AggregateScenario(Order.self, id: "42").given(OrderPlaced(orderID: "42", amount: 10))
            .when { try $0.settle(.completed(paymentID: "pay-42", invoiceNumber: 7)) }
            .then(OrderPaid(orderID: "42", paymentID: "pay-42"), OrderCompleted(orderID: "42", invoiceNumber: 7))
    }

    @Test func aRepeatedOutcomeChangesNothingAndAContradictionIsRefused() {
        AggregateScenario(Order.self, id: "42").given(OrderPlaced(orderID: "42", amount: 10), OrderCancelled(orderID: "42", reason: "x"))
            .when { try $0.settle(.cancelled(reason: "again")) }
            .then()
        AggregateScenario(Order.self, id: "42").given(OrderPlaced(orderID: "42", amount: 10), OrderCancelled(orderID: "42", reason: "x"))
            .when { try $0.settle(.paid(paymentID: "pay-42")) }
            .thenError(DemoRefusal("order 42 is cancelled; it cannot become paid(paymentID: \"pay-42\")"))
    }

    // MARK: Payment

    @Test func aChargeSucceedsOnceOrIsDeclined() {
        AggregateScenario(Payment.self, id: "42").when { $0.charge(amount: 10, declineAbove: 100) }
            .then(PaymentSucceeded(orderID: "42", paymentID: "pay-42", amount: 10))
        AggregateScenario(Payment.self, id: "42").when { $0.charge(amount: 101, declineAbove: 100) }
            .then(PaymentFailed(orderID: "42", amount: 101, reason: "declined: amount 101 above 100"))
        AggregateScenario(Payment.self, id: "42").given(PaymentSucceeded(orderID: "42", paymentID: "pay-42", amount: 10))
            .when { $0.charge(amount: 10, declineAbove: 100) }
            .then()
    }

    @Test func aSuccessfulChargeIsRefundedOnceAndNothingElseIs() {
        let charged = AggregateScenario(Payment.self, id: "42").given(PaymentSucceeded(orderID: "42", paymentID: "pay-42", amount: 10))
        charged.when { try $0.refund(reason: "late") }
            .then(PaymentRefunded(orderID: "42", paymentID: "pay-42", amount: 10, reason: "late"))
        charged.given(PaymentRefunded(orderID: "42", paymentID: "pay-42", amount: 10, reason: "late"))
            .when { try $0.refund(reason: "again") }
            .then()
        AggregateScenario(Payment.self, id: "42").given(PaymentFailed(orderID: "42", amount: 0, reason: "declined"))
            .when { try $0.refund(reason: "late") }
            .thenError(DemoRefusal("payment 42 has no successful charge to refund"))
    }

    // MARK: Fulfilment

    private let scenario = ProcessManagerScenario(Fulfilment(paymentTimeout: .seconds(5)))
    private let placed = OrderPlaced(orderID: "42", amount: 10)
    private let paid = PaymentSucceeded(orderID: "42", paymentID: "pay-42", amount: 10)

    @Test func placingAnOrderChargesThePaymentAndStartsTheTimeout() {
        scenario.when(placed)
            .then(
                commands: [.init(ChargePayment(orderID: "42", amount: 10), to: "payment")],
                events: [FulfilmentAdvanced(orderID: "42", stage: .charging)],
                scheduled: [.init(name: "payment-timeout", after: .seconds(5))])
    }

    @Test func aPaymentCancelsTheTimeoutPaysTheOrderAndAsksForTheInvoice() {
        scenario.given(placed).when(paid)
            .then(
                commands: [
                    .init(SettleOrder(orderID: "42", outcome: .paid(paymentID: "pay-42")), to: "order"),
                    .init(IssueInvoice(orderID: "42", paymentID: "pay-42", amount: 10), to: "invoice"),
                ],
                events: [FulfilmentAdvanced(orderID: "42", stage: .invoicing)], cancelled: ["payment-timeout"])
    }

    @Test func theInvoiceCompletesTheOrder() {
        scenario.given(placed, paid).when(InvoiceIssued(orderID: "42", paymentID: "pay-42", invoiceNumber: 3, amount: 10))
            .then(
                commands: [.init(SettleOrder(orderID: "42", outcome: .completed(paymentID: "pay-42", invoiceNumber: 3)), to: "order")],
                events: [FulfilmentAdvanced(orderID: "42", stage: .completed)])
    }

    @Test func aDeclinedPaymentCancelsTheOrder() {
        scenario.given(placed).when(PaymentFailed(orderID: "42", amount: 10, reason: "declined"))
            .then(
                commands: [.init(SettleOrder(orderID: "42", outcome: .cancelled(reason: "declined")), to: "order")],
                events: [FulfilmentAdvanced(orderID: "42", stage: .cancelled)], cancelled: ["payment-timeout"])
    }

    @Test func theTimeoutCancelsTheOrderOnce() {
        let timedOut = scenario.given(placed).at(scenario.time.addingTimeInterval(5))
        timedOut.whenDeadline("payment-timeout")
            .then(
                commands: [.init(SettleOrder(orderID: "42", outcome: .cancelled(reason: "payment timed out")), to: "order")],
                events: [FulfilmentAdvanced(orderID: "42", stage: .cancelled)])
        withKnownIssue("the deadline fired: it is no longer live") {
            _ = timedOut.givenDeadline("payment-timeout").whenDeadline("payment-timeout")
        }
    }

    @Test func aPaymentThatAnswersAfterTheTimeoutIsRefunded() {
        scenario.given(placed).givenDeadline("payment-timeout").when(paid)
            .then(
                commands: [.init(RefundPayment(orderID: "42", reason: "order cancelled: payment timed out"), to: "payment")],
                events: [FulfilmentAdvanced(orderID: "42", stage: .refunding)])
        scenario.given(placed).givenDeadline("payment-timeout").when(PaymentFailed(orderID: "42", amount: 10, reason: "late"))
            .then()
    }

    @Test func theTimeoutAfterThePaymentNoLongerFires() {
        let answered = scenario.given(placed, paid)
        withKnownIssue("the payment cancelled it") {
            _ = answered.whenDeadline("payment-timeout")
        }
        #expect(answered.state == FulfilmentAdvanced(orderID: "42", stage: .invoicing))
    }
}
