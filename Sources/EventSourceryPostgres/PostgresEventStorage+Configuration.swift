public import EventSourcery
import Foundation
import PostgresNIO

extension PostgresEventStorage {
    /// Where a ``PostgresEventStorage`` connects and how.
    ///
    /// Build one from a URL (the usual way, for example from the `POSTGRES_URL`
    /// environment variable) or field by field:
    ///
    /// ```swift
    /// var configuration = try PostgresEventStorage.Configuration(
    ///     url: "postgres://orders:secret@db.internal:5432/orders?sslmode=require")
    /// configuration.maximumConnections = 20
    /// let storage = try await PostgresEventStorage.connect(configuration: configuration)
    /// ```
    public struct Configuration: Sendable {
        /// The server's host name or IP address.
        public var host: String
        /// The server's TCP port. Defaults to 5432.
        public var port: Int = 5432
        /// The role to log in as.
        public var username: String
        /// The role's password, `nil` for none.
        public var password: String?
        /// The database to use.
        public var database: String
        /// The schema that holds the event store's tables; created when missing.
        /// Defaults to `public`.
        ///
        /// Several stores (one per bounded context, or one per test) can share a database
        /// in different schemas; each has its own global order, outbox and notifications.
        public var schema: String = "public"
        /// Whether and how to use TLS. Defaults to ``TLSMode/prefer``.
        public var tls: TLSMode = .prefer
        /// The most connections the storage's pool opens. Defaults to 10.
        ///
        /// Each ``PostgresEventStorage/outboxNotifications()`` listener holds one more
        /// connection of the pool while it runs.
        public var maximumConnections: Int = 10
        /// How long to wait for a connection to be established (TCP, TLS and
        /// authentication). Defaults to 10 seconds.
        public var connectTimeout: Duration = .seconds(10)
        /// The `LISTEN/NOTIFY` channel that commits adding outbox entries notify, with the
        /// schema name as payload. Defaults to `eventsourcery_outbox`.
        public var notificationChannel: String = "eventsourcery_outbox"
        /// Whether ``PostgresEventStorage/connect(configuration:logger:)`` creates and
        /// migrates the schema. Defaults to `true`; turn it off when a deployment step
        /// migrates and the application's role may not run DDL.
        public var migratesSchema = true

        /// Creates a configuration field by field, with the documented defaults for the rest.
        /// ``PostgresEventStorage/connect(configuration:logger:)`` checks it with ``validate()``.
        public init(
            host: String,
            port: Int = 5432,
            username: String,
            password: String?,
            database: String,
            schema: String = "public",
            tls: TLSMode = .prefer
        ) {
            self.host = host
            self.port = port
            self.username = username
            self.password = password
            self.database = database
            self.schema = schema
            self.tls = tls
        }

        /// Parses a `postgres://user:password@host:port/database?sslmode=…` URL
        /// (`postgresql://` works too).
        ///
        /// User name, password and database may be percent-encoded. Query parameters:
        /// `sslmode` (`disable`, `prefer`, `require`, `verify-full`), `schema` (or
        /// `search_path`), `pool_size` (or `pool_max_conns`), `connect_timeout` (seconds).
        /// Unknown parameters are ignored.
        ///
        /// - Throws: ``EventStoreError`` `invalidArgument` for a malformed URL, another scheme,
        ///   a missing host, user or database, or an invalid parameter value.
        public init(url: String) throws(EventStoreError) {
            func invalid(_ reason: String) -> EventStoreError {
                EventStoreError(
                    .invalidArgument,
                    message: "The PostgreSQL URL is invalid: \(reason). "
                        + "Expected postgres://user:password@host:port/database?sslmode=prefer."
                )
            }
            guard let components = URLComponents(string: url) else { throw invalid("it does not parse as a URL") }
            guard let scheme = components.scheme?.lowercased(), scheme == "postgres" || scheme == "postgresql" else {
                throw invalid("the scheme must be postgres:// or postgresql://")
            }
            guard let host = components.host, !host.isEmpty else { throw invalid("it names no host") }
            guard let user = components.percentEncodedUser.flatMap({ $0.removingPercentEncoding }), !user.isEmpty else {
                throw invalid("it names no user")
            }
            let database = String(components.percentEncodedPath.drop { $0 == "/" }).removingPercentEncoding ?? ""
            guard !database.isEmpty else { throw invalid("it names no database (the path after the port)") }

            self.init(
                host: host,
                port: components.port ?? 5432,
                username: user,
                password: components.percentEncodedPassword.flatMap { $0.removingPercentEncoding },
                database: database
            )
            for item in components.queryItems ?? [] {
                let value = item.value ?? ""
                switch item.name.lowercased() {
                case "sslmode":
                    guard let mode = TLSMode(rawValue: value.lowercased()) else {
                        throw invalid("sslmode '\(value)' is not one of disable, prefer, require, verify-full")
                    }
                    tls = mode
                case "schema", "search_path":
                    guard !value.isEmpty else { throw invalid("the schema is empty") }
                    schema = value
                case "pool_size", "pool_max_conns":
                    guard let size = Int(value), size > 0 else { throw invalid("\(item.name) '\(value)' is not a positive number") }
                    maximumConnections = size
                case "connect_timeout":
                    guard let seconds = Double(value), seconds > 0 else {
                        throw invalid("connect_timeout '\(value)' is not a positive number of seconds")
                    }
                    connectTimeout = .milliseconds(Int64(seconds * 1000))
                default:
                    continue
                }
            }
            try validate()
        }

        /// Checks every field: a host, a port within 1...65535, a user, a database, a schema, at
        /// least one connection, a positive connect timeout and a notification channel.
        ///
        /// - Throws: ``EventStoreError`` ``EventStoreError/Code/invalidArgument`` naming the
        ///   ``EventStoreError/field``.
        public func validate() throws(EventStoreError) {
            for (field, value) in [
                ("host", host), ("username", username), ("database", database), ("schema", schema),
                ("notificationChannel", notificationChannel),
            ] where value.isEmpty {
                throw .invalidField(field, "must not be empty")
            }
            guard (1...65535).contains(port) else { throw .invalidField("port", "must be within 1...65535, got \(port)") }
            guard maximumConnections > 0 else {
                throw .invalidField("maximumConnections", "must be positive, got \(maximumConnections)")
            }
            guard connectTimeout > .zero else { throw .invalidField("connectTimeout", "must be positive, got \(connectTimeout)") }
        }

        /// Where the storage connects, for messages: `user@host:port/database`.
        public var endpointDescription: String { "\(username)@\(host):\(port)/\(database)" }
    }

    /// Whether the connection uses TLS, like libpq's `sslmode`.
    public enum TLSMode: String, Sendable, Hashable, CaseIterable {
        /// Never use TLS.
        case disable
        /// Use TLS when the server offers it, without verifying its certificate
        /// (libpq's default); otherwise connect in plain text.
        case prefer
        /// Always use TLS, without verifying the server's certificate (encryption only,
        /// like libpq's `require`); fail when the server does not offer it.
        case require
        /// Always use TLS and verify the server's certificate chain against the system's
        /// trust roots and its host name.
        case verifyFull = "verify-full"
    }
}

extension PostgresEventStorage.Configuration {
    /// The host name to check the certificate against, when it is not an IP address.
    private var tlsServerName: String? {
        host.allSatisfy { $0.isNumber || $0 == "." || $0 == ":" } ? nil : host
    }

    private func nioTLSConfiguration(verify: Bool) -> TLSConfiguration {
        var tls = TLSConfiguration.makeClientConfiguration()
        if !verify { tls.certificateVerification = .none }
        return tls
    }

    /// The postgres-nio client configuration of the pool.
    var clientConfiguration: PostgresClient.Configuration {
        let clientTLS: PostgresClient.Configuration.TLS =
            switch tls {
            case .disable: .disable
            case .prefer: .prefer(nioTLSConfiguration(verify: false))
            case .require: .require(nioTLSConfiguration(verify: false))
            case .verifyFull: .require(nioTLSConfiguration(verify: true))
            }
        var client = PostgresClient.Configuration(
            host: host, port: port, username: username, password: password, database: database, tls: clientTLS
        )
        client.options.maximumConnections = maximumConnections
        client.options.connectTimeout = connectTimeout
        client.options.tlsServerName = tlsServerName
        return client
    }

    /// The postgres-nio configuration of a single connection (used to check the settings
    /// and migrate before the pool starts).
    func connectionConfiguration() throws -> PostgresConnection.Configuration {
        let connectionTLS: PostgresConnection.Configuration.TLS =
            switch tls {
            case .disable: .disable
            case .prefer: .prefer(try NIOSSLContext(configuration: nioTLSConfiguration(verify: false)))
            case .require: .require(try NIOSSLContext(configuration: nioTLSConfiguration(verify: false)))
            case .verifyFull: .require(try NIOSSLContext(configuration: nioTLSConfiguration(verify: true)))
            }
        var connection = PostgresConnection.Configuration(
            host: host, port: port, username: username, password: password, database: database, tls: connectionTLS
        )
        let (seconds, attoseconds) = connectTimeout.components
        connection.options.connectTimeout = .nanoseconds(seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
        connection.options.tlsServerName = tlsServerName
        return connection
    }
}
