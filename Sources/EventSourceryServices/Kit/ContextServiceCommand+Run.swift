import EventSourcery
import EventSourceryAMQP
import EventSourceryRabbitMQ
import Logging
import Prometheus
import ServiceLifecycle

extension ContextServiceCommand {
    /// Opens the store, connects, declares, and runs the role's workers with the store, the
    /// connection, the span exporter (`exporters`) and the endpoint in one `ServiceGroup` until a
    /// signal (or, with `--once`, until the outbox is drained). What was opened is closed on
    /// every path.
    func serve(
        _ settings: ServiceBootstrap.Settings, role: ServiceRole, modules: ContextHandlers, registry: PrometheusCollectorRegistry,
        exporters: [any Service], serverName: String, logger: Logger
    ) async throws {
        let module = role.runsConsumer ? try self.module(in: modules) : nil
        let storage = try await ServiceBootstrap.openStore(settings, logger: logger)
        let connection: AMQPConnection
        var consumed: (store: EventStore, handlers: [EventHandler], commandHandlers: [CommandHandler], projections: [ProjectionService])?
        do {
            if let module {
                // The code must match the file before anything is declared on the broker.
                let eventStore = EventStore(storage: storage, registry: module.registry, logger: logger)
                let resources = ContextResources(store: eventStore, deadlines: try deadlines(of: module, settings))
                consumed = (
                    eventStore, try checkedHandlers(module.makeEventHandlers(resources), settings),
                    try checkedCommandHandlers(module.makeCommandHandlers(resources), settings), module.makeProjections(eventStore)
                )
            }
            connection = try await ServiceBootstrap.connect(settings, logger: logger)
        } catch {
            await StoreService.close(storage)
            throw error
        }
        var workers: [any Service] = []
        var probes: [HealthProbe] = []
        do {
            if let consumed {
                try await ServiceBootstrap.declareTopology(settings, on: connection, logger: logger)
                var configuration = settings.consumerConfiguration
                configuration.declaresTopology = false  // declared above, where a mismatch is a configuration error
                workers.append(
                    ContextConsumer(
                        connection: connection, store: consumed.store, handlers: consumed.handlers, configuration: configuration,
                        topology: settings.topology, logger: logger))
                if !consumed.commandHandlers.isEmpty {
                    workers.append(
                        CommandConsumer(
                            context: context, store: consumed.store, connection: connection, handlers: consumed.commandHandlers,
                            prefetch: configuration.prefetch, concurrency: configuration.concurrency, logger: logger))
                }
                workers += consumed.projections as [any Service]
                probes.append(ServiceBootstrap.inboxProbe(connection, topology: settings.topology))
            }
            if role.runsRelay {
                try await declareExchanges(settings.topology, on: connection)
                let relay = OutboxRelay(
                    storage: storage,
                    publisher: settings.configuration.relay.window.map { AMQPPublisher(connection: connection, window: $0) }
                        ?? AMQPPublisher(connection: connection),
                    configuration: settings.relayConfiguration,
                    logger: logger
                )
                if kit.once {
                    try await StoreService.withRunning([storage]) { try await drain(relay, logger: logger) }
                    await connection.close()
                    return
                }
                workers.append(relay)
                probes.append(
                    ServiceBootstrap.outboxProbe(storage, context: context, stallAfter: settings.healthEndpoint.stallAfter))
            } else {
                probes.append(ServiceBootstrap.storeProbe(storage))
            }
        } catch {
            await connection.close()
            await StoreService.close(storage)
            throw error
        }
        if !role.runsConsumer { probes.insert(ServiceBootstrap.brokerProbe(connection), at: 0) }
        let observers =
            exporters
            + ServiceBootstrap.healthServices(
                settings.healthEndpoint, probes: probes, registry: registry, serverName: serverName, logger: logger)
        try await ServiceBootstrap.runUntilSignalled(workers, store: storage, connection: connection, observers: observers, logger: logger)
    }

    /// The exchanges the context's relay publishes to: its own events exchange and the
    /// command exchanges of its command targets (and its own, for its deadlines).
    private func declareExchanges(_ topology: ContextTopology, on connection: AMQPConnection) async throws(ServiceBootstrap.StartupError) {
        let names = Set([EventMessage.exchange(for: context)] + topology.commandExchanges)
        do {
            for exchange in topology.exchanges where names.contains(exchange.name) {
                try await connection.declare(exchange)
            }
        } catch {
            throw ServiceBootstrap.StartupError("Cannot declare the exchange of context '\(context)': \(error)", exitCode: 69)
        }
    }

    /// `--once`: publishes what is due and logs the counts.
    private func drain(_ relay: OutboxRelay, logger: Logger) async throws {
        let statistics = try await relay.runOnce()
        logger.info(
            "Outbox drained",
            metadata: [
                "outbox.published": "\(statistics.published)", "outbox.failed": "\(statistics.failed)",
                "outbox.parked": "\(statistics.parked)",
            ])
    }

    /// The module of the context, or a configuration error naming the contexts built in.
    private func module(in modules: ContextHandlers) throws(ServiceBootstrap.StartupError) -> ContextModule {
        guard let module = modules.module(for: context) else {
            let builtIn =
                modules.contextNames.isEmpty
                ? "none (this build relays and administers only)" : modules.contextNames.joined(separator: ", ")
            throw ServiceBootstrap.StartupError(
                "Bad configuration: no handler code is built in for context '\(context)'; built in: \(builtIn)", exitCode: 78)
        }
        return module
    }

    /// The module's deadlines with the file's values (`contexts.<name>.deadlines`) over its
    /// defaults; a deadline the code does not declare is a configuration error.
    private func deadlines(
        of module: ContextModule, _ settings: ServiceBootstrap.Settings
    ) throws(ServiceBootstrap.StartupError) -> [String:
        Duration]
    {
        let configuration = settings.configuration
        do {
            let configured = try configuration.deadlines(context: context)
            for name in configured.keys.sorted() where module.deadlines[name] == nil {
                let declared = module.deadlines.keys.sorted().joined(separator: ", ")
                throw configuration.error(
                    at: "contexts.\(context).deadlines.\(name)",
                    "no deadline of that name is built in; the code declares \(declared.isEmpty ? "none" : declared)")
            }
            return module.deadlines.merging(configured) { $1 }
        } catch {
            throw ServiceBootstrap.StartupError("Bad configuration: \(error)", exitCode: 78)
        }
    }

    /// The command handlers, after checking that the file lets the context accept commands
    /// exactly when the code handles some.
    private func checkedCommandHandlers(
        _ handlers: [CommandHandler], _ settings: ServiceBootstrap.Settings
    ) throws(ServiceBootstrap.StartupError) -> [CommandHandler] {
        let configuration = settings.configuration
        let accepts = configuration.contexts[context]?.acceptsCommands ?? false
        guard accepts == !handlers.isEmpty else {
            let message =
                accepts
                ? "is true, but no command handler is built in for this context"
                : "is false, but the code handles \(handlers.map(\.typeName).sorted().joined(separator: ", ")); set it to true"
            throw ServiceBootstrap.StartupError(
                "Bad configuration: \(configuration.error(at: "contexts.\(context).accepts_commands", message))", exitCode: 78)
        }
        return handlers
    }

    /// The handlers, after checking that their names and subscriptions match the file.
    private func checkedHandlers(
        _ handlers: [EventHandler], _ settings: ServiceBootstrap.Settings
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
