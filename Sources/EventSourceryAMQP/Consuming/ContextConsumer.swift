public import EventSourceryRabbitMQ
public import EventSourcery
import Foundation
public import Logging
import Metrics
public import ServiceLifecycle

/// Consumes a context's inbox queues and runs its ``EventHandler``s exactly once per event.
///
/// For each delivery from `<context>.inbox` (or, with ``Configuration/partitions`` above 1,
/// from any of the partitions `<context>.inbox.<p>`):
/// 1. The message is read through the wire contract and decoded through the store's
///    ``EventRegistry`` (upcasters included); its source context is its exchange's. A
///    message that can never be processed (``PoisonMessage``: malformed JSON, unknown type,
///    missing `message_id`, wrong content type, oversized body, missing or wrongly typed
///    headers, a routing key off the contract, or no handler that takes it) is published
///    with its body and properties to `<context>.dlx` with the headers `x-death-reason` and
///    `x-death-detail`, confirmed, and then acknowledged; the consumer goes on. Nothing is
///    acknowledged without a handler's inbox entry or a dead letter.
/// 2. Every handler subscribed to the event's source and type runs once per event under the
///    inbox consumer name `<context>.<handler>`: inbox entries are looked up first (a handler
///    whose entry exists does not run), and the entry commits in one transaction with the
///    handler's appends, so a redelivery, or a duplicate publish with the same `message_id`,
///    changes nothing. The `redelivered` flag is never trusted. Handler conditions are
///    checked before the handler runs; a skipped handler is recorded as a ``HandlerSkipped``
///    (handler, condition, event) in `skipped-<context>` with its inbox entry.
/// 3. When every handler committed, the delivery is acknowledged (in batches with
///    ``Configuration/ackBatchSize``).
///
/// A handler that throws records a ``HandlerFailed`` event in the stream
/// `failures-<context>` ("failures are data"); the event is held in the store (a
/// ``HeldEvent``) and the delivery acknowledged. Later events of the same source stream are
/// held behind it, in order, and never applied before it. A retry loop runs the held events
/// when due, with capped exponential backoff (``Configuration/retryFirstDelay``,
/// ``Configuration/retryMaximumDelay``); handlers that committed before are not run again.
/// After ``Configuration/deliveryLimit`` attempts the sequence is parked until an operator
/// retries or skips it (``ContextAdmin/retryParked(context:sourceContext:sourceStream:store:)``,
/// ``ContextAdmin/skipParked(context:sourceContext:sourceStream:reason:store:)``). Other
/// streams flow meanwhile.
///
/// **Concurrency.** Deliveries are spread over ``Configuration/concurrency`` lanes by their
/// source stream (the `x-stream-id` header): one stream's events are handled in stream order,
/// different streams in parallel. A lane handles the deliveries waiting for it as a batch
/// (``Configuration/batchSize``, one per source stream): one inbox lookup (for the
/// deliveries that came before: redeliveries, requeues) and one
/// ``EventStore/commitEach(_:)`` for the batch, whose handler writes commit each on its own
/// with its inbox entry, in one transaction; the commit discards the writes of an event
/// already processed. A handler that loses an optimistic-concurrency race is run again
/// alone with fresh state (``Configuration/conflictRetries``). Acknowledgements follow
/// arrival order.
///
/// **Partitions and replicas.** A partitioned consumer subscribes to every partition, each on
/// a channel of its own with ``Configuration/prefetch``; the partitions are single-active-
/// consumer queues, so of several replicas of the consumer (processes with the same
/// configuration and store) the broker delivers each partition to one, and to another when
/// that one's subscription ends. All events of a source stream are in one partition, so they
/// are applied in order by one replica at a time; the store's inbox makes a hand-over's
/// redeliveries change nothing. A replica logs the first delivery of each partition it
/// receives and counts them (``MetricName/consumerPartitionDeliveries``).
///
/// **Migration from a single inbox.** A partitioned consumer that finds the queue
/// `<context>.inbox` of a single-inbox deployment first removes its subscribed bindings (the
/// partitions, declared before, receive everything new), then consumes it exclusively until
/// it is empty and nothing of it is unacknowledged, and deletes it; only then does it
/// consume the partitions, so each stream's older events are applied before its newer ones.
/// Other replicas wait meanwhile (the queue takes one exclusive consumer), as long as a
/// consumer of the earlier version is still subscribed to it.
///
/// **Shutdown.** On graceful shutdown the consumer stops taking deliveries, finishes those
/// in flight, acknowledges everything committed and closes its subscriptions (their channels,
/// without `basic.cancel`: ``AMQPConsumer/close()``); deliveries the broker had sent but the
/// consumer had not started go back to the queue, ahead of newer messages even when another
/// replica takes the partition over.
///
/// **Tracing.** With a tracer bootstrapped (the store's ``EventStore/tracer``), each delivery
/// is processed in a consumer span `process <source>.events`, a child of the message's
/// `traceparent`; each handler run in a span `handle <handler>` under it; and the events a
/// handler appends carry that handler span's context, so their append span and the next
/// hop's spans descend from it.
///
/// Use a connection of its own for the consumer: publishing (poison messages) runs on the
/// same connection and is rare.
public struct ContextConsumer: Service {
    /// The connection deliveries come from; poison messages are published on it too.
    public let connection: AMQPConnection
    /// The consuming context's store.
    public let store: EventStore
    /// The handlers, run in this order for an event several of them subscribe to.
    public let handlers: [EventHandler]
    /// Settings.
    public let configuration: Configuration
    /// The topology consumed from (and declared when ``Configuration/declaresTopology``).
    public let topology: ContextTopology
    /// Logger for poison messages, failures and skipped handlers.
    public let logger: Logger
    /// Counters and handler timers (``MetricName``).
    let metrics: ConsumerMetrics
    /// The consumer and handler spans, with the store's tracer.
    let tracing: MessageTracing
    /// Each handler's consumer name in the inbox, `<context>.<handler>`, in the order of
    /// ``handlers``.
    let inboxConsumers: [String]

    /// Creates a consumer. Call ``run()`` with the connection open (or running as a service).
    ///
    /// - Parameters:
    ///   - topology: The topology to declare; by default computed from the handlers'
    ///     subscriptions and the delivery limit.
    public init(
        connection: AMQPConnection,
        store: EventStore,
        handlers: [EventHandler],
        configuration: Configuration,
        topology: ContextTopology? = nil,
        logger: Logger = Logger(label: "eventsourcery.consumer")
    ) {
        self.connection = connection
        self.store = store
        self.handlers = handlers
        self.configuration = configuration
        self.topology =
            topology
            ?? ContextTopology(
                ContextDescription(
                    name: configuration.context,
                    handlers: Dictionary(handlers.map { ($0.name, $0.subscriptions) }, uniquingKeysWith: +),
                    deliveryLimit: configuration.deliveryLimit, partitions: configuration.partitions
                ))
        var logger = logger
        logger[metadataKey: "consumer.context"] = "\(configuration.context)"
        self.logger = logger
        self.metrics = ConsumerMetrics(context: configuration.context, handlers: handlers.map(\.name))
        self.tracing = MessageTracing(tracer: store.tracer)
        self.inboxConsumers = handlers.map { "\(configuration.context).\($0.name)" }
    }

    /// Consumes until graceful shutdown or cancellation.
    ///
    /// - Throws: ``AMQPError`` when a subscription cannot be opened, the topology cannot be
    ///   declared, or the broker cancels the consumer; ``EventStoreError`` when the held
    ///   events cannot be read at start.
    public func run() async throws {
        try configuration.validate()
        if configuration.declaresTopology {
            try await topology.declare(on: connection)
        }
        let held = HeldStreams(
            try await store.storage.heldEvents(consumer: configuration.context, sequence: nil).map(\.sequence))
        let state = ConsumerState()
        let publisher = AMQPPublisher(connection: connection, window: 1)
        logger.info(
            "Context consumer started",
            metadata: [
                "amqp.queues": "\(topology.inboxQueues.joined(separator: ","))",
                "consumer.handlers": "\(handlers.map(\.name).joined(separator: ","))",
                "consumer.prefetch": "\(configuration.prefetch)", "consumer.concurrency": "\(configuration.concurrency)",
            ])
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await retryHeldEvents(held: held, state: state) }
            if let retention = configuration.inboxRetention {
                group.addTask { await pruneInbox(olderThan: retention) }
            }
            defer { group.cancelAll() }
            if topology.isPartitioned {
                try await drainSingleInbox(publisher: publisher, held: held)
            }
            guard !Task.isShuttingDownGracefully, !Task.isCancelled else { return }
            let consumers = try await subscribe(Self.subscriptionOrder(topology.inboxQueues, start: Int.random(in: 0..<1024)))
            logger.info(
                "Subscribed to the inbox queues",
                metadata: [
                    "amqp.queues": "\(topology.inboxQueues.joined(separator: ","))",
                    "consumer.partitions": "\(topology.partitions)",
                ])
            let acks = AcknowledgementTracker(consumers: consumers, batchSize: configuration.ackBatchSize)
            try await consume(consumers, acks: acks, state: state, publisher: publisher, held: held)
        }
        let statistics = state.statistics
        logger.info(
            "Context consumer stopped",
            metadata: [
                "consumer.processed": "\(statistics.processed)", "consumer.failed": "\(statistics.failed)",
                "consumer.held": "\(statistics.held)", "consumer.poison": "\(statistics.poison)",
                "consumer.requeued": "\(statistics.requeued)",
            ])
    }

    /// The inbox queues rotated to begin at `start` (modulo their count). Each partition goes
    /// to its first subscriber, so replicas that start together and subscribe from different
    /// partitions on spread over the partitions instead of one taking them all.
    static func subscriptionOrder(_ queues: [String], start: Int) -> [String] {
        guard !queues.isEmpty else { return queues }
        let offset = start % queues.count
        return Array(queues[offset...] + queues[..<offset])
    }

    /// Opens one subscription per queue; when one fails, cancels those opened before.
    private func subscribe(_ queues: [String]) async throws -> [AMQPConsumer] {
        var consumers: [AMQPConsumer] = []
        do {
            for queue in queues {
                consumers.append(try await connection.consume(queue: queue, prefetch: configuration.prefetch))
            }
        } catch {
            for consumer in consumers { await consumer.close() }
            throw error
        }
        return consumers
    }

    /// Consumes `consumers` (the inbox queues, or the single inbox being drained) until
    /// graceful shutdown, cancellation or ``stop(_:acks:state:)``, then acknowledges
    /// everything committed and closes the subscriptions.
    func consume(
        _ consumers: [AMQPConsumer], acks: AcknowledgementTracker, state: ConsumerState, publisher: AMQPPublisher, held: HeldStreams
    ) async throws {
        let interval = configuration.ackFlushInterval
        try await withThrowingTaskGroup(of: Void.self) { group in
            if configuration.ackBatchSize > 1 {
                group.addTask {
                    while !Task.isCancelled {
                        try? await Task.sleep(for: interval)
                        acks.flush()
                    }
                }
            }
            defer { group.cancelAll() }
            try await withGracefulShutdownHandler {
                try await dispatch(consumers, acks: acks, state: state, publisher: publisher, held: held)
            } onGracefulShutdown: {
                logger.info("Context consumer stopping")
                Task { await stop(consumers, acks: acks, state: state) }
            }
        }
        acks.flushAll()
        for consumer in consumers { await consumer.close() }
    }

    /// Hands each delivery to one of ``Configuration/concurrency`` lanes, chosen by the
    /// event's source stream, until the deliveries of every subscription end; then lets the
    /// lanes finish.
    private func dispatch(
        _ consumers: [AMQPConsumer], acks: AcknowledgementTracker, state: ConsumerState, publisher: AMQPPublisher, held: HeldStreams
    ) async throws {
        let lanes = (0..<configuration.concurrency).map { _ in ConsumerLane(batchLimit: configuration.batchSize) }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for lane in lanes {
                group.addTask {
                    while true {
                        let batch = await lane.next()
                        if batch.isEmpty { return }
                        guard state.begin(batch.count) else { continue }
                        let outcomes = await process(batch, publisher: publisher, held: held)
                        acks.settle(zip(batch, outcomes.map(\.isAcknowledged)))
                        state.end(outcomes)
                        metrics.record(outcomes)
                    }
                }
            }
            defer { lanes.forEach { $0.finish() } }
            // The deliveries are read outside this task's cancellation: cancelling their
            // stream would cancel the subscription and send deliveries back while lanes are
            // still committing them. Cancellation stops the consumer like a graceful shutdown.
            // One reader per subscription: a stream's events all come from one queue, so
            // they reach their lane in queue order.
            let dispatcher = Task {
                try await withThrowingTaskGroup(of: Void.self) { readers in
                    for consumer in consumers {
                        readers.addTask {
                            let received = metrics.partitionDeliveries(queue: consumer.queue)
                            var learned: ContinuousClock.Instant?
                            for try await delivery in consumer.deliveries where !state.isStopping {
                                if learned == nil {
                                    logger.info("Receiving from inbox queue", metadata: ["amqp.queue": "\(consumer.queue)"])
                                }
                                // A partition that starts delivering here, or redelivers what
                                // another replica had taken, may have events that replica held.
                                if topology.isPartitioned, learned == nil || delivery.isRedelivered,
                                    learned.map({ ContinuousClock.now - $0 >= configuration.heldPollInterval }) ?? true
                                {
                                    await learnHeldSequences(held)
                                    learned = .now
                                }
                                learned = learned ?? .now
                                received.increment()
                                acks.register(delivery)
                                let stream = Self.stream(of: delivery)
                                lanes[Self.lane(of: stream, among: lanes.count)].put(delivery, stream: stream)
                            }
                        }
                    }
                    try await readers.waitForAll()
                }
            }
            try await withTaskCancellationHandler {
                try await dispatcher.value
            } onCancel: {
                Task { await stop(consumers, acks: acks, state: state) }
            }
        }
    }

    /// Stops taking deliveries, waits for those in flight, acknowledges everything committed
    /// and closes the subscriptions, which ends the deliveries. Deliveries not started stay
    /// unacknowledged and go back to their queues, ahead of newer messages even when another
    /// replica takes the partition over (``AMQPConsumer/close()``).
    func stop(_ consumers: [AMQPConsumer], acks: AcknowledgementTracker, state: ConsumerState) async {
        await state.stopWhenIdle()
        acks.flushAll()
        for consumer in consumers { await consumer.close() }
    }

    /// The source stream of a delivery (the `x-stream-id` header), or for a message without
    /// it (poison) its message id or routing key.
    static func stream(of delivery: Delivery) -> String {
        if case .string(let stream)? = delivery.properties.headers?[EventMessage.Header.streamID] {
            return stream
        }
        return delivery.properties.messageId ?? delivery.routingKey
    }

    /// The lane of a source stream: events of one stream share a lane, so they are handled
    /// one after another in stream order; other streams are handled concurrently.
    static func lane(of stream: String, among count: Int) -> Int {
        guard count > 1 else { return 0 }
        // A stable hash (FNV-1a), the same in every process.
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in stream.utf8 {
            hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3
        }
        return Int(hash % UInt64(count))
    }
}
