public import EventSourcery
import EventSourceryPostgres
import EventSourcerySQLite
public import ServiceLifecycle

/// A store opened by ``ServiceBootstrap/openStore(_:logger:)``, run as the first service of a
/// process's `ServiceGroup` so that it is closed last: a PostgreSQL store runs its pool and
/// listener (``PostgresEventStorage/run()``) until the group's graceful shutdown, after every
/// later service has stopped; a SQLite store waits for it, then closes its file.
public struct StoreService: Service {
    /// The store this service closes.
    public let storage: any EventStorage

    /// Creates the service of `storage`; nothing happens until ``run()``.
    public init(_ storage: any EventStorage) {
        self.storage = storage
    }

    /// Runs the store until graceful shutdown or cancellation, then closes it.
    public func run() async throws {
        if let postgres = storage as? PostgresEventStorage {
            try await postgres.run()
        } else {
            try? await gracefulShutdown()
            await Self.close(storage)
        }
    }

    /// Runs `body` with `storages` running (see ``run()``), then closes them, also when
    /// `body` throws: for work outside a `ServiceGroup`, such as the admin commands.
    public static func withRunning<Result>(_ storages: [any EventStorage], _ body: () async throws -> Result) async throws -> Result {
        try await withThrowingTaskGroup(of: Void.self) { group in
            for storage in storages {
                group.addTask { try await StoreService(storage).run() }
            }
            let result: Result
            do {
                result = try await body()
            } catch {
                for storage in storages { await close(storage) }
                group.cancelAll()
                throw error
            }
            for storage in storages { await close(storage) }
            group.cancelAll()
            return result
        }
    }

    /// Closes `storage` (a SQLite file's connections; a PostgreSQL store's ``run()`` is
    /// stopped and awaited), also when it was closed before.
    public static func close(_ storage: any EventStorage) async {
        switch storage {
        case let sqlite as SQLiteEventStorage: try? sqlite.close()
        case let postgres as PostgresEventStorage: await postgres.shutdown()
        default: break
        }
    }
}
