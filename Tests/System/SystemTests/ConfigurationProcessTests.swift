import EventSourceryAMQP
import EventSourceryRabbitMQ
import Foundation
import TestSupport
import Testing

/// The services reject a bad configuration at start with exit code 78 and a message naming
/// the entry and where it was set, before they touch the broker or the store.
@Suite(.timeLimit(.minutes(1)))
struct ConfigurationProcessTests {
    /// The test environment's AMQP_URL would override the configuration file.
    static let withoutOverrides = ["AMQP_URL": ""]

    /// Writes a configuration with the given `broker:` and `relay:` lines and a `payment`
    /// context (handler code built in) into a new folder; returns the file's path.
    private func configuration(broker: String = "", relay: String = "", store: String? = nil) throws -> String {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("configuration-\(UUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let path = directory.appendingPathComponent("eventsourcery.yaml").path
        try """
        broker:
          url: amqp://guest:guest@127.0.0.1:1/
        \(broker)
        relay:
          batch_size: 10
        \(relay)
        contexts:
          order:
            store: sqlite:\(directory.path)/order.sqlite
            publishes: [OrderPlaced]
          payment:
            store: \(store ?? "sqlite:\(directory.path)/payment.sqlite")
            publishes: [PaymentSucceeded, PaymentFailed]
            handlers:
              charge-order:
                subscribes: [order.OrderPlaced]
        """.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    private func removeFolder(of path: String) {
        try? FileManager.default.removeItem(at: URL(fileURLWithPath: path).deletingLastPathComponent())
    }

    @Test(arguments: ["1e300", ".inf", ".nan"])
    func theOutboxPublisherRejectsALeaseOutOfRange(_ value: String) async throws {
        let config = try configuration(relay: "  lease_seconds: \(value)")
        defer { removeFolder(of: config) }
        let result = try await ChildProcess.run(
            BuiltProducts.path("outbox-publisher"), ["--context", "order", "--config", config, "--once"], environment: Self.withoutOverrides
        )
        #expect(result.status == 78, "\(result.standardError)")
        #expect(result.standardError.contains("Bad configuration: \(config):6:3: relay.lease_seconds: must be a finite number of seconds"))
    }

    @Test func theOutboxPublisherRejectsAHeartbeatOutOfRangeBeforeConnecting() async throws {
        let config = try configuration(broker: "  heartbeat_seconds: 70000")
        defer { removeFolder(of: config) }
        let result = try await ChildProcess.run(
            BuiltProducts.path("outbox-publisher"), ["--context", "order", "--config", config, "--once"], environment: Self.withoutOverrides
        )
        #expect(result.status == 78, "\(result.standardError)")
        #expect(result.standardError.contains("\(config):3:3: broker.heartbeat_seconds: heartbeat must be whole seconds within 0...65535"))
        #expect(!result.standardError.contains("Cannot connect"))
    }

    @Test func theOutboxPublisherNamesADuplicateKeysLine() async throws {
        let config = try configuration(relay: "  batch_size: 20")
        defer { removeFolder(of: config) }
        let result = try await ChildProcess.run(
            BuiltProducts.path("outbox-publisher"), ["--context", "order", "--config", config, "--once"], environment: Self.withoutOverrides
        )
        #expect(result.status == 78, "\(result.standardError)")
        #expect(result.standardError.contains("\(config):5:3: is not valid YAML: the key 'batch_size' is written more than once"))
    }

    @Test func theContextConsumerRejectsAStoreWithAnotherScheme() async throws {
        let config = try configuration(store: "redis:cache")
        defer { removeFolder(of: config) }
        let result = try await ChildProcess.run(
            BuiltProducts.path("context-consumer"), ["--context", "payment", "--config", config], environment: Self.withoutOverrides)
        #expect(result.status == 78, "\(result.standardError)")
        #expect(result.standardError.contains("\(config):12:5: contexts.payment.store: 'redis:cache' has the scheme 'redis:'"))
        #expect(!FileManager.default.fileExists(atPath: "redis:cache"))
    }

    @Test func theContextConsumerNamesTheEnvironmentVariable() async throws {
        let config = try configuration()
        defer { removeFolder(of: config) }
        let result = try await ChildProcess.run(
            BuiltProducts.path("context-consumer"), ["--context", "payment", "--config", config],
            environment: ["AMQP_URL": "", "ES_CONSUMER_PREFETCH": "70000"])
        #expect(result.status == 78, "\(result.standardError)")
        #expect(
            result.standardError.contains(
                "Bad configuration: environment variable ES_CONSUMER_PREFETCH: must be within 1...65535, got 70000"))
        let wait = try await ChildProcess.run(
            BuiltProducts.path("context-consumer"), ["--context", "payment", "--config", config],
            environment: ["AMQP_URL": "", "ES_BROKER_WAIT": "maybe"])
        #expect(wait.status == 78, "\(wait.standardError)")
        #expect(wait.standardError.contains("environment variable ES_BROKER_WAIT: 'maybe' is not a boolean"))
    }
}

/// An inbox declared before with another delivery limit is a configuration error (78) that
/// says which argument differs and how to migrate.
@Suite(.timeLimit(.minutes(1)), .requiresBroker)
struct InboxMismatchProcessTests {
    @Test func anInboxWithAnotherDeliveryLimitIsAConfigurationError() async throws {
        let context = "mismatch-\(UUID().uuidString.prefix(8).lowercased())"
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("mismatch-\(UUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let connection = try await TestBroker.connect()
        let existing = ContextTopology(ContextDescription(name: context, deliveryLimit: 3, partitions: 2))
        try await existing.declare(on: connection)
        let config = directory.appendingPathComponent("eventsourcery.yaml").path
        try """
        broker:
          url: \(TestBroker.url)
        contexts:
          \(context):
            store: sqlite:\(directory.path)/store.sqlite
            consumer:
              delivery_limit: 5
              partitions: 2
        """.write(toFile: config, atomically: true, encoding: .utf8)

        let result = try await ChildProcess.run(
            BuiltProducts.path("context-consumer"), ["--context", context, "--config", config, "--list-dead"], environment: ["AMQP_URL": ""]
        )

        for queue in existing.queues { _ = try? await connection.deleteQueue(queue.name) }
        for exchange in existing.exchanges { try? await connection.deleteExchange(exchange.name) }
        await connection.close()
        #expect(result.status == 78, "\(result.standardError)")
        #expect(result.standardError.contains("inequivalent arg 'x-delivery-limit' for queue '\(context).inbox.0'"))
        #expect(result.standardError.contains("contexts.\(context).consumer.delivery_limit (\(config):7:7, 5 now)"))
        #expect(result.standardError.contains("rabbitmqctl delete_queue \(context).inbox.0"))
    }
}
