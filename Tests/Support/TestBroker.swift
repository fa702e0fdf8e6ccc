public import EventSourceryRabbitMQ
import Foundation
public import Logging

/// Access to the test broker: `AMQP_URL` (default: the private node of `scripts/rabbitmq`).
public enum TestBroker {
    public static let url = ProcessInfo.processInfo.environment["AMQP_URL"] ?? "amqp://guest:guest@127.0.0.1:5673/"

    public static var configuration: AMQPConnection.Configuration {
        get throws { try AMQPConnection.Configuration(url: url) }
    }

    public static let logger: Logger = {
        var logger = Logger(label: "amqp.tests")
        logger.logLevel = ProcessInfo.processInfo.environment["AMQP_TEST_LOG"] == nil ? .warning : .debug
        return logger
    }()

    /// A connected connection.
    public static func connect(_ adjust: (inout AMQPConnection.Configuration) -> Void = { _ in }) async throws -> AMQPConnection {
        var configuration = try configuration
        adjust(&configuration)
        let connection = AMQPConnection(configuration: configuration, logger: logger)
        try await connection.connect()
        return connection
    }

    /// A name no other test uses.
    public static func uniqueName(_ prefix: String) -> String {
        "test.\(prefix).\(UUID().uuidString.prefix(8).lowercased())"
    }

    /// Runs a command and returns its standard output; throws on a non-zero exit.
    @discardableResult
    public static func run(_ executable: String, _ arguments: [String]) async throws -> String {
        let result = try await ChildProcess.run(executable, arguments)
        guard result.status == 0 else {
            throw CommandError(command: ([executable] + arguments).joined(separator: " "), status: result.status)
        }
        return result.standardOutput
    }

    /// Restarts the private broker node (keeps its data).
    public static func restartBroker() async throws {
        try await run("/bin/bash", [TestRepository.root.appendingPathComponent("scripts/rabbitmq").path, "restart"])
    }

    public struct CommandError: Error, CustomStringConvertible {
        public var command: String
        public var status: Int32
        public var description: String { "\(command) exited with \(status)" }
    }
}
