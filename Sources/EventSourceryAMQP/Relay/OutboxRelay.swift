public import EventSourceryRabbitMQ
public import EventSourcery
import Foundation
public import Logging
public import ServiceLifecycle
public import Tracing

/// Publishes a store's outbox to RabbitMQ and marks entries published only after the
/// broker confirmed them.
///
/// Each round claims a batch of due entries (leased, so several replicas can share one
/// store), publishes them with publisher confirms following ``EventMessage``'s wire
/// contract, at most one entry per stream at a time, and then:
/// - marks confirmed entries published;
/// - hands back, without recording an attempt, the entries not sent because an earlier
///   entry of their stream failed (see **Order**);
/// - records a failed attempt for refused ones (`basic.nack`, or `basic.return` for an
///   unroutable message) with capped exponential backoff, parking an entry once it reaches
///   the attempt limit — parked entries are kept and can be requeued;
/// - records a failed attempt, never parking, for entries whose confirm was lost with the
///   connection.
///
/// **Order.** No event of a stream is in flight while an earlier event of that stream is
/// unconfirmed, so no consumer receives event *k+1* of a stream unless *k* was confirmed
/// first — the broker had it in every queue it was routed to — and a consumer never applies
/// an event after a later one of its stream. Two rules give this:
/// - The storage hands out an entry only when no earlier unpublished entry of its stream is
///   leased, waiting or parked, so a failing entry holds back the later entries of its own
///   stream and no other, also across relay replicas.
/// - Within a claimed batch, entries go out in waves (`RelaySettlement`): each wave holds at
///   most one entry per stream, streams are pipelined against each other, and the next wave
///   is published only after the broker answered for the whole previous one. When entry *k*
///   is refused (`basic.nack`, `basic.return`) or its confirm is lost with the connection,
///   *k+1* and the later entries of that stream are not sent; they are handed back without
///   an attempt and follow *k* once it is published.
///
/// A copy of *k* may still reach a consumer twice (the broker had it, but the confirm was
/// lost; or one bound queue refused it and another took it): the copies arrive before
/// *k+1*, and the consumer's inbox drops the duplicate. The cost is one confirm round trip
/// per wave: a batch of *n* entries over *s* streams needs about *n*/*s* of them.
///
/// **Commands and deadlines.** Each round also sends the store's due commands (see
/// ``CommandMessage``) beside the events' waves: commands sent through
/// ``WriteBatch/send(_:to:id:metadata:at:)`` at once, deadlines when their time comes — at most ``Configuration/idlePollInterval`` late
/// while the relay is idle. A confirmed command is marked sent; a refused one is retried with
/// the same backoff and parked at the attempt limit; a lost confirm is retried and never parks.
/// Commands carry no stream order. Since the receiver's inbox is keyed by the command id, a
/// command sent twice (a lost confirm, a relay restarted after publishing) takes effect once.
///
/// **Batching under load.** A round takes what is due when it starts. With
/// ``Configuration/linger`` set, a relay whose next entries were committed while its last
/// round ran waits that long before claiming them, so each round carries more entries:
/// less CPU per message for the broker and the store, up to the linger more per hop.
///
/// **Tracing.** With a tracer bootstrapped, each event's message is published in a producer
/// span `publish <context>.events`, a child of the trace context stored with the event (the
/// span that appended it), and that span's context travels in the `traceparent` header. Each
/// command is sent in a producer span `publish <target>.commands`, a child of the context
/// stored with the command (the handler or request that sent it).
///
/// **Shutdown.** On graceful shutdown the relay stops claiming, waits for the confirms of
/// the wave in flight, marks them, hands back the rest of the batch, and returns.
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
    /// The publish spans.
    let tracing: MessageTracing

    /// Creates a relay. Call ``run()`` (or ``runOnce()``) with the publisher's connection running.
    ///
    /// - Parameter tracer: The tracer of the publish spans; by default the one the application
    ///   bootstrapped before creating the relay.
    public init(
        storage: any EventStorage, publisher: AMQPPublisher, configuration: Configuration,
        logger: Logger = Logger(label: "eventsourcery.relay"), tracer: any Tracer = InstrumentationSystem.tracer
    ) {
        self.storage = storage
        self.publisher = publisher
        self.configuration = configuration
        var logger = logger
        logger[metadataKey: "outbox.context"] = "\(configuration.context)"
        self.logger = logger
        self.metrics = RelayMetrics(context: configuration.context)
        self.tracing = MessageTracing(tracer: tracer)
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
                let (round, commands) = try await relayEventsAndCommands()
                total += round.statistics
                total += commands.statistics
                if ContinuousClock.now - lastHousekeeping >= configuration.housekeepingInterval {
                    total.deleted += try await housekeeping()
                    lastHousekeeping = .now
                }
                if round.claimed < configuration.batchSize && commands.claimed < configuration.batchSize {
                    let waitStarted = ContinuousClock.now
                    await waitForWork()
                    let waited = ContinuousClock.now - waitStarted
                    if Self.lingers(configuration.linger, lastRoundClaimed: round.claimed + commands.claimed, waited: waited) {
                        await cancelWhenGracefulShutdown { try? await Task.sleep(for: configuration.linger) }
                    }
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
                "outbox.published": "\(total.published)", "outbox.commands_sent": "\(total.commandsSent)",
                "outbox.failed": "\(total.failed)", "outbox.parked": "\(total.parked)",
            ])
    }

    /// Publishes everything that is due now and returns; for scripts and tests.
    @discardableResult
    public func runOnce() async throws -> Statistics {
        try configuration.validate()
        var total = Statistics()
        while true {
            let (round, commands) = try await relayEventsAndCommands()
            total += round.statistics
            total += commands.statistics
            if (round.claimed == 0 || round.statistics.published == 0) && (commands.claimed == 0 || commands.statistics.commandsSent == 0) {
                break
            }
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

    /// One round: the due events and the due commands, side by side. Commands carry no stream
    /// order, so they need not wait for the events' waves: their claim, publish and marks
    /// overlap with the events' (the storage's writer and the connection's thread run them one
    /// after the other, without a wait for the other's confirms in between).
    private func relayEventsAndCommands() async throws -> (
        events: (claimed: Int, statistics: Statistics), commands: (claimed: Int, statistics: Statistics)
    ) {
        async let commands = relayCommands()
        let events = try await relayBatch()
        return (events, try await commands)
    }

    private func relayBatch() async throws -> (claimed: Int, statistics: Statistics) {
        let entries = try await storage.claimOutboxEntries(
            limit: configuration.batchSize,
            now: Date(),
            leaseDuration: configuration.leaseDuration.seconds
        )
        guard !entries.isEmpty else { return (0, Statistics()) }
        let statistics = try await whileRenewingLeases(of: entries.map(\.id)) {
            var settlement = RelaySettlement(entries, retry: configuration.retry)
            while case let wave = settlement.nextWave(), !wave.isEmpty {
                let (messages, spans) = tracing.publish(wave.map(\.event), context: configuration.context)
                let start = ContinuousClock.now
                let outcomes: [PublishOutcome]
                do {
                    outcomes = try await publisher.publish(messages)
                    metrics.recordConfirm(since: start)
                } catch let error as AMQPError {
                    outcomes = Array(repeating: .notConfirmed(error), count: wave.count)
                }
                settlement.record(outcomes)
                tracing.endPublish(spans, outcomes: outcomes)
                // Stopping: the wave in flight is settled; the rest of the batch is handed back.
                if Task.isShuttingDownGracefully || Task.isCancelled { break }
            }
            return try await execute(settlement.finish())
        }
        metrics.record(statistics)
        return (entries.count, statistics)
    }

    /// Runs `body` (publishing and settling a claimed batch) while a child task renews the
    /// batch's leases every third of ``Configuration/leaseDuration``: the lease stays short, so
    /// a relay that replaces a dead one gets the dead one's entries within the lease, and a
    /// batch that takes longer (a slow broker) keeps its entries from competing relays.
    private func whileRenewingLeases(of ids: [Int64], _ body: () async throws -> Statistics) async throws -> Statistics {
        let (storage, lease, logger) = (self.storage, configuration.leaseDuration, self.logger)
        return try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                while true {
                    try await Task.sleep(for: lease / 3)
                    do {
                        try await storage.renewOutboxLeases(ids, until: Date().addingTimeInterval(lease.seconds))
                    } catch {
                        logger.warning("Outbox leases not renewed", metadata: ["error": "\(error)"])
                    }
                }
            }
            let statistics: Statistics
            do {
                statistics = try await body()
            } catch {
                group.cancelAll()
                throw error
            }
            group.cancelAll()
            return statistics
        }
    }

    /// Sends the due commands of the command outbox once, and records the broker's answers.
    func relayCommands() async throws -> (claimed: Int, statistics: Statistics) {
        let entries = try await storage.claimCommands(
            limit: configuration.batchSize, now: Date(), leaseDuration: configuration.leaseDuration.seconds)
        guard !entries.isEmpty else { return (0, Statistics()) }
        let (messages, spans) = tracing.send(entries.map(\.command), sender: configuration.context)
        let outcomes: [PublishOutcome]
        do {
            outcomes = try await publisher.publish(messages)
        } catch let error as AMQPError {
            outcomes = Array(repeating: .notConfirmed(error), count: entries.count)
        }
        tracing.endPublish(spans, outcomes: outcomes)
        var statistics = Statistics()
        var sent: [UUID] = []
        let now = Date()
        for (entry, outcome) in zip(entries, outcomes) {
            switch CommandSettlement.action(for: entry, outcome: outcome, retry: configuration.retry) {
            case .markSent:
                sent.append(entry.command.id)
            case .retry(let attempts, let reason, let delay):
                _ = try await storage.recordFailedCommandAttempt(
                    entry.command.id, error: reason, nextAttemptAt: now.addingTimeInterval(delay.seconds), attemptLimit: .max)
                statistics.failed += 1
                logger.warning(
                    "Command not confirmed; will retry",
                    metadata: [
                        "es.command_id": "\(entry.command.id)", "es.type": "\(entry.command.typeName)", "outbox.attempts": "\(attempts)",
                        "outbox.retry_in": "\(delay)", "error": "\(reason)",
                    ])
            case .park(let attempts, let reason):
                _ = try await storage.recordFailedCommandAttempt(
                    entry.command.id, error: reason, nextAttemptAt: now, attemptLimit: attempts)
                statistics.failed += 1
                statistics.parked += 1
                logger.error(
                    "Command parked after repeated refusals",
                    metadata: [
                        "es.command_id": "\(entry.command.id)", "es.type": "\(entry.command.typeName)",
                        "amqp.exchange": "\(CommandMessage.exchange(for: entry.command.target))", "error": "\(reason)",
                    ])
            }
        }
        try await storage.markCommandsSent(sent, at: now)
        statistics.commandsSent = sent.count
        return (entries.count, statistics)
    }

    /// Writes what the settlement decided.
    private func execute(_ actions: [RelaySettlement.Action]) async throws -> Statistics {
        var statistics = Statistics()
        let now = Date()
        for action in actions {
            switch action {
            case .markPublished(let ids):
                try await storage.markPublished(ids, at: now)
                statistics.published += ids.count
            case .retry(let entry, let attempts, let reason, let delay):
                _ = try await storage.recordFailedAttempt(
                    entry.id, error: reason, nextAttemptAt: now.addingTimeInterval(delay.seconds), attemptLimit: .max)
                statistics.failed += 1
                logger.warning(
                    "Outbox entry not confirmed; will retry",
                    metadata: [
                        "outbox.entry": "\(entry.id)", "es.stream": "\(entry.event.streamID)", "outbox.attempts": "\(attempts)",
                        "outbox.retry_in": "\(delay)", "error": "\(reason)",
                    ])
            case .park(let entry, let attempts, let reason):
                _ = try await storage.recordFailedAttempt(entry.id, error: reason, nextAttemptAt: now, attemptLimit: attempts)
                statistics.failed += 1
                statistics.parked += 1
                logger.error(
                    "Outbox entry parked after repeated refusals; requeue it once the cause is fixed",
                    metadata: [
                        "outbox.entry": "\(entry.id)", "es.event_id": "\(entry.event.event.id)", "es.stream": "\(entry.event.streamID)",
                        "outbox.attempts": "\(attempts)", "error": "\(reason)",
                    ])
            case .holdBack(let held):
                try await storage.releaseOutboxEntries(held.map(\.id))
                statistics.heldBack += held.count
                logger.debug(
                    "Outbox entries held back behind an earlier entry of their stream", metadata: ["outbox.held_back": "\(held.count)"])
            }
        }
        return statistics
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
