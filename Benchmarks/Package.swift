// swift-tools-version: 6.1
import PackageDescription

// The benchmarks: a package of their own that depends on the library by path, so the
// test build never compiles them. `scripts/bench` builds and runs them in release mode.
let package = Package(
    name: "EventSourceryBenchmarks",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "eventsourcery-bench", targets: ["EventSourceryBenchmarks"])
    ],
    dependencies: [
        .package(name: "EventSourcery", path: ".."),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.0"),
        .package(url: "https://github.com/groue/GRDB.swift.git", from: "7.10.0"),
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.0"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-distributed-tracing.git", from: "1.3.0"),
    ],
    targets: [
        .executableTarget(
            name: "EventSourceryBenchmarks",
            dependencies: [
                .product(name: "EventSourcery", package: "EventSourcery"),
                .product(name: "EventSourcerySQLite", package: "EventSourcery"),
                .product(name: "EventSourceryPostgres", package: "EventSourcery"),
                .product(name: "EventSourceryAMQP", package: "EventSourcery"),
                .product(name: "EventSourceryRabbitMQ", package: "EventSourcery"),
                .product(name: "DemoContexts", package: "EventSourcery"),  // the flow latency of the consumer benchmark
                .product(name: "EventSourceryServices", package: "EventSourcery"),  // the demo's ContextHandlers
                .product(name: "GRDB", package: "GRDB.swift"),  // the raw-GRDB baseline of the store benchmark
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                // The observability benchmark: metrics through Prometheus, spans through a tracer.
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
            ],
            swiftSettings: [
                .enableUpcomingFeature("ExistentialAny"),
                .enableUpcomingFeature("MemberImportVisibility"),
                .enableUpcomingFeature("InternalImportsByDefault"),
                .enableUpcomingFeature("NonisolatedNonsendingByDefault"),
            ]
        )
    ]
)
