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

    /// Parses a configured store value.
    public init(_ value: String) throws(ConfigurationError) {
        if value.hasPrefix("postgres://") || value.hasPrefix("postgresql://") {
            self = .postgres(url: value)
        } else if value.hasPrefix("sqlite:") {
            self = .sqlite(path: String(value.dropFirst("sqlite:".count)))
        } else if value.contains("://") {
            throw ConfigurationError(file: "store", entry: nil, message: "'\(value)' is neither sqlite:<path> nor a postgres:// URL")
        } else {
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
    /// database or an unreachable server fail here.
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

    /// The URL (a store's or a broker's) with its password replaced by `***`, for logs.
    public static func redacted(_ url: String) -> String {
        guard var components = URLComponents(string: url), components.password != nil else { return url }
        components.password = "***"
        return components.string ?? url
    }
}
