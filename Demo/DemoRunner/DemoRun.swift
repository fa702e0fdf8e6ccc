import EventSourceryRabbitMQ
import DemoContexts
import EventSourcery
import EventSourceryAMQP
import EventSourceryServices
import FlowTrace
import Foundation
import Logging

/// One run of the demo: start the services, place the orders, watch them settle, report.
struct DemoRun: Sendable {
    /// The command-line choices of the run.
    struct Parameters: Sendable {
        var config: String
        var orders: Int
        var rate: Int
        var port: Int
        var settleTimeout: Int
        /// How long the payment services are paused (SIGSTOP) once a third of the orders are placed.
        var pausePayment: Duration?
        /// The broker's operating-system processes, whose CPU time the summary shows.
        var brokerPIDs: [Int32] = []
    }

    let command: Parameters
    let settings: DemoCommand.Settings
    let services: ServiceProcesses

    private var contexts: [String] { DemoCommand.contexts }

    /// The order API the run starts.
    private var client: OrderClient { OrderClient(baseURL: "http://127.0.0.1:\(command.port)") }

    /// The demo's own broker connection logs problems only; the services log to their files.
    private static let quietLogger: Logger = {
        var logger = Logger(label: "demo.amqp")
        logger.logLevel = .warning
        return logger
    }()

    /// Runs the demo; returns whether every check of the summary holds.
    func run() async throws -> Bool {
        print(
            "EventSourcery demo: \(command.orders) orders at \(command.rate)/s, the order context's fulfilment coordinating payment and invoice with commands, over the broker at \(settings.broker.host):\(settings.broker.port)"
        )
        print(
            "Payment deadline: \(settings.paymentTimeout)" + (command.pausePayment.map { "; the payment services pause for \($0)" } ?? ""))
        print("Run folder: \(settings.runDirectory.path) (service logs in logs/)")
        let broker = AMQPConnection(configuration: settings.broker, logger: Self.quietLogger)
        do {
            try await broker.connect()
        } catch {
            throw DemoError("cannot reach the broker at \(settings.broker.host):\(settings.broker.port): \(error)")
        }
        do {
            let passed = try await run(broker: broker)
            await broker.close()
            return passed
        } catch {
            await broker.close()
            throw error
        }
    }

    /// Starts the services, places the orders, watches them settle and reports, with the
    /// run's stores open (closed again at the end).
    private func run(broker: AMQPConnection) async throws -> Bool {
        try await startServices(broker: broker)
        var opened: [String: EventStore] = [:]
        for context in contexts {
            let storage = try await StorageLocation(settings.stores[context]!, origin: .option("--run-directory"), entry: nil).open()
            opened[context] = EventStore(storage: storage, registry: EventRegistry(DemoContext.eventTypes))
        }
        let stores = opened
        return try await StoreService.withRunning(stores.values.map(\.storage)) {
            try await settle(stores: stores, broker: broker)
        }
    }

    /// Places the orders, watches them settle and reports.
    private func settle(stores: [String: EventStore], broker: AMQPConnection) async throws -> Bool {
        let plan = OrderPlan(count: command.orders, declineAbove: DemoContext.defaultDeclineAbove)
        let measured = await measuredProcesses()
        let cpuBefore = ProcessCPU(measured)
        let started = ContinuousClock.now
        let board = try await withThrowingTaskGroup(of: FlowBoard?.self) { group in
            group.addTask {
                try await place(plan); return nil
            }
            if let pause = command.pausePayment {
                group.addTask {
                    try await pausePayment(for: pause, after: plan.orders.count / 3, stores: stores); return nil
                }
            }
            group.addTask { try await watch(plan: plan, stores: stores, broker: broker) }
            defer { group.cancelAll() }
            while let result = try await group.next() {
                if let board = result { return board }
            }
            throw DemoError("the progress watch ended without a result")
        }
        print("")
        let elapsed = ContinuousClock.now - started
        let cpu = ProcessCPU(measured).used(since: cpuBefore, processes: measured)
        if !board.timedOut.isEmpty { try await waitForLateAnswers(board.timedOut, stores: stores) }
        return try await report(plan: plan, board: board, elapsed: elapsed, cpu: cpu, stores: stores, broker: broker)
    }

    /// The services, the broker and this process (the load generator and progress board).
    private func measuredProcesses() async -> [ProcessCPU.Process] {
        await services.processIDs().map { ProcessCPU.Process(name: $0.name, pid: $0.pid) }
            + command.brokerPIDs.map { ProcessCPU.Process(name: command.brokerPIDs.count == 1 ? "broker" : "broker \($0)", pid: $0) }
            + [ProcessCPU.Process(name: "eventsourcery-demo (orders, progress)", pid: getpid())]
    }

    // MARK: Services

    private func startServices(broker: AMQPConnection) async throws {
        // The context services declare the topology; publishing before it exists would park events.
        let (contextServices, others) = (
            settings.services.filter { $0.product == "demo-service" },
            settings.services.filter { $0.product != "demo-service" }
        )
        for service in contextServices { try await start(service) }
        // A waiting single-active consumer does not count: one consumer per queue is the sign.
        try await waitUntil("the consumers subscribed to their inbox and command queues", timeout: .seconds(60)) {
            for queue in Array(settings.inboxQueues.values.joined()) + settings.commandQueues {
                guard let state = try? await broker.queueState(queue), state.consumerCount > 0 else { return false }
            }
            return true
        }
        for service in others { try await start(service) }
        try await waitUntil("the order API answered /health on 127.0.0.1:\(command.port)", timeout: .seconds(60)) {
            await client.isHealthy()
        }
        print("Started: \(settings.services.map(\.name).joined(separator: ", ")); the order API on http://127.0.0.1:\(command.port)")
    }

    /// Starts a service with the run's configuration, its context's store (the order API
    /// serves the order store) and the broker of the run.
    private func start(_ service: DemoCommand.Service) async throws {
        var arguments = service.arguments + ["--config", command.config]
        if let context = service.context {
            arguments += ["--store", settings.stores[context]!]
        } else {
            arguments += ["--store", settings.stores["order"]!, "--port", "\(command.port)"]
        }
        if let port = service.httpPort { arguments += ["--http-port", "\(port)"] }
        try await services.start(
            service.name, product: service.product, arguments: arguments, environment: [:])
    }

    private func waitUntil(_ what: String, timeout: Duration, _ condition: () async throws -> Bool) async throws {
        let deadline = ContinuousClock.now + timeout
        while try await !condition() {
            try await services.checkAlive()
            guard ContinuousClock.now < deadline else { throw DemoError("timed out waiting until \(what)") }
            try await Task.sleep(for: .milliseconds(100))
        }
    }

    // MARK: The payment pause

    /// Once `placed` orders are in the order store, pauses the payment services for `pause`
    /// (SIGSTOP, then SIGCONT): they neither answer commands nor relay events meanwhile.
    private func pausePayment(for pause: Duration, after placed: Int, stores: [String: EventStore]) async throws {
        var board = FlowBoard()
        while board.placedAt.count < placed {
            try await Task.sleep(for: .milliseconds(20))
            try await board.update(from: stores["order"]!)
        }
        let payment = Set(settings.services.filter { $0.context == "payment" }.map(\.name))
        print("Pausing the payment services for \(pause) (\(payment.sorted().joined(separator: ", ")))")
        await services.signal(SIGSTOP, to: payment)
        try? await Task.sleep(for: pause)
        await services.signal(SIGCONT, to: payment)
        print("The payment services go on")
    }

    /// Waits until payment answered every order the deadline cancelled, and each late success
    /// was refunded (the documented rule), so the summary sees the whole story.
    private func waitForLateAnswers(_ orders: Set<String>, stores: [String: EventStore]) async throws {
        let payment = stores["payment"]!
        try await waitUntil("payment answered the \(orders.count) timed-out orders late", timeout: .seconds(command.settleTimeout)) {
            for order in orders {
                let events = try await payment.load(StreamID(category: Payment.category, id: order)).map(\.event)
                let charged = events.contains { $0 is PaymentSucceeded }
                guard charged ? events.contains(where: { $0 is PaymentRefunded }) : events.contains(where: { $0 is PaymentFailed }) else {
                    return false
                }
            }
            return true
        }
    }

    // MARK: Orders

    /// Places the plan's orders at the configured rate, up to 16 requests at a time.
    private func place(_ plan: OrderPlan) async throws {
        let start = ContinuousClock.now
        let interval = Duration.seconds(1) / command.rate
        try await withThrowingTaskGroup(of: Void.self) { group in
            for (index, order) in plan.orders.enumerated() {
                if index >= 16 { try await group.next() }
                try await Task.sleep(until: start + interval * index)
                group.addTask { try await client.placeOrder(id: order.id, amount: order.amount) }
            }
            try await group.waitForAll()
        }
    }

    /// Shows progress until every order settled; throws when a service dies or the orders
    /// do not settle in time.
    private func watch(plan: OrderPlan, stores: [String: EventStore], broker: AMQPConnection) async throws -> FlowBoard {
        var board = FlowBoard()
        let deadline = ContinuousClock.now + .seconds(command.settleTimeout)
        let interactive = isatty(STDOUT_FILENO) == 1
        var lastLine = ContinuousClock.now - .seconds(10)
        // Messages in flight take a query per store and per queue: counted once a second at most.
        var inFlight = (count: 0, at: ContinuousClock.now - .seconds(10))
        while true {
            try await board.update(from: stores["order"]!)
            let settled = board.settledCount == plan.orders.count
            if settled || interactive || ContinuousClock.now - lastLine >= .seconds(2) {
                if ContinuousClock.now - inFlight.at >= .seconds(1) || settled {
                    inFlight = (try await eventsInFlight(stores: stores, broker: broker), ContinuousClock.now)
                }
                let line = String(
                    format: "placed %d/%d · paid %d · completed %d · cancelled %d (timed out %d) · messages in flight %d",
                    board.placedAt.count, plan.orders.count, board.paid.count, board.completed.count, board.cancelled.count,
                    board.timedOut.count, inFlight.count
                )
                if interactive {
                    print("\r\(line)   ", terminator: "")
                    fflush(nil)
                } else {
                    print(line)
                }
                lastLine = ContinuousClock.now
            }
            if settled { return board }
            try await services.checkAlive()
            guard ContinuousClock.now < deadline else {
                throw DemoError(
                    "\(plan.orders.count - board.settledCount) orders did not settle within \(command.settleTimeout) s (see the logs in \(settings.logs.path))"
                )
            }
            try await Task.sleep(for: .milliseconds(250))
        }
    }

    /// Events and commands written but not yet consumed: pending outbox entries plus messages
    /// waiting in the inbox and command queues.
    private func eventsInFlight(stores: [String: EventStore], broker: AMQPConnection) async throws -> Int {
        var total = 0
        for context in contexts {
            total += try await stores[context]!.storage.outboxCounts().pending
            for queue in settings.inboxQueues[context] ?? [] {
                total += Int((try? await broker.queueState(queue).messageCount) ?? 0)
            }
        }
        for queue in settings.commandQueues {
            total += Int((try? await broker.queueState(queue).messageCount) ?? 0)
        }
        return total
    }

    // MARK: Summary

    private func report(
        plan: OrderPlan, board: FlowBoard, elapsed: Duration, cpu: [(process: ProcessCPU.Process, seconds: Double)],
        stores: [String: EventStore], broker: AMQPConnection
    ) async throws -> Bool {
        var counts: [String: [String: Int]] = [:]
        var invoiceNumbers: [Int] = []
        var parked = 0
        var parkedCommands = 0
        var published = (events: 0, commands: 0)
        var fired = 0
        var refunded: [String: Int] = [:]
        var failures = 0
        var deadLetters = 0
        var parkedSequences = 0
        var hops = FlowHops()
        for context in contexts {
            let store = stores[context]!
            var position: Int64 = 0
            while true {
                let events = try await store.readAll(after: position, limit: 1000)
                guard let last = events.last else { break }
                for stored in events {
                    counts[context, default: [:]][stored.envelope.typeName, default: 0] += 1
                    hops.record(
                        stored.envelope.typeName, correlationID: stored.envelope.metadata.correlationID,
                        createdAt: stored.envelope.createdAt)
                    switch stored.event {
                    case let invoice as InvoiceIssued: invoiceNumbers.append(invoice.invoiceNumber)
                    case let refund as PaymentRefunded: refunded[refund.orderID, default: 0] += 1
                    case let deadline as DeadlineChanged where deadline.change == .fired: fired += 1
                    default: break
                    }
                }
                position = last.position
            }
            let outbox = try await store.storage.outboxCounts()
            parked += outbox.parked
            published.events += outbox.published
            let sent = try await store.storage.commandOutboxEntries(in: [.sent], limit: Int(Int32.max))
            published.commands += sent.count
            for entry in sent {
                hops.record(entry.command.typeName, correlationID: entry.command.metadata.correlationID, createdAt: entry.command.createdAt)
            }
            parkedCommands += try await store.storage.commandOutboxEntries(in: [.parked], limit: 10_000).count
            failures += Int(try await store.streamVersion(HandlerFailed.stream(for: context)))
            deadLetters += Int(try await broker.queueState(ContextTopology.deadLetterQueue(for: context)).messageCount)
            parkedSequences += try await ContextAdmin.parkedSequences(context: context, store: store).count
        }
        func count(_ context: String, _ type: String) -> Int { counts[context]?[type] ?? 0 }

        let declined = plan.declined
        let timedOut = board.timedOut
        let latencies = board.latencies
        print(
            """

            Summary (\(plan.orders.count) orders in \(String(format: "%.1f", elapsed.seconds)) s)
              outcome      orders
              completed    \(pad(board.completed.count))
              cancelled    \(pad(board.cancelled.count))   (amount above \(plan.declineAbove): \(declined.count), payment timed out: \(timedOut.count))
              paid         \(pad(board.paid.count))
              refunded     \(pad(refunded.count))   (late successful charges of timed-out orders)
            """)
        print("  events per context")
        for context in contexts {
            let line = (counts[context] ?? [:]).sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
            print("    \(context.padding(toLength: 8, withPad: " ", startingAt: 0)) \(line)")
        }
        print(
            "  flow latency, OrderPlaced → OrderCompleted/OrderCancelled (timed-out orders aside): p50 \(latencies.percentile(0.5).milliseconds), p95 \(latencies.percentile(0.95).milliseconds), p99 \(latencies.percentile(0.99).milliseconds), max \(latencies.percentile(1).milliseconds)"
        )
        printHops(hops)
        printCPU(cpu, settled: board.settledCount, elapsed: elapsed, published: published)
        print(
            "  dead letters \(deadLetters) · parked sequences \(parkedSequences) · parked outbox entries \(parked) · parked commands \(parkedCommands) · refused commands \(count("order", "CommandRejected") + count("payment", "CommandRejected") + count("invoice", "CommandRejected")) · recorded handler failures \(failures) (retried)"
        )
        let all = Set(plan.orders.map(\.id))
        let lateSuccesses = timedOut.subtracting(declined)

        var checks: [(String, Bool)] = [
            ("every order settled", board.settledCount == plan.orders.count),
            ("every order settled once (one outcome event each)", board.outcomeEvents == board.settledCount),
            (
                "cancelled = orders above the payment limit" + (command.pausePayment == nil ? "" : " + orders whose payment timed out"),
                Set(board.cancelled.keys) == declined.union(timedOut)
            ),
            ("completed = the other orders", Set(board.completed.keys) == all.subtracting(declined).subtracting(timedOut)),
            (
                "payments: succeeded = completed + refunded, failed = above the limit",
                count("payment", "PaymentSucceeded") == board.completed.count + refunded.count
                    && count("payment", "PaymentFailed") == declined.count
            ),
            (
                "invoices = completed orders, numbered 1…n without gaps",
                invoiceNumbers.sorted() == Array(1..<(invoiceNumbers.count + 1)) && invoiceNumbers.count == board.completed.count
            ),
            ("each payment deadline fired at most once: fired = timed-out orders", fired == timedOut.count),
            (
                "late answers: each late successful charge refunded exactly once, nothing else refunded",
                Set(refunded.keys) == lateSuccesses && refunded.values.allSatisfy { $0 == 1 }
            ),
            ("dead letters = 0", deadLetters == 0),
            ("parked sequences = 0", parkedSequences == 0),
            ("parked outbox entries = 0, parked commands = 0", parked == 0 && parkedCommands == 0),
        ]
        if command.pausePayment != nil {
            checks.insert(("the payment pause timed orders out (cancelled by the deadline)", !timedOut.isEmpty), at: 2)
        } else {
            checks.insert(("no payment timed out", timedOut.isEmpty), at: 2)
        }
        if settings.replicas > 1 {
            checks.append(("every partition consumed by one replica at a time", await reportPartitionHolders()))
        }
        print("  checks")
        for (name, holds) in checks { print("    \(holds ? "✓" : "✗") \(name)") }

        // With a pause, the timeline of a timed-out order whose late charge was refunded.
        if let order = lateSuccesses.min() ?? board.completed.keys.min() ?? board.cancelled.keys.min() {
            try await printTimeline(of: order, stores: stores)
        }
        return checks.allSatisfy(\.1)
    }

    /// Prints each broker crossing's p50 and p99 over the completed orders.
    private func printHops(_ hops: FlowHops) {
        let durations = hops.durations
        print(
            "  flow hops of the completed orders (\(durations.first?.durations.count ?? 0)), creation of the cause → creation of the effect"
        )
        for (index, hop) in durations.enumerated() {
            let name = "\(index + 1) \(hop.hop.cause) → \(hop.hop.effect)".padding(toLength: 40, withPad: " ", startingAt: 0)
            print(
                "    \(name) p50 \(hop.durations.percentile(0.5).milliseconds.leftPadded(10)), p99 \(hop.durations.percentile(0.99).milliseconds.leftPadded(10))   (\(hop.hop.path))"
            )
        }
    }

    /// Prints each measured process's CPU time per settled order while the orders were placed
    /// and settled, and the total.
    private func printCPU(
        _ cpu: [(process: ProcessCPU.Process, seconds: Double)], settled: Int, elapsed: Duration, published: (events: Int, commands: Int)
    ) {
        guard !cpu.isEmpty, settled > 0 else {
            print("  CPU per settled order: not measured (no /proc)")
            return
        }
        let total = cpu.map(\.seconds).reduce(0, +)
        print(
            "  CPU per settled order (user + system, /proc/<pid>/stat): \(String(format: "%.2f ms", total * 1000 / Double(settled))) in all, \(String(format: "%.0f %%", total / elapsed.seconds * 100)) of one core over the run"
                + (command.brokerPIDs.isEmpty ? " (broker not measured: no --broker-pid)" : ""))
        for (process, seconds) in cpu {
            print(
                "    \(process.name.padding(toLength: 40, withPad: " ", startingAt: 0)) \(String(format: "%.2f ms", seconds * 1000 / Double(settled)).leftPadded(10))  \(String(format: "%4.1f %%", total > 0 ? seconds / total * 100 : 0))"
            )
        }
        // The broker's cost per message, to read against `eventsourcery-bench broker` (its cost
        // per quorum-queue message at each batch size).
        let messages = published.events + published.commands
        let broker = cpu.filter { command.brokerPIDs.contains($0.process.pid) }.map(\.seconds).reduce(0, +)
        guard messages > 0 else { return }
        print(
            "  messages published per settled order: \(String(format: "%.2f", Double(messages) / Double(settled))) (events \(published.events), commands \(published.commands))"
                + (command.brokerPIDs.isEmpty ? "" : String(format: "; broker CPU per message %.0f µs", broker / Double(messages) * 1e6)))
    }

    /// Prints which replica held which partitions; returns whether no partition had deliveries
    /// at more than one replica (nothing handed a partition over in this run).
    private func reportPartitionHolders() async -> Bool {
        let holders = await PartitionHolders.scrape(settings.services)
        print("  partitions held (deliveries each replica received, from its /metrics)")
        for context in contexts {
            let replicas = settings.services.filter { $0.product == "demo-service" && $0.context == context }.map(\.name)
            for line in holders.lines(for: replicas) { print("    \(line)") }
        }
        return settings.inboxQueues.values.joined().allSatisfy { holders.holders(of: $0).count <= 1 }
    }

    private func printTimeline(of order: String, stores: [String: EventStore]) async throws {
        let trace = try await FlowTrace.trace(orderID: order, in: contexts.map { (context: $0, storage: stores[$0]!.storage) })
        print("\nThe timeline of order \(order) across the contexts:")
        print(trace.renderText())
        let file = settings.runDirectory.appendingPathComponent("trace-\(order).html")
        try Data(trace.renderHTML().utf8).write(to: file)
        print("Sequence diagram: \(file.path)")
    }

    private func pad(_ value: Int) -> String {
        "\(value)".leftPadded(6)
    }
}

extension String {
    /// The text right-aligned in `width` characters.
    fileprivate func leftPadded(_ width: Int) -> String {
        String(repeating: " ", count: max(0, width - count)) + self
    }
}
