import Foundation
public import Testing

/// A RabbitMQ node of a test's own, run with `scripts/rabbitmq` on the port named by
/// `ES_TEST_PRIVATE_RABBITMQ_PORT`, for tests that stop the broker. Unlike the shared test
/// broker, nothing else uses it. Its data lives in `.run/rabbitmq-private-test` (or
/// `ES_TEST_PRIVATE_RABBITMQ_DIR`); its node name is `private-test@localhost` (or
/// `ES_TEST_PRIVATE_RABBITMQ_NODENAME`).
public enum PrivateBroker {
    /// The node's AMQP port, when the environment names one.
    public static let port: Int? = ProcessInfo.processInfo.environment["ES_TEST_PRIVATE_RABBITMQ_PORT"].flatMap { Int($0) }

    /// The node's URL with the default user and vhost.
    public static var url: String { "amqp://guest:guest@127.0.0.1:\(port ?? 0)/" }

    private static var directory: URL {
        ProcessInfo.processInfo.environment["ES_TEST_PRIVATE_RABBITMQ_DIR"].map { URL(fileURLWithPath: $0) }
            ?? TestRepository.root.appendingPathComponent(".run/rabbitmq-private-test")
    }

    /// The variables `scripts/rabbitmq` reads to run this node instead of the shared one.
    private static var environment: [String: String] {
        [
            "ES_RABBITMQ_PORT": "\(port ?? 0)",
            "ES_RABBITMQ_NODENAME": ProcessInfo.processInfo.environment["ES_TEST_PRIVATE_RABBITMQ_NODENAME"] ?? "private-test@localhost",
            "ES_RABBITMQ_DIR": directory.path,
        ]
    }

    private static func script(_ command: String) async throws {
        let script = TestRepository.root.appendingPathComponent("scripts/rabbitmq").path
        let result = try await ChildProcess.run("/bin/bash", [script, command], environment: environment)
        guard result.status == 0 else {
            throw TestBroker.CommandError(command: "scripts/rabbitmq \(command)", status: result.status)
        }
    }

    /// Starts the node and waits until it accepts connections.
    public static func start() async throws { try await script("start") }

    /// Stops the node.
    public static func stop() async throws { try await script("stop") }

    /// Stops the node and deletes its data.
    public static func remove() async {
        try? await stop()
        try? FileManager.default.removeItem(at: directory)
    }
}

extension Trait where Self == ConditionTrait {
    /// The test runs its own broker; skipped unless `ES_TEST_PRIVATE_RABBITMQ_PORT` names a free port for it.
    public static var requiresPrivateBroker: Self {
        .enabled(
            if: PrivateBroker.port != nil,
            "stops a broker of its own: set ES_TEST_PRIVATE_RABBITMQ_PORT to a free port for it (e.g. 5687)")
    }
}
