@testable import DemoContexts
import EventSourcery
import Testing

/// The demo payment context's simulated gateway, without a store or broker.
struct DemoPaymentTests {
    @Test(arguments: [0, -1, -1000, Int.min])
    func aChargeOfZeroOrLessIsDeclinedWithAReason(_ amount: Int) throws {
        let outcome = DemoContext.charge(OrderPlaced(orderID: "00042", amount: amount), declineAbove: 1000)
        let failed = try #require(outcome as? PaymentFailed)
        #expect(failed == PaymentFailed(orderID: "00042", amount: amount, reason: "declined: amount \(amount) is not positive"))
    }

    @Test func anAmountAboveTheLimitIsDeclined() throws {
        let failed = try #require(DemoContext.charge(OrderPlaced(orderID: "00042", amount: 1001), declineAbove: 1000) as? PaymentFailed)
        #expect(failed.reason == "declined: amount 1001 above 1000")
    }

    @Test(arguments: [1, 999, 1000])
    func aPositiveAmountUpToTheLimitIsCharged(_ amount: Int) throws {
        let succeeded = try #require(
            DemoContext.charge(OrderPlaced(orderID: "00042", amount: amount), declineAbove: 1000) as? PaymentSucceeded)
        #expect(succeeded == PaymentSucceeded(orderID: "00042", paymentID: "pay-00042", amount: amount))
    }
}
