import AMQPClient
import ArgumentParser
import EventSourcery
import EventSourceryAMQP
import EventSourceryServices
import Logging
import ServiceLifecycle
import UnixSignals

/// `outbox-publisher`: relays one context's outbox to RabbitMQ.
@main
struct OutboxPublisherCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "outbox-publisher",
        abstract: "Publishes a bounded context's outbox to RabbitMQ with publisher confirms.",
        discussion: """
            Reads the context's store and broker from the configuration file; AMQP_URL, \
            ES_STORE_URL, ES_RELAY_BATCH_SIZE, ES_RELAY_WINDOW, ES_RELAY_ATTEMPT_LIMIT and \
            ES_BROKER_WAIT override it. Stops gracefully on SIGTERM or SIGINT: the batch in \
            flight is confirmed and marked before exit.

            Exit codes: 0 done, 64 bad arguments, 69 broker or store unavailable, 78 bad configuration.
            """
    )

    @Option(name: .long, help: "The bounded context whose outbox to relay.")
    var context: String

    @Option(name: .long, help: "The configuration file.")
    var config = "config/eventsourcery.yaml"

    @Option(name: .long, help: "The store (sqlite:<path> or postgres://…), overriding the configuration.")
    var store: String?

    @Flag(name: .long, help: "Publish what is pending, then exit.")
    var once = false

    @Option(name: .long, help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel = "info"

    func validate() throws {
        guard Logger.Level(rawValue: logLevel) != nil else {
            throw ValidationError("--log-level must be one of trace, debug, info, notice, warning, error, critical")
        }
    }

    func run() async throws {
        let logger = ServiceBootstrap.logger(label: "outbox-publisher", level: Logger.Level(rawValue: logLevel) ?? .info, context: context)
        do {
            let settings = try ServiceBootstrap.load(config: config, context: context, storeOverride: store)
            let storage = try await ServiceBootstrap.openStore(settings, logger: logger)
            let connection = try await ServiceBootstrap.connect(settings, logger: logger)
            try await connection.declare(AMQPExchange(name: EventMessage.exchange(for: context), kind: .topic, durable: true))
            let relay = OutboxRelay(
                storage: storage,
                publisher: AMQPPublisher(connection: connection, window: settings.configuration.relay.window),
                configuration: settings.relayConfiguration,
                logger: logger
            )
            if once {
                let statistics = try await relay.runOnce()
                logger.info("Outbox drained", metadata: [
                    "outbox.published": "\(statistics.published)", "outbox.failed": "\(statistics.failed)",
                    "outbox.parked": "\(statistics.parked)",
                ])
                await connection.close()
                return
            }
            let group = ServiceGroup(
                configuration: ServiceGroupConfiguration(
                    services: [
                        .init(service: connection),
                        .init(service: relay, successTerminationBehavior: .gracefullyShutdownGroup),
                    ],
                    gracefulShutdownSignals: [.sigterm, .sigint],
                    logger: logger
                )
            )
            try await group.run()
        } catch let error as ServiceBootstrap.StartupError {
            logger.critical("\(error.message)")
            throw ExitCode(error.exitCode)
        }
    }
}
