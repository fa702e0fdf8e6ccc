import EventSourceryRabbitMQ
import Logging
import ServiceLifecycle

extension ContextConsumer {
    /// Drains the single inbox `<context>.inbox` of a single-inbox deployment before a
    /// partitioned consumer takes its partitions, and deletes it; returns at once when there
    /// is none, and early on graceful shutdown or cancellation.
    ///
    /// The partitions and their bindings are declared before (by ``run()``, or with the
    /// definitions), so removing the single inbox's bindings loses nothing: new events go to
    /// the partitions, and the single inbox holds only older ones. One replica consumes it
    /// exclusively; the others wait until it is gone. A stream's events that reached both
    /// queues while the bindings changed are applied once (the inbox deduplicates) and in
    /// order (the single inbox's copies first).
    func drainSingleInbox(publisher: AMQPPublisher, held: HeldStreams) async throws {
        let queue = topology.inboxQueue
        guard try await exists(queue) else { return }
        for binding in topology.singleInboxBindings {
            try await connection.unbind(binding)
        }
        logger.info("Draining the single inbox before consuming the partitions", metadata: ["amqp.queue": "\(queue)"])
        var waiting = false
        while !Task.isShuttingDownGracefully, !Task.isCancelled {
            let consumer: AMQPConsumer
            do {
                consumer = try await connection.consume(queue: queue, prefetch: configuration.prefetch, exclusive: true)
            } catch let error as AMQPError where error.code == .accessRefused {
                if !waiting {
                    waiting = true
                    logger.info("Another consumer drains the single inbox; waiting", metadata: ["amqp.queue": "\(queue)"])
                }
                try? await Task.sleep(for: configuration.heldPollInterval)
                guard try await exists(queue) else { return }
                continue
            } catch let error as AMQPError where error.code == .notFound {
                return
            }
            let state = ConsumerState()
            let acks = AcknowledgementTracker(consumers: [consumer], batchSize: configuration.ackBatchSize)
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await consume([consumer], acks: acks, state: state, publisher: publisher, held: held) }
                group.addTask { await stopWhenDrained(queue, consumer: consumer, acks: acks, state: state) }
                try await group.next()
                group.cancelAll()
                try await group.waitForAll()
            }
            guard !Task.isShuttingDownGracefully, !Task.isCancelled else { return }
            if try await isEmptyAndUnused(queue) {
                try await connection.deleteQueue(queue)
                logger.info("Single inbox drained and deleted; consuming the partitions", metadata: ["amqp.queue": "\(queue)"])
                return
            }
        }
    }

    /// Stops the drain once every delivery is acknowledged and the queue reports no ready
    /// message; returns without stopping when cancelled.
    private func stopWhenDrained(_ queue: String, consumer: AMQPConsumer, acks: AcknowledgementTracker, state: ConsumerState) async {
        while !Task.isCancelled {
            try? await Task.sleep(for: configuration.heldPollInterval)
            acks.flush()
            guard acks.isIdle, let ready = try? await connection.queueState(queue).messageCount, ready == 0 else { continue }
            await stop([consumer], acks: acks, state: state)
            return
        }
    }

    /// Whether `queue` has neither consumers nor messages, asked twice a poll interval apart:
    /// deliveries the broker had sent when the drain stopped return to the queue a moment
    /// after the subscription closed.
    private func isEmptyAndUnused(_ queue: String) async throws -> Bool {
        for check in 0..<2 {
            if check > 0 { try? await Task.sleep(for: configuration.heldPollInterval) }
            let state = try await connection.queueState(queue)
            guard state.messageCount == 0, state.consumerCount == 0 else { return false }
        }
        return true
    }

    private func exists(_ queue: String) async throws -> Bool {
        do {
            _ = try await connection.queueState(queue)
            return true
        } catch let error as AMQPError where error.code == .notFound {
            return false
        }
    }
}
