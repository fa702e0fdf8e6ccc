public import AMQPClient
public import EventSourcery
import Foundation
public import Logging
public import ServiceLifecycle
import Synchronization

/// Consumes a context's inbox queue and runs its ``EventHandler``s exactly once per event.
///
/// For each delivery from `<context>.inbox`:
/// 1. The message is read through the wire contract and decoded through the store's
///    ``EventRegistry`` (upcasters included). A message that can never be processed
///    (``PoisonMessage``: malformed JSON, unknown type, missing `message_id`, wrong content
///    type, oversized body, missing headers) is published with its body and properties to
///    `<context>.dlx` with the headers `x-death-reason` and `x-death-detail`, confirmed,
///    and then acknowledged; the consumer goes on.
/// 2. Every handler subscribed to the event's source and type runs inside
///    ``EventStore/processOnce(consumer:eventID:_:)`` with the consumer name
///    `<context>.<handler>`: the inbox entry and the handler's appends commit in one
///    transaction, so a redelivery, or a duplicate publish with the same `message_id`,
///    changes nothing. The `redelivered` flag is never trusted. Handler conditions are
///    checked inside that transaction; a skipped handler is logged with the condition's name.
/// 3. When every handler committed, the delivery is acknowledged (in batches with
///    ``Configuration/ackBatchSize``).
///
/// A handler that throws records a ``HandlerFailed`` event in the stream
/// `failures-<context>` ("failures are data") and the delivery is rejected with requeue;
/// handlers that committed before it are not run again. The quorum queue's delivery limit
/// dead-letters a message that keeps failing to `<context>.dead`, where ``ContextAdmin``
/// lists and replays it.
///
/// **Concurrency.** Deliveries are spread over ``Configuration/concurrency`` lanes by their
/// source stream (the `x-stream-id` header): one stream's events are handled in stream order,
/// different streams in parallel, so their commits share transactions. A handler that loses
/// an optimistic-concurrency race is run again with fresh state
/// (``Configuration/conflictRetries``). Acknowledgements follow arrival order.
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
        self.topology = topology ?? ContextTopology(ContextDescription(
            name: configuration.context,
            handlers: Dictionary(handlers.map { ($0.name, $0.subscriptions) }, uniquingKeysWith: +),
            deliveryLimit: configuration.deliveryLimit
        ))
        var logger = logger
        logger[metadataKey: "consumer.context"] = "\(configuration.context)"
        self.logger = logger
    }

    /// Consumes until graceful shutdown or cancellation.
    ///
    /// - Throws: ``AMQPError`` when the subscription cannot be opened, the topology cannot be
    ///   declared, or the broker cancels the consumer.
    public func run() async throws {
        if configuration.declaresTopology {
            try await topology.declare(on: connection)
        }
        let consumer = try await connection.consume(queue: topology.inboxQueue, prefetch: configuration.prefetch)
        let acks = AcknowledgementTracker(consumer: consumer, batchSize: configuration.ackBatchSize)
        let state = ConsumerState()
        let publisher = AMQPPublisher(connection: connection, window: 1)
        let interval = configuration.ackFlushInterval
        logger.info("Context consumer started", metadata: [
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
            defer { group.cancelAll() }
            try await withGracefulShutdownHandler {
                try await consume(consumer, acks: acks, state: state, publisher: publisher)
            } onGracefulShutdown: {
                logger.info("Context consumer stopping")
                Task { await stop(consumer, acks: acks, state: state) }
            }
        }
        acks.flushAll()
        await consumer.cancel()
        let statistics = state.statistics
        logger.info("Context consumer stopped", metadata: [
            "consumer.processed": "\(statistics.processed)", "consumer.failed": "\(statistics.failed)",
            "consumer.poison": "\(statistics.poison)",
        ])
    }

    /// Hands each delivery to one of ``Configuration/concurrency`` lanes, chosen by the
    /// event's source stream, until the deliveries end; then lets the lanes finish.
    private func consume(_ consumer: AMQPConsumer, acks: AcknowledgementTracker, state: ConsumerState, publisher: AMQPPublisher) async throws {
        let lanes = (0..<configuration.concurrency).map { _ in AsyncStream.makeStream(of: Delivery.self) }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for lane in lanes {
                group.addTask {
                    for await delivery in lane.stream {
                        guard state.begin() else { continue }
                        let outcome = await process(delivery, publisher: publisher)
                        acks.settle(delivery, acknowledge: outcome.isAcknowledged)
                        state.end(outcome)
                    }
                }
            }
            defer { lanes.forEach { $0.continuation.finish() } }
            // The deliveries are read outside this task's cancellation: cancelling their
            // stream would cancel the subscription and send deliveries back while lanes are
            // still committing them. Cancellation stops the consumer like a graceful shutdown.
            let dispatcher = Task {
                for try await delivery in consumer.deliveries where !state.isStopping {
                    acks.register(delivery)
                    lanes[Self.lane(of: delivery, among: lanes.count)].continuation.yield(delivery)
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

    /// The lane of a delivery: events of one source stream share a lane, so they are handled
    /// one after another in stream order; other streams are handled concurrently.
    static func lane(of delivery: Delivery, among count: Int) -> Int {
        guard count > 1 else { return 0 }
        let key: String
        if case .string(let stream)? = delivery.properties.headers?[EventMessage.Header.streamID] {
            key = stream
        } else {
            key = delivery.properties.messageId ?? delivery.routingKey
        }
        // A stable hash (FNV-1a), the same in every process.
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in key.utf8 {
            hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3
        }
        return Int(hash % UInt64(count))
    }

    // MARK: One delivery

    /// Processes one delivery: decode, run the matching handlers, record a failure or
    /// dead-letter poison. Does not acknowledge it.
    func process(_ delivery: Delivery, publisher: AMQPPublisher) async -> Outcome {
        let incoming: IncomingEvent
        let envelope: EventEnvelope
        do {
            incoming = try EventMessage.incoming(delivery, maximumBodySize: configuration.maximumBodySize, registry: store.registry)
            do {
                envelope = try store.registry.decode(incoming.event)
            } catch {
                throw error.code == .unknownEventType
                    ? PoisonMessage(.unknownEventType, detail: error.message)
                    : PoisonMessage(.undecodablePayload, detail: error.message)
            }
        } catch let poison as PoisonMessage {
            return await deadLetter(delivery, poison, publisher: publisher)
        } catch {
            return await deadLetter(delivery, PoisonMessage(.undecodablePayload, detail: "\(error)"), publisher: publisher)
        }
        let input = HandlerInput(
            envelope: envelope, sourceContext: incoming.sourceContext, streamID: incoming.streamID,
            streamVersion: incoming.streamVersion, attempt: incoming.previousDeliveries + 1
        )
        var ran = 0
        var already = 0
        var skipped = 0
        for handler in handlers where handler.handles(source: incoming.sourceContext, type: envelope.typeName) {
            var skipReason: String?
            do {
                let outcome = try await retryingConflicts {
                    try await store.processOnce(consumer: "\(configuration.context).\(handler.name)", eventID: envelope.id) { batch in
                        skipReason = nil
                        for condition in handler.conditions {
                            if try await !condition.isSatisfied(input) {
                                skipReason = condition.name
                                return
                            }
                        }
                        try await handler.handle(input, &batch)
                    }
                }
                if let skipReason {
                    skipped += 1
                    logger.info("Handler skipped", metadata: [
                        "consumer.handler": "\(handler.name)", "es.event_id": "\(envelope.id)", "es.type": "\(envelope.typeName)",
                        "consumer.reason": "\(skipReason)",
                    ])
                } else if outcome.wasProcessed {
                    ran += 1
                } else {
                    already += 1
                    logger.debug("Event already processed by handler", metadata: [
                        "consumer.handler": "\(handler.name)", "es.event_id": "\(envelope.id)",
                    ])
                }
            } catch {
                await recordFailure(of: handler, input: input, error: error)
                return .failed(handler: handler.name)
            }
        }
        return .processed(handlersRun: ran, alreadyProcessed: already, skipped: skipped)
    }

    /// Runs `body` again while it fails with a concurrency conflict, up to
    /// ``Configuration/conflictRetries`` more times: a handler that lost a race for a stream
    /// (another lane, another replica) reads the new state and decides again. A conflict
    /// means another writer made progress, so the retries end.
    private func retryingConflicts<Value>(_ body: () async throws -> Value) async throws -> Value {
        var retries = 0
        while true {
            do {
                return try await body()
            } catch let error as EventStoreError where error.code == .concurrencyConflict && retries < configuration.conflictRetries {
                retries += 1
                // A little jitter spreads the lanes that lost the same race.
                try await Task.sleep(for: .microseconds(Int.random(in: 0...(200 * min(retries, 10)))))
            }
        }
    }

    /// Appends a ``HandlerFailed`` event to `failures-<context>`.
    private func recordFailure(of handler: EventHandler, input: HandlerInput, error: any Error) async {
        let failure = HandlerFailed(
            eventID: input.envelope.id, eventType: input.envelope.typeName, sourceContext: input.sourceContext,
            handler: handler.name, error: "\(error)", attempt: input.attempt, failedAt: Date()
        )
        let metadata: Logger.Metadata = [
            "consumer.handler": "\(handler.name)", "es.event_id": "\(input.envelope.id)", "es.type": "\(input.envelope.typeName)",
            "consumer.attempt": "\(input.attempt)", "error": "\(error)",
        ]
        do {
            try await store.append([EventEnvelope(failure, metadata: input.causedMetadata)], to: HandlerFailed.stream(for: configuration.context))
            logger.warning("Handler failed; the failure is recorded and the message requeued", metadata: metadata)
        } catch let recordError {
            logger.error("Handler failed and its failure could not be recorded; the message is requeued", metadata: metadata.merging(["consumer.record_error": "\(recordError)"]) { $1 })
        }
    }

    /// Publishes a poison message to `<context>.dlx` with its reason and returns whether to ack it.
    private func deadLetter(_ delivery: Delivery, _ poison: PoisonMessage, publisher: AMQPPublisher) async -> Outcome {
        var properties = delivery.properties
        var headers = properties.headers ?? [:]
        headers[EventMessage.deathReasonHeader] = .string(poison.code.reason)
        headers[EventMessage.deathDetailHeader] = .string(poison.detail)
        properties.headers = headers
        let message = OutgoingMessage(
            exchange: topology.deadLetterExchange, routingKey: delivery.routingKey, body: delivery.body, properties: properties, mandatory: true
        )
        let metadata: Logger.Metadata = [
            "consumer.reason": "\(poison.code.reason)", "consumer.detail": "\(poison.detail)",
            "amqp.message_id": "\(delivery.properties.messageId ?? "none")", "amqp.routing_key": "\(delivery.routingKey)",
        ]
        let outcome: PublishOutcome
        do {
            outcome = try await publisher.publish(message)
        } catch {
            outcome = .notConfirmed(error as? AMQPError ?? AMQPError(.closedByClient, "\(error)"))
        }
        guard outcome.isConfirmed else {
            logger.error("Poison message could not be dead-lettered; it is requeued", metadata: metadata.merging(["error": "\(outcome)"]) { $1 })
            return .failed(handler: "dead-letter")
        }
        logger.warning("Poison message dead-lettered", metadata: metadata)
        return .poison(poison.code)
    }
}

/// The lanes' work in flight, whether the consumer is stopping, and counts for the log.
private final class ConsumerState: Sendable {
    private struct State {
        var inFlight = 0
        var stopping = false
        var idleWaiters: [CheckedContinuation<Void, Never>] = []
        var statistics = (processed: 0, failed: 0, poison: 0)
    }

    private let state = Mutex(State())

    var isStopping: Bool { state.withLock { $0.stopping } }

    var statistics: (processed: Int, failed: Int, poison: Int) { state.withLock { $0.statistics } }

    /// Starts a delivery; `false` when the consumer is stopping and it should be left alone.
    func begin() -> Bool {
        state.withLock { state in
            guard !state.stopping else { return false }
            state.inFlight += 1
            return true
        }
    }

    /// Ends a delivery, counting its outcome.
    func end(_ outcome: ContextConsumer.Outcome) {
        let waiters: [CheckedContinuation<Void, Never>] = state.withLock { state in
            state.inFlight -= 1
            switch outcome {
            case .processed: state.statistics.processed += 1
            case .failed: state.statistics.failed += 1
            case .poison: state.statistics.poison += 1
            }
            guard state.stopping, state.inFlight == 0 else { return [] }
            defer { state.idleWaiters = [] }
            return state.idleWaiters
        }
        waiters.forEach { $0.resume() }
    }

    /// Stops starting deliveries and returns once those in flight have ended.
    func stopWhenIdle() async {
        await withCheckedContinuation { continuation in
            let idle = state.withLock { state in
                state.stopping = true
                if state.inFlight == 0 { return true }
                state.idleWaiters.append(continuation)
                return false
            }
            if idle { continuation.resume() }
        }
    }
}

/// Acknowledges settled deliveries in the order they arrived, so a `multiple` ack never
/// covers a delivery that is still being processed in another lane.
///
/// Deliveries register on arrival and settle when processed, in any order. A requeued
/// delivery is rejected at once; acknowledged ones are covered by one `multiple` ack up to
/// the last delivery of the settled prefix, once ``batchSize`` of them are waiting (or on
/// ``flush()``). Acks and rejections go out under one lock.
private final class AcknowledgementTracker: Sendable {
    private struct State {
        /// Registered deliveries not yet covered by an ack, in arrival order, with whether
        /// each has settled as acknowledged.
        var window: [(delivery: Delivery, acknowledged: Bool?)] = []
        /// The last delivery of the settled prefix and how many acks it stands for.
        var pending: (last: Delivery?, count: Int) = (nil, 0)
    }

    private let consumer: AMQPConsumer
    private let batchSize: Int
    private let state = Mutex(State())

    init(consumer: AMQPConsumer, batchSize: Int) {
        self.consumer = consumer
        self.batchSize = max(1, batchSize)
    }

    func register(_ delivery: Delivery) {
        state.withLock { $0.window.append((delivery, nil)) }
    }

    /// Settles a processed delivery: acknowledged (committed, or dead-lettered poison) or
    /// rejected with requeue.
    func settle(_ delivery: Delivery, acknowledge: Bool) {
        state.withLock { state in
            guard let index = state.window.firstIndex(where: { $0.delivery == delivery }) else { return }
            state.window[index].acknowledged = acknowledge
            if !acknowledge { consumer.nack(delivery, requeue: true) }
            let settled = state.window.prefix { $0.acknowledged != nil }.count
            for entry in state.window.prefix(settled) where entry.acknowledged == true {
                state.pending = (entry.delivery, state.pending.count + 1)
            }
            state.window.removeFirst(settled)
            if state.pending.count >= batchSize { send(&state) }
        }
    }

    /// Acknowledges the settled prefix now.
    func flush() {
        state.withLock { send(&$0) }
    }

    /// Acknowledges everything settled, also deliveries after one still unsettled (each on
    /// its own), before the consumer stops.
    func flushAll() {
        state.withLock { state in
            send(&state)
            for entry in state.window where entry.acknowledged == true {
                consumer.ack(entry.delivery)
            }
            state.window.removeAll { $0.acknowledged != nil }
        }
    }

    private func send(_ state: inout State) {
        guard let last = state.pending.last else { return }
        consumer.ack(last, multiple: state.pending.count > 1)
        state.pending = (nil, 0)
    }
}
