// swift-tools-version: 6.1
import PackageDescription

/// Settings shared by every target: Swift 6 language mode with strict concurrency
/// (the default of tools 6.x) plus the upcoming features the Swift server packages use.
let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
    .enableUpcomingFeature("InternalImportsByDefault"),
    .enableUpcomingFeature("NonisolatedNonsendingByDefault"),
]

/// A lock ThreadSanitizer understands (a pthread mutex) for the few values shared across
/// threads. `Synchronization.Mutex` parks with raw futex calls on Linux that ThreadSanitizer
/// does not see, so the unit tier would report false races.
let locks: Target.Dependency = .product(name: "NIOConcurrencyHelpers", package: "swift-nio")

/// Spans through swift-distributed-tracing: a no-op until the application bootstraps a tracer.
let tracing: Target.Dependency = .product(name: "Tracing", package: "swift-distributed-tracing")

let package = Package(
    name: "EventSourcery",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "EventSourcery", targets: ["EventSourcery"]),
        .library(name: "EventSourcerySQLite", targets: ["EventSourcerySQLite"]),
        .library(name: "EventSourceryPostgres", targets: ["EventSourceryPostgres"]),
        .library(name: "EventSourceryTesting", targets: ["EventSourceryTesting"]),
        .library(name: "EventSourceryRabbitMQ", targets: ["EventSourceryRabbitMQ"]),
        .library(name: "EventSourceryAMQP", targets: ["EventSourceryAMQP"]),
        .library(name: "EventSourceryServices", targets: ["EventSourceryServices"]),
        .library(name: "DemoContexts", targets: ["DemoContexts"]),
        .executable(name: "outbox-publisher", targets: ["OutboxPublisher"]),
        .executable(name: "context-consumer", targets: ["ContextConsumer"]),
        .executable(name: "eventsourcery-example", targets: ["EventSourceryExample"]),
        .executable(name: "order-api", targets: ["OrderAPIServer"]),
        .executable(name: "flow-trace", targets: ["FlowTraceCommand"]),
        .executable(name: "eventsourcery-demo", targets: ["DemoRunner"]),
        .executable(name: "demo-service", targets: ["DemoService"]),
        .executable(name: "shipping-service", targets: ["ShippingService"]),
    ],
    traits: [
        // Off by default: swift-otel and its HTTP client take minutes to build, so the default
        // build and the test command never resolve or compile them (`swift build --traits OTLP`).
        .trait(name: "OTLP", description: "The service kit exports spans over OTLP/HTTP (swift-otel) when configured to.")
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.0"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.81.0"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/groue/GRDB.swift.git", from: "7.10.0"),
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.0"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.2.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.0"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-distributed-tracing.git", from: "1.3.0"),
        .package(url: "https://github.com/swift-otel/swift-otel.git", from: "1.6.0", traits: ["OTLPHTTP"]),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
    ],
    targets: [
        // MARK: Event sourcing core
        .target(
            name: "EventSourcery",
            dependencies: [locks, tracing, .product(name: "Logging", package: "swift-log")],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "EventSourcerySQLite",
            dependencies: [
                locks,
                "EventSourcery",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "GRDBSQLite", package: "GRDB.swift"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "EventSourceryPostgres",
            dependencies: [
                locks,
                "EventSourcery",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "EventSourceryTesting",
            dependencies: [locks, "EventSourcery"],
            swiftSettings: swiftSettings
        ),

        // MARK: AMQP transport
        .systemLibrary(
            name: "CRabbitMQ",
            pkgConfig: "librabbitmq",
            providers: [.apt(["librabbitmq-dev"])]
        ),
        .target(
            name: "EventSourceryRabbitMQ",
            dependencies: [
                locks,
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
                locks,
                tracing,
                "EventSourcery",
                "EventSourceryRabbitMQ",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),

        // MARK: The service kit: configuration, bootstrapping and the `main` of context services
        .target(
            name: "EventSourceryServices",
            dependencies: [
                locks,
                "EventSourcery",
                "EventSourcerySQLite",
                "EventSourceryPostgres",
                "EventSourceryAMQP",
                "EventSourceryRabbitMQ",
                .product(name: "Yams", package: "Yams"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                tracing,
                .product(name: "OTel", package: "swift-otel", condition: .when(traits: ["OTLP"])),
            ],
            swiftSettings: swiftSettings
        ),

        // MARK: Demo contexts: order, payment, invoice
        .target(
            name: "DemoContexts",
            dependencies: ["EventSourcery", "EventSourceryAMQP", "EventSourceryServices"],
            path: "Demo/DemoContexts",
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
            path: "Demo/OrderAPI",
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
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ],
            path: "Demo/OrderAPIServer",
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
            path: "Sources/Workers/FlowTraceCommand",
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "DemoRunner",
            dependencies: [
                "EventSourcery",
                "EventSourceryServices",
                "EventSourceryAMQP",
                "EventSourceryRabbitMQ",
                "DemoContexts",
                "FlowTrace",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            path: "Demo/DemoRunner",
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "DemoService",
            dependencies: [
                "DemoContexts", "EventSourceryServices", .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "Demo/DemoService",
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "ContextConsumer",
            dependencies: ["EventSourceryServices"],
            path: "Sources/Workers/ContextConsumer",
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "OutboxPublisher",
            dependencies: ["EventSourceryServices"],
            path: "Sources/Workers/OutboxPublisher",
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "ShippingService",
            dependencies: ["EventSourcery", "EventSourceryAMQP", "EventSourceryServices"],
            path: "Examples/Shipping",
            exclude: ["shipping.yaml"],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "EventSourceryExample",
            dependencies: ["EventSourcery", "EventSourcerySQLite"],
            path: "Examples/EventSourceryExample",
            swiftSettings: swiftSettings
        ),

        // MARK: Tests
        // Unit tier (`Tests/Unit`): no servers, no child processes; runs under ThreadSanitizer.
        // Integration tier (`Tests/Integration`, targets named `…IntegrationTests`): a real
        // RabbitMQ and PostgreSQL on loopback, SQLite files.
        // System tier (`Tests/System`): the built executables as processes, fault suites.
        .target(
            name: "TestSupport",
            dependencies: [
                locks,
                tracing,
                "EventSourcery", "EventSourceryRabbitMQ", "EventSourceryAMQP", "EventSourceryPostgres", "EventSourcerySQLite",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
            ],
            path: "Tests/Support",
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "EventSourceryTests",
            dependencies: ["EventSourcery", "EventSourceryTesting"],
            path: "Tests/Unit/EventSourceryTests",
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "EventSourceryRabbitMQTests",
            dependencies: ["EventSourceryRabbitMQ"],
            path: "Tests/Unit/EventSourceryRabbitMQTests",
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "EventSourceryAMQPTests",
            dependencies: [
                "EventSourcery", "EventSourceryAMQP", "EventSourceryRabbitMQ", "EventSourceryServices",
                "EventSourceryTesting", "DemoContexts", "TestSupport", tracing,
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                // The OTLP export test's receiver, only in a build with the trait.
                .product(name: "Hummingbird", package: "hummingbird", condition: .when(traits: ["OTLP"])),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio", condition: .when(traits: ["OTLP"])),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle", condition: .when(traits: ["OTLP"])),
            ],
            path: "Tests/Unit/EventSourceryAMQPTests",
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "OrderAPITests",
            dependencies: [
                "EventSourcery", "EventSourcerySQLite", "DemoContexts", "OrderAPI", "TestSupport", tracing,
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
            ],
            path: "Tests/Unit/OrderAPITests",
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "DemoRunnerTests",
            dependencies: ["DemoRunner"],
            path: "Tests/Unit/DemoRunnerTests",
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "FlowTraceTests",
            dependencies: ["EventSourcery", "EventSourcerySQLite", "EventSourceryAMQP", "DemoContexts", "FlowTrace"],
            path: "Tests/Unit/FlowTraceTests",
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "EventSourcerySQLiteIntegrationTests",
            dependencies: [
                "EventSourcery", "EventSourcerySQLite", "EventSourceryTesting",
                // A second, raw connection to lock the database in the locking tests.
                .product(name: "GRDB", package: "GRDB.swift"),
            ],
            path: "Tests/Integration/EventSourcerySQLiteIntegrationTests",
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "EventSourceryPostgresIntegrationTests",
            dependencies: [
                locks,
                "EventSourcery", "EventSourceryPostgres", "EventSourceryTesting",
                "EventSourceryAMQP", "EventSourceryRabbitMQ", "TestSupport",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
            ],
            path: "Tests/Integration/EventSourceryPostgresIntegrationTests",
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "EventSourceryRabbitMQIntegrationTests",
            dependencies: [locks, "EventSourceryRabbitMQ", "TestSupport", .product(name: "Logging", package: "swift-log")],
            path: "Tests/Integration/EventSourceryRabbitMQIntegrationTests",
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "EventSourceryAMQPIntegrationTests",
            dependencies: [
                locks,
                "EventSourcery", "EventSourceryAMQP", "EventSourceryRabbitMQ", "TestSupport", "EventSourcerySQLite",
                "EventSourceryServices", "DemoContexts", tracing,
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            path: "Tests/Integration/EventSourceryAMQPIntegrationTests",
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "SystemTests",
            dependencies: [
                "EventSourcery", "EventSourceryAMQP", "EventSourceryRabbitMQ", "TestSupport", "EventSourcerySQLite",
                "EventSourceryPostgres", "EventSourceryServices", "DemoContexts",
                .product(name: "Logging", package: "swift-log"), locks,
            ],
            path: "Tests/System/SystemTests",
            swiftSettings: swiftSettings
        ),
    ]
)
