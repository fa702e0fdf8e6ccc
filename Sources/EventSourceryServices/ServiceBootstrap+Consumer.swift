public import EventSourceryAMQP

extension ServiceConfiguration {
    /// The topology description of the context `name`: its publishes, its handlers'
    /// subscriptions and its delivery limit. Run ``validate(file:)`` first (``load(path:environment:)`` does).
    public func contextDescription(_ name: String) -> ContextDescription? {
        guard let context = contexts[name] else { return nil }
        return ContextDescription(
            name: name,
            publishes: context.publishes,
            handlers: context.handlers.mapValues { $0.subscribes.compactMap(EventSubscription.init) },
            deliveryLimit: context.consumer.deliveryLimit
        )
    }

    /// The topology of every context in the file, sorted by context name.
    public var topologies: [ContextTopology] {
        contexts.keys.sorted().compactMap { contextDescription($0).map(ContextTopology.init) }
    }
}

extension ServiceBootstrap.Settings {
    /// The consumer settings for this context.
    ///
    /// - Throws: ``ConsumerConfigurationError`` for a setting ``ServiceConfiguration/validate(file:)``
    ///   did not check (loading checks every setting of the file).
    public func consumerConfiguration() throws(ConsumerConfigurationError) -> ContextConsumer.Configuration {
        let consumer = configuration.contexts[contextName]?.consumer ?? ServiceConfiguration.Consumer()
        return try ContextConsumer.Configuration(
            context: contextName,
            prefetch: UInt16(clamping: consumer.prefetch),
            deliveryLimit: consumer.deliveryLimit,
            maximumBodySize: consumer.maximumBodyBytes,
            ackBatchSize: consumer.ackBatch,
            concurrency: consumer.concurrency,
            batchSize: consumer.batchSize,
            retryFirstDelay: .milliseconds(consumer.initialBackoffMilliseconds),
            retryMaximumDelay: .milliseconds(consumer.maximumBackoffMilliseconds)
        )
    }

    /// The topology of this context.
    public var topology: ContextTopology {
        ContextTopology(configuration.contextDescription(contextName) ?? ContextDescription(name: contextName))
    }
}

extension ServiceBootstrap.StartupError {
    /// Creates a start-up error for an executable's own checks.
    ///
    /// - Parameters:
    ///   - message: A message for the operator.
    ///   - exitCode: `78` for configuration errors, `69` when a service is unavailable.
    public init(_ message: String, exitCode: Int32) {
        self.message = message
        self.exitCode = exitCode
    }
}
