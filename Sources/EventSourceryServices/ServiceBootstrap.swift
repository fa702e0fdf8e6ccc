public import EventSourceryRabbitMQ
public import EventSourcery
public import EventSourceryAMQP
import Foundation
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

    /// The settings of one context's process.
    public struct Settings: Sendable {
        /// The whole configuration, after environment overrides.
        public var configuration: ServiceConfiguration
        /// The context this process serves.
        public var contextName: String
        /// Where the context's events live.
        public var store: StorageLocation

        /// The relay settings for this context.
        public var relayConfiguration: OutboxRelay.Configuration {
            let relay = configuration.relay
            return OutboxRelay.Configuration(
                context: contextName,
                batchSize: relay.batchSize,
                leaseDuration: .milliseconds(Int64(relay.leaseSeconds * 1000)),
                retry: RetryPolicy(
                    initialBackoff: .milliseconds(relay.initialBackoffMilliseconds),
                    maximumBackoff: .milliseconds(relay.maximumBackoffMilliseconds),
                    attemptLimit: relay.attemptLimit
                ),
                idlePollInterval: .milliseconds(relay.idlePollMilliseconds),
                retention: relay.retentionSeconds > 0 ? .milliseconds(Int64(relay.retentionSeconds * 1000)) : nil
            )
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

    /// Loads the configuration file and picks the context; `ES_STORE_URL` or `storeOverride` replace its store.
    public static func load(config path: String, context: String, storeOverride: String?) throws(StartupError) -> Settings {
        do {
            let configuration = try ServiceConfiguration.load(path: path)
            let contextConfiguration = try configuration.context(context, file: path)
            let environmentStore = ProcessInfo.processInfo.environment["ES_STORE_URL"].flatMap { $0.isEmpty ? nil : $0 }
            let store = try StorageLocation(storeOverride ?? environmentStore ?? contextConfiguration.store)
            return Settings(configuration: configuration, contextName: context, store: store)
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

    /// Connects to the broker; with `broker.wait_for_broker` it retries with backoff until it succeeds.
    public static func connect(_ settings: Settings, logger: Logger) async throws(StartupError) -> AMQPConnection {
        let broker = settings.configuration.broker
        var configuration: AMQPConnection.Configuration
        do {
            configuration = try AMQPConnection.Configuration(url: broker.url)
        } catch {
            throw StartupError(message: "Bad configuration: broker.url: \(error)", exitCode: 78)
        }
        configuration.heartbeat = .seconds(broker.heartbeatSeconds)
        configuration.connectionName = "\(settings.contextName)"
        let connection = AMQPConnection(configuration: configuration, logger: logger)
        let backoff = ReconnectBackoff()
        var attempt = 0
        while true {
            do {
                try await connection.connect()
                logger.info("Connected to the broker", metadata: ["amqp.host": "\(configuration.host):\(configuration.port)"])
                return connection
            } catch {
                attempt += 1
                guard broker.waitForBroker, !Task.isCancelled else {
                    throw StartupError(
                        message:
                            "Cannot connect to the broker at \(configuration.host):\(configuration.port) vhost '\(configuration.vhost)': \(error)",
                        exitCode: 69
                    )
                }
                let delay = backoff.delay(forAttempt: attempt)
                logger.warning("Broker unavailable; retrying", metadata: ["error": "\(error)", "amqp.retry_in": "\(delay)"])
                try? await Task.sleep(for: delay)
            }
        }
    }

    /// Runs `worker` beside its broker connection until SIGTERM or SIGINT, then shuts both
    /// down gracefully: the worker finishes what is in flight, then the connection closes.
    public static func runUntilSignalled(_ worker: some Service, connection: AMQPConnection, logger: Logger) async throws {
        let group = ServiceGroup(
            configuration: ServiceGroupConfiguration(
                services: [
                    .init(service: connection),
                    .init(service: worker, successTerminationBehavior: .gracefullyShutdownGroup),
                ],
                gracefulShutdownSignals: [.sigterm, .sigint],
                logger: logger
            )
        )
        try await group.run()
    }
}
