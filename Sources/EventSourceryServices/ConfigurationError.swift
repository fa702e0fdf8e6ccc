import Foundation

/// Where a configuration value came from: a line of the configuration file, an environment
/// variable or a command-line option.
public enum ConfigurationOrigin: Sendable, Equatable, CustomStringConvertible {
    /// The configuration file, with the entry's line and column (from 1) when known.
    case file(String, line: Int? = nil, column: Int? = nil)
    /// An environment variable, e.g. `AMQP_URL`.
    case environment(String)
    /// A command-line option, e.g. `--store`.
    case option(String)

    /// `file:line:column`, `environment variable NAME` or `option --name`.
    public var description: String {
        switch self {
        case .file(let path, let line?, let column?): "\(path):\(line):\(column)"
        case .file(let path, let line?, nil): "\(path):\(line)"
        case .file(let path, _, _): path
        case .environment(let name): "environment variable \(name)"
        case .option(let name): "option \(name)"
        }
    }
}

/// A configuration file, environment variable or option that cannot be used.
///
/// The description names where the value came from, the entry and what is wrong, e.g.
/// `config/eventsourcery.yaml:14:3: relay.batch_size: batchSize must be positive, got 0` or
/// `environment variable ES_CONSUMER_PREFETCH: must be within 1...65535, got 70000`.
public struct ConfigurationError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Where the bad value came from.
    public var origin: ConfigurationOrigin
    /// The dotted path of the bad entry in the file (e.g. `relay.lease_seconds`), if any.
    public var entry: String?
    /// What is wrong.
    public var message: String

    /// Creates an error.
    public init(origin: ConfigurationOrigin, entry: String?, message: String) {
        self.origin = origin
        self.entry = entry
        self.message = message
    }

    public var description: String {
        "\(origin): \(entry.map { "\($0): " } ?? "")\(message)"
    }
}
