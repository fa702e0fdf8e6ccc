import EventSourceryRabbitMQ
import EventSourcery
import Foundation
import Logging
import Tracing

extension ContextConsumer {
    /// One handler to run for one delivery of a batch.
    fileprivate struct HandlerRun {
        /// The delivery's index in its batch.
        var delivery: Int
        var input: HandlerInput
        var handler: EventHandler
        var inboxEntry: InboxEntry
        /// Whether the event may have been processed already: it was delivered before (a
        /// redelivery, a retry). Only then is its inbox entry looked up before the handler
        /// runs; a duplicate that arrives as a first delivery (a message published twice)
        /// runs the handler, whose writes the commit then discards: the inbox entry is
        /// inserted atomically with them and already exists. If the handler throws instead,
        /// the inbox entry is looked up then, and an existing one makes it a duplicate.
        var mayBeProcessed: Bool
        /// The context of the delivery's consumer span, the parent of the handler's span.
        var trace: ServiceContext?
    }

    /// What one delivery of a batch came to so far.
    struct Tally {
        var ran = 0
        var alreadyProcessed = 0
        var skipped = 0
        var failure: (handler: EventHandler, input: HandlerInput, error: any Error)?
        /// Set when the delivery's outcome is decided before its handlers run (poison, held
        /// behind an earlier event, not taken).
        var decided: Outcome?

        fileprivate mutating func fail(_ run: HandlerRun, _ error: any Error) {
            if failure == nil { failure = (run.handler, run.input, error) }
        }

        /// The outcome of a delivery whose handlers all ran or were skipped.
        var processed: Outcome { .processed(handlersRun: ran, alreadyProcessed: alreadyProcessed, skipped: skipped) }
    }

    // MARK: A batch of deliveries

    /// Processes a batch of deliveries, at most one per source stream: decodes them
    /// (dead-lettering poison), holds those whose source stream has held events behind
    /// them, looks up together the inbox entries of those delivered before, runs the matching handlers one
    /// after another, and commits each handler's writes with its inbox entry atomically on
    /// its own, all in one store call (one transaction on SQLite). Holds a failed event for
    /// its retry and records the failure. Does not acknowledge.
    ///
    /// Handlers of one batch do not see each other's writes: one that loses an
    /// optimistic-concurrency race (often to an earlier delivery of the batch writing the
    /// same stream) runs again alone after the batch committed, with fresh state.
    func process(_ deliveries: [Delivery], publisher: AMQPPublisher, held: HeldStreams) async -> [Outcome] {
        var tallies = Array(repeating: Tally(), count: deliveries.count)
        var incoming: [IncomingEvent?] = Array(repeating: nil, count: deliveries.count)
        var runs: [HandlerRun] = []
        let spans = deliveries.map { tracing.startProcessing($0, context: configuration.context) }
        for (index, delivery) in deliveries.enumerated() {
            let decoded: (incoming: IncomingEvent, input: HandlerInput)
            do throws(PoisonMessage) {
                decoded = try decode(delivery)
                let input = decoded.input
                guard handlers.contains(where: { $0.handles(source: input.sourceContext, type: input.envelope.typeName) }) else {
                    throw PoisonMessage(
                        .unhandled,
                        detail:
                            "no handler of \(configuration.context) takes \(input.envelope.typeName) from \(input.sourceContext); check the inbox's bindings"
                    )
                }
            } catch {
                tallies[index].decided = await deadLetter(delivery, error, publisher: publisher)
                continue
            }
            incoming[index] = decoded.incoming
            if let decided = await holdBehindEarlierEvents(decoded.incoming, held: held) {
                tallies[index].decided = decided
                continue
            }
            let mayBeProcessed = delivery.isRedelivered || decoded.incoming.previousDeliveries > 0
            runs += self.runs(for: decoded.input, tally: index, mayBeProcessed: mayBeProcessed, trace: spans[index]?.context)
        }
        if !runs.isEmpty { await run(runs, tallies: &tallies) }

        var outcomes: [Outcome] = []
        outcomes.reserveCapacity(deliveries.count)
        for (tally, incoming) in zip(tallies, incoming) {
            if let decided = tally.decided {
                outcomes.append(decided)
            } else if let failure = tally.failure, let incoming {
                outcomes.append(await holdFailed(incoming, failure: failure, held: held))
            } else {
                outcomes.append(tally.processed)
            }
        }
        for (span, outcome) in zip(spans, outcomes) { tracing.endProcessing(span, outcome: outcome.spanText, failed: outcome.isFailure) }
        return outcomes
    }

    /// The handler runs of one event: one per handler subscribed to its source and type.
    fileprivate func runs(for input: HandlerInput, tally: Int, mayBeProcessed: Bool, trace: ServiceContext? = nil) -> [HandlerRun] {
        zip(handlers, inboxConsumers).filter { $0.0.handles(source: input.sourceContext, type: input.envelope.typeName) }.map {
            handler, consumer in
            HandlerRun(
                delivery: tally, input: input, handler: handler, inboxEntry: InboxEntry(consumer: consumer, eventID: input.envelope.id),
                mayBeProcessed: mayBeProcessed, trace: trace)
        }
    }

    /// Runs the handlers of one event alone, as in a batch of one, and returns its tally.
    func handle(_ input: HandlerInput) async -> Tally {
        var tallies = [Tally()]
        let runs = runs(for: input, tally: 0, mayBeProcessed: true)
        if !runs.isEmpty { await run(runs, tallies: &tallies) }
        return tallies[0]
    }

    /// Runs the handlers of a batch: one inbox lookup for the events that may have been
    /// processed (``HandlerRun/mayBeProcessed``), the handlers in order, one
    /// ``EventStore/commitEach(_:)``, then again alone those that lost a race. Once a handler
    /// of a delivery failed, the delivery's later handlers are left for its retry.
    private func run(_ runs: [HandlerRun], tallies: inout [Tally]) async {
        var processed: Set<InboxEntry> = []
        let lookedUp = runs.filter(\.mayBeProcessed)
        if !lookedUp.isEmpty {
            do {
                processed = try await store.processedInboxEntries(lookedUp.map(\.inboxEntry))
            } catch {
                for run in runs { tallies[run.delivery].fail(run, error) }
                return
            }
        }
        var batches: [WriteBatch] = []
        var staged: [(run: HandlerRun, skipReason: String?)] = []
        for run in runs where tallies[run.delivery].failure == nil {
            if processed.contains(run.inboxEntry) {
                count(.alreadyProcessed, of: run, skipReason: nil, in: &tallies[run.delivery])
                continue
            }
            var batch = WriteBatch()
            do {
                let skipReason = try await stage(run, into: &batch)
                batch.inboxEntry = run.inboxEntry
                batches.append(batch)
                staged.append((run, skipReason))
            } catch {
                // A handler may refuse an event it already applied (a first delivery of an
                // event published twice): that is a duplicate, not a failure.
                if !run.mayBeProcessed, (try? await store.processedInboxEntries([run.inboxEntry]))?.isEmpty == false {
                    count(.alreadyProcessed, of: run, skipReason: nil, in: &tallies[run.delivery])
                } else {
                    tallies[run.delivery].fail(run, error)
                }
            }
        }
        var lostRaces: [HandlerRun] = []
        for ((run, skipReason), result) in zip(staged, await store.commitEach(batches)) {
            switch result {
            case .success(let outcome):
                count(outcome, of: run, skipReason: skipReason, in: &tallies[run.delivery])
            case .failure(let error as EventStoreError) where error.code == .concurrencyConflict:
                lostRaces.append(run)
            case .failure(let error):
                tallies[run.delivery].fail(run, error)
            }
        }
        for run in lostRaces where tallies[run.delivery].failure == nil {
            do {
                var skipReason: String?
                let outcome = try await retryingConflicts {
                    try await store.processOnce(consumer: run.inboxEntry.consumer, eventID: run.inboxEntry.eventID) { batch in
                        skipReason = try await stage(run, into: &batch)
                    }
                }
                count(outcome, of: run, skipReason: skipReason, in: &tallies[run.delivery])
            } catch {
                tallies[run.delivery].fail(run, error)
            }
        }
    }

    /// Checks the handler's conditions, in order, inside its inbox work and lets it add its
    /// writes to `batch`, in the handler's span; the events it appends without a cause get the
    /// consumed event as their cause (``WriteBatch/inheritCausation(from:except:)``) and all of
    /// them the handler span's trace context. Returns the name of the first condition that
    /// does not hold (the handler is skipped: only a ``HandlerSkipped`` record is written), or
    /// `nil` when it ran.
    private func stage(_ run: HandlerRun, into batch: inout WriteBatch) async throws -> String? {
        let (handler, input) = (run.handler, run.input)
        for condition in handler.conditions {
            if try await !condition.isSatisfied(input) {
                let skipped = try HandlerSkipped(handler: handler.name, condition: condition.name, input: input)
                try batch.append(
                    [EventEnvelope(skipped, metadata: input.causedMetadata)], to: HandlerSkipped.stream(for: configuration.context))
                return condition.name
            }
        }
        let start = ContinuousClock.now
        let earlier = batch.eventIDs
        let trace = try await tracing.handling(handler.name, input, parent: run.trace) { try await handler.handle(input, &batch) }
        batch.inheritCausation(from: input.envelope, except: earlier)
        batch.setTraceContext(trace, except: earlier)
        metrics.recordHandler(handler.name, since: start)
        return nil
    }

    /// Counts a committed (or already processed) handler run and logs skips and duplicates.
    private func count(_ outcome: InboxOutcome, of run: HandlerRun, skipReason: String?, in tally: inout Tally) {
        if !outcome.wasProcessed {
            tally.alreadyProcessed += 1
            logger.debug(
                "Event already processed by handler",
                metadata: [
                    "consumer.handler": "\(run.handler.name)", "es.event_id": "\(run.input.envelope.id)",
                ])
        } else if let skipReason {
            tally.skipped += 1
            logger.info(
                "Handler skipped",
                metadata: [
                    "consumer.handler": "\(run.handler.name)", "es.event_id": "\(run.input.envelope.id)",
                    "es.type": "\(run.input.envelope.typeName)", "consumer.reason": "\(skipReason)",
                ])
        } else {
            tally.ran += 1
        }
    }

    /// Reads a delivery through the wire contract and the store's registry.
    private func decode(_ delivery: Delivery) throws(PoisonMessage) -> (incoming: IncomingEvent, input: HandlerInput) {
        let (incoming, envelope) = try EventMessage.decode(
            delivery, maximumBodySize: configuration.maximumBodySize, registry: store.registry,
            directExchanges: topology.isPartitioned ? [topology.partitionExchange] : [])
        if let traceParent = incoming.invalidTraceParent {
            logger.warning(
                "Invalid traceparent dropped; the event is processed without trace context",
                metadata: ["es.event_id": "\(envelope.id)", "amqp.traceparent": "\(traceParent)"])
        }
        let input = HandlerInput(
            envelope: envelope, sourceContext: incoming.sourceContext, streamID: incoming.streamID,
            streamVersion: incoming.streamVersion, attempt: incoming.previousDeliveries + 1
        )
        return (incoming, input)
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
    func recordFailure(of handler: EventHandler, input: HandlerInput, error: any Error) async {
        let failure = HandlerFailed(
            eventID: input.envelope.id, eventType: input.envelope.typeName, sourceContext: input.sourceContext,
            handler: handler.name, error: "\(error)", attempt: input.attempt, failedAt: Date()
        )
        let metadata: Logger.Metadata = [
            "consumer.handler": "\(handler.name)", "es.event_id": "\(input.envelope.id)", "es.type": "\(input.envelope.typeName)",
            "consumer.attempt": "\(input.attempt)", "error": "\(error)",
        ]
        do {
            try await store.append(
                [EventEnvelope(failure, metadata: input.causedMetadata)], to: HandlerFailed.stream(for: configuration.context))
            logger.warning("Handler failed; the failure is recorded", metadata: metadata)
        } catch let recordError {
            logger.error(
                "Handler failed and its failure could not be recorded",
                metadata: metadata.merging(["consumer.record_error": "\(recordError)"]) { $1 })
        }
    }

    /// Publishes a poison message to `<context>.dlx` with its reason and returns whether to ack it.
    private func deadLetter(_ delivery: Delivery, _ poison: PoisonMessage, publisher: AMQPPublisher) async -> Outcome {
        let message = poison.deadLetter(delivery, exchange: topology.deadLetterExchange)
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
            logger.error(
                "Poison message could not be dead-lettered; it is requeued", metadata: metadata.merging(["error": "\(outcome)"]) { $1 })
            return .requeued(reason: "the poison message could not be dead-lettered")
        }
        logger.warning("Poison message dead-lettered", metadata: metadata)
        return .poison(poison.code)
    }
}
