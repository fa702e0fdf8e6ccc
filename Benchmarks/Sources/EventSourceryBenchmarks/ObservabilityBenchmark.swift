import EventSourceryRabbitMQ
import ArgumentParser
import EventSourcery
import EventSourceryAMQP
import EventSourcerySQLite
import Foundation
import Metrics
import Synchronization
import Tracing

/// Relay and consumer throughput with metrics (Prometheus), then metrics and tracing (a
/// span-creating, W3C-propagating tracer) recording every trace, and recording a sampled share
/// (parent-based ratio), beside all off, in the same run: the modes
/// rotate, each run draining a fresh pre-filled outbox through the relay into a consumer's inbox and
/// then consuming it (one append per event through the inbox).
struct ObservabilityBenchmark: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "observability",
        abstract: "Relay and consumer throughput with metrics and tracing on beside off, alternating in one run."
    )

    @Option(help: "Events per run.")
    var events = 20_000

    @Option(help: "Rounds; each runs every mode (off, metrics, metrics + tracing, metrics + sampled tracing), starting with another one.")
    var rounds = 3

    @Option(help: "The share of traces the sampled mode records (parent-based trace-id ratio), as a production setting would.")
    var samplingRatio = 0.1

    @Option(help: "Entries the relay claims per round.")
    var batchSize = 1000

    @Option(help: "Consumer lanes.")
    var concurrency = 4

    @Option(help: "The broker.")
    var amqpURL = ProcessInfo.processInfo.environment["AMQP_URL"] ?? "amqp://guest:guest@127.0.0.1:5673/"

    /// One mode of a run.
    private struct Mode {
        var name: String
        var metrics: Bool
        /// The tracer's sampling ratio; `nil`: no tracer.
        var sampling: Double?
    }

    func validate() throws {
        guard samplingRatio > 0, samplingRatio <= 1 else {
            throw ValidationError("--sampling-ratio must be in (0, 1], got \(samplingRatio)")
        }
    }

    func run() async throws {
        let metrics = SwitchingMetricsFactory()
        MetricsSystem.bootstrap(metrics)
        let bench = try await BenchContext(prefix: "bench-obs", amqpURL: amqpURL)
        defer { Task { await bench.tearDown() } }
        let (source, directory, connection, subscription, topology) = (
            bench.source, bench.directory, bench.connection, bench.subscription, bench.topology
        )
        print(
            "observability benchmark: \(events) events per run, \(rounds) rounds, relay batch \(batchSize), consumer \(concurrency) lanes")
        BenchmarkTable.header()

        let off = Mode(name: "off", metrics: false, sampling: nil)
        let modes = [
            off, Mode(name: "metrics", metrics: true, sampling: nil), Mode(name: "metrics + tracing", metrics: true, sampling: 1),
            Mode(name: "metrics + tracing \(Int((samplingRatio * 100).rounded())) %", metrics: true, sampling: samplingRatio),
        ]
        var rates: [String: (relay: [Double], consumer: [Double])] = [:]
        var tracers = [1.0: BenchTracer()]
        if tracers[samplingRatio] == nil { tracers[samplingRatio] = BenchTracer(ratio: samplingRatio) }
        for round in 0..<rounds {
            // Each round starts with another mode, so that none always runs first.
            for step in 0..<modes.count {
                let mode = modes[(round + step) % modes.count]
                metrics.set(mode.metrics)
                let modeTracer: any Tracer = mode.sampling.flatMap { tracers[$0] } ?? NoOpTracer()
                let path = directory.appendingPathComponent("round-\(round)-\(step).sqlite").path
                let relay = try await relayRun(source: source, path: path, tracer: modeTracer, connection: connection)
                BenchmarkTable.line("relay, \(mode.name)", events: events, elapsed: relay.elapsed, cpu: relay.cpu, latencies: [])
                let consumer = try await consumeRun(
                    topology: topology, subscription: subscription, path: path + "-consumer", tracer: modeTracer, connection: connection)
                BenchmarkTable.line("consumer, \(mode.name)", events: events, elapsed: consumer.elapsed, cpu: consumer.cpu, latencies: [])
                rates[mode.name, default: ([], [])].relay.append(Double(events) / relay.elapsed.seconds)
                rates[mode.name, default: ([], [])].consumer.append(Double(events) / consumer.elapsed.seconds)
            }
        }
        func median(_ values: [Double]) -> Double { values.sorted()[values.count / 2] }
        let base = rates[off.name] ?? ([], [])
        for mode in modes.dropFirst() {
            let measured = rates[mode.name] ?? ([], [])
            print(
                String(
                    format: "%@: relay median %.0f events/s vs %.0f off (%.3f×); consumer median %.0f vs %.0f off (%.3f×)", mode.name,
                    median(measured.relay), median(base.relay), median(measured.relay) / median(base.relay), median(measured.consumer),
                    median(base.consumer), median(measured.consumer) / median(base.consumer)))
        }
        for (ratio, tracer) in tracers.sorted(by: { $0.key > $1.key }) {
            print("spans exported with sampling ratio \(ratio): \(tracer.ended.load(ordering: .relaxed))")
        }
    }

    /// Pre-fills an outbox (the source's events, untraced) and drains it with a relay into the
    /// consumer's inbox; returns the relay's time.
    private func relayRun(
        source: String, path: String, tracer: any Tracer, connection: AMQPConnection
    ) async throws -> (elapsed: Duration, cpu: Duration) {
        let storage = try SQLiteEventStorage(path: path)
        defer { try? storage.close() }
        let store = EventStore(storage: storage, registry: EventRegistry([QueuedItem.self]), tracer: NoOpTracer())
        var index = 0
        while index < events {
            var batch = WriteBatch()
            for _ in 0..<min(1000, events - index) {
                try batch.publish([EventEnvelope(QueuedItem.sample(index))], to: try StreamID("item-\(index % 1000)"))
                index += 1
            }
            try await store.commit(batch)
        }
        let relay = OutboxRelay(
            storage: storage, publisher: AMQPPublisher(connection: connection),
            configuration: OutboxRelay.Configuration(context: source, batchSize: batchSize, retention: nil), tracer: tracer)
        let start = ContinuousClock.now
        let cpu = CPUTime.now()
        let statistics = try await relay.runOnce()
        let measured = (ContinuousClock.now - start, CPUTime.now() - cpu)
        guard statistics.published == events else { throw ValidationError("the relay published \(statistics.published) of \(events)") }
        return measured
    }

    /// Consumes the inbox with a ``ContextConsumer`` whose handler appends one event per
    /// delivery, until every event is handled; returns its time.
    private func consumeRun(
        topology: ContextTopology, subscription: EventSubscription, path: String, tracer: any Tracer, connection: AMQPConnection
    ) async throws -> (elapsed: Duration, cpu: Duration) {
        let storage = try SQLiteEventStorage(path: path)
        defer { try? storage.close() }
        let store = EventStore(
            storage: storage, registry: EventRegistry([QueuedItem.self, QueuedItemHandled.self, HandlerFailed.self]), tracer: tracer)
        let handled = HandledCount(target: events)
        let handler = EventHandler(name: "append-one", subscriptions: [subscription]) { input, batch in
            guard let item = input.as(QueuedItem.self) else { return }
            try batch.append([EventEnvelope(QueuedItemHandled(index: item.index))], to: StreamID("handled-\(item.index % 1000)"))
            handled.add()
        }
        let consumer = ContextConsumer(
            connection: connection, store: store, handlers: [handler],
            configuration: ContextConsumer.Configuration(context: topology.context, concurrency: concurrency, declaresTopology: false),
            topology: topology)
        let start = ContinuousClock.now
        let cpu = CPUTime.now()
        let running = Task { try await consumer.run() }
        await handled.waitForTarget()
        running.cancel()
        try await running.value
        let measured = (ContinuousClock.now - start, CPUTime.now() - cpu)
        let failures = try await store.streamVersion(StreamID("failures-\(topology.context)"))
        guard failures == 0 else { throw ValidationError("the consumer recorded \(failures) failures") }
        return measured
    }
}
