public import EventSourcery
import EventSourceryPostgres
import EventSourcerySQLite
public import Foundation

/// A store of a test's own on either backend, so one test runs against both: a SQLite file in
/// `directory`, or a fresh schema of the test database.
public struct TestStore: Sendable {
    /// The backends a test can run against.
    public enum Kind: String, CaseIterable, Sendable {
        case sqlite, postgres
    }

    public let kind: Kind
    /// The store as a service's configuration names it (`contexts.<name>.store`).
    public let location: String

    /// A store named `name` (a file in `directory`, or the schema `es_test_<random>`).
    public init(_ kind: Kind, name: String, in directory: URL) {
        self.kind = kind
        switch kind {
        case .sqlite:
            location = "sqlite:" + directory.appendingPathComponent("\(name).sqlite").path
        case .postgres:
            let separator = TestDatabase.url.contains("?") ? "&" : "?"
            location = TestDatabase.url + separator + "schema=" + TestDatabase.freshSchemaName()
        }
    }

    /// Opens the store (creating its file or schema); a PostgreSQL store runs until
    /// ``close(_:)``.
    public func open() async throws -> any EventStorage {
        switch kind {
        case .sqlite:
            return try SQLiteEventStorage(path: String(location.dropFirst("sqlite:".count)))
        case .postgres:
            return try await TestDatabase.connect(PostgresEventStorage.Configuration(url: location))
        }
    }

    /// Closes `storage`, opened by ``open()``, and drops a PostgreSQL schema (a SQLite file
    /// goes with the test's directory).
    public static func close(_ storage: any EventStorage) async {
        if let sqlite = storage as? SQLiteEventStorage { try? sqlite.close() }
        if let postgres = storage as? PostgresEventStorage { await TestDatabase.drop(postgres) }
    }
}
