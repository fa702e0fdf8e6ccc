import EventSourceryRabbitMQ
import ArgumentParser
import EventSourcery
import EventSourceryAMQP
import EventSourcerySQLite
import Foundation
import Synchronization

/// Outbox relay throughput and commit-to-delivery latency, beside a raw confirmed publish
/// of the same messages measured in the same run.
struct RelayBenchmark: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "relay",
        abstract: "Relay throughput from a pre-filled SQLite outbox, and commit→delivery latency at a steady rate."
    )

    @Option(help: "Events in the pre-filled outbox.")
    var events = 100_000

    @Option(help: "Unconfirmed messages in flight, for the relay and the raw baseline.")
    var window = 1000

    @Option(help: "Entries the relay claims per round.")
    var batchSize = 1000

    @Option(help: "Events per second for the latency run.")
    var rate = 500

    @Option(help: "Seconds the latency run lasts.")
    var seconds = 10

    @Option(help: "Path of the compiled C baseline (scripts/bench-amqp --build-only); without it only the Swift publisher is the baseline.")
    var baseline: String?

    @Option(
        help:
            "Path of the outbox-publisher executable; when given, it drains a second pre-filled outbox with --once and its time and peak memory are reported."
    )
    var publisherExecutable: String?

    @Option(help: "The broker: one node, or a comma-separated list of a cluster's nodes.")
    var amqpURL = ProcessInfo.processInfo.environment["AMQP_URL"] ?? "amqp://guest:guest@127.0.0.1:5673/"

    /// The type of the queue the relay publishes into.
    enum SinkType: String, ExpressibleByArgument {
        case classic, quorum
    }

    @Option(help: "The type of the queue the relay publishes into: classic, or quorum (replicated on every node of a cluster).")
    var sinkType = SinkType.classic

    func run() async throws {
        let context = "bench-\(UUID().uuidString.prefix(6).lowercased())"
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(context)
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let connection = AMQPConnection(configuration: try AMQPConnection.Configuration(url: amqpURL))
        try await connection.connect()
        let exchange = EventMessage.exchange(for: context)
        let queue = "\(context).sink"
        try await connection.declare(AMQPExchange(name: exchange, kind: .topic))
        _ = try await connection.declare(
            AMQPQueue(name: queue, durable: true, arguments: sinkType == .quorum ? ["x-queue-type": "quorum"] : [:]))
        try await connection.bind(AMQPBinding(queue: queue, exchange: exchange, routingKey: "#"))
        defer {
            Task {
                _ = try? await connection.deleteQueue(queue)
                try? await connection.deleteExchange(exchange)
                await connection.close()
            }
        }

        let storage = try SQLiteEventStorage(path: directory.appendingPathComponent("outbox.sqlite").path)
        let store = EventStore(storage: storage, registry: EventRegistry([Reading.self]))
        print(
            "relay benchmark: \(events) events of \(Reading.sample(0).payloadSize) bytes, window \(window), batch \(batchSize), \(sinkType) sink queue, \(try AMQPConnection.Configuration(url: amqpURL).endpoints.count) broker node(s)"
        )
        try await prefill(store, count: events)
        BenchmarkTable.header()

        // Baseline: the same messages through the confirming publisher alone.
        let messages = try await storage.claimOutboxEntries(limit: events, now: Date(), leaseDuration: 0)
            .map { EventMessage.outgoing($0.event, context: context) }
        let publisher = AMQPPublisher(connection: connection, window: window)
        let rawStart = ContinuousClock.now
        let rawCPU = CPUTime.now()
        for chunk in stride(from: 0, to: messages.count, by: batchSize) {
            _ = try await publisher.publish(Array(messages[chunk..<min(chunk + batchSize, messages.count)]))
        }
        let rawElapsed = ContinuousClock.now - rawStart
        BenchmarkTable.line(
            "raw confirmed publish (window \(window))", events: messages.count, elapsed: rawElapsed, cpu: CPUTime.now() - rawCPU,
            latencies: [])
        _ = try await connection.purgeQueue(queue)

        let relay = OutboxRelay(
            storage: storage, publisher: publisher,
            configuration: OutboxRelay.Configuration(context: context, batchSize: batchSize, retention: nil)
        )
        let relayStart = ContinuousClock.now
        let relayCPU = CPUTime.now()
        let statistics = try await relay.runOnce()
        let relayElapsed = ContinuousClock.now - relayStart
        BenchmarkTable.line(
            "relay: SQLite outbox → confirmed publish", events: statistics.published, elapsed: relayElapsed, cpu: CPUTime.now() - relayCPU,
            latencies: [])
        let relayRate = Double(statistics.published) / relayElapsed.seconds
        print(String(format: "relay / Swift confirmed publish: %.1f%%", relayRate / (Double(messages.count) / rawElapsed.seconds) * 100))
        if let baseline {
            let configuration = try AMQPConnection.Configuration(url: amqpURL)
            let c = try CBaseline.run(
                baseline, host: configuration.host, port: configuration.port, mode: "publish", queue: "\(context).c-baseline",
                count: events, parameter: window)
            print(
                String(
                    format: "rabbitmq-c confirmed publish (window %d): %.0f msg/s; relay / C: %.1f%%", window, c.rate,
                    relayRate / c.rate * 100))
            _ = try await connection.deleteQueue("\(context).c-baseline")
        }
        _ = try await connection.purgeQueue(queue)

        if let publisherExecutable {
            try await publisherRun(publisherExecutable, context: context, directory: directory)
            _ = try await connection.purgeQueue(queue)
        }
        try await latencyRun(store: store, relay: relay, connection: connection, queue: queue)
    }

    /// Drains a second pre-filled outbox with the `outbox-publisher` executable.
    private func publisherRun(_ executable: String, context: String, directory: URL) async throws {
        let path = directory.appendingPathComponent("publisher.sqlite").path
        let storage = try SQLiteEventStorage(path: path)
        try await prefill(EventStore(storage: storage, registry: EventRegistry([Reading.self])), count: events)
        try storage.close()
        let config = directory.appendingPathComponent("publisher.yaml").path
        try """
        broker:
          url: \(amqpURL)
        relay:
          batch_size: \(batchSize)
          window: \(window)
        contexts:
          \(context):
            store: sqlite:\(path)
        """.write(toFile: config, atomically: true, encoding: .utf8)
        let result = try MeasuredProcess.run(
            executable, ["--context", context, "--config", config, "--once"], environment: ["AMQP_URL": amqpURL])
        guard result.status == 0 else { throw ValidationError("outbox-publisher exited with \(result.status)") }
        BenchmarkTable.line("outbox-publisher --once (process)", events: events, elapsed: result.elapsed, latencies: [])
        print("outbox-publisher peak RSS: \(result.maximumResidentKiB / 1024) MiB")
    }

    /// Appends one event per transaction at `rate` per second while the relay runs, and
    /// measures from each commit to the event's delivery to a consumer.
    private func latencyRun(store: EventStore, relay: OutboxRelay, connection: AMQPConnection, queue: String) async throws {
        // Commit and delivery times are joined by event id at the end: a delivery can
        // arrive before the producer has noted its commit time.
        let committed = Mutex<[String: ContinuousClock.Instant]>([:])
        let delivered = Mutex<[String: ContinuousClock.Instant]>([:])
        let total = rate * seconds
        let consumerConnection = AMQPConnection(configuration: try AMQPConnection.Configuration(url: amqpURL))
        try await consumerConnection.connect()
        let consumer = try await consumerConnection.consume(queue: queue, prefetch: 500)
        let consuming = Task {
            for try await delivery in consumer.deliveries {
                let now = ContinuousClock.now
                consumer.ack(delivery)
                if let id = delivery.properties.messageId {
                    delivered.withLock { $0[id] = now }
                }
            }
        }
        let relaying = Task { try await relay.run() }
        let interval = Duration.nanoseconds(1_000_000_000 / Int64(rate))
        let start = ContinuousClock.now
        let cpu = CPUTime.now()
        for index in 0..<total {
            let due = start + interval * index
            if due > .now { try await Task.sleep(until: due) }
            let envelope = EventEnvelope(Reading.sample(index))
            try await store.publish([envelope], to: try StreamID("meter-\(index % 50)"))
            let commit = ContinuousClock.now
            committed.withLock { $0[envelope.id.uuidString.lowercased()] = commit }
        }
        let deadline = ContinuousClock.now + .seconds(30)
        while delivered.withLock({ $0.count }) < total, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(20))
        }
        let elapsed = ContinuousClock.now - start
        relaying.cancel()
        consuming.cancel()
        await consumer.cancel()
        await consumerConnection.close()
        let commits = committed.withLock { $0 }
        let latencies = delivered.withLock { deliveries in
            deliveries.compactMap { id, time in commits[id].map { time - $0 } }
        }
        BenchmarkTable.line(
            "commit → delivered at \(rate)/s", events: latencies.count, elapsed: elapsed, cpu: CPUTime.now() - cpu, latencies: latencies)
        if latencies.count < total {
            print("  \(total - latencies.count) events were not delivered within 30 s")
        }
    }

    private func prefill(_ store: EventStore, count: Int) async throws {
        var index = 0
        while index < count {
            var batch = WriteBatch()
            for _ in 0..<min(1000, count - index) {
                try batch.publish([EventEnvelope(Reading.sample(index))], to: try StreamID("meter-\(index % 50)"))
                index += 1
            }
            try await store.commit(batch)
        }
    }
}

/// A meter reading with a JSON body of about 600 bytes.
struct Reading: Event {
    var meter: String
    var index: Int
    var values: [Double]
    var note: String

    static func sample(_ index: Int) -> Reading {
        Reading(
            meter: "meter-\(index % 50)", index: index, values: (0..<24).map { Double($0) * 1.25 + Double(index % 7) },
            note: String(repeating: "x", count: 300))
    }

    var payloadSize: Int { (try? JSONEncoder().encode(self).count) ?? 0 }
}
