public import EventSourcery
import EventSourceryPostgres
import EventSourcerySQLite
public import ServiceLifecycle

/// A store opened by ``ServiceBootstrap/openStore(_:logger:)``, run as the first service of a
/// process's `ServiceGroup` so that it is closed last: it waits for the group's graceful
/// shutdown (or cancellation), after every later service has stopped, then closes the store.
public struct StoreService: Service {
    /// The store this service closes.
    public let storage: any EventStorage

    /// Creates the service of `storage`; nothing happens until ``run()``.
    public init(_ storage: any EventStorage) {
        self.storage = storage
    }

    /// Waits for graceful shutdown or cancellation, then closes the store.
    public func run() async throws {
        try? await gracefulShutdown()
        await Self.close(storage)
    }

    /// Closes `storage` (a SQLite file's connections, a PostgreSQL pool and its listeners);
    /// for stores that were opened without a service group, such as the admin commands'.
    public static func close(_ storage: any EventStorage) async {
        switch storage {
        case let sqlite as SQLiteEventStorage: try? sqlite.close()
        case let postgres as PostgresEventStorage: await postgres.shutdown()
        default: break
        }
    }
}
