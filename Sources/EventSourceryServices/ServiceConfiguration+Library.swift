public import EventSourceryAMQP
public import EventSourceryRabbitMQ

// The library configurations built from the file: a setting left out keeps the library's
// default, and the library type's `validate()` checks the result. Its errors name the
// library field; they are reported at the entry of the file that set it.

extension ServiceConfiguration {
    /// The relay settings for `context`: `relay.*` over the defaults of `OutboxRelay.Configuration`.
    ///
    /// - Throws: ``ConfigurationError`` for a value `OutboxRelay.Configuration.validate()` rejects
    ///   or a number of seconds that is not finite or too large.
    public func relayConfiguration(context: String) throws(ConfigurationError) -> OutboxRelay.Configuration {
        var configuration = OutboxRelay.Configuration(context: context)
        if let value = relay.batchSize { configuration.batchSize = value }
        if let value = relay.leaseSeconds { configuration.leaseDuration = try duration(seconds: value, "relay.lease_seconds") }
        if let value = relay.idlePollMilliseconds { configuration.idlePollInterval = .milliseconds(value) }
        if let value = relay.lingerMilliseconds { configuration.linger = .milliseconds(value) }
        if let value = relay.retentionSeconds {
            configuration.retention = value == 0 ? nil : try duration(seconds: value, "relay.retention_seconds")
        }
        if let value = relay.initialBackoffMilliseconds { configuration.retry.backoff.initialDelay = .milliseconds(value) }
        if let value = relay.maximumBackoffMilliseconds { configuration.retry.backoff.maximumDelay = .milliseconds(value) }
        if let value = relay.attemptLimit { configuration.retry.attemptLimit = value }
        try validated(
            configuration.validate,
            entries: [
                "batchSize": "relay.batch_size", "leaseDuration": "relay.lease_seconds", "idlePollInterval": "relay.idle_poll_ms",
                "linger": "relay.linger_ms",
                "retention": "relay.retention_seconds", "retry.backoff.initialDelay": "relay.initial_backoff_ms",
                "retry.backoff.maximumDelay": "relay.max_backoff_ms", "retry.attemptLimit": "relay.attempt_limit",
            ],
            otherwise: "relay"
        )
        return configuration
    }

    /// The consumer settings of the context `name`: `contexts.<name>.consumer.*` over the
    /// defaults of `ContextConsumer.Configuration`.
    ///
    /// - Throws: ``ConfigurationError`` for a value `ContextConsumer.Configuration.validate()` rejects.
    public func consumerConfiguration(context name: String) throws(ConfigurationError) -> ContextConsumer.Configuration {
        let consumer = contexts[name]?.consumer ?? Consumer()
        let prefix = "contexts.\(name).consumer"
        var configuration = ContextConsumer.Configuration(context: name)
        if let value = consumer.prefetch {
            guard let prefetch = UInt16(exactly: value) else {
                throw error(at: "\(prefix).prefetch", "must be within 1...\(UInt16.max), got \(value)")
            }
            configuration.prefetch = prefetch
        }
        if let value = consumer.deliveryLimit { configuration.deliveryLimit = value }
        if let value = consumer.maximumBodyBytes { configuration.maximumBodySize = value }
        if let value = consumer.ackBatch { configuration.ackBatchSize = value }
        if let value = consumer.concurrency { configuration.concurrency = value }
        if let value = consumer.batchSize { configuration.batchSize = value }
        if let value = consumer.initialBackoffMilliseconds { configuration.retryFirstDelay = .milliseconds(value) }
        if let value = consumer.maximumBackoffMilliseconds { configuration.retryMaximumDelay = .milliseconds(value) }
        if let value = consumer.inboxRetentionSeconds {
            configuration.inboxRetention = value == 0 ? nil : try duration(seconds: value, "\(prefix).inbox_retention_seconds")
        }
        configuration.partitions = consumer.partitions ?? Self.defaultPartitions
        try validated(
            configuration.validate,
            entries: [
                "prefetch": "\(prefix).prefetch", "deliveryLimit": "\(prefix).delivery_limit",
                "maximumBodySize": "\(prefix).max_body_bytes",
                "ackBatchSize": "\(prefix).ack_batch", "concurrency": "\(prefix).concurrency", "batchSize": "\(prefix).batch_size",
                "retryFirstDelay": "\(prefix).initial_backoff_ms", "retryMaximumDelay": "\(prefix).max_backoff_ms",
                "inboxRetention": "\(prefix).inbox_retention_seconds",
                "partitions": "\(prefix).partitions",
            ],
            otherwise: "contexts.\(name)"
        )
        return configuration
    }

    /// The broker connection: `broker.url` or the cluster nodes of `broker.urls` (or the
    /// library's default broker) with `broker.heartbeat_seconds`, named `name` in the broker's
    /// management UI.
    ///
    /// - Throws: ``ConfigurationError`` for a URL that does not parse (naming the entry of
    ///   `broker.urls`), both `broker.url` and `broker.urls`, or a value
    ///   `AMQPConnection.Configuration.validate()` rejects.
    public func connectionConfiguration(name: String) throws(ConfigurationError) -> AMQPConnection.Configuration {
        var configuration = AMQPConnection.Configuration()
        switch (broker.url, broker.urls) {
        case (let url?, nil):
            configuration = try parsedBroker(url, at: "broker.url")
        case (nil, let urls?):
            guard !urls.isEmpty else { throw self.error(at: "broker.urls", "must list at least one URL") }
            for (index, url) in urls.enumerated() {
                _ = try parsedBroker(url, at: "broker.urls[\(index)]")
            }
            configuration = try parsedBroker(urls.joined(separator: ","), at: "broker.urls")
        case (_?, _?):
            throw self.error(at: "broker.urls", "set either broker.url or broker.urls, not both")
        case (nil, nil):
            break
        }
        if let seconds = broker.heartbeatSeconds { configuration.heartbeat = .seconds(seconds) }
        configuration.connectionName = name
        try validated(configuration.validate, entries: ["heartbeat": "broker.heartbeat_seconds"], otherwise: "broker.url")
        return configuration
    }

    /// The topology description of the context `name`: its publishes, its handlers'
    /// subscriptions, its delivery limit, its command queue and targets, and its inbox partitions. Run ``validate()`` first (``load(path:environment:)`` does).
    public func contextDescription(_ name: String) -> ContextDescription? {
        guard let context = contexts[name] else { return nil }
        return ContextDescription(
            name: name,
            publishes: context.publishes,
            handlers: context.handlers.mapValues { $0.subscribes.compactMap(EventSubscription.init) },
            deliveryLimit: context.consumer.deliveryLimit ?? ContextConsumer.Configuration(context: name).deliveryLimit,
            acceptsCommands: context.acceptsCommands,
            commandTargets: context.commandTargets,
            partitions: context.consumer.partitions ?? Self.defaultPartitions
        )
    }

    /// The topology of every context in the file, sorted by context name.
    public var topologies: [ContextTopology] {
        contexts.keys.sorted().compactMap { contextDescription($0).map(ContextTopology.init) }
    }

    /// The deadlines of the context `name` (`contexts.<name>.deadlines`) as durations.
    ///
    /// - Throws: ``ConfigurationError`` for a value that is not a positive finite number of seconds.
    public func deadlines(context name: String) throws(ConfigurationError) -> [String: Duration] {
        var deadlines: [String: Duration] = [:]
        for (deadline, seconds) in (contexts[name]?.deadlines ?? [:]).sorted(by: { $0.key < $1.key }) {
            let entry = "contexts.\(name).deadlines.\(deadline)"
            guard seconds > 0 else { throw error(at: entry, "must be a positive number of seconds, got \(seconds)") }
            deadlines[deadline] = try duration(seconds: seconds, entry)
        }
        return deadlines
    }

    /// `seconds` as a duration, if it is finite and fits in 64-bit milliseconds.
    private func duration(seconds: Double, _ entry: String) throws(ConfigurationError) -> Duration {
        guard seconds.isFinite, let milliseconds = Int64(exactly: (seconds * 1000).rounded()) else {
            throw error(at: entry, "must be a finite number of seconds of at most \(Int64.max / 1000), got \(seconds)")
        }
        return .milliseconds(milliseconds)
    }

    /// Runs a library `validate()`, reporting its error at the entry that sets the field it
    /// names (`entries` maps library fields to entries), or at `fallback`.
    private func parsedBroker(_ url: String, at entry: String) throws(ConfigurationError) -> AMQPConnection.Configuration {
        do {
            return try AMQPConnection.Configuration(url: url)
        } catch {
            throw self.error(at: entry, "'\(StorageLocation.redacted(url))': \(error.message)")
        }
    }

    private func validated(
        _ validate: () throws(AMQPError) -> Void, entries: [String: String], otherwise fallback: String
    ) throws(ConfigurationError) {
        do {
            try validate()
        } catch {
            throw self.error(at: error.field.flatMap { entries[$0] } ?? fallback, error.message)
        }
    }
}
