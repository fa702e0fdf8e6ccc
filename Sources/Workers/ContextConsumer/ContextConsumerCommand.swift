import EventSourceryRabbitMQ
import ArgumentParser
import DemoContexts
import EventSourcery
import EventSourceryAMQP
import EventSourceryServices
import Foundation
import Logging

/// `context-consumer`: runs one bounded context's handlers on its inbox queue.
@main
struct ContextConsumerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "context-consumer",
        abstract: "Consumes a bounded context's inbox queue and runs its handlers exactly once per event.",
        discussion: """
            Declares the context's topology from the configuration file (exchanges, the quorum \
            inbox queues <context>.inbox.0… behind the consistent-hash exchange \
            <context>.partitions, or <context>.inbox with consumer.partitions 1, \
            <context>.dlx -> <context>.dead), then consumes every inbox queue; replicas share \
            the partitions, one active consumer each. A single <context>.inbox of an earlier \
            deployment is drained first and deleted. AMQP_URL, \
            ES_STORE_URL, ES_CONSUMER_PREFETCH, ES_CONSUMER_ACK_BATCH and ES_BROKER_WAIT \
            override the file. With --http-port (or observability.port, ES_HTTP_PORT) it serves \
            /health/live, /health/ready and /metrics. Stops gracefully on SIGTERM or \
            SIGINT: the delivery in flight is finished and everything committed is acknowledged.

            Admin modes (run once and exit): --export-definitions <file> writes the topology of \
            every context as a RabbitMQ definitions file; --list-dead lists <context>.dead; \
            --replay-dead moves <context>.dead back into the inbox; --list-failures lists \
            the handler failures recorded in the stream failures-<context>; --list-parked lists \
            the parked sequences (a source stream whose event used up its attempts, with the \
            events waiting behind it); --retry-parked <source>/<stream> lets the running consumer \
            apply a parked sequence in order (stopping again at the first failure); \
            --skip-parked <source>/<stream> --reason <text> records the skip of the parked event \
            and lets the rest of its sequence go on.

            Exit codes: 0 done, 64 bad arguments, 69 broker or store unavailable, 78 bad configuration.
            """
    )

    @OptionGroup var service: ServiceOptions

    @Option(name: .long, help: "Write the RabbitMQ definitions of every context's topology to this file and exit.")
    var exportDefinitions: String?

    @Flag(name: .long, help: "List the messages in <context>.dead (they stay there) and exit.")
    var listDead = false

    @Flag(name: .long, help: "Move the messages in <context>.dead back into the inbox (its partitions) and exit.")
    var replayDead = false

    @Flag(name: .long, help: "List the handler failures recorded in the context's store and exit.")
    var listFailures = false

    @Flag(name: .long, help: "List the parked sequences in the context's store and exit.")
    var listParked = false

    @Option(name: .long, help: "Let the running consumer apply the parked sequence <source>/<stream> in order, and exit.")
    var retryParked: String?

    @Option(name: .long, help: "Skip the parked event at the head of <source>/<stream> (needs --reason), and exit.")
    var skipParked: String?

    @Option(name: .long, help: "Why the event is skipped; recorded with the skip.")
    var reason: String?

    @Option(name: .long, help: "The payment context's simulated gateway declines amounts above this.")
    var declineAbove = DemoContext.defaultDeclineAbove

    @Option(
        name: .long,
        help: "While a file exists at this path, the payment context's simulated gateway is down and charge-order fails (retried)."
    )
    var gatewayDownFile: String?

    @Flag(
        name: .long,
        help:
            "The order context also publishes OrderPaid, OrderCancelled and OrderCompleted (only when a consumer binds them; unroutable messages are parked)."
    )
    var publishOrderOutcomes = false

    private var context: String { service.context }

    func validate() throws {
        let modes = [exportDefinitions != nil, listDead, replayDead, listFailures, listParked, retryParked != nil, skipParked != nil]
        guard modes.filter({ $0 }).count <= 1 else {
            throw ValidationError(
                "use at most one of --export-definitions, --list-dead, --replay-dead, --list-failures, --list-parked, --retry-parked, --skip-parked"
            )
        }
        if skipParked != nil, (reason ?? "").trimmingCharacters(in: .whitespaces).isEmpty {
            throw ValidationError("--skip-parked needs --reason <why the event is skipped>")
        }
        for stream in [retryParked, skipParked].compactMap({ $0 }) where Self.sequence(stream) == nil {
            throw ValidationError("'\(stream)' is not <source context>/<stream id>, such as order/order-42")
        }
    }

    /// `<source>/<stream>` split into the source context and a valid stream id.
    private static func sequence(_ text: String) -> (source: String, stream: StreamID)? {
        guard let slash = text.firstIndex(of: "/") else { return nil }
        let source = String(text[..<slash])
        guard !source.isEmpty, let stream = try? StreamID(String(text[text.index(after: slash)...])) else { return nil }
        return (source, stream)
    }

    func run() async throws {
        let logger = service.makeLogger(label: "context-consumer")
        let registry = ServiceBootstrap.bootstrapMetrics()
        do {
            let settings = try service.loadSettings()
            if let exportDefinitions {
                try export(settings.configuration, to: exportDefinitions, logger: logger)
                return
            }
            if listDead || replayDead {
                let connection = try await ServiceBootstrap.connect(settings, logger: logger)
                try await ServiceBootstrap.declareTopology(settings, on: connection)
                let admin = ContextAdmin(
                    context: context, connection: connection, partitions: settings.consumerConfiguration.partitions)
                if listDead {
                    let letters = try await admin.deadLetters()
                    print("\(letters.count) dead letter(s) in \(settings.topology.deadLetterQueue)")
                    for letter in letters {
                        print("\(letter.messageID ?? "-")\t\(letter.routingKey)\t\(letter.reason)\t\(letter.detail ?? "")")
                    }
                } else {
                    let moved = try await admin.replayDeadLetters()
                    print(
                        "moved \(moved) message(s) from \(settings.topology.deadLetterQueue) to \(settings.topology.inboxQueues.joined(separator: ", "))"
                    )
                }
                await connection.close()
                return
            }
            if listFailures {
                let storage = try await ServiceBootstrap.openStore(settings, logger: logger)
                let failures = try await ContextAdmin.handlerFailures(
                    context: context, store: EventStore(storage: storage, registry: EventRegistry([HandlerFailed.self]), logger: logger)
                )
                print("\(failures.count) handler failure(s) in failures-\(context)")
                for failure in failures {
                    print(
                        "\(failure.failedAt)\t\(failure.handler)\t\(failure.eventType)\t\(failure.eventID)\tattempt \(failure.attempt)\t\(failure.error)"
                    )
                }
                return
            }
            if listParked || retryParked != nil || skipParked != nil {
                try await parked(settings, logger: logger)
                return
            }
            let module = try self.module(settings)
            let storage = try await ServiceBootstrap.openStore(settings, logger: logger)
            let eventStore = EventStore(storage: storage, registry: module.registry, logger: logger)
            let handlers = try checkedHandlers(module.makeHandlers(eventStore), settings: settings)
            let connection = try await ServiceBootstrap.connect(settings, logger: logger)
            try await ServiceBootstrap.declareTopology(settings, on: connection)
            var configuration = settings.consumerConfiguration
            configuration.declaresTopology = false  // declared above, where a mismatch is a configuration error
            let consumer = ContextConsumer(
                connection: connection,
                store: eventStore,
                handlers: handlers,
                configuration: configuration,
                topology: settings.topology,
                logger: logger
            )
            let observers = ServiceBootstrap.healthServices(
                settings.healthEndpoint,
                probes: [ServiceBootstrap.inboxProbe(connection, topology: settings.topology), ServiceBootstrap.storeProbe(storage)],
                registry: registry, serverName: "context-consumer", logger: logger
            )
            try await ServiceBootstrap.runUntilSignalled(consumer, connection: connection, observers: observers, logger: logger)
        } catch let error as ServiceBootstrap.StartupError {
            logger.critical("\(error.message)")
            throw ExitCode(error.exitCode)
        }
    }

    /// `--list-parked`, `--retry-parked`, `--skip-parked`: work on the store only.
    private func parked(_ settings: ServiceBootstrap.Settings, logger: Logger) async throws {
        let storage = try await ServiceBootstrap.openStore(settings, logger: logger)
        let store = EventStore(storage: storage, registry: EventRegistry([HandlerFailed.self, EventSkipped.self]), logger: logger)
        do {
            if let retryParked, let (source, stream) = Self.sequence(retryParked) {
                try await ContextAdmin.retryParked(context: context, sourceContext: source, sourceStream: stream, store: store)
                print("\(retryParked): due now; the running consumer applies it in order")
            } else if let skipParked, let (source, stream) = Self.sequence(skipParked) {
                let skip = try await ContextAdmin.skipParked(
                    context: context, sourceContext: source, sourceStream: stream, reason: reason ?? "", store: store)
                print(
                    "\(skipParked): skipped \(skip.eventType) \(skip.eventID) (version \(skip.streamVersion)), recorded in failures-\(context)"
                )
            } else {
                let sequences = try await ContextAdmin.parkedSequences(context: context, store: store)
                print("\(sequences.count) parked sequence(s) in \(context)")
                for entry in sequences {
                    print(
                        "\(entry.sequence)\tversion \(entry.head.streamVersion)\t\(entry.head.event.typeName)\t\(entry.head.event.id)\t"
                            + "attempts \(entry.head.attempts)\t\(entry.waitingBehind) waiting behind\t\(entry.head.lastError ?? "")")
                }
            }
        } catch let error as ParkedSequenceError {
            logger.error("\(error)")
            throw ExitCode(1)
        }
    }

    private func export(_ configuration: ServiceConfiguration, to path: String, logger: Logger) throws(ServiceBootstrap.StartupError) {
        do {
            try ContextTopology.definitionsJSON(configuration.topologies).write(to: URL(fileURLWithPath: path))
            logger.info("RabbitMQ definitions written", metadata: ["file": "\(path)"])
        } catch {
            throw ServiceBootstrap.StartupError("Cannot write \(path): \(error)", exitCode: 73)
        }
    }

    private func module(_ settings: ServiceBootstrap.Settings) throws(ServiceBootstrap.StartupError) -> ContextModule {
        let modules = DemoContext.handlers(
            declineAbove: declineAbove, publishOrderOutcomes: publishOrderOutcomes, gatewayDownFile: gatewayDownFile)
        guard let module = modules.module(for: context) else {
            throw ServiceBootstrap.StartupError(
                "Bad configuration: no handler code is built in for context '\(context)'; built in: \(modules.contextNames.joined(separator: ", "))",
                exitCode: 78
            )
        }
        return module
    }

    /// The handlers, after checking that their names and subscriptions match the file.
    private func checkedHandlers(
        _ handlers: [EventHandler], settings: ServiceBootstrap.Settings
    ) throws(ServiceBootstrap.StartupError) -> [EventHandler] {
        let configuration = settings.configuration
        let configured = configuration.contexts[context]?.handlers ?? [:]
        func mismatch(_ entry: String, _ message: String) -> ServiceBootstrap.StartupError {
            ServiceBootstrap.StartupError("Bad configuration: \(configuration.error(at: entry, message))", exitCode: 78)
        }
        for handler in handlers {
            let entry = "contexts.\(context).handlers.\(handler.name)"
            guard let handlerConfiguration = configured[handler.name] else {
                throw mismatch(entry, "is missing; the code has this handler")
            }
            let subscriptions = Set(handlerConfiguration.subscribes.compactMap(EventSubscription.init))
            guard subscriptions == Set(handler.subscriptions) else {
                throw mismatch(
                    "\(entry).subscribes",
                    "the code subscribes to \(handler.subscriptions.map(\.routingKey).sorted().joined(separator: ", "))")
            }
        }
        for name in configured.keys.sorted() where !handlers.contains(where: { $0.name == name }) {
            throw mismatch("contexts.\(context).handlers.\(name)", "no handler of that name is built in")
        }
        return handlers
    }
}
