public import ArgumentParser
import Foundation

/// The service kit: the `main` of an executable that hosts bounded contexts.
///
/// An executable registers its contexts' code (``ContextModule``) and calls ``main(_:)``;
/// the kit parses the command line (``ContextServiceOptions``), reads the configuration file
/// and the environment, opens the context's store, connects to the broker (waiting with
/// backoff unless `broker.wait_for_broker` is false), declares the topology, and runs the
/// consumer and/or the relay (``ServiceRole``) with the health and metrics endpoint in one
/// `ServiceGroup` — the store first, closed last — until SIGTERM or SIGINT. Start-up errors
/// exit with 78 (bad configuration) or 69 (broker or store unavailable). The admin modes
/// (`--export-definitions`, `--list-dead`, `--replay-dead`, `--list-failures`,
/// `--list-parked`, `--retry-parked`, `--skip-parked`) run once and exit.
///
/// ```swift
/// @main
/// enum ShippingService {
///     static func main() async {
///         await ContextService(commandName: "shipping-service").main([
///             ContextModule(name: "shipping", eventTypes: [OrderCompleted.self, OrderShipped.self]) { store in
///                 [ShipOrder(store: store).handler]
///             }
///         ])
///     }
/// }
/// ```
///
/// `outbox-publisher` and `context-consumer` are builds of the kit with no module: the relay
/// needs no context code, and the admin modes work on any context.
public struct ContextService: Sendable {
    /// The executable's name, in help and logs.
    public var commandName: String
    /// One line for `--help`.
    public var abstract: String
    /// What runs when `--role` is not given.
    public var role: ServiceRole

    /// Describes the executable; nothing runs until ``main(_:)``.
    public init(
        commandName: String, abstract: String = "Runs a bounded context's consumer and outbox relay.", role: ServiceRole = .all
    ) {
        self.commandName = commandName
        self.abstract = abstract
        self.role = role
    }

    /// The executable being parsed and run: ``ContextServiceCommand``'s configuration reads it.
    @TaskLocal static var current = ContextService(commandName: "context-service")

    /// Parses the command line, runs the service with `modules`, and exits the process.
    public func main(_ modules: ContextHandlers) async -> Never {
        await main(options: NoOptions.self) { _ in modules }
    }

    /// Parses the command line with the executable's own `options` beside the kit's, runs the
    /// service with the modules made from them, and exits the process.
    public func main<Options: ParsableArguments>(
        options: Options.Type, modules: @escaping @Sendable (Options) -> ContextHandlers
    ) async -> Never {
        typealias Command = ContextServiceCommand<Options>
        // Parsed and run with this executable as ``current``: the help text reads it.
        let (message, exitCode) = await Self.$current.withValue(self) { () async -> (String, ExitCode) in
            do {
                let command = try Command.parse()
                try await command.run(modules: modules(command.options))
                return ("", .success)
            } catch {
                return (Command.fullMessage(for: error), Command.exitCode(for: error))
            }
        }
        if !message.isEmpty {
            if exitCode.isSuccess {
                print(message)
            } else {
                FileHandle.standardError.write(Data((message + "\n").utf8))
            }
        }
        exit(exitCode.rawValue)
    }

    /// No options of the executable's own.
    public struct NoOptions: ParsableArguments {
        public init() {}
    }
}
