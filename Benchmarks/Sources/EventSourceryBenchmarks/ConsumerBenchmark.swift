import EventSourceryRabbitMQ
import ArgumentParser
import DemoContexts
import EventSourcery
import EventSourceryAMQP
import EventSourceryServices
import EventSourceryPostgres
import EventSourcerySQLite
import Foundation
import Synchronization

/// Context consumer throughput from a pre-filled inbox queue (inbox dedupe + one append per
/// event on SQLite), beside a raw consume+ack loop over the same queue contents in the same run;
/// with `--replicas`, several consumers sharing a partitioned inbox and one store; then the latency from `OrderPlaced` commit to `OrderCompleted` commit through the three demo
/// contexts (relays and consumers in this process) at a steady order rate.
struct ConsumerBenchmark: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "consumer",
        abstract:
            "Context consumer throughput from a pre-filled inbox (inbox dedupe + one SQLite append per event) beside a raw consume+ack loop."
    )

    @Option(help: "Events in the pre-filled inbox queue.")
    var events = 100_000

    @Option(help: "Unacknowledged deliveries in flight, for the consumer and the raw loop.")
    var prefetch: UInt16 = 1000

    @Option(help: "Source streams the events belong to (round robin); the handler appends to as many streams.")
    var streams = 1000

    @Option(help: "Consumer lanes (repeat the option to compare several).")
    var concurrency: [Int] = [4]

    @Option(help: "Deliveries a lane handles together (repeat the option to compare several).")
    var batchSize: [Int] = [100]

    @Option(help: "A second consumer run acknowledges with one multiple-ack per this many deliveries (1 skips it).")
    var ackBatch = 100

    @Flag(help: "Also run the consumer (ack 1) on a store opened with synchronous = NORMAL (commits do not wait for the disk).")
    var synchronousNormal = false

    @Option(
        help:
            "Replicas for the partitioned run: that many consumers, each on its own connection, share the inbox partitions and one store (repeat the option to compare; none skips the run)."
    )
    var replicas: [Int] = []

    @Option(help: "Inbox partitions of the replicas run.")
    var partitions = 4

    @Option(help: "Orders per second for the flow latency run.")
    var rate = 100

    @Option(help: "Seconds the flow latency run lasts.")
    var seconds = 10

    @Flag(
        help:
            "Also run the flow latency with each relay on a storage of its own on its context's file, as in a process of its own: woken by inotify on the write-ahead log, and by the 20 ms poll alone."
    )
    var crossProcess = false

    @Flag(help: "Skip the throughput runs.")
    var skipThroughput = false

    @Flag(
        help:
            "Skip the flow latency run (it uses the fixed demo names order, payment, invoice on the broker's vhost and deletes their queues)."
    )
    var skipLatency = false

    @Option(
        help:
            "Path of the compiled C baseline of the consumer's work (Benchmarks/consumer-baseline.c, built by scripts/bench-amqp); without it the C run is skipped."
    )
    var baseline: String?

    @Option(
        help:
            "The stores of the consumer runs, each beside the others: sqlite (a file per run) or postgres (a fresh schema per run at POSTGRES_URL); repeat the option to compare."
    )
    var store: [BenchStore] = [.sqlite]

    @Option(help: "The database of --store postgres; defaults to POSTGRES_URL or the private cluster of scripts/postgres.")
    var postgresURL =
        ProcessInfo.processInfo.environment["POSTGRES_URL"] ?? "postgres://eventsourcery:eventsourcery@127.0.0.1:5433/eventsourcery"

    @Option(
        help:
            "The demo's configuration file: the flow latency run takes each context's consumer.concurrency and consumer.prefetch from it, as the demo's services do."
    )
    var demoConfig = "config/eventsourcery.yaml"

    @Option(help: "The broker.")
    var amqpURL = ProcessInfo.processInfo.environment["AMQP_URL"] ?? "amqp://guest:guest@127.0.0.1:5673/"

    func run() async throws {
        if !skipThroughput { try await throughput() }
        if !skipLatency {
            try await flowLatency(.shared)
            if crossProcess {
                try await flowLatency(.watched)
                try await flowLatency(.polled)
            }
        }
    }

    private func throughput() async throws {
        let bench = try await BenchContext(prefix: "bench-consumer", amqpURL: amqpURL)
        defer { Task { await bench.tearDown() } }
        let (suffix, context, source, directory, connection, subscription, topology) = (
            bench.suffix, bench.context, bench.source, bench.directory, bench.connection, bench.subscription, bench.topology
        )

        let messages = try messages(from: source)
        print(
            "consumer benchmark: \(events) events of \(messages[0].body.count) bytes from \(streams) streams in the quorum queue \(topology.inboxQueue), prefetch \(prefetch)"
        )
        BenchmarkTable.header()

        // Baseline: the same queue contents consumed and acked one by one, nothing else.
        try await fill(topology.inboxQueue, with: messages, on: connection)
        let raw = try await rawConsume(topology.inboxQueue)
        BenchmarkTable.line(
            "raw consume + ack each (prefetch \(prefetch))", events: events, elapsed: raw.elapsed, cpu: raw.cpu, latencies: [])
        let rawRate = Double(events) / raw.elapsed.seconds
        var cRate: Double?
        if let baseline {
            try await fill(topology.inboxQueue, with: messages, on: connection)
            let c = try runBaseline(
                baseline, queue: topology.inboxQueue, consumer: "\(context).append-one",
                store: directory.appendingPathComponent("store-c.sqlite").path)
            BenchmarkTable.line(
                "C baseline: same work, batch \(batchSize[0]), ack 1", events: events, elapsed: .seconds(Double(events) / c.rate),
                cpu: c.cpu.map { .microseconds($0 * Double(events)) }, latencies: [])
            cRate = c.rate
        }

        var runs = concurrency.flatMap { lanes in batchSize.map { (lanes: lanes, batch: $0, ack: 1) } }
        if ackBatch > 1, let first = runs.first { runs.append((first.lanes, first.batch, ackBatch)) }
        for kind in store {
            for run in runs {
                try await fill(topology.inboxQueue, with: messages, on: connection)
                let measured = try await consume(
                    topology: topology, subscription: subscription, lanes: run.lanes, batchSize: run.batch, ackBatch: run.ack,
                    store: directory.appendingPathComponent("store-\(run.lanes)-\(run.batch)-\(run.ack).sqlite").path, kind: kind
                )
                let name = "ContextConsumer (\(kind)): \(run.lanes) lanes, batch \(run.batch), ack \(run.ack)"
                BenchmarkTable.line(name, events: events, elapsed: measured.elapsed, cpu: measured.cpu, latencies: [])
                let rate = Double(events) / measured.elapsed.seconds
                print("  \(name) / raw consume+ack: " + String(format: "%.1f%%", rate / rawRate * 100))
                if let cRate { print("  \(name) / C baseline of the same work: " + String(format: "%.2f×", rate / cRate)) }
            }
        }
        for count in replicas {
            let measured = try await replicaRun(count, suffix: suffix, directory: directory)
            let name = "\(count) replica(s), \(partitions) partitions: \(concurrency[0]) lanes, batch \(batchSize[0]), ack 1"
            BenchmarkTable.line(name, events: events, elapsed: measured.elapsed, cpu: measured.cpu, latencies: [])
            print("  \(name) / raw consume+ack: " + String(format: "%.1f%%", Double(events) / measured.elapsed.seconds / rawRate * 100))
        }
        if synchronousNormal {
            try await fill(topology.inboxQueue, with: messages, on: connection)
            let run = try await consume(
                topology: topology, subscription: subscription, lanes: concurrency[0], batchSize: batchSize[0], ackBatch: 1,
                store: directory.appendingPathComponent("store-normal.sqlite").path, synchronous: .normal
            )
            BenchmarkTable.line(
                "ContextConsumer: same, synchronous=NORMAL (ack 1)", events: events, elapsed: run.elapsed, cpu: run.cpu, latencies: [])
            print(
                String(
                    format: "  ContextConsumer (synchronous NORMAL) / raw consume+ack: %.1f%%",
                    Double(events) / run.elapsed.seconds / rawRate * 100))
        }
    }

    /// Runs the C baseline of the consumer's work on `queue` into a fresh store at `path`
    /// (created through ``SQLiteEventStorage`` so the schema is the store's), with the
    /// prefetch, streams and first batch size of the Swift runs.
    private func runBaseline(_ path: String, queue: String, consumer: String, store: String) throws -> (rate: Double, cpu: Double?) {
        try SQLiteEventStorage(path: store).close()
        let broker = try AMQPConnection.Configuration(url: amqpURL)
        return try CBaseline.run(
            path,
            arguments: [
                broker.host, "\(broker.port)", broker.vhost, queue, "\(events)", "\(prefetch)", "\(batchSize[0])", store, consumer,
                "\(streams)",
            ])
    }

    /// Publishes `messages` (confirmed) so they land in `queue`, and waits until it holds them all.
    private func fill(_ queue: String, with messages: [OutgoingMessage], on connection: AMQPConnection) async throws {
        try await fill([queue], with: messages, on: connection)
    }

    /// Publishes `messages` (confirmed) so they land in `queues`, and waits until these hold
    /// them all together.
    private func fill(_ queues: [String], with messages: [OutgoingMessage], on connection: AMQPConnection) async throws {
        // Deliveries a previous run left unacknowledged come back when its connection closes.
        for queue in queues { _ = try await connection.purgeQueue(queue) }
        let publisher = AMQPPublisher(connection: connection, window: 1000)
        for chunk in stride(from: 0, to: messages.count, by: 1000) {
            let outcomes = try await publisher.publish(Array(messages[chunk..<min(chunk + 1000, messages.count)]))
            guard outcomes.allSatisfy(\.isConfirmed) else { throw ValidationError("the broker refused part of the pre-fill") }
        }
        let deadline = ContinuousClock.now + .seconds(30)
        func held() async throws -> Int {
            var total = 0
            for queue in queues { total += Int(try await connection.queueState(queue).messageCount) }
            return total
        }
        while try await held() < messages.count {
            guard ContinuousClock.now < deadline else { throw ValidationError("\(queues.joined(separator: ", ")) did not fill up") }
            try await Task.sleep(for: .milliseconds(20))
        }
    }

    /// Consumes `events` deliveries from `queue`, acknowledging each.
    private func rawConsume(_ queue: String) async throws -> (elapsed: Duration, cpu: Duration) {
        let connection = AMQPConnection(configuration: try AMQPConnection.Configuration(url: amqpURL))
        try await connection.connect()
        defer { Task { await connection.close() } }
        let start = ContinuousClock.now
        let cpu = CPUTime.now()
        let consumer = try await connection.consume(queue: queue, prefetch: prefetch)
        var count = 0
        for try await delivery in consumer.deliveries {
            consumer.ack(delivery)
            count += 1
            if count == events { break }
        }
        let elapsed = ContinuousClock.now - start
        let used = CPUTime.now() - cpu
        await consumer.cancel()
        return (elapsed, used)
    }

    /// The benchmark's ``events`` as messages of `source`, round robin over ``streams`` streams.
    private func messages(from source: String) throws -> [OutgoingMessage] {
        try (0..<events).map { index in
            let envelope = EventEnvelope(QueuedItem.sample(index))
            let recorded = RecordedEvent(
                streamID: try StreamID("item-\(index % streams)"), streamVersion: Int64(index / streams + 1), position: Int64(index + 1),
                event: try EventRegistry.encode(envelope))
            return EventMessage.outgoing(recorded, context: source)
        }
    }

    /// The events of a source of their own, published through its exchange into a fresh
    /// partitioned inbox, consumed by `count` replicas at once; the topology is deleted after.
    private func replicaRun(_ count: Int, suffix: String, directory: URL) async throws -> (elapsed: Duration, cpu: Duration) {
        let context = "bench-replicas-\(suffix)-\(count)"
        let source = "bench-rsource-\(suffix)-\(count)"
        let subscription = EventSubscription(source: source, type: QueuedItem.typeName)
        let topology = ContextTopology(
            ContextDescription(name: context, handlers: ["append-one": [subscription]], deliveryLimit: 5, partitions: partitions))
        let connection = AMQPConnection(configuration: try AMQPConnection.Configuration(url: amqpURL))
        try await connection.connect()
        try await topology.declare(on: connection)
        defer {
            Task {
                for queue in topology.queues { _ = try? await connection.deleteQueue(queue.name) }
                for exchange in topology.exchanges { try? await connection.deleteExchange(exchange.name) }
                await connection.close()
            }
        }
        let messages = try messages(from: source)
        try await fill(topology.inboxQueues, with: messages, on: connection)
        return try await consume(
            topology: topology, subscription: subscription, lanes: concurrency[0], batchSize: batchSize[0], ackBatch: 1,
            store: directory.appendingPathComponent("store-replicas-\(count).sqlite").path, replicas: count)
    }

    /// Runs `replicas` ``ContextConsumer``s (each on its own connection) whose one handler
    /// appends one event per delivery to one fresh store (a SQLite file at `path`, or a fresh
    /// PostgreSQL schema), until every event is committed and acknowledged.
    private func consume(
        topology: ContextTopology, subscription: EventSubscription, lanes: Int, batchSize: Int, ackBatch: Int, store path: String,
        kind: BenchStore = .sqlite, synchronous: SQLiteEventStorage.SynchronousMode = .full, replicas: Int = 1
    ) async throws -> (elapsed: Duration, cpu: Duration) {
        var opened: [AMQPConnection] = []
        for _ in 0..<replicas {
            let connection = AMQPConnection(configuration: try AMQPConnection.Configuration(url: amqpURL))
            try await connection.connect()
            opened.append(connection)
        }
        let connections = opened
        let storage: any EventStorage
        let closeStorage: @Sendable () async -> Void
        switch kind {
        case .sqlite:
            var storageConfiguration = SQLiteEventStorage.Configuration(path: path)
            storageConfiguration.synchronous = synchronous
            let sqlite = try SQLiteEventStorage(configuration: storageConfiguration)
            (storage, closeStorage) = (sqlite, { try? sqlite.close() })
        case .postgres:
            var configuration = try PostgresEventStorage.Configuration(url: postgresURL)
            configuration.schema = PostgresBenchmark.freshSchemaName()
            configuration.maximumConnections = lanes * replicas + 2
            let postgres = try await PostgresBenchmark.running(configuration)
            (storage, closeStorage) = (postgres, { await PostgresBenchmark.shutDownAndDrop(postgres) })
        }
        defer {
            Task {
                await closeStorage()
                for connection in connections { await connection.close() }
            }
        }
        let store = EventStore(storage: storage, registry: EventRegistry([QueuedItem.self, QueuedItemHandled.self, HandlerFailed.self]))
        let handled = HandledCount(target: events)
        let streams = self.streams
        let handler = EventHandler(name: "append-one", subscriptions: [subscription]) { input, batch in
            guard let item = input.as(QueuedItem.self) else { return }
            try batch.append([input.caused(QueuedItemHandled(index: item.index))], to: StreamID("handled-\(item.index % streams)"))
            handled.add()
        }
        let consumers = connections.map { connection in
            ContextConsumer(
                connection: connection, store: store, handlers: [handler],
                configuration: ContextConsumer.Configuration(
                    context: topology.context, prefetch: prefetch, ackBatchSize: ackBatch, concurrency: lanes, batchSize: batchSize,
                    declaresTopology: false, partitions: topology.partitions
                ),
                topology: topology
            )
        }
        let start = ContinuousClock.now
        let cpu = CPUTime.now()
        let running = consumers.map { consumer in Task { try await consumer.run() } }
        // The handler counts before its transaction commits; stopping the consumers then lets
        // the deliveries in flight commit and flushes every acknowledgement before run() returns.
        await handled.waitForTarget()
        for task in running { task.cancel() }
        for task in running { try await task.value }
        let elapsed = ContinuousClock.now - start
        let used = CPUTime.now() - cpu
        let failures = try await store.streamVersion(StreamID("failures-\(topology.context)"))
        guard handled.value.load(ordering: .relaxed) == events, failures == 0 else {
            throw ValidationError(
                "the consumer handled \(handled.value.load(ordering: .relaxed)) of \(events) events with \(failures) failures")
        }
        for queue in topology.inboxQueues where try await connections[0].queueState(queue).messageCount > 0 {
            throw ValidationError("\(queue) still holds messages")
        }
        return (elapsed, used)
    }
}

extension ConsumerBenchmark {
    /// Which storage the relays of the flow latency run read, and how they learn of commits.
    fileprivate enum RelayStorage: String {
        /// The consumers' storages: a commit signals the relay in-process.
        case shared = "relays on the consumers' storages"
        /// A storage of their own on the same file, as in another process, woken by inotify.
        case watched = "relays on storages of their own, inotify"
        /// A storage of their own on the same file, woken by the 20 ms poll only.
        case polled = "relays on storages of their own, 20 ms poll"
    }

    /// Places orders at ``rate`` per second for ``seconds`` into the demo order store while the
    /// demo contexts' relays and consumers run as tasks, and measures from each `OrderPlaced`
    /// commit to the `OrderCompleted` commit, as seen by polling the order store every 1 ms.
    fileprivate func flowLatency(_ relayStorage: RelayStorage) async throws {
        let contexts = ["order", "payment", "invoice"]
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "bench-flow-\(UUID().uuidString.prefix(6).lowercased())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let consuming = AMQPConnection(configuration: try AMQPConnection.Configuration(url: amqpURL))
        let publishing = AMQPConnection(configuration: try AMQPConnection.Configuration(url: amqpURL))
        try await consuming.connect()
        try await publishing.connect()
        let queues = contexts.flatMap {
            [ContextTopology.inboxQueue(for: $0), ContextTopology.deadLetterQueue(for: $0), CommandMessage.queue(for: $0)]
        }
        for queue in queues { _ = try? await consuming.deleteQueue(queue) }

        let modules = DemoContext.handlers()
        let demo = try ServiceConfiguration.load(path: demoConfig)
        var stores: [String: EventStore] = [:]
        var storages: [SQLiteEventStorage] = []
        var services: [@Sendable () async throws -> Void] = []
        for name in contexts {
            guard let module = modules.module(for: name) else { throw ValidationError("no demo context \(name)") }
            let path = directory.appendingPathComponent("\(name).sqlite").path
            let storage = try SQLiteEventStorage(path: path)
            storages.append(storage)
            var relayConfiguration = SQLiteEventStorage.Configuration(path: path)
            relayConfiguration.watchesOtherProcesses = relayStorage == .watched
            let relayStore = relayStorage == .shared ? storage : try SQLiteEventStorage(configuration: relayConfiguration)
            if relayStore !== storage { storages.append(relayStore) }
            let store = EventStore(storage: storage, registry: module.registry)
            stores[name] = store
            let handlers = module.makeHandlers(store)
            // The coordinated flow: every context answers commands, the order context sends them.
            let topology = ContextTopology(
                ContextDescription(
                    name: name, handlers: Dictionary(uniqueKeysWithValues: handlers.map { ($0.name, $0.subscriptions) }),
                    acceptsCommands: true, commandTargets: contexts))
            // The lanes, command concurrency and prefetch of the demo's services.
            let configured = try demo.consumerConfiguration(context: name)
            var consumerConfiguration = ContextConsumer.Configuration(context: name)
            consumerConfiguration.concurrency = configured.concurrency
            consumerConfiguration.prefetch = configured.prefetch
            let consumer = ContextConsumer(
                connection: consuming, store: store, handlers: handlers, configuration: consumerConfiguration, topology: topology)
            try await topology.declare(on: consuming)
            let commands = CommandConsumer(
                context: name, store: store, connection: consuming,
                handlers: module.makeCommandHandlers(ContextResources(store: store, deadlines: module.deadlines)),
                prefetch: configured.prefetch, concurrency: configured.concurrency)
            services.append { try await commands.run() }
            let relay = OutboxRelay(
                storage: relayStore, publisher: AMQPPublisher(connection: publishing),
                configuration: OutboxRelay.Configuration(context: name, idlePollInterval: .milliseconds(50))
            )
            services.append { try await consumer.run() }
            services.append { try await relay.run() }
        }
        guard let order = stores["order"] else { return }
        let tasks = services.map { service in Task { try await service() } }

        let total = rate * seconds
        let placed = Mutex<[String: ContinuousClock.Instant]>([:])
        let completed = Mutex<[String: ContinuousClock.Instant]>([:])
        let watching = Task {
            var position: Int64 = 0
            while !Task.isCancelled {
                let events = try await order.readAll(after: position, limit: 1000)
                let now = ContinuousClock.now
                for event in events {
                    if let done = event.envelope.as(OrderCompleted.self) { completed.withLock { $0[done.orderID] = now } }
                }
                position = events.last?.position ?? position
                if events.count < 1000 { try await Task.sleep(for: .milliseconds(1)) }
            }
        }
        print(
            "flow latency: \(total) orders at \(rate)/s, the order context's fulfilment coordinating payment and invoice with commands (relays and consumers in-process with the consumer settings of \(demoConfig), SQLite stores, \(relayStorage.rawValue))"
        )
        let interval = Duration.nanoseconds(1_000_000_000 / Int64(max(rate, 1)))
        let start = ContinuousClock.now
        let cpu = CPUTime.now()
        for index in 0..<total {
            let due = start + interval * index
            if due > .now { try await Task.sleep(until: due) }
            // Amounts up to 1000: every order is paid, invoiced and completed.
            try await DemoContext.placeOrder("o\(index)", amount: index % 1000 + 1, in: order)
            let commit = ContinuousClock.now
            placed.withLock { $0["o\(index)"] = commit }
        }
        let deadline = ContinuousClock.now + .seconds(30)
        while completed.withLock({ $0.count }) < total, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(10))
        }
        let elapsed = ContinuousClock.now - start
        let used = CPUTime.now() - cpu
        watching.cancel()
        _ = try? await watching.value
        for task in tasks { task.cancel() }
        for task in tasks { _ = try? await task.value }
        for queue in queues { _ = try? await consuming.deleteQueue(queue) }
        await consuming.close()
        await publishing.close()
        for storage in storages { try? storage.close() }

        let commits = placed.withLock { $0 }
        let latencies = completed.withLock { done in done.compactMap { id, time in commits[id].map { time - $0 } } }
        // The disk under the stores, measured right after the flow on the same directory's file system.
        let flushes = try await DiskFlushProbe.measure(in: FileManager.default.temporaryDirectory)
        BenchmarkTable.header()
        BenchmarkTable.line(
            "OrderPlaced → OrderCompleted at \(rate)/s, \(relayStorage)", events: latencies.count, elapsed: elapsed, cpu: used,
            latencies: latencies)
        BenchmarkTable.line(
            "disk flush (fdatasync of 4 KiB), the floor of a commit", events: flushes.count,
            elapsed: flushes.reduce(.zero, +), latencies: flushes)
        print("  each order waits for six commits in sequence (one per hop), each beside a quorum queue's confirm")
        if latencies.count < total {
            print("  \(total - latencies.count) orders did not complete within 30 s")
        }
    }
}

/// An event of the benchmark's source context, with a JSON body of about 200 bytes.
struct QueuedItem: Event {
    var index: Int
    var customer: String
    var amount: Int
    var note: String

    static func sample(_ index: Int) -> QueuedItem {
        QueuedItem(
            index: index, customer: "customer-\(index % 997)", amount: index % 5000,
            note: String(repeating: "x", count: 120))
    }
}

/// The one event the benchmark's handler appends per consumed event.
struct QueuedItemHandled: Event {
    var index: Int
}

/// The store of a consumer benchmark run.
enum BenchStore: String, ExpressibleByArgument, CustomStringConvertible {
    case sqlite, postgres

    var description: String { rawValue }
}
