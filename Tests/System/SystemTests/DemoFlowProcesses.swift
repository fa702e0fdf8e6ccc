import EventSourceryRabbitMQ
import TestSupport
import DemoContexts
import EventSourcery
import EventSourceryAMQP
import EventSourcerySQLite
import EventSourceryServices
import Foundation
import Testing

/// The demo's contexts as processes for the flow fault tests: per context a
/// `demo-service --role consumer` (its event and command consumers) and an `outbox-publisher`
/// (its events and commands), each context with a SQLite store in a folder of its own, on the
/// vhost `es-test` with the topology declared anew.
final class DemoFlowProcesses {
    static let contexts = ["order", "payment", "invoice"]

    let directory: URL
    let configPath: String
    let topologies: [ContextTopology]
    let connection: AMQPConnection
    let stores: [String: EventStore]
    private let storages: [SQLiteEventStorage]
    private var running: [(name: String, context: String, process: ChildProcess)] = []

    /// Writes the configuration (the deadline `payment-timeout` of `paymentTimeout` seconds),
    /// declares the topology and opens the stores; starts nothing.
    init(name: String, paymentTimeout: Double) async throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("\(name)-\(UUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        configPath = directory.appendingPathComponent("eventsourcery.yaml").path
        try DemoConfiguration.yaml(
            brokerURL: DemoFlowFaultTests.vhostURL, directory: directory, consumer: ["prefetch: 100", "delivery_limit: 5"],
            paymentTimeout: paymentTimeout
        ).write(toFile: configPath, atomically: true, encoding: .utf8)
        topologies = try ServiceConfiguration.load(path: configPath, environment: [:]).topologies
        connection = try await TestBroker.freshTopology(topologies, url: DemoFlowFaultTests.vhostURL)
        var stores: [String: EventStore] = [:]
        var storages: [SQLiteEventStorage] = []
        for context in Self.contexts {
            let storage = try SQLiteEventStorage(path: directory.appendingPathComponent("\(context).sqlite").path)
            storages.append(storage)
            stores[context] = EventStore(storage: storage, registry: EventRegistry(DemoContext.eventTypes))
        }
        self.stores = stores
        self.storages = storages
    }

    func store(_ context: String) -> EventStore { stores[context]! }

    /// Starts the consumer and the publisher of each of `contexts`.
    func start(_ contexts: [String]) throws {
        let environment = ["AMQP_URL": DemoFlowFaultTests.vhostURL, "LOG_LEVEL": "warning"]
        for context in contexts {
            let arguments = ["--context", context, "--config", configPath]
            running.append(
                (
                    "demo-service \(context)", context,
                    try ChildProcess.start(
                        BuiltProducts.path("demo-service"),
                        arguments + ["--role", "consumer", "--decline-above", "\(DemoFlowFaultTests.declineAbove)"],
                        environment: environment)
                ))
            running.append(
                (
                    "outbox-publisher \(context)", context,
                    try ChildProcess.start(BuiltProducts.path("outbox-publisher"), arguments, environment: environment)
                )
            )
        }
    }

    /// Sends `signal` to the processes of `contexts`.
    func signal(_ signal: Int32, _ contexts: [String]) {
        for entry in running where contexts.contains(entry.context) { entry.process.signal(signal) }
    }

    /// SIGKILLs the processes of `contexts` and waits for them.
    func kill(_ contexts: [String]) async throws {
        let killed = running.filter { contexts.contains($0.context) }
        running.removeAll { contexts.contains($0.context) }
        for entry in killed {
            entry.process.signal(SIGCONT)
            entry.process.signal(SIGKILL)
        }
        for entry in killed { _ = try await entry.process.wait() }
    }

    /// Stops every process with SIGTERM and returns how each exited.
    func stopAll() async throws -> [(name: String, result: ChildProcess.Result)] {
        let stopping = running
        running = []
        for entry in stopping { entry.process.signal(SIGTERM) }
        var results: [(name: String, result: ChildProcess.Result)] = []
        for entry in stopping { results.append((entry.name, try await entry.process.wait())) }
        return results
    }

    /// Runs `body` with a fresh demo flow (``init(name:paymentTimeout:)``), then tears it
    /// down, also when `body` throws.
    static func with(name: String, paymentTimeout: Double, _ body: (DemoFlowProcesses) async throws -> Void) async throws {
        let demo = try await DemoFlowProcesses(name: name, paymentTimeout: paymentTimeout)
        do {
            try await body(demo)
        } catch {
            await demo.tearDown()
            throw error
        }
        await demo.tearDown()
    }

    /// Kills what still runs, closes the stores and deletes the folder. The queues stay: the
    /// next suite's `freshTopology` purges them.
    func tearDown() async {
        for entry in running { entry.process.signal(SIGKILL) }
        for entry in running { _ = waitpid(entry.process.pid, nil, 0) }
        running = []
        for storage in storages { try? storage.close() }
        await connection.close()
        try? FileManager.default.removeItem(at: directory)
    }

    /// Every event of `context`'s store, in commit order.
    func events(_ context: String) async throws -> [StoredEvent] {
        try await store(context).allEvents()
    }

    /// Every event of `type` in `context`'s store.
    func events<E: Event>(_ type: E.Type, in context: String) async throws -> [E] {
        try await events(context).compactMap { $0.envelope.as(E.self) }
    }

    /// The messages waiting in every inbox and command queue.
    func queuedMessages() async throws -> Int {
        var pending = 0
        for queue in topologies.flatMap({ $0.inboxQueues + ($0.queues.map(\.name).filter { $0.hasSuffix(".commands") }) }) {
            pending += Int(try await connection.queueState(queue).messageCount)
        }
        return pending
    }

    /// The messages in the dead-letter queues.
    func deadLetters() async throws -> Int {
        var count = 0
        for topology in topologies { count += Int(try await connection.queueState(topology.deadLetterQueue).messageCount) }
        return count
    }

    /// How often a deadline fired in each order's flow (`DeadlineChanged` `fired` in `fulfilment-<order>`).
    func firedDeadlines() async throws -> [String: Int] {
        var fired: [String: Int] = [:]
        for event in try await events("order") {
            guard let change = event.envelope.as(DeadlineChanged.self), change.change == .fired else { continue }
            fired[String(event.streamID.rawValue.dropFirst("fulfilment-".count)), default: 0] += 1
        }
        return fired
    }
}
