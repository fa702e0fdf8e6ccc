public import EventSourceryRabbitMQ
public import EventSourcery
public import EventSourceryAMQP
public import Foundation
public import Logging
public import ServiceLifecycle
import UnixSignals

/// Start-up steps shared by the service executables: logging, configuration, the store and
/// the broker connection, each failing with a ``StartupError`` that says what to fix.
public enum ServiceBootstrap {
    /// A failure at start-up, with the process exit code it maps to.
    public struct StartupError: Error, CustomStringConvertible {
        /// A message for the operator.
        public var message: String
        /// `78` for configuration errors, `69` when the broker or the store is unavailable.
        public var exitCode: Int32

        public var description: String { message }
    }

    /// The settings of one context's process, checked: every value has passed the checks of
    /// the library type it configures.
    public struct Settings: Sendable {
        /// The whole configuration, after environment overrides.
        public var configuration: ServiceConfiguration
        /// The context this process serves.
        public var contextName: String
        /// Where the context's events live.
        public var store: StorageLocation
        /// The broker connection.
        public var connectionConfiguration: AMQPConnection.Configuration
        /// The relay settings for this context.
        public var relayConfiguration: OutboxRelay.Configuration
        /// The consumer settings for this context.
        public var consumerConfiguration: ContextConsumer.Configuration
        /// The health and metrics endpoint of this process.
        public var healthEndpoint: HealthEndpoint.Configuration

        /// Picks the context `name` of `configuration` (run ``ServiceConfiguration/validate()``
        /// first) and builds its library configurations. The store is `storeOverride` (the
        /// `--store` option), else `ES_STORE_URL` from `environment`, else the file's; the
        /// endpoint's port is `httpPortOverride` (the `--http-port` option), else the file's
        /// (or `ES_HTTP_PORT`).
        ///
        /// - Throws: ``ConfigurationError`` naming where the bad value came from.
        public init(
            configuration: ServiceConfiguration, context name: String, storeOverride: String?, httpPortOverride: Int? = nil,
            environment: [String: String] = ProcessInfo.processInfo.environment
        ) throws(ConfigurationError) {
            let context = try configuration.context(name)
            let entry = "contexts.\(name).store"
            if let storeOverride {
                store = try StorageLocation(storeOverride, origin: .option("--store"), entry: nil)
            } else if let url = environment["ES_STORE_URL"], !url.isEmpty {
                store = try StorageLocation(url, origin: .environment("ES_STORE_URL"), entry: nil)
            } else {
                store = try StorageLocation(context.store, origin: configuration.origin(of: entry), entry: entry)
            }
            self.configuration = configuration
            self.contextName = name
            connectionConfiguration = try configuration.connectionConfiguration(name: name)
            relayConfiguration = try configuration.relayConfiguration(context: name)
            consumerConfiguration = try configuration.consumerConfiguration(context: name)
            healthEndpoint = try configuration.healthEndpointConfiguration()
            if let httpPortOverride {
                guard (1...65535).contains(httpPortOverride) else {
                    throw ConfigurationError(
                        origin: .option("--http-port"), entry: nil, message: "must be within 1...65535, got \(httpPortOverride)")
                }
                healthEndpoint.port = httpPortOverride
            }
        }
    }

    /// Bootstraps logging to standard error at `level` (the `LOG_LEVEL` environment variable wins).
    public static func logger(label: String, level: Logger.Level, context: String) -> Logger {
        let environmentLevel = ProcessInfo.processInfo.environment["LOG_LEVEL"].flatMap(Logger.Level.init(rawValue:))
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = environmentLevel ?? level
            return handler
        }
        var logger = Logger(label: label)
        logger[metadataKey: "context"] = "\(context)"
        return logger
    }

    /// Loads the configuration file and picks the context; `ES_STORE_URL` or `storeOverride`
    /// replace its store, `httpPortOverride` the endpoint's port.
    ///
    /// - Throws: ``StartupError`` with exit code 78 naming the entry and where it was set.
    public static func load(
        config path: String, context: String, storeOverride: String?, httpPortOverride: Int? = nil
    ) throws(StartupError) -> Settings {
        do {
            let configuration = try ServiceConfiguration.load(path: path)
            return try Settings(
                configuration: configuration, context: context, storeOverride: storeOverride, httpPortOverride: httpPortOverride)
        } catch {
            throw StartupError(message: "Bad configuration: \(error)", exitCode: 78)
        }
    }

    /// Opens the context's store.
    public static func openStore(_ settings: Settings, logger: Logger) async throws(StartupError) -> any EventStorage {
        do {
            let storage = try await settings.store.open(logger: logger)
            logger.info("Store opened", metadata: ["es.store": "\(settings.store)"])
            return storage
        } catch {
            throw StartupError(message: "Cannot open the store \(settings.store): \(error)", exitCode: 69)
        }
    }

    /// Connects to the broker; with `broker.wait_for_broker` (the default) it retries with
    /// backoff until it succeeds. SIGTERM or SIGINT while it waits stop the waiting: it throws
    /// a ``StartupError`` with exit code 0, since nothing ran yet.
    public static func connect(_ settings: Settings, logger: Logger) async throws(StartupError) -> AMQPConnection {
        do {
            return try await withThrowingTaskGroup(of: AMQPConnection?.self) { group in
                group.addTask { try await connectWithRetries(settings, logger: logger) }
                group.addTask {
                    for await _ in await UnixSignalsSequence(trapping: .sigterm, .sigint) { return nil }
                    return nil
                }
                let first = try await group.next() ?? nil
                group.cancelAll()
                guard let connection = first else {
                    throw StartupError("Stopped by a signal while connecting to the broker", exitCode: 0)
                }
                return connection
            }
        } catch let error as StartupError {
            throw error
        } catch {
            throw StartupError("Cannot connect to the broker: \(error)", exitCode: 69)
        }
    }

    private static func connectWithRetries(_ settings: Settings, logger: Logger) async throws(StartupError) -> AMQPConnection {
        let configuration = settings.connectionConfiguration
        let connection = AMQPConnection(configuration: configuration, logger: logger)
        let backoff = ReconnectBackoff()
        var attempt = 0
        while true {
            do {
                try await connection.connect()
                logger.info("Connected to the broker", metadata: ["amqp.endpoints": "\(configuration.endpoints.map(\.address))"])
                return connection
            } catch {
                attempt += 1
                guard settings.configuration.broker.waitForBroker, !Task.isCancelled else {
                    throw StartupError(
                        message:
                            "Cannot connect to the broker at \(configuration.endpoints.map(\.address).joined(separator: ", ")) vhost '\(configuration.vhost)': \(error)",
                        exitCode: 69
                    )
                }
                let delay = backoff.delay(forAttempt: attempt)
                logger.warning("Broker unavailable; retrying", metadata: ["error": "\(error)", "amqp.retry_in": "\(delay)"])
                try? await Task.sleep(for: delay)
            }
        }
    }

    /// Runs the `workers` (a relay, a consumer) beside the store, the broker connection and
    /// the `observers` (the health monitor and endpoint of
    /// ``healthServices(_:probes:registry:serverName:logger:)``) until SIGTERM or SIGINT or
    /// until a worker ends, then shuts them down gracefully in reverse order: the workers
    /// finish what is in flight, the observers stop, the connection closes, and the store
    /// (started first, see ``StoreService``) is closed last.
    ///
    /// - Throws: ``StartupError`` (69) when the endpoint's address cannot be served.
    public static func runUntilSignalled(
        _ workers: [any Service], store: any EventStorage, connection: AMQPConnection, observers: [any Service] = [],
        logger: Logger
    ) async throws {
        let group = ServiceGroup(
            configuration: ServiceGroupConfiguration(
                services: [.init(service: StoreService(store)), .init(service: connection)]
                    + observers.map { .init(service: $0) }
                    + workers.map { .init(service: $0, successTerminationBehavior: .gracefullyShutdownGroup) },
                gracefulShutdownSignals: [.sigterm, .sigint],
                logger: logger
            )
        )
        try await group.run()
    }
}
