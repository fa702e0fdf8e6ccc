import DemoContexts
import EventSourceryRabbitMQ
import TestSupport
import EventSourcery
import EventSourceryAMQP
import EventSourcerySQLite
import Foundation
import Testing

/// The demo's domain on commands, in one process over the broker: the fulfilment process
/// manager coordinates payment and invoice through their command queues, and its payment
/// timeout cancels an order whose payment does not answer (a late success is refunded).
@Suite(.timeLimit(.minutes(2)), .requiresBroker)
struct CoordinatedFlowTests {
    /// Three contexts with names of their own, their stores, consumers and relays.
    final class Demo: Sendable {
        let contexts: FulfilmentContexts
        let directory: URL
        let storages: [String: SQLiteEventStorage]
        let consumers: AMQPConnection
        let relays: AMQPConnection
        let paymentTimeout: Duration

        init(paymentTimeout: Duration) async throws {
            let suffix = UUID().uuidString.prefix(8).lowercased()
            contexts = FulfilmentContexts(order: "cforder-\(suffix)", payment: "cfpay-\(suffix)", invoice: "cfinv-\(suffix)")
            self.paymentTimeout = paymentTimeout
            directory = FileManager.default.temporaryDirectory.appendingPathComponent("flow-\(suffix)")
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            var storages: [String: SQLiteEventStorage] = [:]
            for context in [contexts.order, contexts.payment, contexts.invoice] {
                storages[context] = try SQLiteEventStorage(path: directory.appendingPathComponent("\(context).sqlite").path)
            }
            self.storages = storages
            consumers = try await TestBroker.connect()
            relays = try await TestBroker.connect()
            let subscriptions = DemoContext.fulfilmentSubscriptions(contexts)
            try await ContextTopology(
                ContextDescription(
                    name: contexts.order, handlers: ["fulfilment": subscriptions], acceptsCommands: true,
                    commandTargets: [contexts.payment, contexts.invoice])
            ).declare(on: consumers)
            for context in [contexts.payment, contexts.invoice] {
                try await ContextTopology(ContextDescription(name: context, acceptsCommands: true, commandTargets: [contexts.order]))
                    .declare(on: consumers)
            }
        }

        func store(_ context: String) -> EventStore {
            EventStore(storage: storages[context]!, registry: EventRegistry(DemoContext.eventTypes))
        }

        /// Starts the relays of every context, the order context's event consumer and the
        /// command consumers of `commandContexts`.
        func start(commandContexts: [String]) -> [Task<Void, any Error>] {
            var tasks: [Task<Void, any Error>] = []
            for context in [contexts.order, contexts.payment, contexts.invoice] {
                let relay = OutboxRelay(
                    storage: storages[context]!, publisher: AMQPPublisher(connection: relays),
                    configuration: OutboxRelay.Configuration(context: context, idlePollInterval: .milliseconds(50)),
                    logger: TestBroker.logger)
                tasks.append(Task { try await relay.run() })
            }
            let order = store(contexts.order)
            let events = ContextConsumer(
                connection: consumers, store: order,
                handlers: [
                    DemoContext.fulfilmentHandler(DemoContext.fulfilment(store: order, paymentTimeout: paymentTimeout, contexts: contexts))
                ],
                configuration: ContextConsumer.Configuration(context: contexts.order, prefetch: 50), logger: TestBroker.logger)
            tasks.append(Task { try await events.run() })
            tasks += commandContexts.map(startCommands)
            return tasks
        }

        func startCommands(_ context: String) -> Task<Void, any Error> {
            let consumer = CommandConsumer(
                context: context, store: store(context), connection: consumers,
                handlers: DemoContext.commandHandlers(
                    context: context, store: store(context), paymentTimeout: paymentTimeout, contexts: contexts),
                logger: TestBroker.logger)
            return Task { try await consumer.run() }
        }

        func orderState(_ id: String) async throws -> DemoContext.OrderState {
            try await DemoContext.orderState(id, in: store(contexts.order)).state
        }

        func tearDown() async {
            for context in [contexts.order, contexts.payment, contexts.invoice] {
                for queue in [
                    CommandMessage.queue(for: context), ContextTopology.inboxQueue(for: context),
                    ContextTopology.deadLetterQueue(for: context),
                ] {
                    _ = try? await consumers.deleteQueue(queue)
                }
                for exchange in [
                    CommandMessage.exchange(for: context), EventMessage.exchange(for: context),
                    ContextTopology.deadLetterExchange(for: context),
                ] {
                    try? await consumers.deleteExchange(exchange)
                }
            }
            await consumers.close()
            await relays.close()
            try? FileManager.default.removeItem(at: directory)
        }
    }

    @Test func ordersAreCompletedOrCancelledThroughCommands() async throws {
        let demo = try await Demo(paymentTimeout: .seconds(30))
        defer { Task { await demo.tearDown() } }
        let tasks = demo.start(commandContexts: [demo.contexts.order, demo.contexts.payment, demo.contexts.invoice])
        defer { for task in tasks { task.cancel() } }
        let order = demo.store(demo.contexts.order)
        for index in 1...5 { try await DemoContext.placeOrder("\(index)", amount: index * 10, in: order) }
        try await DemoContext.placeOrder("declined", amount: 5000, in: order)
        try await waitUntil(timeout: .seconds(30)) {
            for index in 1...5 where try await demo.orderState("\(index)") != .completed { return false }
            return try await demo.orderState("declined") == .cancelled
        }
        let invoices = try await demo.store(demo.contexts.invoice).load(DemoContext.invoiceCounterStream)
        #expect(invoices.count == 5, "one invoice per paid order, numbered without gaps")
        let cancelled = try await order.load("order-declined").compactMap { $0.envelope.as(OrderCancelled.self) }
        #expect(cancelled == [OrderCancelled(orderID: "declined", reason: "declined: amount 5000 above 1000")])
        let flow = try await order.load("fulfilment-1")
        #expect(
            flow.compactMap { $0.envelope.as(FulfilmentAdvanced.self)?.stage } == [.charging, .invoicing, .completed])
        #expect(flow.compactMap { $0.envelope.as(DeadlineChanged.self)?.change } == [.scheduled, .cancelled])
        let payment = try await demo.store(demo.contexts.payment).load("payment-1")
        #expect(
            payment.first?.envelope.metadata.correlationID == flow.first?.envelope.metadata.correlationID, "one flow, one correlation id")
    }

    @Test func aPaymentThatDoesNotAnswerInTimeCancelsTheOrderOnceAndIsRefundedLater() async throws {
        let demo = try await Demo(paymentTimeout: .seconds(1))
        defer { Task { await demo.tearDown() } }
        var tasks = demo.start(commandContexts: [demo.contexts.order, demo.contexts.invoice])
        defer { for task in tasks { task.cancel() } }
        let order = demo.store(demo.contexts.order)
        let placed = try await DemoContext.placeOrder("late", amount: 10, in: order)
        try await waitUntil(timeout: .seconds(20)) { try await demo.orderState("late") == .cancelled }
        let cancelledAt = try #require(try await order.load("order-late").last?.envelope.createdAt)
        #expect(cancelledAt.timeIntervalSince(placed.createdAt) >= 1, "not before the timeout")
        let cancelled = try await order.load("order-late").compactMap { $0.envelope.as(OrderCancelled.self) }
        #expect(cancelled == [OrderCancelled(orderID: "late", reason: Fulfilment.timeoutReason)])

        // The payment consumer comes back: the charge succeeds late and is refunded.
        tasks.append(demo.startCommands(demo.contexts.payment))
        let payments = demo.store(demo.contexts.payment)
        try await waitUntil(timeout: .seconds(20)) { try await payments.load("payment-late").count == 2 }
        #expect(try await payments.load("payment-late").map(\.envelope.typeName) == ["PaymentSucceeded", "PaymentRefunded"])
        #expect(try await demo.orderState("late") == .cancelled, "the late answer does not revive the order")
        let flow = try await order.load("fulfilment-late")
        #expect(flow.compactMap { $0.envelope.as(FulfilmentAdvanced.self)?.stage } == [.charging, .cancelled, .refunding])
        #expect(flow.compactMap { $0.envelope.as(DeadlineChanged.self)?.change } == [.scheduled, .fired], "the timeout fired once")
    }
}
