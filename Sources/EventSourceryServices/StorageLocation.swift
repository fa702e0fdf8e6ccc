public import EventSourcery
public import Logging
import EventSourceryPostgres
import EventSourcerySQLite
import Foundation

/// Where a context's events live, parsed from a configuration value:
/// `sqlite:<path>`, a plain file path, or `postgres://…`.
public enum StorageLocation: Sendable, Equatable, CustomStringConvertible {
    /// A SQLite file.
    case sqlite(path: String)
    /// A PostgreSQL database URL.
    case postgres(url: String)

    /// Parses a configured store value: `sqlite:<path>`, `postgres://…` (or `postgresql://`),
    /// or a file path without a scheme.
    ///
    /// - Parameters:
    ///   - value: The value.
    ///   - origin: Where the value came from, for the error.
    ///   - entry: The configuration entry that holds it, if any.
    /// - Throws: ``ConfigurationError`` for another scheme (`redis:cache`), an empty path, or a
    ///   PostgreSQL URL without host, user or database.
    public init(_ value: String, origin: ConfigurationOrigin, entry: String?) throws(ConfigurationError) {
        func invalid(_ message: String) -> ConfigurationError {
            ConfigurationError(origin: origin, entry: entry, message: message)
        }
        let scheme = value.firstMatch(of: /^([A-Za-z][A-Za-z0-9+.\-]*):/).map { $0.1.lowercased() }
        switch scheme {
        case "postgres"?, "postgresql"?:
            do {
                _ = try PostgresEventStorage.Configuration(url: value)
            } catch {
                throw invalid("'\(Self.redacted(value))': \(error.message)")
            }
            self = .postgres(url: value)
        case "sqlite"?:
            let path = String(value.dropFirst("sqlite:".count))
            guard !path.isEmpty else { throw invalid("'sqlite:' names no file; write sqlite:<path>") }
            self = .sqlite(path: path)
        case let scheme?:
            throw invalid(
                "'\(Self.redacted(value))' has the scheme '\(scheme):'; a store is sqlite:<path>, a file path or a postgres:// URL")
        case nil:
            guard !value.isEmpty else { throw invalid("must name a store: sqlite:<path>, a file path or a postgres:// URL") }
            self = .sqlite(path: value)
        }
    }

    public var description: String {
        switch self {
        case .sqlite(let path): "sqlite:\(path)"
        case .postgres(let url): Self.redacted(url)
        }
    }

    /// Opens the storage, creating a SQLite file's directory when needed. A PostgreSQL store
    /// is connected (its schema migrated) before this returns, so bad credentials, a missing
    /// database or an unreachable server fail here; its pool runs once the store runs as a
    /// service (``StoreService``, ``StoreService/withRunning(_:_:)``).
    public func open(logger: Logger = Logger(label: "eventsourcery.store")) async throws -> any EventStorage {
        switch self {
        case .sqlite(let path):
            let directory = (path as NSString).deletingLastPathComponent
            if !directory.isEmpty {
                try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            }
            // A service process keeps one hot set (the outbox head, its inbox): a small page
            // cache per connection keeps its memory flat without slowing it down.
            var configuration = SQLiteEventStorage.Configuration(path: path)
            configuration.pageCacheKiB = 2048
            configuration.maximumReaderCount = 2
            return try SQLiteEventStorage(configuration: configuration)
        case .postgres(let url):
            return try await PostgresEventStorage.connect(configuration: PostgresEventStorage.Configuration(url: url), logger: logger)
        }
    }

    /// The URL (a store's or a broker's, or a comma-separated list of broker URLs) with its
    /// passwords replaced by `***`, for logs.
    public static func redacted(_ url: String) -> String {
        guard !url.contains(",") else {
            return url.split(separator: ",", omittingEmptySubsequences: false).map { redacted(String($0)) }.joined(separator: ",")
        }
        guard var components = URLComponents(string: url), components.password != nil else { return url }
        components.password = "***"
        return components.string ?? url
    }
}
