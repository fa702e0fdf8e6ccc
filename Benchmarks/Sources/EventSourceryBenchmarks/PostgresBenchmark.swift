import EventSourceryRabbitMQ
import ArgumentParser
import EventSourcery
import EventSourceryAMQP
import EventSourceryPostgres
import Foundation
import Logging
import PostgresNIO
import Synchronization

/// PostgreSQL event store benchmarks: appends, `readAll` and outbox claiming.
///
/// Every scenario runs in its own fresh schema `es_bench_<random>`, dropped afterwards.
struct PostgresBenchmark: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "postgres",
        abstract: "PostgreSQL event store benchmarks (start the server with scripts/postgres start)."
    )

    @Option(help: "The database URL; defaults to POSTGRES_URL or the private cluster of scripts/postgres.")
    var url = ProcessInfo.processInfo.environment["POSTGRES_URL"] ?? "postgres://eventsourcery:eventsourcery@127.0.0.1:5433/eventsourcery"

    @Option(help: "Transactions of 1 event in the append scenarios.")
    var singleAppends = 2000

    @Option(help: "Transactions of 100 events in the batch append scenario.")
    var batchAppends = 200

    @Option(help: "Outbox entries drained in the claim scenarios.")
    var outboxEntries = 10_000

    @Option(help: "Concurrent writers of the concurrent append scenarios (repeat the option for several).")
    var writers: [Int] = [8, 32]

    @Option(help: "pgbench's script of the same inserts (default: Benchmarks/pgbench/append.sql); skipped without pgbench.")
    var pgbenchScript = "Benchmarks/pgbench/append.sql"

    @Option(help: "The broker for the relay scenarios; defaults to AMQP_URL. Without one they are skipped.")
    var amqpURL: String?

    func run() async throws {
        let base = try PostgresEventStorage.Configuration(url: url)
        print("PostgreSQL event store benchmark against \(base.endpointDescription)")
        BenchmarkTable.header()

        for concurrency in [1] + writers {
            try await scenario(base) { storage in
                try await appends(
                    storage, name: "append 1/tx, publish, \(concurrency) writer\(concurrency == 1 ? "" : "s")",
                    transactions: singleAppends, size: 1, concurrency: concurrency)
            }
            try await pgbench(base, clients: concurrency)
        }
        try await scenario(base) { storage in
            try await noticeLatency(storage, samples: 500)
        }
        try await scenario(base) { storage in
            try await appends(storage, name: "append 100/tx, publish, 1 writer", transactions: batchAppends, size: 100, concurrency: 1)
            try await readAll(storage, name: "readAll, pages of 1000")
        }
        try await scenario(base) { storage in
            try await fillOutbox(storage, entries: outboxEntries)
            try await drain(storage, base: base, name: "claim+markPublished, 1 claimer", claimers: 1)
        }
        try await scenario(base) { storage in
            try await fillOutbox(storage, entries: outboxEntries)
            try await drain(storage, base: base, name: "claim+markPublished, 3 claimers", claimers: 3)
        }
        guard let amqpURL = amqpURL ?? ProcessInfo.processInfo.environment["AMQP_URL"] else {
            print("relay scenarios skipped: no AMQP_URL")
            return
        }
        for replicas in [1, 3] {
            try await scenario(base) { storage in
                try await fillOutbox(storage, entries: outboxEntries)
                try await relay(storage, brokerURL: amqpURL, replicas: replicas)
            }
        }
    }

    /// Drains the outbox to the broker with `replicas` `OutboxRelay`s, each with its own pool
    /// and connection, as separate `outbox-publisher` processes would.
    private func relay(_ storage: PostgresEventStorage, brokerURL: String, replicas: Int) async throws {
        let context = "pgbench-\(UUID().uuidString.prefix(6).lowercased())"
        let setup = AMQPConnection(configuration: try AMQPConnection.Configuration(url: brokerURL), logger: Self.quietLogger)
        try await setup.connect()
        try await setup.declare(AMQPExchange(name: EventMessage.exchange(for: context), kind: .topic))
        try await setup.declare(AMQPQueue(name: "\(context).sink"))
        try await setup.bind(AMQPBinding(queue: "\(context).sink", exchange: EventMessage.exchange(for: context), routingKey: "#"))
        var storages: [PostgresEventStorage] = []
        var connections: [AMQPConnection] = []
        var tasks: [Task<Void, any Error>] = []
        let started = ContinuousClock.now
        for _ in 0..<replicas {
            var configuration = storage.configuration
            configuration.maximumConnections = 2
            let replica = try await Self.running(configuration)
            let connection = AMQPConnection(configuration: try AMQPConnection.Configuration(url: brokerURL), logger: Self.quietLogger)
            try await connection.connect()
            storages.append(replica)
            connections.append(connection)
            let relay = OutboxRelay(
                storage: replica,
                publisher: AMQPPublisher(connection: connection, window: 1000),
                configuration: OutboxRelay.Configuration(context: context, batchSize: 500, idlePollInterval: .milliseconds(50)),
                logger: Self.quietLogger
            )
            tasks.append(Task { try await relay.run() })
        }
        while try await storage.outboxCounts().published < outboxEntries {
            try await Task.sleep(for: .milliseconds(20))
        }
        let elapsed = ContinuousClock.now - started
        for task in tasks { task.cancel() }
        for task in tasks { _ = await task.result }
        for replica in storages { await replica.shutdown() }
        for connection in connections { await connection.close() }
        _ = try? await setup.deleteQueue("\(context).sink")
        try? await setup.deleteExchange(EventMessage.exchange(for: context))
        await setup.close()
        BenchmarkTable.line(
            "relay to RabbitMQ, \(replicas) replica\(replicas == 1 ? "" : "s")", events: outboxEntries, elapsed: elapsed, latencies: [])
    }

    // MARK: Scenarios

    private func appends(_ storage: PostgresEventStorage, name: String, transactions: Int, size: Int, concurrency: Int) async throws {
        let latencies = LockedValue<[Duration]>([])
        let started = ContinuousClock.now
        try await withThrowingTaskGroup(of: Void.self) { group in
            for writer in 0..<concurrency {
                group.addTask {
                    var mine: [Duration] = []
                    for index in stride(from: writer, to: transactions, by: concurrency) {
                        let events = (0..<size).map { _ in Self.event(index) }
                        let stream = try StreamID("bench-\(index % 100)")
                        var batch = WriteBatch()
                        batch.append(encoded: events, to: stream, expectedVersion: .any, publishes: true)
                        let start = ContinuousClock.now
                        _ = try await storage.commit(batch)
                        mine.append(ContinuousClock.now - start)
                    }
                    latencies.withLock { $0 += mine }
                }
            }
            try await group.waitForAll()
        }
        BenchmarkTable.line(name, events: transactions * size, elapsed: ContinuousClock.now - started, latencies: latencies.withLock { $0 })
    }

    /// From the start of a publishing commit until the listener of another storage on the
    /// schema (a relay in another process) is woken, one commit at a time.
    private func noticeLatency(_ storage: PostgresEventStorage, samples: Int) async throws {
        let listener = try await Self.running(storage.configuration)
        var wakeUps = try await listener.outboxNotifications().makeAsyncIterator()
        var latencies: [Duration] = []
        let started = ContinuousClock.now
        for index in 0..<samples {
            var batch = WriteBatch()
            batch.append(encoded: [Self.event(index)], to: try StreamID("bench-\(index % 100)"), expectedVersion: .any, publishes: true)
            let start = ContinuousClock.now
            _ = try await storage.commit(batch)
            _ = await wakeUps.next()
            latencies.append(ContinuousClock.now - start)
        }
        let elapsed = ContinuousClock.now - started
        await listener.shutdown()
        BenchmarkTable.line(
            "publish 1/tx, another storage's listener woken (p = commit + wake)", events: samples, elapsed: elapsed, latencies: latencies)
    }

    private func readAll(_ storage: PostgresEventStorage, name: String) async throws {
        var latencies: [Duration] = []
        var position: Int64 = 0
        var count = 0
        let started = ContinuousClock.now
        while true {
            let start = ContinuousClock.now
            let page = try await storage.readAll(after: position, limit: 1000)
            latencies.append(ContinuousClock.now - start)
            guard let last = page.last else { break }
            count += page.count
            position = last.position
        }
        BenchmarkTable.line(name + " (p = per page)", events: count, elapsed: ContinuousClock.now - started, latencies: latencies)
    }

    /// Publishes `entries` events over 50 streams, 100 per transaction.
    private func fillOutbox(_ storage: PostgresEventStorage, entries: Int) async throws {
        var written = 0
        while written < entries {
            var batch = WriteBatch()
            for offset in 0..<min(100, entries - written) {
                let index = written + offset
                batch.append(encoded: [Self.event(index)], to: try StreamID("bench-\(index % 50)"), expectedVersion: .any, publishes: true)
            }
            written += batch.eventCount
            _ = try await storage.commit(batch)
        }
    }

    /// Drains the outbox with `claimers` replicas (each its own pool), 100 entries a claim.
    private func drain(_ storage: PostgresEventStorage, base: PostgresEventStorage.Configuration, name: String, claimers: Int) async throws
    {
        var replicas: [PostgresEventStorage] = []
        for _ in 0..<claimers {
            var configuration = storage.configuration
            configuration.maximumConnections = 2
            replicas.append(try await Self.running(configuration))
        }
        let latencies = LockedValue<[Duration]>([])
        let drained = LockedValue(0)
        let started = ContinuousClock.now
        try await withThrowingTaskGroup(of: Void.self) { group in
            for relay in replicas {
                group.addTask {
                    var mine: [Duration] = []
                    var idle = 0
                    while idle < 3 {
                        let start = ContinuousClock.now
                        let entries = try await relay.claimOutboxEntries(limit: 100, now: Date(), leaseDuration: 60)
                        if entries.isEmpty {
                            if try await relay.outboxCounts().pending == 0 { idle += 1 }
                            try await Task.sleep(for: .milliseconds(1))
                            continue
                        }
                        try await relay.markPublished(entries.map(\.id), at: Date())
                        mine.append(ContinuousClock.now - start)
                        drained.withLock { $0 += entries.count }
                    }
                    latencies.withLock { $0 += mine }
                }
            }
            try await group.waitForAll()
        }
        let elapsed = ContinuousClock.now - started
        for replica in replicas { await replica.shutdown() }
        BenchmarkTable.line(
            name + " (p = per claim of ≤100)", events: drained.withLock { $0 }, elapsed: elapsed, latencies: latencies.withLock { $0 })
    }

    // MARK: Baseline

    /// Runs `pgbench` with the same inserts (an event row and its outbox row per
    /// transaction, same table shapes) and `clients` connections, as the baseline line.
    private func pgbench(_ base: PostgresEventStorage.Configuration, clients: Int) async throws {
        let versions = (try? FileManager.default.contentsOfDirectory(atPath: "/usr/lib/postgresql")) ?? []
        let candidates = ["/usr/bin/pgbench"] + versions.sorted().reversed().map { "/usr/lib/postgresql/\($0)/bin/pgbench" }
        guard let executable = candidates.first(where: { FileManager.default.isExecutableFile(atPath: $0) })
        else {
            print("pgbench baseline skipped: pgbench is not installed (Debian package postgresql-contrib or postgresql)")
            return
        }
        var configuration = base
        configuration.schema = "pgbench_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").prefix(12).lowercased()
        let schema = configuration.schema
        try await Self.execute(
            configuration,
            [
                "CREATE SCHEMA \(schema)",
                "CREATE SEQUENCE \(schema).positions",
                """
                CREATE TABLE \(schema).events (position bigint PRIMARY KEY, stream_id text NOT NULL, stream_version bigint NOT NULL,
                    event_id uuid NOT NULL UNIQUE, type_name text NOT NULL, schema_version integer NOT NULL,
                    created_at timestamptz NOT NULL, correlation_id uuid, causation_id uuid, trace_context jsonb NOT NULL,
                    payload jsonb NOT NULL, recorded_at timestamptz NOT NULL DEFAULT now(), UNIQUE (stream_id, stream_version))
                """,
                """
                CREATE TABLE \(schema).outbox (id bigint PRIMARY KEY REFERENCES \(schema).events (position),
                    stream_id text NOT NULL, state text NOT NULL DEFAULT 'pending', attempts integer NOT NULL DEFAULT 0,
                    last_error text, next_attempt_at timestamptz, leased_until timestamptz, published_at timestamptz)
                """,
                "CREATE INDEX ON \(schema).outbox (stream_id, id) WHERE state <> 'published'",
                "CREATE INDEX ON \(schema).outbox (id) WHERE state <> 'published'",
            ])
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = [
            "-n", "-f", pgbenchScript, "-D", "schema=\(schema)", "-c", "\(clients)", "-j", "\(min(clients, 8))",
            "-t", "\(max(1, singleAppends / clients))", "-h", configuration.host, "-p", "\(configuration.port)",
            "-U", configuration.username, configuration.database,
        ]
        process.environment = ProcessInfo.processInfo.environment.merging(["PGPASSWORD": configuration.password ?? ""]) { $1 }
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        let started = ContinuousClock.now
        let run = Result {
            try process.run()
            let data = output.fileHandleForReading.readDataToEndOfFile()
            process.waitUntilExit()
            return data
        }
        let elapsed = ContinuousClock.now - started
        try await Self.dropSchema(configuration)
        let text = String(decoding: try run.get(), as: UTF8.self)
        let transactions =
            text.split(separator: "\n").first { $0.hasPrefix("number of transactions actually processed") }
            .flatMap { $0.split(separator: " ").last.flatMap { Int($0.split(separator: "/").first ?? "") } } ?? 0
        let tps = text.split(separator: "\n").first { $0.hasPrefix("tps = ") }.map(String.init) ?? "no tps line"
        BenchmarkTable.line(
            "  pgbench, same inserts, \(clients) client\(clients == 1 ? "" : "s") (\(tps.prefix(22)))", events: transactions,
            elapsed: elapsed, latencies: [])
    }

    // MARK: Helpers

    /// Runs `statements` on one connection of `configuration`'s database.
    private static func execute(_ configuration: PostgresEventStorage.Configuration, _ statements: [String]) async throws {
        let connection = try await PostgresConnection.connect(
            configuration: connectionConfiguration(configuration), id: 1, logger: Self.quietLogger)
        for statement in statements {
            try await connection.query(PostgresQuery(unsafeSQL: statement), logger: Self.quietLogger)
        }
        try await connection.close()
    }

    private static func connectionConfiguration(_ configuration: PostgresEventStorage.Configuration) -> PostgresConnection.Configuration {
        var connectionConfiguration = PostgresConnection.Configuration(
            host: configuration.host, port: configuration.port, username: configuration.username,
            password: configuration.password, database: configuration.database, tls: .disable
        )
        connectionConfiguration.options.connectTimeout = .seconds(10)
        return connectionConfiguration
    }

    private static let quietLogger = Logger(label: "eventsourcery-bench.postgres") { _ in SwiftLogNoOpLogHandler() }

    private static func event(_ index: Int) -> EncodedEvent {
        EncodedEvent(
            id: UUID(),
            typeName: "Deposited",
            schemaVersion: 1,
            createdAt: Date(),
            metadata: EventMetadata(correlationID: UUID()),
            payload: Data(#"{"amount":\#(index),"currency":"EUR","note":"benchmark event"}"#.utf8)
        )
    }

    /// Connects a storage and runs it (``PostgresEventStorage/run()``) until its `shutdown()`.
    /// Returns once it runs and listens, so that every measured commit leaves its notice to
    /// the storage's notice sender, as in a service.
    static func running(_ configuration: PostgresEventStorage.Configuration) async throws -> PostgresEventStorage {
        let storage = try await PostgresEventStorage.connect(configuration: configuration, logger: quietLogger)
        Task { try? await storage.run() }
        while (try? await storage.outboxNotifications()) == nil { try await Task.sleep(for: .milliseconds(1)) }
        return storage
    }

    /// A fresh schema name `es_bench_<random>`.
    static func freshSchemaName() -> String {
        "es_bench_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").prefix(12).lowercased()
    }

    /// Shuts `storage` down and drops its schema.
    static func shutDownAndDrop(_ storage: PostgresEventStorage) async {
        await storage.shutdown()
        try? await dropSchema(storage.configuration)
    }

    /// Runs `body` with a storage on a fresh schema and drops the schema afterwards.
    private func scenario(_ base: PostgresEventStorage.Configuration, _ body: (PostgresEventStorage) async throws -> Void) async throws {
        var configuration = base
        configuration.schema = Self.freshSchemaName()
        configuration.maximumConnections = max(writers.max() ?? 1, 4)
        let storage = try await Self.running(configuration)
        do {
            try await body(storage)
        } catch {
            await storage.shutdown()
            try await Self.dropSchema(configuration)
            throw error
        }
        await storage.shutdown()
        try await Self.dropSchema(configuration)
    }

    private static func dropSchema(_ configuration: PostgresEventStorage.Configuration) async throws {
        let schema = "\"" + configuration.schema.replacingOccurrences(of: "\"", with: "\"\"") + "\""
        try await execute(configuration, ["DROP SCHEMA IF EXISTS \(schema) CASCADE"])
    }
}

/// A value shared between benchmark tasks.
private final class LockedValue<Value: Sendable>: Sendable {
    private let mutex: Mutex<Value>
    init(_ value: Value) { mutex = Mutex(value) }
    func withLock<Result>(_ body: (inout Value) -> Result) -> Result { mutex.withLock { body(&$0) } }
}
