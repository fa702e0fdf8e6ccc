import EventSourceryRabbitMQ
import TestSupport
import DemoContexts
import EventSourcery
import EventSourceryAMQP
import EventSourcerySQLite
import EventSourceryServices
import Foundation
import Testing

/// The full demo flow as real processes: three `outbox-publisher`s and three
/// `demo-service --role consumer`s (one of each per context, each context with its own SQLite store)
/// settle 1,000 orders placed directly into the order store.
///
/// The demo contexts use the fixed exchange names `order.events`, `payment.events` and
/// `invoice.events`, so the suite runs on the broker's vhost `es-test` and, by its name,
/// alone after the other suites (`scripts/test` runs `*FaultTests` last, without parallelism).
@Suite(.serialized, .timeLimit(.minutes(4)), .requiresBroker)
struct DemoFlowFaultTests {
    static let contexts = ["order", "payment", "invoice"]
    static let orderCount = 1000
    static let declineAbove = DemoContext.defaultDeclineAbove

    static var vhostURL: String {
        var url = URLComponents(string: TestBroker.url)!
        url.path = "/es-test"
        return url.string!
    }

    private func configuration(directory: URL) -> String {
        DemoConfiguration.yaml(brokerURL: Self.vhostURL, directory: directory, consumer: ["prefetch: 100", "delivery_limit: 5"])
    }

    /// The amount of order `index`: 1...1300, so about a quarter is declined.
    static func amount(_ index: Int) -> Int { (index * 37) % 1300 + 1 }

    @Test func thousandOrdersSettleAcrossThreePublishersAndThreeConsumers() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("demo-flow-processes-\(UUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let configPath = directory.appendingPathComponent("eventsourcery.yaml").path
        try configuration(directory: directory).write(toFile: configPath, atomically: true, encoding: .utf8)
        let topologies = try ServiceConfiguration.load(path: configPath, environment: [:]).topologies

        // A clean vhost: the demo queues go, then the topology is declared before any
        // process starts, so the first OrderPlaced already finds payment.inbox bound.
        let connection = try await TestBroker.freshTopology(topologies, url: Self.vhostURL)

        var stores: [String: EventStore] = [:]
        var storages: [SQLiteEventStorage] = []
        for context in Self.contexts {
            let storage = try SQLiteEventStorage(path: directory.appendingPathComponent("\(context).sqlite").path)
            storages.append(storage)
            stores[context] = EventStore(storage: storage, registry: EventRegistry(DemoContext.eventTypes))
        }
        let order = try #require(stores["order"])
        let payment = try #require(stores["payment"])
        let invoice = try #require(stores["invoice"])

        let environment = ["AMQP_URL": Self.vhostURL, "LOG_LEVEL": "warning"]
        var processes: [(name: String, process: ChildProcess)] = []
        var stopped = false
        func stopAll() async throws -> [(name: String, result: ChildProcess.Result)] {
            stopped = true
            for entry in processes { entry.process.signal(SIGTERM) }
            var results: [(name: String, result: ChildProcess.Result)] = []
            for entry in processes { results.append((entry.name, try await entry.process.wait())) }
            return results
        }
        defer {
            if !stopped {
                for entry in processes { entry.process.signal(SIGKILL) }
                for entry in processes { _ = waitpid(entry.process.pid, nil, 0) }
            }
            for storage in storages { try? storage.close() }
            // The queues stay: the next suite's `freshTopology` purges them.
            Task { await connection.close() }
        }
        for context in Self.contexts {
            let arguments = ["--context", context, "--config", configPath]
            processes.append(
                (
                    "demo-service \(context)",
                    try ChildProcess.start(
                        BuiltProducts.path("demo-service"), arguments + ["--role", "consumer", "--decline-above", "\(Self.declineAbove)"],
                        environment: environment
                    )
                ))
            processes.append(
                (
                    "outbox-publisher \(context)",
                    try ChildProcess.start(
                        BuiltProducts.path("outbox-publisher"), arguments, environment: environment
                    )
                ))
        }

        let started = ContinuousClock.now
        var placed: [String: EventEnvelope] = [:]
        for index in 0..<Self.orderCount {
            placed["o\(index)"] = try await DemoContext.placeOrder("o\(index)", amount: Self.amount(index), in: order)
        }
        let placing = ContinuousClock.now - started

        let deadline = ContinuousClock.now + .seconds(120)
        var states: [String: DemoContext.OrderState] = [:]
        func settled() -> Bool {
            states.count == Self.orderCount && states.values.allSatisfy { $0 == .completed || $0 == .cancelled }
        }
        while ContinuousClock.now < deadline {
            states = try await order.orderStates()
            if settled() { break }
            try await Task.sleep(for: .milliseconds(200))
        }
        let settling = ContinuousClock.now - started
        // Late PaymentSucceeded deliveries to order's inbox (after the invoice completed the
        // order) are no-ops; let the inboxes drain before stopping.
        let drainDeadline = ContinuousClock.now + .seconds(10)
        while ContinuousClock.now < drainDeadline {
            var pending = 0
            for queue in topologies.flatMap(\.inboxQueues) { pending += Int(try await connection.queueState(queue).messageCount) }
            if pending == 0 { break }
            try await Task.sleep(for: .milliseconds(100))
        }

        let results = try await stopAll()
        for (name, result) in results {
            #expect(result.status == 0, "\(name) exited with \(result.status): \(result.standardError.suffix(2000))")
        }

        // Every order completed or cancelled, as the gateway decided.
        #expect(settled(), "unsettled: \(states.filter { $0.value != .completed && $0.value != .cancelled }.prefix(10))")
        for index in 0..<Self.orderCount {
            let expected: DemoContext.OrderState = Self.amount(index) > Self.declineAbove ? .cancelled : .completed
            #expect(states["o\(index)"] == expected, "order o\(index) of \(Self.amount(index))")
        }
        let completedCount = states.values.filter { $0 == .completed }.count
        let cancelledCount = states.values.filter { $0 == .cancelled }.count
        #expect(completedCount > 0 && cancelledCount > 0)
        print(
            "DemoFlowFaultTests: \(Self.orderCount) orders placed in \(placing), settled after \(settling): \(completedCount) completed, \(cancelledCount) cancelled"
        )

        let orderEvents = try await order.allEvents()
        let paymentEvents = try await payment.allEvents()
        let invoiceEvents = try await invoice.allEvents()
        let succeeded = paymentEvents.compactMap { $0.envelope.as(PaymentSucceeded.self) }
        let failed = paymentEvents.compactMap { $0.envelope.as(PaymentFailed.self) }
        let issued = invoiceEvents.compactMap { $0.envelope.as(InvoiceIssued.self) }
        #expect(completedCount == issued.count)
        #expect(completedCount == succeeded.count)
        #expect(cancelledCount == failed.count)
        #expect(Set(succeeded.map(\.orderID)).count == succeeded.count, "one payment per order")
        #expect(Set(issued.map(\.paymentID)).count == issued.count, "one invoice per payment")
        #expect(issued.map(\.invoiceNumber).sorted() == (0..<issued.count).map { $0 + 1 }, "invoice numbers 1...n without gaps")

        // Causation: every demo event leads back through the stores to an OrderPlaced of the
        // order store, and carries that order's correlation id.
        let placedByID = Dictionary(
            uniqueKeysWithValues: orderEvents.filter { $0.event is OrderPlaced }.map { ($0.envelope.id, $0.envelope) })
        #expect(placedByID.count == Self.orderCount)
        #expect(Set(placedByID.keys) == Set(placed.values.map(\.id)))
        var byID: [UUID: EventEnvelope] = [:]
        for event in orderEvents + paymentEvents + invoiceEvents { byID[event.envelope.id] = event.envelope }
        for event in paymentEvents + invoiceEvents + orderEvents where !(event.event is OrderPlaced) && !(event.event is HandlerFailed) {
            var current = event.envelope
            var hops = 0
            while !(current.event is OrderPlaced), hops < 5, let cause = current.metadata.causationID.flatMap({ byID[$0] }) {
                current = cause
                hops += 1
            }
            guard let origin = placedByID[current.id] else {
                Issue.record("\(event.envelope.typeName) \(event.envelope.id) in \(event.streamID) does not lead back to an OrderPlaced")
                continue
            }
            #expect(
                event.envelope.metadata.correlationID == origin.id,
                "\(event.envelope.typeName) \(event.envelope.id) correlates to its order's flow")
        }

        // Nothing dead-lettered, nothing left behind.
        for topology in topologies {
            #expect(try await connection.queueState(topology.deadLetterQueue).messageCount == 0, "\(topology.deadLetterQueue)")
            for queue in topology.inboxQueues {
                #expect(try await connection.queueState(queue).messageCount == 0, "\(queue)")
            }
        }
    }
}
