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
/// **Shutdown.** On graceful shutdown the consumer stops taking deliveries, finishes the one
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
        let acks = AckBatcher(consumer: consumer, batchSize: configuration.ackBatchSize)
        let state = LoopState()
        let publisher = AMQPPublisher(connection: connection, window: 1)
        let interval = configuration.ackFlushInterval
        logger.info("Context consumer started", metadata: [
            "amqp.queue": "\(topology.inboxQueue)", "consumer.handlers": "\(handlers.map(\.name).joined(separator: ","))",
            "consumer.prefetch": "\(configuration.prefetch)",
        ])
        var statistics = (processed: 0, failed: 0, poison: 0)
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
                for try await delivery in consumer.deliveries {
                    guard state.begin() else { break }
                    let outcome = await process(delivery, publisher: publisher)
                    switch outcome {
                    case .processed:
                        statistics.processed += 1
                        acks.add(delivery)
                    case .poison:
                        statistics.poison += 1
                        acks.add(delivery)
                    case .failed:
                        statistics.failed += 1
                        acks.requeue(delivery)
                    }
                    if state.end() { break }
                }
            } onGracefulShutdown: {
                logger.info("Context consumer stopping")
                if state.requestStop() {
                    // Idle: nothing is in flight, so everything committed can be acked now.
                    acks.flush()
                    Task { await consumer.cancel() }
                }
            }
        }
        acks.flush()
        await consumer.cancel()
        logger.info("Context consumer stopped", metadata: [
            "consumer.processed": "\(statistics.processed)", "consumer.failed": "\(statistics.failed)",
            "consumer.poison": "\(statistics.poison)",
        ])
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
                let outcome = try await store.processOnce(consumer: "\(configuration.context).\(handler.name)", eventID: envelope.id) { batch in
                    for condition in handler.conditions {
                        if try await !condition.isSatisfied(input) {
                            skipReason = condition.name
                            return
                        }
                    }
                    try await handler.handle(input, &batch)
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

/// Whether the consume loop is busy with a delivery, and whether it should stop.
private final class LoopState: Sendable {
    private let state = Mutex<(busy: Bool, stopping: Bool)>((false, false))

    /// Starts a delivery; `false` when the loop should stop instead.
    func begin() -> Bool {
        state.withLock { state in
            guard !state.stopping else { return false }
            state.busy = true
            return true
        }
    }

    /// Ends a delivery; `true` when the loop should stop now.
    func end() -> Bool {
        state.withLock { state in
            state.busy = false
            return state.stopping
        }
    }

    /// Asks the loop to stop; `true` when it is idle (the caller finishes it).
    func requestStop() -> Bool {
        state.withLock { state in
            state.stopping = true
            return !state.busy
        }
    }
}

/// Acknowledges committed deliveries in batches with `multiple`. Acks and requeues are
/// submitted under one lock so the broker sees them in delivery-tag order.
private final class AckBatcher: Sendable {
    private let consumer: AMQPConsumer
    private let batchSize: Int
    private let pending = Mutex<(last: Delivery?, count: Int)>((nil, 0))

    init(consumer: AMQPConsumer, batchSize: Int) {
        self.consumer = consumer
        self.batchSize = max(1, batchSize)
    }

    func add(_ delivery: Delivery) {
        pending.withLock { pending in
            pending.last = delivery
            pending.count += 1
            if pending.count >= batchSize {
                consumer.ack(delivery, multiple: batchSize > 1)
                pending = (nil, 0)
            }
        }
    }

    func requeue(_ delivery: Delivery) {
        pending.withLock { pending in
            if let last = pending.last {
                consumer.ack(last, multiple: true)
                pending = (nil, 0)
            }
            consumer.nack(delivery, requeue: true)
        }
    }

    func flush() {
        pending.withLock { pending in
            if let last = pending.last {
                consumer.ack(last, multiple: true)
                pending = (nil, 0)
            }
        }
    }
}
