public import ArgumentParser
public import Logging

/// The command-line options every service executable shares: which context it serves,
/// the configuration file, a store override, the health and metrics port and the log level.
public struct ServiceOptions: ParsableArguments {
    @Option(name: .long, help: "The bounded context this process serves.")
    public var context: String

    @Option(name: .long, help: "The configuration file.")
    public var config = "config/eventsourcery.yaml"

    @Option(name: .long, help: "The store (sqlite:<path> or postgres://…), overriding the configuration.")
    public var store: String?

    @Option(
        name: .long,
        help: "Serve /health/live, /health/ready and /metrics on this port (observability.port, ES_HTTP_PORT; default none).")
    public var httpPort: Int?

    @Option(name: .long, help: "Log level: trace, debug, info, notice, warning, error, critical.")
    public var logLevel = "info"

    public init() {}

    public func validate() throws {
        guard Logger.Level(rawValue: logLevel) != nil else {
            throw ValidationError("--log-level must be one of trace, debug, info, notice, warning, error, critical")
        }
    }

    /// Bootstraps logging and returns the process's logger.
    public func makeLogger(label: String) -> Logger {
        ServiceBootstrap.logger(label: label, level: Logger.Level(rawValue: logLevel) ?? .info, context: context)
    }

    /// Loads the configuration for ``context``.
    public func loadSettings() throws(ServiceBootstrap.StartupError) -> ServiceBootstrap.Settings {
        try ServiceBootstrap.load(config: config, context: context, storeOverride: store, httpPortOverride: httpPort)
    }
}
