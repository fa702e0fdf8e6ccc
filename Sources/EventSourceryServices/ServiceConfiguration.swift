/// The configuration of the bridge services (`outbox-publisher`, `context-consumer`), read
/// from a YAML file in `config/` with environment overrides.
///
/// ```yaml
/// broker:
///   url: amqp://guest:guest@127.0.0.1:5673/
/// relay:
///   batch_size: 500
///   window: 1000
/// contexts:
///   order:
///     store: sqlite:.run/demo/order.sqlite
///     publishes: [OrderPlaced, OrderPaid]
///     handlers:
///       record-payment:
///         subscribes: [payment.PaymentSucceeded]
///     consumer:
///       prefetch: 1000
///       delivery_limit: 5
///       max_body_bytes: 1048576
///       ack_batch: 1
///       concurrency: 4
///       batch_size: 100
/// ```
///
/// Every key but `contexts.<name>` has a default. Unknown keys are rejected, so a typo
/// never silently falls back to a default.
public struct ServiceConfiguration: Sendable, Equatable {
    /// The broker connection.
    public var broker: Broker
    /// Outbox relay settings, shared by every context's publisher.
    public var relay: Relay
    /// The bounded contexts by name.
    public var contexts: [String: Context]

    /// The broker connection.
    public struct Broker: Sendable, Equatable {
        /// `amqp://user:password@host:port/vhost` or `amqps://…`. Environment: `AMQP_URL`.
        public var url: String = "amqp://guest:guest@127.0.0.1:5673/"
        /// Heartbeat interval in seconds (0 disables heartbeats).
        public var heartbeatSeconds: Int = 30
        /// Whether a service keeps retrying when the broker is unreachable at start,
        /// instead of exiting with an error. Environment: `ES_BROKER_WAIT`.
        public var waitForBroker: Bool = false
    }

    /// Outbox relay settings.
    public struct Relay: Sendable, Equatable {
        /// Entries claimed per round. Environment: `ES_RELAY_BATCH_SIZE`.
        public var batchSize: Int = 500
        /// Unconfirmed messages in flight. Environment: `ES_RELAY_WINDOW`.
        public var window: Int = 1000
        /// How long claimed entries stay reserved for one relay.
        public var leaseSeconds: Double = 30
        /// The longest sleep when no wake-up arrives.
        public var idlePollMilliseconds: Int = 1000
        /// How long published entries are kept; 0 keeps them forever.
        public var retentionSeconds: Double = 3600
        /// Delay before the first retry of a refused entry.
        public var initialBackoffMilliseconds: Int = 200
        /// Longest delay between retries.
        public var maximumBackoffMilliseconds: Int = 30_000
        /// Broker refusals after which an entry is parked. Environment: `ES_RELAY_ATTEMPT_LIMIT`.
        public var attemptLimit: Int = 10
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

    /// Settings of a context's consumer.
    public struct Consumer: Sendable, Equatable {
        /// The most unacknowledged deliveries the broker sends (1...65535). Environment:
        /// `ES_CONSUMER_PREFETCH` (every context).
        public var prefetch: Int = 1000
        /// Attempts of a failing event before it is parked in the store with the later
        /// events of its source stream behind it (see
        /// ``ContextConsumer/Configuration/deliveryLimit``).
        public var deliveryLimit: Int = 5
        /// The delay before the second attempt of a failed event, in milliseconds; later
        /// delays double up to ``maximumBackoffMilliseconds``.
        public var initialBackoffMilliseconds: Int = 1000
        /// The longest delay between two attempts of a failed event, in milliseconds.
        public var maximumBackoffMilliseconds: Int = 300_000
        /// The largest message body accepted, in bytes; larger messages are dead-lettered.
        public var maximumBodyBytes: Int = 1 << 20
        /// Committed deliveries acknowledged together (1 acks each at once). Environment:
        /// `ES_CONSUMER_ACK_BATCH` (every context).
        public var ackBatch: Int = 1
        /// Lanes processing deliveries at the same time, spread by source stream (see
        /// ``ContextConsumer/Configuration/concurrency``); 1 handles one after another.
        public var concurrency: Int = 4
        /// The most deliveries a lane handles together, with one inbox lookup and one commit
        /// (see ``ContextConsumer/Configuration/batchSize``).
        public var batchSize: Int = 100

        /// Creates consumer settings.
        public init(
            prefetch: Int = 1000, deliveryLimit: Int = 5, maximumBodyBytes: Int = 1 << 20, ackBatch: Int = 1, concurrency: Int = 4,
            batchSize: Int = 100, initialBackoffMilliseconds: Int = 1000, maximumBackoffMilliseconds: Int = 300_000
        ) {
            self.prefetch = prefetch
            self.deliveryLimit = deliveryLimit
            self.initialBackoffMilliseconds = initialBackoffMilliseconds
            self.maximumBackoffMilliseconds = maximumBackoffMilliseconds
            self.maximumBodyBytes = maximumBodyBytes
            self.ackBatch = ackBatch
            self.concurrency = concurrency
            self.batchSize = batchSize
        }
    }
}
