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
