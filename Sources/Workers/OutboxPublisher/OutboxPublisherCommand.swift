import EventSourceryRabbitMQ
import ArgumentParser
import EventSourcery
import EventSourceryAMQP
import EventSourceryServices
import Logging

/// `outbox-publisher`: relays one context's outbox to RabbitMQ.
@main
struct OutboxPublisherCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "outbox-publisher",
        abstract: "Publishes a bounded context's outbox to RabbitMQ with publisher confirms.",
        discussion: """
            Reads the context's store and broker from the configuration file; AMQP_URL, \
            ES_STORE_URL, ES_RELAY_BATCH_SIZE, ES_RELAY_WINDOW, ES_RELAY_ATTEMPT_LIMIT and \
            ES_BROKER_WAIT override it. With --http-port (or observability.port, ES_HTTP_PORT) it \
            serves /health/live, /health/ready and /metrics. Stops gracefully on SIGTERM or SIGINT: the batch in \
            flight is confirmed and marked before exit.

            Exit codes: 0 done, 64 bad arguments, 69 broker or store unavailable, 78 bad configuration.
            """
    )

    @OptionGroup var service: ServiceOptions

    @Flag(name: .long, help: "Publish what is pending, then exit.")
    var once = false

    private var context: String { service.context }

    func run() async throws {
        let logger = service.makeLogger(label: "outbox-publisher")
        let registry = ServiceBootstrap.bootstrapMetrics()
        do {
            let settings = try service.loadSettings()
            let storage = try await ServiceBootstrap.openStore(settings, logger: logger)
            let connection = try await ServiceBootstrap.connect(settings, logger: logger)
            try await connection.declare(AMQPExchange(name: EventMessage.exchange(for: context), kind: .topic, durable: true))
            let relay = OutboxRelay(
                storage: storage,
                publisher: settings.configuration.relay.window.map { AMQPPublisher(connection: connection, window: $0) }
                    ?? AMQPPublisher(connection: connection),
                configuration: settings.relayConfiguration,
                logger: logger
            )
            if once {
                let statistics = try await relay.runOnce()
                logger.info(
                    "Outbox drained",
                    metadata: [
                        "outbox.published": "\(statistics.published)", "outbox.failed": "\(statistics.failed)",
                        "outbox.parked": "\(statistics.parked)",
                    ])
                await connection.close()
                return
            }
            let observers = ServiceBootstrap.healthServices(
                settings.healthEndpoint,
                probes: [
                    ServiceBootstrap.brokerProbe(connection),
                    ServiceBootstrap.outboxProbe(storage, context: context, stallAfter: settings.healthEndpoint.stallAfter),
                ],
                registry: registry, serverName: "outbox-publisher", logger: logger
            )
            try await ServiceBootstrap.runUntilSignalled(relay, connection: connection, observers: observers, logger: logger)
        } catch let error as ServiceBootstrap.StartupError {
            logger.critical("\(error.message)")
            throw ExitCode(error.exitCode)
        }
    }
}
