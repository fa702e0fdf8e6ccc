/// The configuration of the bridge services (`outbox-publisher`, `context-consumer`), read
/// from a YAML file in `config/` with environment overrides.
///
/// ```yaml
/// broker:
///   url: amqp://guest:guest@127.0.0.1:5673/
/// relay:
///   batch_size: 500
/// contexts:
///   order:
///     store: sqlite:.run/demo/order.sqlite
///     publishes: [OrderPlaced, OrderPaid]
///     handlers:
///       fulfilment:
///         subscribes: [order.OrderPlaced, payment.PaymentSucceeded]
///     accepts_commands: true
///     command_targets: [payment]
///     deadlines:
///       payment-timeout: 5
///     consumer:
///       prefetch: 100
/// ```
///
/// Every key but `contexts.<name>.store` is optional. A setting left out is `nil` here and
/// takes the default of the library type it configures (`OutboxRelay.Configuration`,
/// `ContextConsumer.Configuration`, `AMQPConnection.Configuration`): defaults live there
/// only, and `docs/CONFIGURATION.md` lists them. Unknown keys are rejected, so a typo never
/// silently falls back to a default.
public struct ServiceConfiguration: Sendable, Equatable {
    /// The broker connection.
    public var broker = Broker()
    /// Outbox relay settings, shared by every context's publisher.
    public var relay = Relay()
    /// The bounded contexts by name.
    public var contexts: [String: Context] = [:]
    /// The health and metrics endpoint of each service.
    public var observability = Observability()
    /// Where spans are exported.
    public var tracing = Tracing()
    /// The file the configuration was read from, for messages.
    public var file = "configuration"
    /// Where each entry was set, by dotted path (`relay.lease_seconds`,
    /// `contexts.order.consumer.prefetch`): its line in ``file`` or the environment variable
    /// that overrode it.
    public var origins: [String: ConfigurationOrigin] = [:]

    /// Creates an empty configuration; ``parse(_:file:)`` and ``load(path:environment:)`` read one.
    public init() {}

    /// The broker connection.
    public struct Broker: Sendable, Equatable {
        /// `amqp://user:password@host:port/vhost` or `amqps://…`, or for a cluster a
        /// comma-separated list of nodes (`amqp://user:password@host1:5672,host2:5672/vhost`).
        /// Environment: `AMQP_URL`, which replaces ``url`` and ``urls``.
        public var url: String?
        /// The nodes of a cluster, one URL each (they may mix `amqp` and `amqps` and carry their
        /// own credentials, but name one vhost); instead of ``url``.
        public var urls: [String]?
        /// Heartbeat interval in whole seconds (0 disables heartbeats).
        public var heartbeatSeconds: Int?
        /// Whether a service keeps retrying with backoff when the broker is unreachable at
        /// start, instead of exiting with code 69. Default `true`, so that a service started
        /// before its broker comes up once the broker does. Environment: `ES_BROKER_WAIT`.
        public var waitForBroker = true
    }

    /// Outbox relay settings; `nil` takes the library's default.
    public struct Relay: Sendable, Equatable {
        /// Entries claimed per round. Environment: `ES_RELAY_BATCH_SIZE`.
        public var batchSize: Int?
        /// Unconfirmed messages in flight. Environment: `ES_RELAY_WINDOW`.
        public var window: Int?
        /// How long claimed entries stay reserved for one relay, in seconds.
        public var leaseSeconds: Double?
        /// The longest sleep when no wake-up arrives.
        public var idlePollMilliseconds: Int?
        /// How long a busy relay waits before its next round (`OutboxRelay.Configuration.linger`).
        /// Environment: `ES_RELAY_LINGER_MS`.
        public var lingerMilliseconds: Int?
        /// How long published entries are kept, in seconds; 0 keeps them forever.
        public var retentionSeconds: Double?
        /// Delay before the first retry of a refused entry.
        public var initialBackoffMilliseconds: Int?
        /// Longest delay between retries.
        public var maximumBackoffMilliseconds: Int?
        /// Broker refusals after which an entry is parked. Environment: `ES_RELAY_ATTEMPT_LIMIT`.
        public var attemptLimit: Int?
    }

    /// The HTTP endpoint serving `/health/live`, `/health/ready` and `/metrics`; `nil` takes
    /// the default of ``HealthEndpoint/Configuration``.
    public struct Observability: Sendable, Equatable {
        /// The address to listen on. Environment: `ES_HTTP_HOST`.
        public var host: String?
        /// The port to listen on; no endpoint without one. Environment: `ES_HTTP_PORT`;
        /// option `--http-port`.
        public var port: Int?
        /// How long the oldest due outbox entry may wait before the relay counts as stalled.
        public var stallSeconds: Double?
    }

    /// Where each service exports its spans.
    public struct Tracing: Sendable, Equatable {
        /// The base URL of an OTLP/HTTP collector (`http://127.0.0.1:4318`); spans go to
        /// `<url>/v1/traces`. Only a build with the package trait `OTLP` has the exporter.
        /// Environment: `OTEL_EXPORTER_OTLP_ENDPOINT`.
        public var otlpEndpoint: String?
    }

    /// One bounded context.
    public struct Context: Sendable, Equatable {
        /// Where the context's events live: `sqlite:<path>`, a plain path, or
        /// `postgres://…`. Environment: `ES_STORE_URL` (for the one context a process serves).
        public var store: String
        /// The event types the context publishes.
        public var publishes: [String] = []
        /// The context's handlers by name, each with the events it subscribes to.
        public var handlers: [String: Handler] = [:]
        /// Settings of the context's consumer.
        public var consumer: Consumer = Consumer()
        /// Whether the context handles commands: its topology has the command exchange and
        /// quorum queue `<context>.commands`, and its service runs a `CommandConsumer`.
        public var acceptsCommands = false
        /// The contexts it sends commands to; each must accept commands.
        public var commandTargets: [String] = []
        /// The deadlines of the context's process managers by name, in seconds, overriding the
        /// defaults of the context's code.
        public var deadlines: [String: Double] = [:]
    }

    /// One handler of a context.
    public struct Handler: Sendable, Equatable {
        /// The events it subscribes to, each written `source.Type`, e.g. `order.OrderPlaced`.
        public var subscribes: [String] = []

        /// Creates a handler entry.
        public init(subscribes: [String] = []) {
            self.subscribes = subscribes
        }
    }

    /// Settings of a context's consumer; `nil` takes the default of `ContextConsumer.Configuration`.
    public struct Consumer: Sendable, Equatable {
        /// The most unacknowledged deliveries the broker sends (1...65535). Environment:
        /// `ES_CONSUMER_PREFETCH` (every context).
        public var prefetch: Int?
        /// Attempts of a failing event before it is parked in the store with the later
        /// events of its source stream behind it (see
        /// ``ContextConsumer/Configuration/deliveryLimit``).
        public var deliveryLimit: Int?
        /// The delay before the second attempt of a failed event, in milliseconds; later
        /// delays double up to ``maximumBackoffMilliseconds``.
        public var initialBackoffMilliseconds: Int?
        /// The longest delay between two attempts of a failed event, in milliseconds.
        public var maximumBackoffMilliseconds: Int?
        /// The largest message body accepted, in bytes; larger messages are dead-lettered.
        public var maximumBodyBytes: Int?
        /// Committed deliveries acknowledged together (1 acks each at once). Environment:
        /// `ES_CONSUMER_ACK_BATCH` (every context).
        public var ackBatch: Int?
        /// Lanes processing deliveries at the same time, spread by source stream.
        public var concurrency: Int?
        /// The most deliveries a lane handles together, with one inbox lookup and one commit.
        public var batchSize: Int?
        /// How long inbox entries are kept, in seconds; absent or 0 keeps them for ever (see
        /// ``ContextConsumer/Configuration/inboxRetention``).
        public var inboxRetentionSeconds: Double?
        /// The inbox partitions (1...1024); absent: ``ServiceConfiguration/defaultPartitions``.
        /// 1 is the single queue `<context>.inbox` of one consumer process; more lets
        /// replicas of the consumer share the context in stream order
        /// (``ContextConsumer/Configuration/partitions``).
        public var partitions: Int?

        /// Creates consumer settings; `nil` takes the library's default.
        public init(
            prefetch: Int? = nil, deliveryLimit: Int? = nil, maximumBodyBytes: Int? = nil, ackBatch: Int? = nil, concurrency: Int? = nil,
            batchSize: Int? = nil, initialBackoffMilliseconds: Int? = nil, maximumBackoffMilliseconds: Int? = nil,
            inboxRetentionSeconds: Double? = nil,
            partitions: Int? = nil
        ) {
            self.inboxRetentionSeconds = inboxRetentionSeconds
            self.prefetch = prefetch
            self.deliveryLimit = deliveryLimit
            self.initialBackoffMilliseconds = initialBackoffMilliseconds
            self.maximumBackoffMilliseconds = maximumBackoffMilliseconds
            self.maximumBodyBytes = maximumBodyBytes
            self.ackBatch = ackBatch
            self.concurrency = concurrency
            self.batchSize = batchSize
            self.partitions = partitions
        }
    }

    /// The inbox partitions of a context whose `consumer.partitions` is absent: 4, so
    /// replicas of a consumer can share its context in stream order without a configuration
    /// change (the library's own default is a single inbox).
    public static let defaultPartitions = 4

    /// Where `entry` was set: its own origin, or that of the closest enclosing entry (a
    /// missing key is reported at its parent), or else the file.
    public func origin(of entry: String) -> ConfigurationOrigin {
        var path = Substring(entry)
        while !path.isEmpty {
            if let origin = origins[String(path)] { return origin }
            guard let dot = path.lastIndex(where: { $0 == "." || $0 == "[" }) else { break }
            path = path[..<dot]
        }
        return .file(file)
    }

    /// An error about `entry`, located where the entry was set. An entry set by an
    /// environment variable is reported against the variable alone.
    public func error(at entry: String, _ message: String) -> ConfigurationError {
        let origin = origin(of: entry)
        if case .file = origin {
            return ConfigurationError(origin: origin, entry: entry, message: message)
        }
        return ConfigurationError(origin: origin, entry: nil, message: message)
    }
}
