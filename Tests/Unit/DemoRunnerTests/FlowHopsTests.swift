import Foundation
import Testing

@testable import DemoRunner

@Suite("The demo's hop breakdown")
struct FlowHopsTests {
    private let start = Date(timeIntervalSince1970: 1_000_000)

    private func at(_ milliseconds: Double) -> Date { start.addingTimeInterval(milliseconds / 1000) }

    @Test("six hops of a completed order; the second SettleOrder ends hop 5, flows without all six are left out")
    func completedFlow() {
        var hops = FlowHops()
        let flow = UUID()
        // Recorded out of order, as the contexts' stores are read one after the other.
        hops.record("OrderCompleted", correlationID: flow, createdAt: at(120))
        hops.record("OrderPlaced", correlationID: flow, createdAt: at(0))
        hops.record("ChargePayment", correlationID: flow, createdAt: at(10))
        hops.record("SettleOrder", correlationID: flow, createdAt: at(35))  // the order paid, before the invoice
        hops.record("PaymentSucceeded", correlationID: flow, createdAt: at(30))
        hops.record("FulfilmentAdvanced", correlationID: flow, createdAt: at(31))  // not a hop
        hops.record("IssueInvoice", correlationID: flow, createdAt: at(35))
        hops.record("InvoiceIssued", correlationID: flow, createdAt: at(60))
        hops.record("SettleOrder", correlationID: flow, createdAt: at(100))
        // A cancelled order: no invoice, so no complete chain.
        let cancelled = UUID()
        hops.record("OrderPlaced", correlationID: cancelled, createdAt: at(0))
        hops.record("ChargePayment", correlationID: cancelled, createdAt: at(5))
        hops.record("OrderPlaced", correlationID: nil, createdAt: at(0))

        let durations = hops.durations
        #expect(
            durations.map(\.hop.effect) == [
                "ChargePayment", "PaymentSucceeded", "IssueInvoice", "InvoiceIssued", "SettleOrder", "OrderCompleted",
            ])
        #expect(durations.allSatisfy { $0.durations.count == 1 })
        let milliseconds = durations.map { (($0.durations[0] / .milliseconds(1)) * 10).rounded() / 10 }
        #expect(milliseconds == [10, 20, 5, 25, 40, 20])
    }
}
