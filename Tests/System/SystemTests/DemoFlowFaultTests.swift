import EventSourceryRabbitMQ
import TestSupport
import DemoContexts
import EventSourcery
import EventSourceryAMQP
import EventSourceryServices
import Foundation
import Testing

/// The coordinated demo flow as real processes (``DemoFlowProcesses``): the order context's
/// fulfilment process manager sends `ChargePayment` and `IssueInvoice`, payment and invoice
/// answer commands. Orders are placed directly into the order store.
///
/// The demo contexts use the fixed exchange names `order.events`, `payment.commands`, …, so the
/// suite runs on the broker's vhost `es-test` and, by its name, alone after the other suites
/// (`scripts/test` runs `*FaultTests` last, without parallelism).
@Suite(.serialized, .timeLimit(.minutes(4)), .requiresBroker)
struct DemoFlowFaultTests {
    static let declineAbove = DemoContext.defaultDeclineAbove

    static var vhostURL: String {
        var url = URLComponents(string: TestBroker.url)!
        url.path = "/es-test"
        return url.string!
    }

    /// The amount of order `index`: 1...1300, so about a quarter is declined.
    static func amount(_ index: Int) -> Int { (index * 37) % 1300 + 1 }

    private func place(_ indices: Range<Int>, in demo: DemoFlowProcesses) async throws -> [String: EventEnvelope] {
        var placed: [String: EventEnvelope] = [:]
        for index in indices {
            placed["o\(index)"] = try await DemoContext.placeOrder("o\(index)", amount: Self.amount(index), in: demo.store("order"))
        }
        return placed
    }

    private func expectCleanStop(_ demo: DemoFlowProcesses) async throws {
        try await waitUntil(timeout: .seconds(20)) { try await demo.queuedMessages() == 0 }
        for (name, result) in try await demo.stopAll() {
            #expect(result.status == 0, "\(name) exited with \(result.status): \(result.standardError.suffix(2000))")
        }
        #expect(try await demo.deadLetters() == 0, "nothing dead-lettered")
        #expect(try await demo.queuedMessages() == 0, "every inbox and command queue drained")
    }

    @Test func fiveHundredOrdersSettleThroughCommandsAcrossProcesses() async throws {
        let count = 500
        try await DemoFlowProcesses.with(name: "demo-flow-processes", paymentTimeout: 60) { demo in
            try demo.start(DemoFlowProcesses.contexts)
            let started = ContinuousClock.now
            let placed = try await place(0..<count, in: demo)
            var states: [String: DemoContext.OrderState] = [:]
            try await waitUntil(timeout: .seconds(150)) {
                states = try await demo.store("order").orderStates()
                return states.count == count && states.values.allSatisfy { $0 == .completed || $0 == .cancelled }
            }
            print("DemoFlowFaultTests: \(count) orders settled through commands after \(ContinuousClock.now - started)")
            try await expectCleanStop(demo)

            for index in 0..<count {
                #expect(states["o\(index)"] == (Self.amount(index) > Self.declineAbove ? .cancelled : .completed), "order o\(index)")
            }
            let completed = states.values.filter { $0 == .completed }.count
            let cancelled = states.values.filter { $0 == .cancelled }.count
            #expect(completed > 0 && cancelled > 0)
            let succeeded = try await demo.events(PaymentSucceeded.self, in: "payment")
            let failed = try await demo.events(PaymentFailed.self, in: "payment")
            let issued = try await demo.events(InvoiceIssued.self, in: "invoice")
            #expect(completed == succeeded.count && completed == issued.count)
            #expect(cancelled == failed.count)
            #expect(Set(succeeded.map(\.orderID)).count == succeeded.count, "one payment per order")
            #expect(Set(issued.map(\.paymentID)).count == issued.count, "one invoice per payment")
            #expect(issued.map(\.invoiceNumber).sorted() == Array(1...issued.count), "invoice numbers 1...n without gaps")
            let outcomes =
                try await demo.events(OrderCompleted.self, in: "order").count + demo.events(OrderCancelled.self, in: "order").count
            #expect(outcomes == count, "each order settled once")
            #expect(try await demo.firedDeadlines().isEmpty, "no payment timed out")
            #expect(try await demo.events(CommandRejected.self, in: "order").isEmpty)

            // Causation across events and commands: everything leads back to its OrderPlaced
            // and carries that order's correlation id.
            var causes: [UUID: (cause: UUID?, correlation: UUID?, isPlaced: Bool)] = [:]
            var all: [(id: UUID, name: String, correlation: UUID?)] = []
            for context in DemoFlowProcesses.contexts {
                for event in try await demo.events(context) {
                    let envelope = event.envelope
                    causes[envelope.id] = (envelope.metadata.causationID, envelope.metadata.correlationID, envelope.event is OrderPlaced)
                    all.append((envelope.id, envelope.typeName, envelope.metadata.correlationID))
                }
                for entry in try await demo.store(context).storage.commandOutboxEntries(in: [.sent, .cancelled], limit: 100_000) {
                    let command = entry.command
                    causes[command.id] = (command.metadata.causationID, command.metadata.correlationID, false)
                    all.append((command.id, command.typeName, command.metadata.correlationID))
                }
            }
            #expect(Set(placed.values.map(\.id)) == Set(causes.filter(\.value.isPlaced).keys))
            for item in all {
                var current = item.id
                var hops = 0
                while causes[current]?.isPlaced == false, hops < 12, let cause = causes[current]?.cause {
                    current = cause
                    hops += 1
                }
                #expect(causes[current]?.isPlaced == true, "\(item.name) \(item.id) leads back to an OrderPlaced")
                #expect(item.correlation == current, "\(item.name) \(item.id) correlates to its order's flow")
            }
        }
    }

    /// Checks the late answers of `orders`, all cancelled by the deadline: each cancelled once,
    /// its deadline fired once, each successful late charge refunded once, a late failure left alone.
    private func expectTimedOut(_ orders: [Int], in demo: DemoFlowProcesses) async throws {
        let ids = Set(orders.map { "o\($0)" })
        let charged = Set(orders.filter { Self.amount($0) <= Self.declineAbove }.map { "o\($0)" })
        try await waitUntil(timeout: .seconds(60)) {
            let refunded = try await demo.events(PaymentRefunded.self, in: "payment").map(\.orderID)
            let failed = try await demo.events(PaymentFailed.self, in: "payment").map(\.orderID)
            return Set(refunded) == charged && Set(failed) == ids.subtracting(charged)
        }
        try await expectCleanStop(demo)

        let cancelled = try await demo.events(OrderCancelled.self, in: "order")
        #expect(cancelled.count == ids.count, "each order cancelled exactly once")
        #expect(Set(cancelled.map(\.orderID)) == ids)
        #expect(cancelled.allSatisfy { $0.reason == Fulfilment.timeoutReason })
        #expect(try await demo.events(OrderPaid.self, in: "order").isEmpty, "a late answer does not revive an order")
        #expect(try await demo.events(OrderCompleted.self, in: "order").isEmpty)
        #expect(try await demo.firedDeadlines() == Dictionary(uniqueKeysWithValues: ids.map { ($0, 1) }), "each deadline fired once")
        let refunds = try await demo.events(PaymentRefunded.self, in: "payment").map(\.orderID)
        #expect(refunds.count == charged.count && Set(refunds) == charged, "each late successful charge refunded exactly once")
        #expect(try await demo.events(InvoiceIssued.self, in: "invoice").isEmpty, "no invoice for a cancelled order")
        for order in ids {
            let stages = try await demo.store("order").load(StreamID(category: Fulfilment.category, id: order))
                .compactMap { $0.envelope.as(FulfilmentAdvanced.self)?.stage }
            #expect(stages == (charged.contains(order) ? [.charging, .cancelled, .refunding] : [.charging, .cancelled]), "\(order)")
        }
    }

    @Test func aPaymentServiceStoppedPastTheDeadlineCancelsThoseOrdersOnceAndLateChargesAreRefunded() async throws {
        try await DemoFlowProcesses.with(name: "demo-flow-timeout", paymentTimeout: 2) { demo in
            try demo.start(["order", "invoice"])
            let orders = Array(0..<30)
            _ = try await place(0..<30, in: demo)
            try await waitUntil(timeout: .seconds(60)) { try await demo.events(OrderCancelled.self, in: "order").count == orders.count }
            // The payment service comes back after the deadline: it answers every charge late.
            try demo.start(["payment"])
            try await expectTimedOut(orders, in: demo)
        }
    }

    @Test func everyProcessKilledAndRestartedWhileDeadlinesArePendingFiresEachOnce() async throws {
        try await DemoFlowProcesses.with(name: "demo-flow-restart", paymentTimeout: 3) { demo in
            try demo.start(DemoFlowProcesses.contexts)
            demo.signal(SIGSTOP, ["payment"])  // running, but answering nothing
            let orders = Array(0..<30)
            _ = try await place(0..<30, in: demo)
            try await waitUntil(timeout: .seconds(60)) {
                try await DemoConfiguration.flowsStarted(demo.store("order")).count == orders.count
            }
            // Every process crashes with the deadlines pending in the order store's outbox.
            try await demo.kill(DemoFlowProcesses.contexts)
            try demo.start(["order", "invoice"])
            // The order context crashes again while its deadlines fire.
            try await waitUntil(timeout: .seconds(60)) { try await !demo.events(OrderCancelled.self, in: "order").isEmpty }
            try await demo.kill(["order"])
            try demo.start(["order"])
            try await waitUntil(timeout: .seconds(60)) { try await demo.events(OrderCancelled.self, in: "order").count >= orders.count }
            try demo.start(["payment"])
            try await expectTimedOut(orders, in: demo)
        }
    }
}
