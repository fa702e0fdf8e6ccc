public import EventSourceryRabbitMQ
public import EventSourcery
import Foundation

/// Operator commands for one context's consumer: list and replay dead letters, list
/// recorded handler failures, list, retry and skip parked sequences.
///
/// ```swift
/// let admin = ContextAdmin(context: "payment", connection: connection, store: store)
/// for letter in try await admin.deadLetters() { print(letter.messageID ?? "-", letter.reason) }
/// let replayed = try await admin.replayDeadLetters()   // after fixing the bug
/// ```
public struct ContextAdmin: Sendable {
    /// The consuming context.
    public let context: String
    /// A connection to the broker (not the consumer's own, ideally).
    public let connection: AMQPConnection
    /// The context's store, for ``handlerFailures()``.
    public let store: EventStore?
    /// The context's inbox partitions (``ContextConsumer/Configuration/partitions``): where
    /// ``replayDeadLetters(limit:timeout:)`` puts messages back.
    public let partitions: Int

    /// Creates the admin interface of `context`.
    public init(context: String, connection: AMQPConnection, store: EventStore? = nil, partitions: Int = 1) {
        self.context = context
        self.connection = connection
        self.store = store
        self.partitions = partitions
    }

    /// Lists the messages in `<context>.dead` without removing them.
    ///
    /// The client has no `basic.get`, so this consumes up to `limit` messages (the count the
    /// queue reports at the start), then rejects them all with requeue; a classic queue puts
    /// them back in their places. Run it while nothing else consumes `<context>.dead`.
    ///
    /// - Parameters:
    ///   - limit: The most messages to list.
    ///   - timeout: The longest wait for the messages the queue reported.
    public func deadLetters(limit: Int = 1000, timeout: Duration = .seconds(5)) async throws -> [DeadLetter] {
        let queue = ContextTopology.deadLetterQueue(for: context)
        let available = try await connection.queueState(queue).messageCount
        let wanted = min(Int(available), limit)
        guard wanted > 0 else { return [] }
        let consumer = try await connection.consume(queue: queue, prefetch: UInt16(min(wanted, Int(UInt16.max))))
        let deliveries = try await collect(consumer, count: wanted, timeout: timeout)
        if let last = deliveries.last {
            consumer.nack(last, multiple: true, requeue: true)
        }
        await consumer.cancel()
        try await waitUntilReady(queue, count: UInt32(deliveries.count), timeout: timeout)
        return deliveries.map(DeadLetter.init)
    }

    /// Waits until `queue` reports `count` ready messages again: the broker requeues
    /// rejected messages asynchronously, and a listing must leave the queue as it found it
    /// before the caller's next command (such as a replay) counts the queue.
    private func waitUntilReady(_ queue: String, count: UInt32, timeout: Duration) async throws {
        let deadline = ContinuousClock.now + timeout
        while try await connection.queueState(queue).messageCount < count, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(10))
        }
    }

    /// Moves the messages in `<context>.dead` back into the inbox.
    ///
    /// Each message (its dead-letter headers removed) is published to the default exchange
    /// with the routing key `<context>.inbox`, or with partitions to the exchange
    /// `<context>.partitions`, which puts it in its source stream's partition (a message
    /// without `x-stream-id` goes to `<context>.inbox.0`); its dead copy is acknowledged only
    /// after the broker confirmed the new one. The inbox deduplicates anything that was
    /// processed in the meantime. A dead-lettered command (``DeadLetter/isCommand``) goes back
    /// to the context's command exchange `<context>.commands` with its routing key.
    ///
    /// - Parameters:
    ///   - limit: The most messages to move.
    ///   - timeout: The longest wait for the messages the queue reported.
    /// - Returns: How many messages were moved.
    @discardableResult
    public func replayDeadLetters(limit: Int = .max, timeout: Duration = .seconds(5)) async throws -> Int {
        let queue = ContextTopology.deadLetterQueue(for: context)
        let available = try await connection.queueState(queue).messageCount
        let wanted = min(Int(available), limit)
        guard wanted > 0 else { return 0 }
        let consumer = try await connection.consume(queue: queue, prefetch: UInt16(min(wanted, 500)))
        let publisher = AMQPPublisher(connection: connection, window: 1)
        var moved = 0
        do {
            let deadline = ContinuousClock.now + timeout
            let timer = Task {
                try? await Task.sleep(until: deadline)
                await consumer.cancel()
            }
            defer { timer.cancel() }
            for try await delivery in consumer.deliveries {
                var properties = delivery.properties
                properties.headers = properties.headers?.filter { key, _ in
                    !(key == "x-death" || key.hasPrefix("x-first-death") || key.hasPrefix("x-last-death")
                        || key == EventMessage.deathReasonHeader || key == EventMessage.deathDetailHeader
                        || key == EventMessage.deliveryCountHeader)
                }
                let (exchange, routingKey) =
                    DeadLetter(delivery).isCommand
                    ? (CommandMessage.exchange(for: context), delivery.routingKey)
                    : replayDestination(hasStream: properties.headers?[EventMessage.Header.streamID] != nil)
                let message = OutgoingMessage(
                    exchange: exchange, routingKey: routingKey, body: delivery.body, properties: properties, mandatory: true)
                let outcome = try await publisher.publish(message)
                guard outcome.isConfirmed else {
                    consumer.nack(delivery, requeue: true)
                    throw AMQPError(
                        .protocolError,
                        "replaying \(delivery.properties.messageId ?? "a message") to \(exchange.isEmpty ? routingKey : exchange) failed: \(outcome)"
                    )
                }
                consumer.ack(delivery)
                moved += 1
                if moved >= wanted { break }
            }
        } catch {
            await consumer.cancel()
            throw error
        }
        await consumer.cancel()
        return moved
    }

    /// Where a replayed dead letter goes: the partition exchange, which hashes its stream, or
    /// the default exchange with the routing key of an inbox queue.
    private func replayDestination(hasStream: Bool) -> (exchange: String, routingKey: String) {
        guard partitions > 1 else { return ("", ContextTopology.inboxQueue(for: context)) }
        return hasStream
            ? (ContextTopology.partitionExchange(for: context), "") : ("", ContextTopology.partitionQueue(for: context, partition: 0))
    }

    /// The handler failures recorded in `failures-<context>`, oldest first.
    public func handlerFailures() async throws -> [HandlerFailed] {
        guard let store else { return [] }
        return try await Self.handlerFailures(context: context, store: store)
    }

    /// The handler failures recorded in `failures-<context>` of `store`, oldest first.
    public static func handlerFailures(context: String, store: EventStore) async throws -> [HandlerFailed] {
        try await recorded(HandlerFailed.self, context: context, store: store)
    }

    /// The skips operators recorded in `failures-<context>` of `store`, oldest first.
    public static func skippedEvents(context: String, store: EventStore) async throws -> [EventSkipped] {
        try await recorded(EventSkipped.self, context: context, store: store)
    }

    /// The handlers skipped by a false condition, recorded in `skipped-<context>` of `store`, oldest first.
    public static func skippedHandlers(context: String, store: EventStore) async throws -> [HandlerSkipped] {
        try await recorded(HandlerSkipped.self, in: HandlerSkipped.stream(for: context), store: store)
    }

    /// The forced reruns recorded in `skipped-<context>` of `store`, oldest first.
    public static func reruns(context: String, store: EventStore) async throws -> [HandlerRerun] {
        try await recorded(HandlerRerun.self, in: HandlerSkipped.stream(for: context), store: store)
    }

    /// The events of type `E` in `failures-<context>`, decoded without the store's registry.
    private static func recorded<E: Event>(_ type: E.Type, context: String, store: EventStore) async throws -> [E] {
        try await recorded(type, in: HandlerFailed.stream(for: context), store: store)
    }

    /// The events of type `E` in `stream`, decoded without the store's registry.
    private static func recorded<E: Event>(_ type: E.Type, in stream: StreamID, store: EventStore) async throws -> [E] {
        try await recordedWithMetadata(type, in: stream, store: store).map(\.event)
    }

    /// The events of type `E` in `stream` with their metadata, decoded without the store's registry.
    static func recordedWithMetadata<E: Event>(
        _ type: E.Type, in stream: StreamID, store: EventStore
    ) async throws -> [(event: E, metadata: EventMetadata)] {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return try await store.storage.readStream(stream, fromVersion: 1, upToVersion: nil, createdUpTo: nil)
            .filter { $0.event.typeName == E.typeName }
            .map { (try decoder.decode(E.self, from: $0.event.payload), $0.event.metadata) }
    }

    // MARK: Parked sequences

    /// The parked sequences of the consumer `context` in `store`: each source stream whose
    /// event used up its attempts, with that event (``HeldSequences/Entry/head``: payload,
    /// attempts, last error) and how many of the stream's events wait behind it.
    public static func parkedSequences(context: String, store: EventStore) async throws -> [HeldSequences.Entry] {
        HeldSequences(try await store.storage.heldEvents(consumer: context, sequence: nil)).parked
    }

    /// Makes a parked sequence due now: the running consumer applies its events in order
    /// and stops again at the first failure (which parks the sequence at once, its attempts
    /// being used up).
    ///
    /// - Throws: ``ParkedSequenceError`` when `sourceStream` of `sourceContext` has no parked
    ///   sequence.
    public static func retryParked(context: String, sourceContext: String, sourceStream: StreamID, store: EventStore) async throws {
        var head = try await parkedHead(context: context, sourceContext: sourceContext, sourceStream: sourceStream, store: store)
        head.state = .waiting
        head.nextAttemptAt = Date()
        guard try await store.storage.updateHeldEvent(head) else { throw ParkedSequenceError(sequence: head.sequence) }
    }

    /// Skips the parked event at the head of a sequence: records ``EventSkipped`` (with the
    /// event's payload and `reason`) in `failures-<context>`, then releases the event; the
    /// running consumer applies the events behind it in order. The skip commits with the
    /// inbox entry `<context>.skip`/event id, so a skip interrupted before the release and
    /// run again records it once.
    ///
    /// - Returns: The recorded skip.
    /// - Throws: ``ParkedSequenceError`` when `sourceStream` of `sourceContext` has no parked
    ///   sequence.
    @discardableResult
    public static func skipParked(
        context: String, sourceContext: String, sourceStream: StreamID, reason: String, store: EventStore
    ) async throws -> EventSkipped {
        let head = try await parkedHead(context: context, sourceContext: sourceContext, sourceStream: sourceStream, store: store)
        let skip = EventSkipped(
            eventID: head.event.id, eventType: head.event.typeName, sourceContext: sourceContext, sourceStream: sourceStream.rawValue,
            streamVersion: head.streamVersion, payload: String(decoding: head.event.payload, as: UTF8.self), attempts: head.attempts,
            lastError: head.lastError, reason: reason, skippedAt: Date())
        var batch = WriteBatch()
        let metadata = EventMetadata(
            correlationID: head.event.metadata.correlationID ?? head.event.id, causationID: head.event.id,
            traceContext: head.event.metadata.traceContext)
        try batch.append([EventEnvelope(skip, metadata: metadata)], to: HandlerFailed.stream(for: context))
        batch.inboxEntry = InboxEntry(consumer: "\(context).skip", eventID: head.event.id)
        _ = try await store.storage.commit(batch)
        guard try await store.storage.releaseHeldEvent(sequenceNumber: head.sequenceNumber) else {
            throw ParkedSequenceError(sequence: head.sequence)
        }
        return skip
    }

    private static func parkedHead(
        context: String, sourceContext: String, sourceStream: StreamID, store: EventStore
    ) async throws -> HeldEvent {
        let sequence = HeldEvent.Sequence(consumer: context, sourceContext: sourceContext, sourceStream: sourceStream)
        guard let head = try await store.storage.heldEvents(consumer: context, sequence: sequence).first, head.state == .parked else {
            throw ParkedSequenceError(sequence: sequence)
        }
        return head
    }

    private func collect(_ consumer: AMQPConsumer, count: Int, timeout: Duration) async throws -> [Delivery] {
        let deadline = ContinuousClock.now + timeout
        let timer = Task {
            try? await Task.sleep(until: deadline)
            await consumer.cancel()
        }
        defer { timer.cancel() }
        var deliveries: [Delivery] = []
        for try await delivery in consumer.deliveries {
            deliveries.append(delivery)
            if deliveries.count >= count { break }
        }
        return deliveries
    }
}
