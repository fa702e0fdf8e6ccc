public import Foundation
import Yams

extension ServiceConfiguration {
    /// Reads the YAML file at `path` and applies environment overrides.
    ///
    /// - Throws: ``ConfigurationError`` naming the file and the entry that is wrong.
    public static func load(path: String, environment: [String: String] = ProcessInfo.processInfo.environment) throws(ConfigurationError) -> ServiceConfiguration {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw ConfigurationError(file: path, entry: nil, message: "cannot read the file: \(error.localizedDescription)")
        }
        var configuration = try parse(text, file: path)
        try configuration.applyEnvironment(environment, file: path)
        try configuration.validate(file: path)
        return configuration
    }

    /// Parses YAML text; `file` names the source in errors.
    public static func parse(_ text: String, file: String) throws(ConfigurationError) -> ServiceConfiguration {
        do {
            return try YAMLDecoder().decode(ServiceConfiguration.self, from: text)
        } catch let error as DecodingError {
            throw ConfigurationError(decoding: error, file: file)
        } catch {
            throw ConfigurationError(file: file, entry: nil, message: "is not valid YAML: \(error)")
        }
    }

    /// The context named `name`.
    public func context(_ name: String, file: String) throws(ConfigurationError) -> Context {
        guard let context = contexts[name] else {
            throw ConfigurationError(
                file: file, entry: "contexts.\(name)",
                message: "unknown context '\(name)'; the file defines \(contexts.keys.sorted().joined(separator: ", "))"
            )
        }
        return context
    }

    mutating func applyEnvironment(_ environment: [String: String], file: String) throws(ConfigurationError) {
        func integer(_ key: String) throws(ConfigurationError) -> Int? {
            guard let text = environment[key] else { return nil }
            guard let value = Int(text) else {
                throw ConfigurationError(file: "environment", entry: key, message: "'\(text)' is not an integer")
            }
            return value
        }
        if let url = environment["AMQP_URL"], !url.isEmpty { broker.url = url }
        if let wait = environment["ES_BROKER_WAIT"] { broker.waitForBroker = ["1", "true", "yes"].contains(wait.lowercased()) }
        if let value = try integer("ES_RELAY_BATCH_SIZE") { relay.batchSize = value }
        if let value = try integer("ES_RELAY_WINDOW") { relay.window = value }
        if let value = try integer("ES_RELAY_ATTEMPT_LIMIT") { relay.attemptLimit = value }
    }

    func validate(file: String) throws(ConfigurationError) {
        func positive(_ value: some BinaryInteger, _ entry: String) throws(ConfigurationError) {
            guard value > 0 else { throw ConfigurationError(file: file, entry: entry, message: "must be positive, got \(value)") }
        }
        try positive(relay.batchSize, "relay.batch_size")
        try positive(relay.window, "relay.window")
        try positive(relay.attemptLimit, "relay.attempt_limit")
        try positive(relay.idlePollMilliseconds, "relay.idle_poll_ms")
        guard broker.url.hasPrefix("amqp://") || broker.url.hasPrefix("amqps://") else {
            throw ConfigurationError(file: file, entry: "broker.url", message: "'\(broker.url)' is not an amqp:// or amqps:// URL")
        }
        guard !contexts.isEmpty else {
            throw ConfigurationError(file: file, entry: "contexts", message: "defines no context")
        }
        for (name, context) in contexts {
            guard name.range(of: "^[a-z][a-z0-9-]*$", options: .regularExpression) != nil else {
                throw ConfigurationError(file: file, entry: "contexts.\(name)", message: "a context name is lower-case letters, digits and '-'")
            }
            guard !context.store.isEmpty else {
                throw ConfigurationError(file: file, entry: "contexts.\(name).store", message: "must name a store")
            }
            var seen: Set<String> = []
            for type in context.publishes where !seen.insert(type).inserted {
                throw ConfigurationError(file: file, entry: "contexts.\(name).publishes", message: "lists '\(type)' twice")
            }
        }
    }
}
