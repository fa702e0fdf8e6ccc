public import Foundation
import Yams

extension ServiceConfiguration {
    /// Reads the YAML file at `path`, applies environment overrides and checks the result
    /// (see ``validate()``).
    ///
    /// - Throws: ``ConfigurationError`` naming where the bad value came from and the entry.
    public static func load(
        path: String, environment: [String: String] = ProcessInfo.processInfo.environment
    ) throws(ConfigurationError) -> ServiceConfiguration {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw ConfigurationError(origin: .file(path), entry: nil, message: "cannot read the file: \(error.localizedDescription)")
        }
        var configuration = try parse(text, file: path)
        try configuration.applyEnvironment(environment)
        try configuration.validate()
        return configuration
    }

    /// Parses YAML text; `file` names the source in errors. Syntax errors, duplicate keys and
    /// entries of the wrong type are reported with their line and column.
    public static func parse(_ text: String, file: String) throws(ConfigurationError) -> ServiceConfiguration {
        let node: Node
        do {
            guard let composed = try Yams.compose(yaml: text) else {
                throw ConfigurationError(origin: .file(file), entry: nil, message: "is empty; it must define contexts")
            }
            node = composed
        } catch let error as ConfigurationError {
            throw error
        } catch let error as YamlError {
            throw ConfigurationError(yaml: error, file: file, text: text)
        } catch {
            throw ConfigurationError(origin: .file(file), entry: nil, message: "is not valid YAML: \(error)")
        }
        var origins: [String: ConfigurationOrigin] = [:]
        collectOrigins(of: node, path: "", file: file, into: &origins)
        do {
            var configuration = try YAMLDecoder().decode(ServiceConfiguration.self, from: node)
            configuration.file = file
            configuration.origins = origins
            return configuration
        } catch let error as DecodingError {
            var located = ServiceConfiguration()
            located.file = file
            located.origins = origins
            throw located.error(decoding: error)
        } catch {
            throw ConfigurationError(origin: .file(file), entry: nil, message: "\(error)")
        }
    }

    /// Records the line and column of every key and sequence element under its dotted path.
    private static func collectOrigins(of node: Node, path: String, file: String, into origins: inout [String: ConfigurationOrigin]) {
        func record(_ path: String, _ mark: Mark?) {
            guard let mark else { return }
            origins[path] = .file(file, line: mark.line, column: mark.column)
        }
        switch node {
        case .mapping(let mapping):
            for (key, value) in mapping {
                let name = key.string ?? "\(key)"
                let child = path.isEmpty ? name : "\(path).\(name)"
                record(child, key.mark)
                collectOrigins(of: value, path: child, file: file, into: &origins)
            }
        case .sequence(let sequence):
            for (index, element) in sequence.enumerated() {
                let child = "\(path)[\(index)]"
                record(child, element.mark)
                collectOrigins(of: element, path: child, file: file, into: &origins)
            }
        default:
            break
        }
    }

    /// The context named `name`.
    public func context(_ name: String) throws(ConfigurationError) -> Context {
        guard let context = contexts[name] else {
            throw ConfigurationError(
                origin: origin(of: "contexts"), entry: "contexts.\(name)",
                message: "unknown context '\(name)'; the file defines \(contexts.keys.sorted().joined(separator: ", "))"
            )
        }
        return context
    }

    /// Applies the environment overrides (see `docs/CONFIGURATION.md`), recording each
    /// variable as the origin of the entries it sets.
    mutating func applyEnvironment(_ environment: [String: String]) throws(ConfigurationError) {
        func value(_ variable: String) -> String? {
            environment[variable].flatMap { $0.isEmpty ? nil : $0 }
        }
        func integer(_ variable: String) throws(ConfigurationError) -> Int? {
            guard let text = value(variable) else { return nil }
            guard let number = Int(text) else {
                throw ConfigurationError(origin: .environment(variable), entry: nil, message: "'\(text)' is not an integer")
            }
            return number
        }
        func set<Value>(_ variable: String, _ entry: String, _ newValue: Value?, _ apply: (inout Self, Value) -> Void) {
            guard let newValue else { return }
            apply(&self, newValue)
            origins[entry] = .environment(variable)
        }
        set("AMQP_URL", "broker.url", value("AMQP_URL")) {
            $0.broker.url = $1
            $0.broker.urls = nil
        }
        if let text = value("ES_BROKER_WAIT") {
            let wait: Bool
            switch text.lowercased() {
            case "1", "true", "yes": wait = true
            case "0", "false", "no": wait = false
            default:
                throw ConfigurationError(
                    origin: .environment("ES_BROKER_WAIT"), entry: nil, message: "'\(text)' is not a boolean; use true or false")
            }
            set("ES_BROKER_WAIT", "broker.wait_for_broker", wait) { $0.broker.waitForBroker = $1 }
        }
        set("ES_RELAY_BATCH_SIZE", "relay.batch_size", try integer("ES_RELAY_BATCH_SIZE")) { $0.relay.batchSize = $1 }
        set("ES_RELAY_WINDOW", "relay.window", try integer("ES_RELAY_WINDOW")) { $0.relay.window = $1 }
        set("ES_RELAY_LINGER_MS", "relay.linger_ms", try integer("ES_RELAY_LINGER_MS")) { $0.relay.lingerMilliseconds = $1 }
        set("ES_RELAY_ATTEMPT_LIMIT", "relay.attempt_limit", try integer("ES_RELAY_ATTEMPT_LIMIT")) { $0.relay.attemptLimit = $1 }
        set("ES_HTTP_HOST", "observability.host", value("ES_HTTP_HOST")) { $0.observability.host = $1 }
        set("ES_HTTP_PORT", "observability.port", try integer("ES_HTTP_PORT")) { $0.observability.port = $1 }
        set("OTEL_EXPORTER_OTLP_ENDPOINT", "tracing.otlp_endpoint", value("OTEL_EXPORTER_OTLP_ENDPOINT")) {
            $0.tracing.otlpEndpoint = $1
        }
        let prefetch = try integer("ES_CONSUMER_PREFETCH")
        let ackBatch = try integer("ES_CONSUMER_ACK_BATCH")
        for name in contexts.keys {
            set("ES_CONSUMER_PREFETCH", "contexts.\(name).consumer.prefetch", prefetch) { $0.contexts[name]?.consumer.prefetch = $1 }
            set("ES_CONSUMER_ACK_BATCH", "contexts.\(name).consumer.ack_batch", ackBatch) { $0.contexts[name]?.consumer.ackBatch = $1 }
        }
    }

    /// Checks names, subscriptions and every value: the handler subscriptions must name a
    /// context of this file and an event type that context publishes, every store must be
    /// usable, and the relay, consumer and broker settings must pass the checks of the
    /// library types they configure (see ``relayConfiguration(context:)``,
    /// ``consumerConfiguration(context:)``, ``connectionConfiguration(name:)``).
    ///
    /// - Throws: ``ConfigurationError`` naming where the bad value came from and the entry.
    public func validate() throws(ConfigurationError) {
        guard !contexts.isEmpty else {
            throw error(at: "contexts", "defines no context")
        }
        if let window = relay.window, window <= 0 {
            throw error(at: "relay.window", "must be positive, got \(window)")
        }
        _ = try connectionConfiguration(name: "validation")
        _ = try healthEndpointConfiguration()
        _ = try otlpTracesEndpoint()
        for name in contexts.keys.sorted() {
            let context = contexts[name] ?? Context(store: "")
            guard name.range(of: "^[a-z][a-z0-9-]*$", options: .regularExpression) != nil else {
                throw error(at: "contexts.\(name)", "a context name is lower-case letters, digits and '-'")
            }
            _ = try StorageLocation(context.store, origin: origin(of: "contexts.\(name).store"), entry: "contexts.\(name).store")
            var seen: Set<String> = []
            for type in context.publishes where !seen.insert(type).inserted {
                throw error(at: "contexts.\(name).publishes", "lists '\(type)' twice")
            }
            try validateHandlers(of: name, context)
            try validateCommands(of: name, context)
            _ = try relayConfiguration(context: name)
            _ = try consumerConfiguration(context: name)
        }
    }

    private func validateCommands(of name: String, _ context: Context) throws(ConfigurationError) {
        let entry = "contexts.\(name).command_targets"
        var seen: Set<String> = []
        for target in context.commandTargets {
            guard seen.insert(target).inserted else { throw error(at: entry, "lists '\(target)' twice") }
            guard let receiver = contexts[target] else {
                throw error(
                    at: entry, "names the unknown context '\(target)'; the file defines \(contexts.keys.sorted().joined(separator: ", "))")
            }
            guard receiver.acceptsCommands else {
                throw error(at: entry, "names '\(target)', which does not accept commands (contexts.\(target).accepts_commands)")
            }
        }
        for deadline in context.deadlines.keys.sorted() where deadline.range(of: "^[a-z][a-z0-9-]*$", options: .regularExpression) == nil {
            throw error(at: "contexts.\(name).deadlines.\(deadline)", "a deadline name is lower-case letters, digits and '-'")
        }
        _ = try deadlines(context: name)
    }

    private func validateHandlers(of name: String, _ context: Context) throws(ConfigurationError) {
        for handlerName in context.handlers.keys.sorted() {
            let entry = "contexts.\(name).handlers.\(handlerName)"
            guard handlerName.range(of: "^[a-z][a-z0-9-]*$", options: .regularExpression) != nil else {
                throw error(at: entry, "a handler name is lower-case letters, digits and '-'")
            }
            let handler = context.handlers[handlerName] ?? Handler()
            let subscriptionEntry = "\(entry).subscribes"
            guard !handler.subscribes.isEmpty else {
                throw error(at: subscriptionEntry, "subscribes to nothing")
            }
            var seen: Set<String> = []
            for subscription in handler.subscribes {
                guard seen.insert(subscription).inserted else {
                    throw error(at: subscriptionEntry, "lists '\(subscription)' twice")
                }
                let parts = subscription.split(separator: ".", omittingEmptySubsequences: false)
                guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else {
                    throw error(at: subscriptionEntry, "'\(subscription)' is not written source.EventType")
                }
                let source = String(parts[0])
                let type = String(parts[1])
                guard let publisher = contexts[source] else {
                    throw error(
                        at: subscriptionEntry,
                        "'\(subscription)' names the unknown context '\(source)'; the file defines \(contexts.keys.sorted().joined(separator: ", "))"
                    )
                }
                guard publisher.publishes.contains(type) else {
                    throw error(
                        at: subscriptionEntry,
                        "'\(subscription)': context '\(source)' does not publish '\(type)'; it publishes \(publisher.publishes.joined(separator: ", "))"
                    )
                }
            }
        }
    }

    /// The error for a value the decoder rejects, located at the entry's line.
    func error(decoding error: DecodingError) -> ConfigurationError {
        func path(_ codingPath: [any CodingKey]) -> String {
            let keys = codingPath.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }
            return keys.joined(separator: ".").replacingOccurrences(of: ".[", with: "[")
        }
        func located(_ entry: String, _ message: String) -> ConfigurationError {
            entry.isEmpty ? ConfigurationError(origin: .file(file), entry: nil, message: message) : self.error(at: entry, message)
        }
        switch error {
        case .keyNotFound(let key, let context):
            return located(path(context.codingPath + [key]), "is missing")
        case .typeMismatch(let type, let context):
            return located(path(context.codingPath), "should be \(type): \(context.debugDescription)")
        case .valueNotFound(let type, let context):
            return located(path(context.codingPath), "needs a \(type) value")
        case .dataCorrupted(let context):
            return located(path(context.codingPath), context.debugDescription)
        @unknown default:
            return ConfigurationError(origin: .file(file), entry: nil, message: "\(error)")
        }
    }
}

extension ConfigurationError {
    /// A YAML syntax error or duplicate key, at its line and column.
    init(yaml error: YamlError, file: String, text: String) {
        func at(_ mark: Mark, _ message: String) -> ConfigurationError {
            ConfigurationError(origin: .file(file, line: mark.line, column: mark.column), entry: nil, message: message)
        }
        func hint(_ mark: Mark) -> String {
            let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
            guard mark.line >= 1, mark.line <= lines.count else { return "" }
            let line = lines[mark.line - 1]
            let column = line.unicodeScalars.index(
                line.unicodeScalars.startIndex, offsetBy: max(0, mark.column - 1), limitedBy: line.unicodeScalars.endIndex)
            guard let column, column < line.unicodeScalars.endIndex, line.unicodeScalars[column] == "\t" else { return "" }
            return " (a tab: YAML indents with spaces only)"
        }
        switch error {
        case .scanner(let context, let problem, let mark, _), .parser(let context, let problem, let mark, _),
            .composer(let context, let problem, let mark, _):
            let during = context.map { ", \($0.text) at line \($0.mark.line), column \($0.mark.column)" } ?? ""
            self = at(mark, "is not valid YAML: \(problem)\(hint(mark))\(during)")
        case .duplicatedKeysInMapping(let duplicates, let context):
            let keys = duplicates.map { "'\($0)'" }.joined(separator: ", ")
            self = at(context.mark, "is not valid YAML: the key \(keys) is written more than once in one mapping (first here); keep one")
        default:
            self = ConfigurationError(origin: .file(file), entry: nil, message: "is not valid YAML: \(error)")
        }
    }
}
