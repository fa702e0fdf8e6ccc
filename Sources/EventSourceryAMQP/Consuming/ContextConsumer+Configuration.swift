public import EventSourceryRabbitMQ

extension ContextConsumer {
    /// Settings of a ``ContextConsumer``.
    public struct Configuration: Sendable {
        /// The consuming context: it names the inbox `<context>.inbox`, the dead-letter
        /// exchange and queue, the inbox consumer names `<context>.<handler>` and the failure
        /// stream `failures-<context>`.
        public var context: String
        /// The most unacknowledged deliveries the broker sends. Default 1000: enough to keep
        /// every lane's next batch waiting while the current one commits.
        public var prefetch: UInt16
        /// Attempts of a failing event, the first included, before it is parked in the
        /// store with the later events of its source stream behind it. Default 5.
        ///
        /// It is also the inbox queue's `x-delivery-limit`: a message the consumer cannot
        /// take at all (its store is down) goes back to the queue and is dead-lettered to
        /// `<context>.dead` after that many redeliveries.
        public var deliveryLimit: Int
        /// The delay before the second attempt of a failed event; each later delay doubles,
        /// up to ``retryMaximumDelay``. Default 1 s.
        public var retryFirstDelay: Duration
        /// The longest delay between two attempts of a failed event. Default 5 minutes.
        public var retryMaximumDelay: Duration
        /// How often the consumer looks for held sequences that became due without it
        /// noticing (an operator's retry or skip from another process). Default 1 s.
        public var heldPollInterval: Duration
        /// The largest body accepted; larger messages are poison. Default 1 MiB.
        public var maximumBodySize: Int
        /// Committed deliveries acknowledged together with one `multiple` ack. Default 1
        /// (ack each at once). Larger values also ack after ``ackFlushInterval`` of quiet.
        public var ackBatchSize: Int
        /// The longest a committed delivery waits for its batched ack. Default 50 ms.
        public var ackFlushInterval: Duration
        /// Lanes processing deliveries at the same time. Default 4.
        ///
        /// Deliveries are spread over this many lanes by their source stream: the events of
        /// one stream are handled one after another, in stream order, while other streams
        /// proceed in parallel, and their commits share transactions (SQLite group commit,
        /// PostgreSQL connections of the pool). Handlers that write to one shared stream
        /// for every event (a counter) contend on it; give such a context `1` lane and a
        /// ``batchSize`` of 1.
        public var concurrency: Int
        /// The most deliveries one lane handles together. Default 100.
        ///
        /// A lane takes the deliveries waiting for it, at most one per source stream, looks up
        /// their inbox entries at once and commits every handler's writes, each with its inbox
        /// entry and atomically on its own, in one store call (one transaction and one disk
        /// sync on SQLite). Handlers of one batch do not see each other's writes; one that
        /// loses a race for a stream to another of its batch runs again alone afterwards.
        public var batchSize: Int
        /// How often a handler that lost an optimistic-concurrency race is run again
        /// (with fresh state, after a short random pause) before the delivery counts as
        /// failed. Default 50.
        public var conflictRetries: Int
        /// Whether ``ContextConsumer/run()`` declares the topology first. Default `true`.
        public var declaresTopology: Bool
        /// How long inbox entries are kept; `nil` (the default) keeps them for ever.
        ///
        /// An event whose inbox entry was pruned is no longer recognised as a duplicate, so
        /// choose an age well above the longest time a copy of an event can still arrive: a
        /// republished event waiting in a backlog, or a dead letter replayed by an operator.
        /// The consumer prunes once at start and then every ``inboxPruneInterval``.
        public var inboxRetention: Duration?
        /// How often the consumer prunes its inbox when ``inboxRetention`` is set. Default 1 hour.
        public var inboxPruneInterval: Duration
        /// The inbox partitions, 1 to 1024. Default 1: the single queue `<context>.inbox`,
        /// for one consumer process.
        ///
        /// With more, the inbox is the queues `<context>.inbox.0` … behind a consistent-hash
        /// exchange on the source stream (``ContextTopology``; the broker needs the plugin
        /// `rabbitmq_consistent_hash_exchange`), each with a single active consumer: any
        /// number of replicas of the consumer subscribe to every partition, the broker
        /// delivers each partition to one of them at a time and hands it to another when
        /// that one goes, and the events of one source stream stay in order. ``prefetch``
        /// applies to each partition. A partitioned consumer that finds the single inbox of
        /// an earlier deployment drains it first (``ContextConsumer``).
        public var partitions: Int

        /// Creates a configuration with defaults suited to most deployments; see ``validate()``.
        public init(
            context: String,
            prefetch: UInt16 = 1000,
            deliveryLimit: Int = 5,
            maximumBodySize: Int = EventMessage.defaultMaximumBodySize,
            ackBatchSize: Int = 1,
            ackFlushInterval: Duration = .milliseconds(50),
            concurrency: Int = 4,
            batchSize: Int = 100,
            conflictRetries: Int = 50,
            retryFirstDelay: Duration = .seconds(1),
            retryMaximumDelay: Duration = .seconds(300),
            heldPollInterval: Duration = .seconds(1),
            declaresTopology: Bool = true,
            inboxRetention: Duration? = nil,
            inboxPruneInterval: Duration = .seconds(3600),
            partitions: Int = 1
        ) {
            self.context = context
            self.prefetch = prefetch
            self.deliveryLimit = deliveryLimit
            self.maximumBodySize = maximumBodySize
            self.ackBatchSize = ackBatchSize
            self.ackFlushInterval = ackFlushInterval
            self.concurrency = concurrency
            self.batchSize = batchSize
            self.conflictRetries = conflictRetries
            self.retryFirstDelay = retryFirstDelay
            self.retryMaximumDelay = retryMaximumDelay
            self.heldPollInterval = heldPollInterval
            self.declaresTopology = declaresTopology
            self.inboxRetention = inboxRetention
            self.inboxPruneInterval = inboxPruneInterval
            self.partitions = partitions
        }

        /// Checks every field: a context name, positive counts, sizes and intervals, a
        /// partition count within 1...``maximumPartitions``, no
        /// negative conflict retries, and a retry schedule whose maximum delay is at least its
        /// first.
        ///
        /// ``ContextConsumer/run()`` calls it first; call it yourself to fail earlier.
        ///
        /// - Throws: ``AMQPError`` ``AMQPError/Code/invalidArgument`` naming the ``AMQPError/field``.
        public func validate() throws(AMQPError) {
            guard !context.isEmpty else { throw .invalidField("context", "must name the context") }
            for (field, value) in [
                ("prefetch", Int(prefetch)), ("deliveryLimit", deliveryLimit), ("maximumBodySize", maximumBodySize),
                ("ackBatchSize", ackBatchSize), ("concurrency", concurrency), ("batchSize", batchSize),
            ] where value <= 0 {
                throw .invalidField(field, "must be positive, got \(value)")
            }
            for (field, value) in [
                ("ackFlushInterval", ackFlushInterval), ("retryFirstDelay", retryFirstDelay), ("heldPollInterval", heldPollInterval),
                ("inboxRetention", inboxRetention ?? .seconds(1)), ("inboxPruneInterval", inboxPruneInterval),
            ] where value <= .zero {
                throw .invalidField(field, "must be positive, got \(value)")
            }
            guard (1...Self.maximumPartitions).contains(partitions) else {
                throw .invalidField("partitions", "must be within 1...\(Self.maximumPartitions), got \(partitions)")
            }
            guard conflictRetries >= 0 else { throw .invalidField("conflictRetries", "must not be negative, got \(conflictRetries)") }
            guard retryMaximumDelay >= retryFirstDelay else {
                throw .invalidField(
                    "retryMaximumDelay", "must be at least retryFirstDelay (\(retryFirstDelay)), got \(retryMaximumDelay)")
            }
        }

        /// The most inbox partitions a context may have.
        public static let maximumPartitions = 1024

        /// The retry schedule of failed events: ``retryFirstDelay`` doubling up to
        /// ``retryMaximumDelay``, parked after ``deliveryLimit`` attempts.
        public var retrySchedule: RetrySchedule {
            RetrySchedule(firstDelay: retryFirstDelay, maximumDelay: retryMaximumDelay, attempts: deliveryLimit)
        }
    }

    /// What one delivery came to.
    public enum Outcome: Sendable, Equatable {
        /// Every matching handler committed (or had committed before); the message is acked.
        case processed(handlersRun: Int, alreadyProcessed: Int, skipped: Int)
        /// A handler threw; its failure is recorded, the event is held in the store for a
        /// retry (or parked, at the attempt limit) and the message acked.
        case failed(handler: String)
        /// An earlier event of its source stream is held; the event is held behind it and
        /// the message acked.
        case held
        /// The message was poison; it went to the dead-letter exchange and was acked.
        case poison(PoisonMessage.Code)
        /// The consumer could not take the message (its store or the dead-letter exchange
        /// failed); it goes back to the queue.
        case requeued(reason: String)

        /// Whether the delivery is acknowledged (rather than requeued).
        var isAcknowledged: Bool {
            if case .requeued = self { return false }
            return true
        }

        /// The outcome as its consumer span's `consumer.outcome` records it: the text Swift
        /// prints for the case, written without the reflection that printing an enum with
        /// associated values goes through (microseconds per delivery).
        var spanText: String {
            switch self {
            case .processed(let handlersRun, let alreadyProcessed, let skipped):
                "processed(handlersRun: \(handlersRun), alreadyProcessed: \(alreadyProcessed), skipped: \(skipped))"
            case .failed(let handler): "failed(handler: \(handler.debugDescription))"
            case .held: "held"
            case .poison(let code): "poison(\(code))"
            case .requeued(let reason): "requeued(reason: \(reason.debugDescription))"
            }
        }

        /// Whether the delivery failed (its consumer span gets an error status).
        var isFailure: Bool {
            switch self {
            case .processed, .held: false
            case .failed, .poison, .requeued: true
            }
        }
    }
}
