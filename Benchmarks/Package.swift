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
