public import EventSourceryRabbitMQ
public import EventSourcery
import Foundation
public import Logging
public import ServiceLifecycle

/// Consumes a context's inbox queue and runs its ``EventHandler``s exactly once per event.
///
/// For each delivery from `<context>.inbox`:
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
/// (``Configuration/batchSize``, one per source stream): one inbox lookup and one
/// ``EventStore/commitEach(_:)`` for the batch, whose handler writes commit each on its own
/// but in one transaction. A handler that loses an optimistic-concurrency race is run again
/// alone with fresh state (``Configuration/conflictRetries``). Acknowledgements follow
/// arrival order.
///
/// **Shutdown.** On graceful shutdown the consumer stops taking deliveries, finishes those
/// in flight, acknowledges everything committed and cancels its subscription; deliveries the
/// broker had sent but the consumer had not started go back to the queue.
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
                    deliveryLimit: configuration.deliveryLimit
                ))
        var logger = logger
        logger[metadataKey: "consumer.context"] = "\(configuration.context)"
        self.logger = logger
        self.metrics = ConsumerMetrics(context: configuration.context, handlers: handlers.map(\.name))
    }

    /// Consumes until graceful shutdown or cancellation.
    ///
    /// - Throws: ``AMQPError`` when the subscription cannot be opened, the topology cannot be
    ///   declared, or the broker cancels the consumer; ``EventStoreError`` when the held
    ///   events cannot be read at start.
    public func run() async throws {
        try configuration.validate()
        if configuration.declaresTopology {
            try await topology.declare(on: connection)
        }
        let held = HeldStreams(
            try await store.storage.heldEvents(consumer: configuration.context, sequence: nil).map(\.sequence))
        let consumer = try await connection.consume(queue: topology.inboxQueue, prefetch: configuration.prefetch)
        let acks = AcknowledgementTracker(consumer: consumer, batchSize: configuration.ackBatchSize)
        let state = ConsumerState()
        let publisher = AMQPPublisher(connection: connection, window: 1)
        let interval = configuration.ackFlushInterval
        logger.info(
            "Context consumer started",
            metadata: [
                "amqp.queue": "\(topology.inboxQueue)", "consumer.handlers": "\(handlers.map(\.name).joined(separator: ","))",
                "consumer.prefetch": "\(configuration.prefetch)", "consumer.concurrency": "\(configuration.concurrency)",
            ])
        try await withThrowingTaskGroup(of: Void.self) { group in
            if configuration.ackBatchSize > 1 {
                group.addTask {
                    while !Task.isCancelled {
                        try? await Task.sleep(for: interval)
                        acks.flush()
                    }
                }
            }
            group.addTask { await retryHeldEvents(held: held, state: state) }
            if let retention = configuration.inboxRetention {
                group.addTask { await pruneInbox(olderThan: retention) }
            }
            defer { group.cancelAll() }
            try await withGracefulShutdownHandler {
                try await consume(consumer, acks: acks, state: state, publisher: publisher, held: held)
            } onGracefulShutdown: {
                logger.info("Context consumer stopping")
                Task { await stop(consumer, acks: acks, state: state) }
            }
        }
        acks.flushAll()
        await consumer.cancel()
        let statistics = state.statistics
        logger.info(
            "Context consumer stopped",
            metadata: [
                "consumer.processed": "\(statistics.processed)", "consumer.failed": "\(statistics.failed)",
                "consumer.held": "\(statistics.held)", "consumer.poison": "\(statistics.poison)",
                "consumer.requeued": "\(statistics.requeued)",
            ])
    }

    /// Hands each delivery to one of ``Configuration/concurrency`` lanes, chosen by the
    /// event's source stream, until the deliveries end; then lets the lanes finish.
    private func consume(
        _ consumer: AMQPConsumer, acks: AcknowledgementTracker, state: ConsumerState, publisher: AMQPPublisher, held: HeldStreams
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
            let dispatcher = Task {
                for try await delivery in consumer.deliveries where !state.isStopping {
                    acks.register(delivery)
                    let stream = Self.stream(of: delivery)
                    lanes[Self.lane(of: stream, among: lanes.count)].put(delivery, stream: stream)
                }
            }
            try await withTaskCancellationHandler {
                try await dispatcher.value
            } onCancel: {
                Task { await stop(consumer, acks: acks, state: state) }
            }
        }
    }

    /// Stops taking deliveries, waits for those in flight, acknowledges everything committed
    /// and cancels the subscription, which ends the deliveries. Deliveries not started stay
    /// unacknowledged and go back to the queue.
    private func stop(_ consumer: AMQPConsumer, acks: AcknowledgementTracker, state: ConsumerState) async {
        await state.stopWhenIdle()
        acks.flushAll()
        await consumer.cancel()
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
