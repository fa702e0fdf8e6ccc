import EventSourceryRabbitMQ
import EventSourceryAMQP
import ArgumentParser
import DemoContexts
import EventSourcery
import EventSourceryServices
import FlowTrace
import Foundation
import Logging
import UnixSignals

/// The distributed demo on one machine: the order, payment and invoice contexts as separate
/// processes talking only through RabbitMQ, orders placed through the order API, live
/// progress, a checked summary and one order's timeline across the contexts.
@main
struct DemoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eventsourcery-demo",
        abstract: "Runs the order/payment/invoice flow as processes over RabbitMQ and reports how the orders settled.",
        discussion: """
            Starts a demo-service per context (its consumers of events and commands and its outbox relay) and \
            the order-api, with SQLite stores in the run folder (emptied first), places orders through POST /orders, \
            waits until every order is completed or cancelled, prints a summary and checks it, \
            prints one order's timeline and writes it as an HTML sequence diagram, then stops \
            everything it started. The broker comes from the config file or AMQP_URL; the \
            scripts/demo wrapper gives each run a fresh vhost. With --replicas N every context's \
            consumer runs N times, sharing the context's inbox partitions and its store (on \
            PostgreSQL, --postgres), and the summary shows which replica held which partitions. The order \
            context's fulfilment process manager coordinates payment and invoice with commands; \
            --pause-payment S stops the payment services for S seconds (longer than the payment deadline) \
            and the summary checks that the orders it caught were cancelled once and their late charges \
            refunded. Exit status 0 when every check holds.
            """
    )

    static let contexts = ["order", "payment", "invoice"]

    /// A process the demo starts: a built product with the arguments that give it its role
    /// (the configuration, store and port arguments are added when it starts).
    struct Service: Sendable {
        var name: String
        var product: String
        var arguments: [String]
        /// The port it serves health and metrics on (`--http-port`), if any.
        var httpPort: Int? = nil

        /// The context it serves (`--context`), if any.
        var context: String? {
            arguments.firstIndex(of: "--context").map { arguments[$0 + 1] }
        }
    }

    /// The processes the demo starts, in start order: `replicas` services per context (each
    /// runs the context's consumer and relay; with more than one, each serves its metrics on a
    /// port from `metricsPort` on), then the order API. `compose/docker-compose.yml` runs the
    /// same ones with one replica (`--list-services` prints them for scripts/check-compose).
    static func services(replicas: Int = 1, metricsPort: Int = 0) -> [Service] {
        let contextServices = contexts.flatMap { context in
            (1...replicas).map { replica in
                Service(
                    name: replicas == 1 ? "demo-service-\(context)" : "demo-service-\(context)-\(replica)",
                    product: "demo-service", arguments: ["--context", context])
            }
        }
        return contextServices.enumerated().map { index, service in
            var service = service
            if replicas > 1 { service.httpPort = metricsPort + index }
            return service
        }
            + [Service(name: "order-api", product: "order-api", arguments: [])]
    }

    /// The most service replicas per context.
    static let maximumReplicas = 9

    @Option(help: "The services' configuration file (broker, relay, contexts).")
    var config = "config/eventsourcery.yaml"

    @Option(help: "Orders to place.")
    var orders = 300

    @Option(help: "Orders placed per second.")
    var rate = 100

    @Option(help: "The run folder for stores, logs and the trace (emptied at start).")
    var runDirectory = ".run/demo"

    @Option(help: "The port of the order API on 127.0.0.1.")
    var port = 8080

    @Option(help: "Seconds to wait for every order to settle.")
    var settleTimeout = 120

    @Option(help: "The folder with the built services (default: this executable's folder).")
    var executables: String?

    @Option(help: "Consumer processes per context, sharing its inbox partitions and its store (above 1 needs --postgres).")
    var replicas = 1

    @Option(
        help:
            "A PostgreSQL database URL for the stores, one schema demo_<context> per context (shared by its replicas); default: SQLite files in the run folder."
    )
    var postgres: String?

    @Option(help: "With --replicas above 1, the first of the ports on 127.0.0.1 the consumer replicas serve their metrics on.")
    var metricsPort = 9400

    @Option(
        help:
            "Pause the payment services (SIGSTOP) for this many seconds, longer than the payment deadline, once a third of the orders are placed: the orders waiting for payment are cancelled by the deadline, and the late answers are refunded."
    )
    var pausePayment: Double?

    @Option(
        name: .customLong("broker-pid"),
        help: "The process id of a broker node (its Erlang VM, beam.smp), repeatable: the summary shows its CPU time per settled order."
    )
    var brokerPIDs: [Int32] = []

    @Flag(help: "Print the processes the demo starts (product and role arguments, one per line) and exit.")
    var listServices = false

    func validate() throws {
        guard orders > 0, rate > 0, settleTimeout > 0 else {
            throw ValidationError("--orders, --rate and --settle-timeout must be positive")
        }
        if let pausePayment, !(pausePayment.isFinite && pausePayment > 0 && pausePayment < 3600) {
            throw ValidationError("--pause-payment must be a number of seconds within 0...3600")
        }
        guard (1...65535).contains(port) else { throw ValidationError("--port must be 1...65535") }
        guard brokerPIDs.allSatisfy({ $0 > 0 }) else { throw ValidationError("--broker-pid must be a process id above 0") }
        guard (1...Self.maximumReplicas).contains(replicas) else { throw ValidationError("--replicas must be 1...\(Self.maximumReplicas)") }
        guard replicas == 1 || postgres != nil else {
            throw ValidationError("--replicas above 1 needs --postgres: the replicas of a context share its store")
        }
        let consumers = Self.contexts.count * replicas
        guard (1...(65536 - consumers)).contains(metricsPort) else {
            throw ValidationError("--metrics-port must leave room for \(consumers) ports below 65536")
        }
    }

    func run() async throws {
        if listServices {
            for service in Self.services() { print(([service.product] + service.arguments).joined(separator: " ")) }
            return
        }
        let settings = try loadSettings()
        let services = ServiceProcesses(executables: settings.executables, logs: settings.logs)
        let parameters = DemoRun.Parameters(
            config: config, orders: orders, rate: rate, port: port, settleTimeout: settleTimeout,
            pausePayment: pausePayment.map { .milliseconds(Int64(($0 * 1000).rounded())) }, brokerPIDs: brokerPIDs)
        let signals = await UnixSignalsSequence(trapping: .sigint, .sigterm)
        let outcome: Result<Bool, any Error>? = await withTaskGroup(of: Result<Bool, any Error>?.self) { group in
            group.addTask {
                do { return .success(try await DemoRun(command: parameters, settings: settings, services: services).run()) } catch {
                    return .failure(error)
                }
            }
            group.addTask {
                for await signal in signals {
                    print("\n\(signal) received: stopping the services")
                    return nil
                }
                return nil
            }
            let first = await group.next() ?? nil
            group.cancelAll()
            return first
        }
        let unclean = await services.stopAll()
        print(unclean.isEmpty ? "All services stopped." : "Services that did not stop cleanly: \(unclean.joined(separator: ", "))")
        switch outcome {
        case .success(true)?:
            guard unclean.isEmpty else { throw ExitCode.failure }
        case .success(false)?:
            throw ExitCode.failure
        case .failure(let error)?:
            print("Demo failed: \(error)")
            throw ExitCode.failure
        case nil:
            throw ExitCode(130)
        }
    }

    struct Settings: Sendable {
        var broker: AMQPConnection.Configuration
        var stores: [String: String]
        var executables: URL
        var logs: URL
        var runDirectory: URL
        /// The processes to start.
        var services: [Service]
        /// The inbox queues of each context (its partitions).
        var inboxQueues: [String: [String]]
        /// The command queues of the contexts that accept commands.
        var commandQueues: [String]
        /// How long the order context waits for the payment's answer (`payment-timeout`).
        var paymentTimeout: Duration
        /// Consumer processes per context.
        var replicas: Int
    }

    private func loadSettings() throws -> Settings {
        let configuration: ServiceConfiguration
        do {
            configuration = try ServiceConfiguration.load(path: config)
        } catch {
            print("\(error)")
            throw ExitCode(78)
        }
        for context in Self.contexts where configuration.contexts[context] == nil {
            print("\(config): the demo needs the context '\(context)'")
            throw ExitCode(78)
        }
        let paymentTimeout =
            try configuration.deadlines(context: "order")[Fulfilment.paymentTimeoutName] ?? DemoContext.defaultPaymentTimeout
        if let pausePayment, .milliseconds(Int64(pausePayment * 1000)) <= paymentTimeout {
            print(
                "--pause-payment \(pausePayment) must be longer than the payment deadline (\(paymentTimeout), contexts.order.deadlines.payment-timeout)"
            )
            throw ExitCode(64)
        }
        let run = URL(fileURLWithPath: runDirectory, isDirectory: true).standardizedFileURL
        try? FileManager.default.removeItem(at: run)
        let logs = run.appendingPathComponent("logs", isDirectory: true)
        try FileManager.default.createDirectory(at: logs, withIntermediateDirectories: true)
        let executables =
            executables.map { URL(fileURLWithPath: $0, isDirectory: true) }
            ?? URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
        let topologies = Dictionary(uniqueKeysWithValues: configuration.topologies.map { ($0.context, $0) })
        return Settings(
            broker: try configuration.connectionConfiguration(name: "eventsourcery-demo"),
            stores: Dictionary(uniqueKeysWithValues: Self.contexts.map { ($0, store(of: $0, in: run)) }),
            executables: executables,
            logs: logs,
            runDirectory: run,
            services: Self.services(replicas: replicas, metricsPort: metricsPort),
            inboxQueues: Dictionary(uniqueKeysWithValues: Self.contexts.map { ($0, topologies[$0]?.inboxQueues ?? []) }),
            commandQueues: Self.contexts.filter { configuration.contexts[$0]?.acceptsCommands == true }.map(CommandMessage.queue(for:)),
            paymentTimeout: paymentTimeout,
            replicas: replicas
        )
    }

    /// The store of `context`: the schema `demo_<context>` of the `--postgres` database, or a
    /// SQLite file in the run folder.
    private func store(of context: String, in run: URL) -> String {
        guard let postgres else { return "sqlite:\(run.appendingPathComponent("\(context).sqlite").path)" }
        let schema = "schema=demo_\(context.replacingOccurrences(of: "-", with: "_"))"
        return postgres + (postgres.contains("?") ? "&" : "?") + schema
    }
}
