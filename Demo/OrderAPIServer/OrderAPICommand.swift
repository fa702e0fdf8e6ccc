import ArgumentParser
import DemoContexts
import EventSourcery
import EventSourceryServices
import Foundation
import Hummingbird
import Logging
import OrderAPI
import ServiceLifecycle
import UnixSignals

/// `order-api`: the HTTP API of the order context.
@main
struct OrderAPICommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "order-api",
        abstract:
            "Serves the order context's HTTP API: POST /orders, GET and HEAD /orders/{id}, GET and HEAD /health, GET /health/live, /health/ready and /metrics.",
        discussion: """
            Opens the store of the context 'order' from the configuration file; --store or \
            ES_STORE_URL override it. ES_API_HOST and ES_API_PORT set the address when --host \
            and --port are not given. Stops gracefully on SIGTERM or SIGINT: requests in \
            flight are answered before exit.

            Exit codes: 0 done, 64 bad arguments, 69 store unavailable or the address cannot \
            be served, 78 bad configuration.
            """
    )

    /// The context whose store the API serves.
    static let context = "order"
    static let defaultHost = "127.0.0.1"
    static let defaultPort = 8080

    @Option(name: .long, help: "The configuration file.")
    var config = "config/eventsourcery.yaml"

    @Option(name: .long, help: "The store (sqlite:<path> or postgres://…), overriding the configuration.")
    var store: String?

    @Option(name: .long, help: "The address to listen on (ES_API_HOST; default \(defaultHost), loopback only).")
    var host: String?

    @Option(name: .long, help: "The port to listen on (ES_API_PORT; default \(defaultPort)).")
    var port: Int?

    @Option(name: .long, help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel = "info"

    func validate() throws {
        guard Logger.Level(rawValue: logLevel) != nil else {
            throw ValidationError("--log-level must be one of trace, debug, info, notice, warning, error, critical")
        }
        _ = try address()
    }

    func run() async throws {
        let logger = ServiceBootstrap.logger(label: "order-api", level: Logger.Level(rawValue: logLevel) ?? .info, context: Self.context)
        let (host, port) = try address()
        let registry = ServiceBootstrap.bootstrapMetrics()
        do throws(ServiceBootstrap.StartupError) {
            let settings = try ServiceBootstrap.load(config: config, context: Self.context, storeOverride: store)
            // Before the store and the routes: they take the process's tracer when created.
            let exporters = try ServiceBootstrap.bootstrapTracing(settings.configuration, serviceName: "order-api")
            let storage = try await ServiceBootstrap.openStore(settings, logger: logger)
            let router = Router()
            router.add(middleware: MetricsMiddleware())  // request counts and durations on /metrics
            OrderRoutes(store: EventStore(storage: storage, registry: EventRegistry(DemoContext.eventTypes), logger: logger)).register(
                on: router)
            let monitor = HealthMonitor(
                probes: [ServiceBootstrap.storeProbe(storage)], interval: settings.healthEndpoint.checkInterval,
                staleAfter: settings.healthEndpoint.staleAfter)
            HealthEndpoint(monitor: monitor, registry: registry).register(on: router)
            let app = Application(
                router: router,
                configuration: ApplicationConfiguration(address: .hostname(host, port: port), serverName: "order-api"),
                onServerRunning: { _ in
                    logger.info("Listening", metadata: ["http.address": "http://\(host):\(port)"])
                },
                logger: logger
            )
            let group = ServiceGroup(
                configuration: ServiceGroupConfiguration(
                    // The store first, so that it is closed last; the exporter flushes after the server stopped.
                    services: [.init(service: StoreService(storage))] + exporters.map { .init(service: $0) }
                        + [.init(service: monitor), .init(service: app)],
                    gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
            )
            do {
                try await group.run()
            } catch {
                throw ServiceBootstrap.StartupError("Cannot serve HTTP on \(host):\(port): \(error)", exitCode: 69)
            }
        } catch {
            logger.critical("\(error.message)")
            throw ExitCode(error.exitCode)
        }
    }

    /// The address to listen on: the options, else `ES_API_HOST` and `ES_API_PORT`, else the defaults.
    private func address() throws(ValidationError) -> (host: String, port: Int) {
        let environment = ProcessInfo.processInfo.environment
        let host = host ?? environment["ES_API_HOST"].flatMap { $0.isEmpty ? nil : $0 } ?? Self.defaultHost
        let port: Int
        if let option = self.port {
            port = option
        } else if let variable = environment["ES_API_PORT"], !variable.isEmpty {
            guard let value = Int(variable) else {
                throw ValidationError("ES_API_PORT must be a port number; got '\(variable)'")
            }
            port = value
        } else {
            port = Self.defaultPort
        }
        guard (1...65535).contains(port) else {
            throw ValidationError("the port must be between 1 and 65535; got \(port)")
        }
        return (host, port)
    }
}
