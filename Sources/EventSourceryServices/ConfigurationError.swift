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
