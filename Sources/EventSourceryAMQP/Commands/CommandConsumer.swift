public import EventSourceryRabbitMQ
public import EventSourcery
import Foundation
public import Logging
public import ServiceLifecycle
import Tracing

/// Consumes a context's command queue `<context>.commands` and runs its ``CommandHandler``s
/// exactly once per command id.
///
/// For each delivery:
/// 1. The message is read through the command wire contract (``CommandMessage``) and decoded
///    through the handlers' command types. A message that can never be handled
///    (``PoisonMessage``: an unknown command type, a missing `message_id`, a payload that does
///    not decode, a routing key off the contract) is published to `<context>.dlx` with the
///    headers `x-death-reason` and `x-death-detail`, confirmed, then acknowledged.
/// 2. The handler runs under the inbox consumer name `<context>.commands`, keyed by the command
///    id; its writes commit in one transaction with the inbox entry, so a redelivered command
///    changes nothing. A handler that loses an optimistic-concurrency race is run again with
///    fresh state (up to ``conflictRetries`` times).
/// 3. A ``CommandRefusal`` is recorded as a published ``CommandRejected`` event, in one
///    transaction with the inbox entry: never a silent drop. Any other error is logged and the
///    delivery is returned to the queue; the quorum queue's delivery limit then dead-letters it
///    to `<context>.dead`, where ``ContextAdmin`` lists and replays it.
///
/// Up to ``concurrency`` commands are handled at the same time (commands carry no order; their
/// commits share the store's group commit), so a handler whose commands all write one stream
/// (a counter) runs with a concurrency of 1. On graceful shutdown the consumer cancels its
/// subscription after the commands in hand.
public struct CommandConsumer: Service {
    /// The outcome of one delivery.
    public enum Outcome: Sendable, Hashable {
        /// The handler's writes committed (or had committed before).
        case handled
        /// The command was refused and the refusal recorded.
        case rejected
        /// The message was poison and dead-lettered.
        case poison(PoisonMessage.Code)
        /// Handling failed; the delivery goes back to the queue.
        case requeued
    }

    /// The receiving context.
    public let context: String
    /// Its store.
    public let store: EventStore
    /// The connection deliveries come from; dead letters are published on it too.
    public let connection: AMQPConnection
    /// The handlers by command type name.
    public let handlers: [String: CommandHandler]
    /// Deliveries the broker sends ahead.
    public let prefetch: UInt16
    /// Runs of a handler that lost an optimistic-concurrency race before the delivery is requeued.
    public let conflictRetries: Int
    /// Commands handled at the same time.
    public let concurrency: Int
    /// Logger.
    public let logger: Logger
    private let registry: CommandRegistry
    /// The consumer spans, with the store's tracer.
    private let tracing: MessageTracing

    /// Creates a consumer. Call ``run()`` with the connection running and the context's
    /// topology declared (``ContextDescription/acceptsCommands``).
    public init(
        context: String, store: EventStore, connection: AMQPConnection, handlers: [CommandHandler], prefetch: UInt16 = 50,
        conflictRetries: Int = 5, concurrency: Int = 1, logger: Logger = Logger(label: "eventsourcery.commands")
    ) {
        self.concurrency = max(1, concurrency)
        self.context = context
        self.store = store
        self.connection = connection
        self.handlers = Dictionary(handlers.map { ($0.typeName, $0) }) { first, _ in first }
        self.registry = CommandRegistry(handlers.map(\.commandType))
        self.tracing = MessageTracing(tracer: store.tracer)
        self.prefetch = prefetch
        self.conflictRetries = conflictRetries
        var logger = logger
        logger[metadataKey: "consumer.context"] = "\(context)"
        self.logger = logger
    }

    /// The inbox consumer name of every command of the context: `<context>.commands`.
    public var inboxConsumer: String { CommandMessage.queue(for: context) }

    /// Consumes until graceful shutdown or cancellation.
    public func run() async throws {
        let consumer = try await connection.consume(queue: CommandMessage.queue(for: context), prefetch: prefetch)
        let publisher = AMQPPublisher(connection: connection, window: 1)
        logger.info("Command consumer started", metadata: ["consumer.commands": "\(handlers.keys.sorted().joined(separator: ","))"])
        try await withGracefulShutdownHandler {
            try await withThrowingTaskGroup(of: Void.self) { group in
                var inHand = 0
                for try await delivery in consumer.deliveries {
                    if inHand == concurrency {
                        try await group.next()
                        inHand -= 1
                    }
                    group.addTask {
                        switch await process(delivery, publisher: publisher) {
                        case .requeued: consumer.nack(delivery, requeue: true)
                        case .handled, .rejected, .poison: consumer.ack(delivery)
                        }
                    }
                    inHand += 1
                    if Task.isShuttingDownGracefully { break }
                }
                try await group.waitForAll()
            }
        } onGracefulShutdown: {
            Task { await consumer.cancel() }
        }
        await consumer.cancel()
        logger.info("Command consumer stopped")
    }

    /// Handles one delivery and says what to do with it; for tests and custom loops. With a
    /// tracer bootstrapped (the store's), the delivery is processed in a consumer span
    /// `process <context>.commands`, a child of the `traceparent` the command carries, and the
    /// handler's commit (its `append` span) is the span's child.
    public func process(_ delivery: Delivery, publisher: AMQPPublisher) async -> Outcome {
        let span = tracing.startProcessing(delivery, context: context)
        // What the handler appends names the processing span, as a handler run's events name its span.
        let trace = span.map { TracePropagation.fields(of: $0.context, tracer: store.tracer) } ?? [:]
        let outcome = await tracing.within(span) { await handle(delivery, trace: trace, publisher: publisher) }
        let failed: Bool
        switch outcome {
        case .handled, .rejected: failed = false
        case .poison, .requeued: failed = true
        }
        tracing.endProcessing(span, outcome: "\(outcome)", failed: failed)
        return outcome
    }

    private func handle(_ delivery: Delivery, trace: [String: String], publisher: AMQPPublisher) async -> Outcome {
        let received: ReceivedCommand
        do {
            received = try CommandMessage.incoming(delivery, context: context, registry: registry)
        } catch {
            return await deadLetter(delivery, error, publisher: publisher)
        }
        guard let handler = handlers[received.envelope.typeName] else {
            return await deadLetter(
                delivery, PoisonMessage(.unhandled, detail: "no handler for \(received.envelope.typeName)"), publisher: publisher)
        }
        let metadata: Logger.Metadata = [
            "es.command_id": "\(received.envelope.id)", "es.type": "\(received.envelope.typeName)", "consumer.sender": "\(received.sender)",
        ]
        var attempt = 1
        while true {
            do {
                _ = try await store.processOnce(consumer: inboxConsumer, eventID: received.envelope.id) { batch in
                    try await handler.handle(received, &batch)
                    batch.setTraceContext(trace)
                }
                return .handled
            } catch let refusal as any CommandRefusal {
                return await reject(received, refusal, trace: trace, metadata: metadata)
            } catch let error as EventStoreError where error.code == .concurrencyConflict && attempt <= conflictRetries {
                attempt += 1
            } catch {
                logger.error("Command handler failed; the command is requeued", metadata: metadata.merging(["error": "\(error)"]) { $1 })
                return .requeued
            }
        }
    }

    /// Records and publishes the refusal, with the inbox entry.
    private func reject(
        _ received: ReceivedCommand, _ refusal: any CommandRefusal, trace: [String: String], metadata: Logger.Metadata
    ) async -> Outcome {
        let rejected = CommandRejected(
            commandID: received.envelope.id, commandType: received.envelope.typeName, sender: received.sender, reason: refusal.reason)
        do {
            _ = try await store.processOnce(consumer: inboxConsumer, eventID: received.envelope.id) { batch in
                try batch.publish(
                    [received.caused(rejected)], to: CommandRejected.stream(for: received.envelope.id), expectedVersion: .noStream)
                batch.setTraceContext(trace)
            }
            logger.info(
                "Command refused; the refusal is recorded", metadata: metadata.merging(["consumer.reason": "\(refusal.reason)"]) { $1 })
            return .rejected
        } catch {
            logger.error(
                "Command refused and the refusal could not be recorded; the command is requeued",
                metadata: metadata.merging(["error": "\(error)"]) { $1 })
            return .requeued
        }
    }

    private func deadLetter(_ delivery: Delivery, _ poison: PoisonMessage, publisher: AMQPPublisher) async -> Outcome {
        let metadata: Logger.Metadata = [
            "consumer.reason": "\(poison.code.reason)", "consumer.detail": "\(poison.detail)",
            "amqp.message_id": "\(delivery.properties.messageId ?? "none")",
        ]
        var message = poison.deadLetter(delivery, exchange: ContextTopology.deadLetterExchange(for: context))
        message.properties.headers?[DeadLetter.queueHeader] = .string(inboxConsumer)  // replayed to <context>.commands
        let outcome = (try? await publisher.publish(message))
        guard outcome?.isConfirmed == true else {
            logger.error("Poison command could not be dead-lettered; it is requeued", metadata: metadata)
            return .requeued
        }
        logger.warning("Poison command dead-lettered", metadata: metadata)
        return .poison(poison.code)
    }
}
