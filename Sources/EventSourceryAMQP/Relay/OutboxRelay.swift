public import EventSourceryRabbitMQ
public import EventSourcery
import Foundation
public import Logging
public import ServiceLifecycle

/// Publishes a store's outbox to RabbitMQ and marks entries published only after the
/// broker confirmed them.
///
/// Each round claims a batch of due entries (leased, so several replicas can share one
/// store), publishes them with publisher confirms following ``EventMessage``'s wire
/// contract, and then:
/// - marks confirmed entries published;
/// - records a failed attempt for refused ones (`basic.nack`, or `basic.return` for an
///   unroutable message) with capped exponential backoff, parking an entry once it reaches
///   the attempt limit — parked entries are kept and can be requeued;
/// - records a failed attempt, never parking, for entries whose confirm was lost with the
///   connection.
///
/// **Order.** The storage hands out an entry only when no earlier unpublished entry of its
/// stream is leased, waiting or parked, so a failing entry holds back the later entries of
/// its own stream and no other. Within one batch, entries are pipelined: when entry *k* of a
/// stream fails while a later entry of the same stream was confirmed, that later entry is
/// not marked published either and is sent again after *k*. The last copies a consumer sees
/// are then in stream order, and its inbox drops the duplicate.
///
/// **Shutdown.** On graceful shutdown the relay stops claiming, waits for the confirms of
/// the batch in flight, marks them, and returns.
public struct OutboxRelay: Service {
    /// The storage whose outbox is relayed.
    public let storage: any EventStorage
    /// The confirming publisher.
    public let publisher: AMQPPublisher
    /// Settings.
    public let configuration: Configuration
    /// Logger for rounds, failures and housekeeping.
    public let logger: Logger
    /// Counters and the confirm timer (``MetricName``).
    let metrics: RelayMetrics

    /// Creates a relay. Call ``run()`` (or ``runOnce()``) with the publisher's connection running.
    public init(
        storage: any EventStorage, publisher: AMQPPublisher, configuration: Configuration,
        logger: Logger = Logger(label: "eventsourcery.relay")
    ) {
        self.storage = storage
        self.publisher = publisher
        self.configuration = configuration
        var logger = logger
        logger[metadataKey: "outbox.context"] = "\(configuration.context)"
        self.logger = logger
        self.metrics = RelayMetrics(context: configuration.context)
    }

    /// Relays until graceful shutdown or cancellation, sleeping while nothing is due.
    ///
    /// An unavailable store (locked, unreachable) is logged and retried after the idle
    /// poll interval; other errors end the relay.
    public func run() async throws {
        try configuration.validate()
        var lastHousekeeping = ContinuousClock.now - configuration.housekeepingInterval
        var total = Statistics()
        logger.info("Outbox relay started", metadata: ["outbox.batch_size": "\(configuration.batchSize)"])
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            do {
                let round = try await relayBatch()
                total += round.statistics
                if ContinuousClock.now - lastHousekeeping >= configuration.housekeepingInterval {
                    total.deleted += try await housekeeping()
                    lastHousekeeping = .now
                }
                if round.claimed < configuration.batchSize {
                    await waitForWork()
                }
            } catch let error as EventStoreError where error.code == .storageUnavailable {
                // A locked or briefly unreachable store: claimed entries keep their lease and
                // are retried; nothing is marked that the broker did not confirm.
                logger.error("Outbox store unavailable; retrying", metadata: ["error": "\(error)"])
                await waitForWork()
            }
        }
        logger.info(
            "Outbox relay stopped",
            metadata: [
                "outbox.published": "\(total.published)", "outbox.failed": "\(total.failed)", "outbox.parked": "\(total.parked)",
            ])
    }

    /// Publishes everything that is due now and returns; for scripts and tests.
    @discardableResult
    public func runOnce() async throws -> Statistics {
        try configuration.validate()
        var total = Statistics()
        while true {
            let round = try await relayBatch()
            total += round.statistics
            if round.claimed == 0 || round.statistics.published == 0 { break }
        }
        total.deleted += try await housekeeping()
        return total
    }

    /// Deletes entries published longer ago than the retention. Returns how many.
    public func housekeeping() async throws -> Int {
        guard let retention = configuration.retention else { return 0 }
        let cutoff = Date().addingTimeInterval(-retention.seconds)
        let deleted = try await storage.deletePublishedOutboxEntries(publishedUpTo: cutoff)
        if deleted > 0 {
            logger.debug("Outbox housekeeping", metadata: ["outbox.deleted": "\(deleted)"])
        }
        return deleted
    }

    // MARK: One round

    private func relayBatch() async throws -> (claimed: Int, statistics: Statistics) {
        let entries = try await storage.claimOutboxEntries(
            limit: configuration.batchSize,
            now: Date(),
            leaseDuration: configuration.leaseDuration.seconds
        )
        guard !entries.isEmpty else { return (0, Statistics()) }
        let messages = entries.map { EventMessage.outgoing($0.event, context: configuration.context) }
        let outcomes: [PublishOutcome]
        let start = ContinuousClock.now
        do {
            outcomes = try await publisher.publish(messages)
            metrics.recordConfirm(since: start)
        } catch let error as AMQPError {
            outcomes = Array(repeating: .notConfirmed(error), count: entries.count)
        }
        let statistics = try await settle(entries, outcomes)
        metrics.record(statistics)
        return (entries.count, statistics)
    }

    /// Marks what the broker took and records what it did not.
    private func settle(_ entries: [OutboxEntry], _ outcomes: [PublishOutcome]) async throws -> Statistics {
        var statistics = Statistics()
        var published: [Int64] = []
        var failedStreams: Set<StreamID> = []
        let now = Date()
        for (entry, outcome) in zip(entries, outcomes) {
            let stream = entry.event.streamID
            if outcome.isConfirmed && !failedStreams.contains(stream) {
                published.append(entry.id)
                continue
            }
            failedStreams.insert(stream)
            let (reason, countsTowardLimit) = Self.describe(outcome)
            let attempts = entry.attempts + 1
            let delay = configuration.retry.delay(afterAttempts: attempts)
            let updated = try await storage.recordFailedAttempt(
                entry.id,
                error: reason,
                nextAttemptAt: now.addingTimeInterval(delay.seconds),
                attemptLimit: countsTowardLimit ? configuration.retry.attemptLimit : .max
            )
            statistics.failed += 1
            if updated?.state == .parked {
                statistics.parked += 1
                logger.error(
                    "Outbox entry parked after repeated refusals; requeue it once the cause is fixed",
                    metadata: [
                        "outbox.entry": "\(entry.id)", "es.event_id": "\(entry.event.event.id)", "es.stream": "\(stream)",
                        "outbox.attempts": "\(attempts)", "error": "\(reason)",
                    ])
            } else {
                logger.warning(
                    "Outbox entry not confirmed; will retry",
                    metadata: [
                        "outbox.entry": "\(entry.id)", "es.stream": "\(stream)", "outbox.attempts": "\(attempts)",
                        "outbox.retry_in": "\(delay)", "error": "\(reason)",
                    ])
            }
        }
        if !published.isEmpty {
            try await storage.markPublished(published, at: now)
            statistics.published = published.count
        }
        return statistics
    }

    private static func describe(_ outcome: PublishOutcome) -> (reason: String, countsTowardLimit: Bool) {
        switch outcome {
        case .confirmed: ("confirmed after an earlier entry of its stream failed; resent in order", false)
        case .nacked: ("the broker refused the message (basic.nack)", true)
        case .returned(let code, let text):
            ("unroutable: the broker returned the message (\(code) \(text)); check the exchange's bindings", true)
        case .notConfirmed(let error): ("no confirm before the connection was lost: \(error)", false)
        }
    }

    // MARK: Waiting

    /// Sleeps until the storage signals new entries, the poll interval passes, or shutdown begins.
    private func waitForWork() async {
        let storage = self.storage
        let interval = configuration.idlePollInterval
        await cancelWhenGracefulShutdown {
            await storage.waitForOutboxChange(timeout: interval)
        }
    }
}
