import ArgumentParser
import EventSourcery
import EventSourceryAMQP
import EventSourceryRabbitMQ
import Logging

/// The command line of a service built with the kit: ``ContextServiceOptions`` and the
/// executable's own `Options`. ``ContextService/main(options:modules:)`` parses and runs it.
struct ContextServiceCommand<Options: ParsableArguments>: ParsableCommand {
    static var configuration: CommandConfiguration {
        let service = ContextService.current
        return CommandConfiguration(
            commandName: service.commandName,
            abstract: service.abstract,
            discussion: """
                Runs one bounded context (--context) from the configuration file: as \(service.role.rawValue) unless \
                --role says otherwise. The consumer declares the context's topology (exchanges, the quorum inbox \
                queues <context>.inbox.0… behind the consistent-hash exchange <context>.partitions, or \
                <context>.inbox with consumer.partitions 1, <context>.dlx -> <context>.dead) and runs the context's \
                handlers exactly once per event; replicas share the partitions, one active consumer each, and a \
                single <context>.inbox of an earlier deployment is drained first. The relay publishes the context's outbox with publisher confirms. AMQP_URL, ES_STORE_URL, \
                ES_BROKER_WAIT, ES_RELAY_*, ES_CONSUMER_* override the file. With --http-port (or \
                observability.port, ES_HTTP_PORT) it serves /health/live, /health/ready and /metrics. Stops \
                gracefully on SIGTERM or SIGINT: what is in flight is finished, then the connection and the store \
                are closed.

                Admin modes (run once and exit): --export-definitions <file> writes the topology of every context \
                as a RabbitMQ definitions file; --list-dead lists <context>.dead; --replay-dead moves \
                <context>.dead back into the inbox; --list-failures lists the handler failures recorded in \
                the stream failures-<context>; --list-parked lists the parked sequences (a source stream whose \
                event used up its attempts, with the events waiting behind it); --retry-parked <source>/<stream> \
                lets the running consumer apply a parked sequence in order (stopping again at the first failure); \
                --skip-parked <source>/<stream> --reason <text> records the skip of the parked event and lets the \
                rest of its sequence go on; --store-sizes prints how many rows the context's store keeps; \
                --list-skipped-handlers lists the handlers a condition skipped (skipped-<context>) and the \
                forced reruns; --rerun-handler <name> --event <id> --reason <text> forces a skipped handler to run \
                for that event (a build with the context's code); --list-parked-commands lists the commands the \
                relay parked; --retry-parked-commands sends them again.

                Exit codes: 0 done, 1 admin command refused, 64 bad arguments, 69 broker or store unavailable, \
                73 cannot write a file, 78 bad configuration.
                """
        )
    }

    @OptionGroup var kit: ContextServiceOptions
    @OptionGroup var options: Options

    var service: ServiceOptions { kit.service }
    var context: String { service.context }

    /// Runs the admin mode asked for, or the service, with the executable's `modules`.
    func run(modules: ContextHandlers) async throws {
        let launch = ContextService.current
        let logger = service.makeLogger(label: launch.commandName)
        let registry = ServiceBootstrap.bootstrapMetrics()
        do {
            let settings = try service.loadSettings()
            if kit.isAdmin {
                try await runAdmin(settings, modules: modules, logger: logger)
            } else {
                // Before the store and the workers: they take the process's tracer when created.
                let exporters = try ServiceBootstrap.bootstrapTracing(settings.configuration, serviceName: context)
                try await serve(
                    settings, role: kit.role ?? launch.role, modules: modules, registry: registry, exporters: exporters,
                    serverName: launch.commandName, logger: logger)
            }
        } catch let error as ServiceBootstrap.StartupError {
            if error.exitCode == 0 {
                logger.notice("\(error.message)")
            } else {
                logger.critical("\(error.message)")
            }
            throw ExitCode(error.exitCode)
        }
    }
}
