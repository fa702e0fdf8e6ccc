import EventSourcery
@testable public import EventSourceryPostgres
import Foundation
public import Logging
import PostgresNIO
import NIOConcurrencyHelpers

/// The test database: `POSTGRES_URL`, or the private cluster of `scripts/postgres start`.
public enum TestDatabase {
    public static let url =
        ProcessInfo.processInfo.environment["POSTGRES_URL"]
        ?? "postgres://eventsourcery:eventsourcery@127.0.0.1:5433/eventsourcery"

    public static let logger = Logger(label: "EventSourceryPostgresTests")

    /// A configuration for a fresh schema `es_test_<random>`, so tests can run in parallel.
    public static func configuration(schema: String = freshSchemaName(), poolSize: Int = 4) throws -> PostgresEventStorage.Configuration {
        var configuration = try PostgresEventStorage.Configuration(url: url)
        configuration.schema = schema
        configuration.maximumConnections = poolSize
        configuration.connectTimeout = .seconds(5)
        return configuration
    }

    public static func freshSchemaName() -> String {
        "es_test_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").prefix(16).lowercased()
    }

    /// Connects a storage and runs it (``PostgresEventStorage/run()``) until its `shutdown()`,
    /// returning once its pool runs: tests use storages like this outside a `ServiceGroup`.
    public static func connect(_ configuration: PostgresEventStorage.Configuration) async throws -> PostgresEventStorage {
        let storage = try await PostgresEventStorage.connect(configuration: configuration, logger: logger)
        Task { try? await storage.run() }
        _ = try await storage.runningClient()
        return storage
    }

    /// Runs `body` with a storage on a fresh schema, then shuts it down and drops the schema.
    public static func withStorage<Result>(
        poolSize: Int = 4,
        _ body: (PostgresEventStorage) async throws -> Result
    ) async throws -> Result {
        let storage = try await connect(try configuration(poolSize: poolSize))
        do {
            let result = try await body(storage)
            await drop(storage)
            return result
        } catch {
            await drop(storage)
            throw error
        }
    }

    /// Opens `count` more storages on the schema of `storage`, like replicas of a service.
    public static func replicas(of storage: PostgresEventStorage, count: Int, poolSize: Int = 2) async throws -> [PostgresEventStorage] {
        var replicas: [PostgresEventStorage] = []
        for _ in 0..<count {
            var configuration = storage.configuration
            configuration.maximumConnections = poolSize
            replicas.append(try await connect(configuration))
        }
        return replicas
    }

    /// Drops the storage's schema and shuts it down.
    public static func drop(_ storage: PostgresEventStorage) async {
        let schema = PostgresEventStorage.quotedIdentifier(storage.configuration.schema)
        _ = try? await storage.runningClient().query("DROP SCHEMA IF EXISTS \(unescaped: schema) CASCADE", logger: logger).collect()
        await storage.shutdown()
    }
}
