import EventSourceryAMQP
import EventSourceryRabbitMQ
import EventSourceryServices
import Foundation
import Testing

/// Every bad value of the service configuration is rejected at load, with where it came from
/// (file:line:column or the environment variable) and the entry; left-out settings take the
/// library's defaults.
struct ConfigurationPolicyTests {
    /// A file with one context and the given `broker:` and `relay:` lines.
    private func yaml(
        url: String = "url: amqp://guest:guest@127.0.0.1:5673/", broker: String = "", relay: String = "",
        store: String = "sqlite:order.sqlite"
    ) -> String {
        """
        broker:
          \(url)
        \(broker)
        relay:
          batch_size: 10
        \(relay)
        contexts:
          order:
            store: \(store)
            publishes: [OrderPlaced]
        """
    }

    /// Writes `text` to a temporary file and loads it with `environment`.
    private func load(_ text: String, environment: [String: String] = [:]) throws -> (ServiceConfiguration, String) {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("configuration-\(UUID()).yaml").path
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: path) }
        return (try ServiceConfiguration.load(path: path, environment: environment), path)
    }

    /// The error loading `text` fails with, and the file's path.
    private func failure(_ text: String, environment: [String: String] = [:]) throws -> (ConfigurationError, String) {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("configuration-\(UUID()).yaml").path
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: path) }
        do {
            _ = try ServiceConfiguration.load(path: path, environment: environment)
        } catch {
            return (error, path)
        }
        Issue.record("the configuration was accepted:\n\(text)")
        throw CancellationError()
    }

    // MARK: Relay

    @Test(arguments: ["1e300", ".inf", ".nan"])
    func aLeaseThatIsNotAFiniteNumberOfSecondsIsRejected(_ value: String) throws {
        let (error, path) = try failure(yaml(relay: "  lease_seconds: \(value)"))
        #expect(error.origin == .file(path, line: 6, column: 3))
        #expect(error.entry == "relay.lease_seconds")
        #expect(error.message.contains("must be a finite number of seconds"))
        #expect(error.description.hasPrefix("\(path):6:3: relay.lease_seconds: "))
    }

    @Test func aRetentionBeyondRangeIsRejected() throws {
        let (error, path) = try failure(yaml(relay: "  retention_seconds: 1e300"))
        #expect(error.description.hasPrefix("\(path):6:3: relay.retention_seconds: must be a finite number of seconds"))
    }

    @Test func aNegativeLeaseIsRejected() throws {
        let (error, path) = try failure(yaml(relay: "  lease_seconds: -1"))
        #expect(error.description == "\(path):6:3: relay.lease_seconds: leaseDuration must be positive, got -1.0 seconds")
    }

    @Test func negativeBackoffsAreRejected() throws {
        let (initial, path) = try failure(yaml(relay: "  initial_backoff_ms: -5"))
        #expect(initial.description.hasPrefix("\(path):6:3: relay.initial_backoff_ms: retry.backoff.initialDelay must not be negative"))
        let (maximum, _) = try failure(yaml(relay: "  max_backoff_ms: -5"))
        #expect(maximum.entry == "relay.max_backoff_ms")
        #expect(maximum.message.contains("must not be below initialDelay"))
    }

    @Test func aMaximumBackoffBelowTheInitialBackoffIsRejected() throws {
        let (error, path) = try failure(yaml(relay: "  initial_backoff_ms: 500\n  max_backoff_ms: 100"))
        #expect(error.origin == .file(path, line: 7, column: 3))
        #expect(error.entry == "relay.max_backoff_ms")
        #expect(error.message == "retry.backoff.maximumDelay must not be below initialDelay (0.5 seconds), got 0.1 seconds")
    }

    @Test func aLingerIsReadInMillisecondsAndCheckedAtItsEntryOrVariable() throws {
        let (configuration, _) = try load(yaml(relay: "  linger_ms: 5"))
        #expect(try configuration.relayConfiguration(context: "order").linger == .milliseconds(5))
        let (fromEnvironment, _) = try load(yaml(), environment: ["ES_RELAY_LINGER_MS": "2"])
        #expect(try fromEnvironment.relayConfiguration(context: "order").linger == .milliseconds(2))
        let (error, path) = try failure(yaml(relay: "  linger_ms: 5000"))
        #expect(error.description == "\(path):6:3: relay.linger_ms: linger must be from 0 to 1.0 seconds, got 5.0 seconds")
        let (negative, _) = try failure(yaml(), environment: ["ES_RELAY_LINGER_MS": "-1"])
        #expect(negative.origin == .environment("ES_RELAY_LINGER_MS"))
    }

    @Test func aZeroWindowIsRejected() throws {
        let (error, _) = try failure(yaml(relay: "  window: 0"))
        #expect(error.entry == "relay.window")
        #expect(error.message == "must be positive, got 0")
    }

    // MARK: Broker

    @Test(arguments: [-5, 70000])
    func aHeartbeatOutsideTheProtocolsRangeIsRejected(_ seconds: Int) throws {
        let (error, path) = try failure(yaml(broker: "  heartbeat_seconds: \(seconds)"))
        #expect(error.origin == .file(path, line: 3, column: 3))
        #expect(error.entry == "broker.heartbeat_seconds")
        #expect(error.message.hasPrefix("heartbeat must be whole seconds within 0...65535"))
    }

    @Test func aBrokerURLFromTheEnvironmentIsReportedAgainstTheVariable() throws {
        let (error, _) = try failure(yaml(), environment: ["AMQP_URL": "http://127.0.0.1:5673/"])
        #expect(error.origin == .environment("AMQP_URL"))
        #expect(error.description.hasPrefix("environment variable AMQP_URL: 'http://127.0.0.1:5673/': "))
        #expect(error.message.contains("amqp:// or amqps://"))
    }

    @Test func theNodesOfAClusterAreListedInURLs() throws {
        let urls = "urls: [amqp://guest:guest@127.0.0.1:5691/, 'amqp://guest:guest@127.0.0.1:5692,127.0.0.1:5693/']"
        let (configuration, _) = try load(yaml(url: urls))
        let connection = try configuration.connectionConfiguration(name: "test")
        #expect(connection.endpoints.map(\.address) == ["127.0.0.1:5691", "127.0.0.1:5692", "127.0.0.1:5693"])
    }

    @Test func aBadEntryOfURLsIsNamedAtItsLine() throws {
        let (error, path) = try failure(yaml(url: "urls:\n    - amqp://127.0.0.1:5691/\n    - amqp://127.0.0.1:99999/"))
        #expect(error.entry == "broker.urls[1]")
        #expect(error.origin == .file(path, line: 4, column: 7))
        #expect(error.message.contains("invalid port"))
    }

    @Test func entriesOfURLsMustShareTheVhost() throws {
        let (error, _) = try failure(yaml(url: "urls: [amqp://127.0.0.1:5691/a, amqp://127.0.0.1:5692/b]"))
        #expect(error.entry == "broker.urls")
        #expect(error.message.contains("endpoint 2 of the AMQP URL list"))
    }

    @Test func urlAndURLsAreExclusive() throws {
        let (error, _) = try failure(yaml(broker: "  urls: [amqp://127.0.0.1:5691/]"))
        #expect(error.entry == "broker.urls")
        #expect(error.message == "set either broker.url or broker.urls, not both")
        let (empty, _) = try failure(yaml(url: "urls: []"))
        #expect(empty.message == "must list at least one URL")
    }

    @Test func aBadEntryOfAnEndpointListHidesEveryPassword() throws {
        let (error, _) = try failure(yaml(), environment: ["AMQP_URL": "amqp://u:secret@h1,h2:99999/,amqp://v:other@h3/"])
        #expect(!error.description.contains("secret") && !error.description.contains("other"))
        #expect(error.description.contains("'amqp://u:***@h1,h2:99999/,amqp://v:***@h3/'"))
        #expect(error.message.contains("endpoint 2 of the AMQP URL list"))
    }

    @Test func anEndpointListFromTheEnvironmentReplacesURLs() throws {
        let (configuration, _) = try load(
            yaml(url: "urls: [amqp://127.0.0.1:5691/]"), environment: ["AMQP_URL": "amqp://u:p@10.0.0.1,10.0.0.2:5673/v"])
        let connection = try configuration.connectionConfiguration(name: "test")
        #expect(connection.endpoints.map(\.address) == ["10.0.0.1:5672", "10.0.0.2:5673"])
        #expect(connection.vhost == "v")
        #expect(configuration.broker.urls == nil)
    }

    @Test func aBrokerWaitThatIsNotABooleanIsRejected() throws {
        let (error, _) = try failure(yaml(), environment: ["ES_BROKER_WAIT": "maybe"])
        #expect(error.description == "environment variable ES_BROKER_WAIT: 'maybe' is not a boolean; use true or false")
        let (configuration, _) = try load(yaml(), environment: ["ES_BROKER_WAIT": "no"])
        #expect(!configuration.broker.waitForBroker)
        let (waiting, _) = try load(yaml(), environment: ["ES_BROKER_WAIT": "TRUE"])
        #expect(waiting.broker.waitForBroker)
    }

    // MARK: Consumer

    @Test func aPrefetchFromTheEnvironmentIsReportedAgainstTheVariableAlone() throws {
        let text = yaml() + "\n  payment:\n    store: sqlite:payment.sqlite\n    publishes: [PaymentSucceeded]"
        let (error, _) = try failure(text, environment: ["ES_CONSUMER_PREFETCH": "70000"])
        #expect(error.description == "environment variable ES_CONSUMER_PREFETCH: must be within 1...65535, got 70000")
        let (typo, _) = try failure(text, environment: ["ES_CONSUMER_ACK_BATCH": "ten"])
        #expect(typo.description == "environment variable ES_CONSUMER_ACK_BATCH: 'ten' is not an integer")
    }

    @Test func aPrefetchInTheFileIsReportedAtItsLine() throws {
        let (error, path) = try failure(yaml() + "\n    consumer:\n      prefetch: 0")
        #expect(error.description == "\(path):12:7: contexts.order.consumer.prefetch: prefetch must be positive, got 0")
    }

    @Test func partitionsDefaultToFourAndABadCountIsReportedAtItsLine() throws {
        let (configuration, _) = try load(yaml())
        #expect(try configuration.consumerConfiguration(context: "order").partitions == ServiceConfiguration.defaultPartitions)
        #expect(configuration.topologies.first?.inboxQueues == ["order.inbox.0", "order.inbox.1", "order.inbox.2", "order.inbox.3"])
        let (single, _) = try load(yaml() + "\n    consumer:\n      partitions: 1")
        #expect(try single.consumerConfiguration(context: "order").partitions == 1)
        #expect(single.topologies.first?.inboxQueues == ["order.inbox"])
        let (error, path) = try failure(yaml() + "\n    consumer:\n      partitions: 0")
        #expect(error.description == "\(path):12:7: contexts.order.consumer.partitions: partitions must be within 1...1024, got 0")
    }

    // MARK: Stores

    @Test func aStoreWithAnotherSchemeIsRejected() throws {
        let (error, path) = try failure(yaml(store: "redis:cache"))
        #expect(error.origin == .file(path, line: 9, column: 5))
        #expect(error.entry == "contexts.order.store")
        #expect(error.message.contains("has the scheme 'redis:'"))
    }

    @Test func aPostgresURLWithoutHostIsRejected() throws {
        let (error, path) = try failure(yaml(store: "postgres://"))
        #expect(
            error.description.hasPrefix("\(path):9:5: contexts.order.store: 'postgres://': The PostgreSQL URL is invalid: it names no host")
        )
    }

    @Test func aStoreFromTheEnvironmentOrAnOptionIsReportedAgainstIt() throws {
        let (configuration, _) = try load(yaml())
        #expect(
            throws: ConfigurationError(
                origin: .environment("ES_STORE_URL"), entry: nil,
                message: "'redis:cache' has the scheme 'redis:'; a store is sqlite:<path>, a file path or a postgres:// URL")
        ) {
            try ServiceBootstrap.Settings(
                configuration: configuration, context: "order", storeOverride: nil, environment: ["ES_STORE_URL": "redis:cache"])
        }
        let option = #expect(throws: ConfigurationError.self) {
            try ServiceBootstrap.Settings(configuration: configuration, context: "order", storeOverride: "sqlite:", environment: [:])
        }
        #expect(option?.description == "option --store: 'sqlite:' names no file; write sqlite:<path>")
        let settings = try ServiceBootstrap.Settings(
            configuration: configuration, context: "order", storeOverride: nil, environment: ["ES_STORE_URL": "/tmp/order.sqlite"])
        #expect(settings.store == .sqlite(path: "/tmp/order.sqlite"))
    }

    // MARK: YAML

    @Test func aSyntaxErrorNamesItsLineAndColumn() throws {
        let (error, path) = try failure("contexts:\n  order:\n    store: [unclosed\n    publishes: []\n")
        guard case .file(path, let line?, let column?) = error.origin else {
            Issue.record("no line: \(error)")
            return
        }
        #expect(line >= 3)
        #expect(column >= 1)
        #expect(error.message.hasPrefix("is not valid YAML: "))
        #expect(!error.description.contains("The given data was not valid YAML"))
    }

    @Test func aDuplicateKeyIsNamed() throws {
        let (error, path) = try failure(yaml(relay: "  batch_size: 20"))
        #expect(error.origin == .file(path, line: 5, column: 3))
        #expect(error.message == "is not valid YAML: the key 'batch_size' is written more than once in one mapping (first here); keep one")
    }

    @Test func aTabIsNamed() throws {
        let (error, path) = try failure("contexts:\n\torder:\n    store: sqlite:order.sqlite\n")
        #expect(error.origin == .file(path, line: 2, column: 1))
        #expect(error.message.contains("a tab: YAML indents with spaces only"))
    }

    @Test func aValueOfTheWrongTypeNamesItsLine() throws {
        let (error, path) = try failure(yaml(relay: "  attempt_limit: many"))
        #expect(error.description.hasPrefix("\(path):6:3: relay.attempt_limit: "))
    }

    // MARK: Defaults

    @Test func settingsLeftOutTakeTheLibrarysDefaults() throws {
        let (configuration, _) = try load(
            """
            contexts:
              order:
                store: sqlite:order.sqlite
            """)
        let relay = try configuration.relayConfiguration(context: "order")
        let libraryRelay = OutboxRelay.Configuration(context: "order")
        #expect(relay.batchSize == libraryRelay.batchSize)
        #expect(relay.leaseDuration == libraryRelay.leaseDuration)
        #expect(relay.retention == libraryRelay.retention)
        #expect(relay.retry == libraryRelay.retry)
        let consumer = try configuration.consumerConfiguration(context: "order")
        let libraryConsumer = ContextConsumer.Configuration(context: "order")
        #expect(consumer.prefetch == libraryConsumer.prefetch)
        #expect(consumer.deliveryLimit == libraryConsumer.deliveryLimit)
        #expect(consumer.batchSize == libraryConsumer.batchSize)
        let connection = try configuration.connectionConfiguration(name: "order")
        #expect(connection.heartbeat == AMQPConnection.Configuration().heartbeat)
        #expect(connection.port == AMQPConnection.Configuration().port)
    }

    @Test func settingsInTheFileReachTheLibraryConfigurations() throws {
        let (configuration, _) = try load(
            yaml(
                broker: "  heartbeat_seconds: 15",
                relay: "  lease_seconds: 2.5\n  retention_seconds: 0\n  initial_backoff_ms: 50\n  max_backoff_ms: 400\n  attempt_limit: 3"))
        let relay = try configuration.relayConfiguration(context: "order")
        #expect(relay.batchSize == 10)
        #expect(relay.leaseDuration == .milliseconds(2500))
        #expect(relay.retention == nil)
        #expect(relay.retry == RetryPolicy(initialBackoff: .milliseconds(50), maximumBackoff: .milliseconds(400), attemptLimit: 3))
        #expect(try configuration.connectionConfiguration(name: "order").heartbeat == .seconds(15))
    }

    @Test func theInboxRetentionIsReadInSecondsAndCheckedAtItsEntry() throws {
        let (configuration, _) = try load(yaml() + "\n    consumer:\n      inbox_retention_seconds: 604800")
        #expect(try configuration.consumerConfiguration(context: "order").inboxRetention == .seconds(604_800))
        let (kept, _) = try load(yaml() + "\n    consumer:\n      inbox_retention_seconds: 0")
        #expect(try kept.consumerConfiguration(context: "order").inboxRetention == nil, "0 keeps the inbox for ever")
        let (error, path) = try failure(yaml() + "\n    consumer:\n      inbox_retention_seconds: -60")
        #expect(
            error.description
                == "\(path):12:7: contexts.order.consumer.inbox_retention_seconds: inboxRetention must be positive, got -60.0 seconds")
    }

    // MARK: Topology mismatch

    @Test func aDeliveryLimitMismatchSaysWhichArgumentAndHowToMigrate() throws {
        let (configuration, path) = try load(yaml() + "\n    consumer:\n      delivery_limit: 5")
        let settings = try ServiceBootstrap.Settings(configuration: configuration, context: "order", storeOverride: nil, environment: [:])
        let refusal = AMQPError(
            .preconditionFailed, "the broker closed the channel", replyCode: 406,
            replyText:
                "PRECONDITION_FAILED - inequivalent arg 'x-delivery-limit' for queue 'order.inbox' in vhost '/': received the value '5' of type 'signedint' but current is the value '3' of type 'long'"
        )
        let message = settings.topologyMismatch(refusal)
        #expect(message.contains("inequivalent arg 'x-delivery-limit' for queue 'order.inbox'"))
        #expect(message.contains("contexts.order.consumer.delivery_limit (\(path):12:7, 5 now)"))
        #expect(message.contains("rabbitmqctl delete_queue order.inbox"))
        #expect(message.contains("set the configuration back"))
    }
}
