import ArgumentParser

/// Benchmarks, separate from the tests: `scripts/bench` runs them in release mode.
@main
struct EventSourceryBenchmarks: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eventsourcery-bench",
        abstract: "Measures the event store and the AMQP bridge; prints events/s and latency percentiles.",
        subcommands: [
            StoreBenchmark.self, PostgresBenchmark.self, RelayBenchmark.self, AMQPBenchmark.self, ConsumerBenchmark.self,
            ObservabilityBenchmark.self, BrokerBenchmark.self,
        ]
    )
}
