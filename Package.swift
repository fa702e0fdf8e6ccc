// swift-tools-version: 6.1
import PackageDescription

/// Settings shared by every target: Swift 6 language mode with strict concurrency
/// (the default of tools 6.x) plus the upcoming features the Swift server packages use.
let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
    .enableUpcomingFeature("InternalImportsByDefault"),
]

let package = Package(
    name: "EventSourcery",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "EventSourcery", targets: ["EventSourcery"]),
        .library(name: "EventSourcerySQLite", targets: ["EventSourcerySQLite"]),
        .library(name: "EventSourceryPostgres", targets: ["EventSourceryPostgres"]),
        .library(name: "EventSourceryTesting", targets: ["EventSourceryTesting"]),
        .library(name: "AMQPClient", targets: ["AMQPClient"]),
        .library(name: "EventSourceryAMQP", targets: ["EventSourceryAMQP"]),
        .library(name: "DemoContexts", targets: ["DemoContexts"]),
        .executable(name: "outbox-publisher", targets: ["OutboxPublisher"]),
        .executable(name: "context-consumer", targets: ["ContextConsumer"]),
        .executable(name: "eventsourcery-example", targets: ["EventSourceryExample"]),
        .executable(name: "eventsourcery-bench", targets: ["EventSourceryBenchmarks"]),
        .executable(name: "order-api", targets: ["OrderAPIServer"]),
        .executable(name: "flow-trace", targets: ["FlowTraceCommand"]),
        .executable(name: "eventsourcery-demo", targets: ["DemoRunner"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.0"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/groue/GRDB.swift.git", from: "7.10.0"),
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.0"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.2.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.0"),
    ],
    targets: [
        // MARK: Event sourcing core
        .target(
            name: "EventSourcery",
            dependencies: [.product(name: "Logging", package: "swift-log")],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "EventSourcerySQLite",
            dependencies: [
                "EventSourcery",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "EventSourceryPostgres",
            dependencies: [
                "EventSourcery",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "EventSourceryTesting",
            dependencies: ["EventSourcery"],
            swiftSettings: swiftSettings
        ),

        // MARK: AMQP transport
        .systemLibrary(
            name: "CRabbitMQ",
            pkgConfig: "librabbitmq",
            providers: [.apt(["librabbitmq-dev"])]
        ),
        .target(
            name: "AMQPClient",
            dependencies: [
                "CRabbitMQ",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),

        // MARK: Bridge between the store and the broker
        .target(
            name: "EventSourceryAMQP",
            dependencies: [
                "EventSourcery",
                "AMQPClient",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),

        // MARK: Services: configuration and bootstrapping shared by the executables
        .target(
            name: "EventSourceryServices",
            dependencies: [
                "EventSourcery",
                "EventSourcerySQLite",
                "EventSourceryPostgres",
                "EventSourceryAMQP",
                "AMQPClient",
                .product(name: "Yams", package: "Yams"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),

        // MARK: Demo contexts: order, payment, invoice
        .target(
            name: "DemoContexts",
            dependencies: ["EventSourcery", "EventSourceryAMQP"],
            swiftSettings: swiftSettings
        ),

        // MARK: Order entry point: the HTTP API of the order context
        .target(
            name: "OrderAPI",
            dependencies: [
                "EventSourcery",
                "DemoContexts",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),

        // MARK: Flow trace: the causal timeline of one flow across context stores
        .target(
            name: "FlowTrace",
            dependencies: ["EventSourcery"],
            swiftSettings: swiftSettings
        ),

        // MARK: Executables
        .executableTarget(
            name: "OrderAPIServer",
            dependencies: [
                "EventSourcery",
                "EventSourceryServices",
                "DemoContexts",
                "OrderAPI",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "FlowTraceCommand",
            dependencies: [
                "EventSourcery",
                "EventSourceryServices",
                "FlowTrace",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "DemoRunner",
            dependencies: [
                "EventSourcery",
                "EventSourceryServices",
                "EventSourceryAMQP",
                "AMQPClient",
                "DemoContexts",
                "FlowTrace",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "ContextConsumer",
            dependencies: [
                "EventSourcery",
                "EventSourceryAMQP",
                "EventSourceryServices",
                "DemoContexts",
                "AMQPClient",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "OutboxPublisher",
            dependencies: [
                "EventSourcery",
                "EventSourceryAMQP",
                "EventSourceryServices",
                "AMQPClient",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "EventSourceryExample",
            dependencies: ["EventSourcery", "EventSourcerySQLite"],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "EventSourceryBenchmarks",
            dependencies: [
                "EventSourcery",
                "EventSourcerySQLite",
                "EventSourceryPostgres",
                "EventSourceryAMQP",
                "AMQPClient",
                "DemoContexts",  // the flow latency of the consumer benchmark
                .product(name: "GRDB", package: "GRDB.swift"),  // the raw-GRDB baseline of the store benchmark
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: swiftSettings
        ),

        // MARK: Tests
        .testTarget(
            name: "EventSourceryTests",
            dependencies: ["EventSourcery", "EventSourceryTesting"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "EventSourcerySQLiteTests",
            dependencies: [
                "EventSourcery", "EventSourcerySQLite", "EventSourceryTesting",
                // A second, raw connection to lock the database in the locking tests.
                .product(name: "GRDB", package: "GRDB.swift"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "EventSourceryPostgresTests",
            dependencies: [
                "EventSourcery", "EventSourceryPostgres", "EventSourceryTesting",
                "EventSourceryAMQP", "AMQPClient", "AMQPTestSupport",
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "AMQPTestSupport",
            dependencies: ["AMQPClient", .product(name: "Logging", package: "swift-log")],
            path: "Tests/AMQPTestSupport",
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "AMQPClientTests",
            dependencies: ["AMQPClient", "AMQPTestSupport", .product(name: "Logging", package: "swift-log")],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "OrderAPITests",
            dependencies: [
                "EventSourcery", "EventSourcerySQLite", "DemoContexts", "OrderAPI",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "FlowTraceTests",
            dependencies: ["EventSourcery", "EventSourcerySQLite", "EventSourceryAMQP", "DemoContexts", "FlowTrace"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "EventSourceryAMQPTests",
            dependencies: [
                "EventSourcery", "EventSourceryAMQP", "AMQPClient", "AMQPTestSupport", "EventSourcerySQLite",
                "EventSourceryServices", "DemoContexts",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
    ]
)
