public import Foundation
import Yams

extension ServiceConfiguration {
    /// Reads the YAML file at `path` and applies environment overrides.
    ///
    /// - Throws: ``ConfigurationError`` naming the file and the entry that is wrong.
    public static func load(
        path: String, environment: [String: String] = ProcessInfo.processInfo.environment
    ) throws(ConfigurationError) -> ServiceConfiguration {
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
        for name in contexts.keys {
            if let value = try integer("ES_CONSUMER_PREFETCH") { contexts[name]?.consumer.prefetch = value }
            if let value = try integer("ES_CONSUMER_ACK_BATCH") { contexts[name]?.consumer.ackBatch = value }
        }
    }

    /// Checks values, names, and that every handler subscription names a context of this
    /// file and an event type that context publishes.
    ///
    /// - Throws: ``ConfigurationError`` naming the file and the entry.
    public func validate(file: String) throws(ConfigurationError) {
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
                throw ConfigurationError(
                    file: file, entry: "contexts.\(name)", message: "a context name is lower-case letters, digits and '-'")
            }
            guard !context.store.isEmpty else {
                throw ConfigurationError(file: file, entry: "contexts.\(name).store", message: "must name a store")
            }
            var seen: Set<String> = []
            for type in context.publishes where !seen.insert(type).inserted {
                throw ConfigurationError(file: file, entry: "contexts.\(name).publishes", message: "lists '\(type)' twice")
            }
            try validateConsumer(of: name, context, file: file)
        }
    }

    private func validateConsumer(of name: String, _ context: Context, file: String) throws(ConfigurationError) {
        let consumer = context.consumer
        let prefix = "contexts.\(name).consumer"
        guard (1...Int(UInt16.max)).contains(consumer.prefetch) else {
            throw ConfigurationError(file: file, entry: "\(prefix).prefetch", message: "must be 1...65535, got \(consumer.prefetch)")
        }
        for (value, key) in [
            (consumer.deliveryLimit, "delivery_limit"), (consumer.maximumBodyBytes, "max_body_bytes"), (consumer.ackBatch, "ack_batch"),
            (consumer.concurrency, "concurrency"), (consumer.batchSize, "batch_size"),
            (consumer.initialBackoffMilliseconds, "initial_backoff_ms"), (consumer.maximumBackoffMilliseconds, "max_backoff_ms"),
        ]
        where value <= 0 {
            throw ConfigurationError(file: file, entry: "\(prefix).\(key)", message: "must be positive, got \(value)")
        }
        guard consumer.maximumBackoffMilliseconds >= consumer.initialBackoffMilliseconds else {
            throw ConfigurationError(
                file: file, entry: "\(prefix).max_backoff_ms",
                message:
                    "must be at least initial_backoff_ms (\(consumer.initialBackoffMilliseconds)), got \(consumer.maximumBackoffMilliseconds)"
            )
        }
        for handlerName in context.handlers.keys.sorted() {
            let entry = "contexts.\(name).handlers.\(handlerName)"
            guard handlerName.range(of: "^[a-z][a-z0-9-]*$", options: .regularExpression) != nil else {
                throw ConfigurationError(file: file, entry: entry, message: "a handler name is lower-case letters, digits and '-'")
            }
            let handler = context.handlers[handlerName] ?? Handler()
            guard !handler.subscribes.isEmpty else {
                throw ConfigurationError(file: file, entry: "\(entry).subscribes", message: "subscribes to nothing")
            }
            var seen: Set<String> = []
            for subscription in handler.subscribes {
                let subscriptionEntry = "\(entry).subscribes"
                guard seen.insert(subscription).inserted else {
                    throw ConfigurationError(file: file, entry: subscriptionEntry, message: "lists '\(subscription)' twice")
                }
                let parts = subscription.split(separator: ".", omittingEmptySubsequences: false)
                guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else {
                    throw ConfigurationError(
                        file: file, entry: subscriptionEntry, message: "'\(subscription)' is not written source.EventType")
                }
                let source = String(parts[0])
                let type = String(parts[1])
                guard let publisher = contexts[source] else {
                    throw ConfigurationError(
                        file: file, entry: subscriptionEntry,
                        message:
                            "'\(subscription)' names the unknown context '\(source)'; the file defines \(contexts.keys.sorted().joined(separator: ", "))"
                    )
                }
                guard publisher.publishes.contains(type) else {
                    throw ConfigurationError(
                        file: file, entry: subscriptionEntry,
                        message:
                            "'\(subscription)': context '\(source)' does not publish '\(type)'; it publishes \(publisher.publishes.joined(separator: ", "))"
                    )
                }
            }
        }
    }
}
