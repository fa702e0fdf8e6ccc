import EventSourceryRabbitMQ
import EventSourcery
import Foundation
import Logging
import NIOConcurrencyHelpers

/// The source streams a consumer may hold events of, and the wake-up of its retry loop.
///
/// The set is loaded from the store when the consumer starts and grows when a failed event
/// is held. Only the consumer holds events (an operator's retry or skip only releases or
/// reschedules them), so a stream outside the set has no held events, and its deliveries
/// skip the store check. Replicas of a consumer share the store: a replica learns the
/// sequences the others held when a partition starts delivering to it (a hand-over: the
/// stream's earlier events may be held by the replica before) and at every look of its retry
/// loop. A stream in the set is checked in the store, and dropped from the
/// set once its sequence turns out empty; that happens in its lane, which handles the
/// stream's deliveries one after another, so no delivery of it can slip past a held one.
/// (When the store cannot even hold a failed event, the delivery is requeued and the order
/// of its stream rests on the broker's redelivery, as before holding existed.)
final class HeldStreams: Sendable {
    private let sequences: NIOLockedValueBox<Set<HeldEvent.Sequence>>
    /// Wakes the retry loop when a failed event is held.
    let changed = ChangeSignal()

    init(_ sequences: some Sequence<HeldEvent.Sequence>) {
        self.sequences = NIOLockedValueBox(Set(sequences))
    }

    func mayHold(_ sequence: HeldEvent.Sequence) -> Bool {
        sequences.withLockedValue { $0.contains(sequence) }
    }

    func insert(_ sequence: HeldEvent.Sequence) {
        _ = sequences.withLockedValue { $0.insert(sequence) }
        changed.signal()
    }

    func remove(_ sequence: HeldEvent.Sequence) {
        _ = sequences.withLockedValue { $0.remove(sequence) }
    }

    /// Adds sequences the store holds (held by another replica, too).
    func formUnion(_ held: some Sequence<HeldEvent.Sequence>) {
        sequences.withLockedValue { $0.formUnion(held) }
    }
}

extension ContextConsumer {
    /// The held sequence an incoming event belongs to.
    func heldSequence(of incoming: IncomingEvent) -> HeldEvent.Sequence {
        HeldEvent.Sequence(consumer: configuration.context, sourceContext: incoming.sourceContext, sourceStream: incoming.streamID)
    }

    /// Learns the sequences the store holds, when a partition starts delivering to this
    /// replica; logs and goes on when the store cannot tell (the retry loop looks again).
    func learnHeldSequences(_ held: HeldStreams) async {
        do {
            held.formUnion(try await store.storage.heldEvents(consumer: configuration.context, sequence: nil).map(\.sequence))
        } catch {
            logger.error("Cannot read the held events; the retry loop looks again", metadata: ["error": "\(error)"])
        }
    }

    /// Holds `incoming` behind the held events of its source stream, if there are any.
    ///
    /// - Returns: ``Outcome/held`` when it is held (now or by an earlier delivery of the same
    ///   message), ``Outcome/requeued(reason:)`` when the store cannot tell, `nil` when the
    ///   stream has no held events and the event is to be processed now.
    func holdBehindEarlierEvents(_ incoming: IncomingEvent, held: HeldStreams) async -> Outcome? {
        let sequence = heldSequence(of: incoming)
        guard held.mayHold(sequence) else { return nil }
        let event = HeldEvent(sequence: sequence, streamVersion: incoming.streamVersion, event: incoming.event, nextAttemptAt: Date())
        do {
            switch try await store.storage.holdEvent(event, onlyBehindOthers: true) {
            case .held, .alreadyHeld:
                logger.info(
                    "Event held behind an earlier event of its stream",
                    metadata: [
                        "es.event_id": "\(incoming.event.id)", "es.stream": "\(sequence)", "es.version": "\(incoming.streamVersion)",
                    ])
                return .held
            case .notHeld:
                held.remove(sequence)
                return nil
            }
        } catch {
            logger.error(
                "Cannot check the held events of a stream; the message is requeued",
                metadata: ["es.event_id": "\(incoming.event.id)", "es.stream": "\(sequence)", "error": "\(error)"])
            return .requeued(reason: "the store cannot hold the event: \(error)")
        }
    }

    /// Holds an event whose handler failed on its first attempt, schedules its retry (or
    /// parks it when one attempt is all it has) and records the failure.
    func holdFailed(
        _ incoming: IncomingEvent, failure: (handler: EventHandler, input: HandlerInput, error: any Error), held: HeldStreams
    ) async -> Outcome {
        let now = Date()
        let sequence = heldSequence(of: incoming)
        let event = configuration.retrySchedule.failed(
            HeldEvent(sequence: sequence, streamVersion: incoming.streamVersion, event: incoming.event, nextAttemptAt: now),
            error: "\(failure.error)", at: now)
        do {
            _ = try await store.storage.holdEvent(event, onlyBehindOthers: false)
        } catch {
            logger.error(
                "Handler failed and the event cannot be held for a retry; the message is requeued",
                metadata: ["es.event_id": "\(incoming.event.id)", "error": "\(failure.error)", "consumer.hold_error": "\(error)"])
            return .requeued(reason: "the store cannot hold the failed event: \(error)")
        }
        held.insert(sequence)
        await recordFailure(of: failure.handler, input: failure.input, error: failure.error)
        logHeld(event)
        return .failed(handler: failure.handler.name)
    }

    private func logHeld(_ event: HeldEvent) {
        let metadata: Logger.Metadata = [
            "es.event_id": "\(event.event.id)", "es.stream": "\(event.sequence)", "es.version": "\(event.streamVersion)",
            "consumer.attempt": "\(event.attempts)", "error": "\(event.lastError ?? "")",
        ]
        if event.state == .parked {
            logger.error("Event parked after its last attempt; its stream waits for an operator", metadata: metadata)
        } else {
            logger.warning(
                "Event held for a retry; its stream's later events wait behind it",
                metadata: metadata.merging(["consumer.next_attempt": "\(event.nextAttemptAt)"]) { $1 })
        }
    }

    // MARK: The retry loop

    /// Tries the heads of held sequences when they are due, until the consumer stops.
    ///
    /// A sequence's head runs through the handlers like a delivery (inbox entries in the same
    /// transaction as the handlers' writes); on success it is released and the next event
    /// of the sequence runs, until the sequence is empty or an event fails, which is then
    /// rescheduled with backoff or parked. Lanes never wait for this loop.
    func retryHeldEvents(held: HeldStreams, state: ConsumerState) async {
        while !Task.isCancelled, !state.isStopping {
            var wait = configuration.heldPollInterval
            do {
                let events = try await store.storage.heldEvents(consumer: configuration.context, sequence: nil)
                held.formUnion(events.map(\.sequence))
                let sequences = HeldSequences(events)
                let now = Date()
                let due = sequences.due(at: now)
                if due.isEmpty {
                    if let next = sequences.nextAttemptAt {
                        wait = min(wait, .seconds(max(0, next.timeIntervalSince(now))))
                    }
                } else if await retry(due.map(\.sequence), state: state) {
                    continue
                }
            } catch {
                logger.error("Cannot read the held events; retrying later", metadata: ["error": "\(error)"])
            }
            _ = await held.changed.wait(timeout: wait)
        }
    }

    /// Retries due sequences, up to ``Configuration/concurrency`` of them at once: each is
    /// another source stream, so their events may be applied side by side (after an outage
    /// that held many streams, they catch up in parallel, like the lanes).
    ///
    /// - Returns: `false` when the store failed for one of them, so the loop waits before it
    ///   looks again instead of spinning.
    private func retry(_ sequences: [HeldEvent.Sequence], state: ConsumerState) async -> Bool {
        await withTaskGroup(of: Outcome.self) { group in
            var running = 0
            var storeFailed = false
            func finished(_ outcome: Outcome) {
                state.end([outcome])
                if case .requeued = outcome { storeFailed = true }
            }
            for sequence in sequences {
                guard state.begin(1) else { break }
                if running == configuration.concurrency, let outcome = await group.next() {
                    finished(outcome)
                    running -= 1
                }
                group.addTask { await retry(sequence) }
                running += 1
            }
            for await outcome in group { finished(outcome) }
            return !storeFailed
        }
    }

    /// Runs the due head of `sequence` and the events behind it, in order, until the
    /// sequence is empty or one fails. Returns the last outcome, ``Outcome/held`` when
    /// nothing ran (the sequence still waits), ``Outcome/requeued(reason:)`` when the store
    /// failed (the sequence is tried again later).
    private func retry(_ sequence: HeldEvent.Sequence) async -> Outcome {
        var outcome = Outcome.held
        do {
            while let head = try await store.storage.heldEvents(consumer: configuration.context, sequence: sequence).first,
                head.state == .waiting, head.nextAttemptAt <= Date()
            {
                let input: HandlerInput
                do {
                    input = HandlerInput(
                        envelope: try store.registry.decode(head.event), sourceContext: sequence.sourceContext,
                        streamID: sequence.sourceStream, streamVersion: head.streamVersion, attempt: head.attempts + 1)
                } catch {
                    try await fail(head, error: error)
                    return .failed(handler: "decode")
                }
                let tally = await handle(input)
                if let failure = tally.failure {
                    // Recorded before the attempt is counted: a sequence listed as parked
                    // already has the failure that parked it in failures-<context>.
                    await recordFailure(of: failure.handler, input: input, error: failure.error)
                    try await fail(head, error: failure.error)
                    return .failed(handler: failure.handler.name)
                }
                _ = try await store.storage.releaseHeldEvent(sequenceNumber: head.sequenceNumber)
                logger.info(
                    "Held event applied",
                    metadata: [
                        "es.event_id": "\(head.event.id)", "es.stream": "\(sequence)", "es.version": "\(head.streamVersion)",
                        "consumer.attempt": "\(input.attempt)",
                    ])
                outcome = tally.processed
            }
        } catch {
            logger.error(
                "Cannot retry a held sequence; it is tried again later", metadata: ["es.stream": "\(sequence)", "error": "\(error)"])
            return .requeued(reason: "the store failed: \(error)")
        }
        return outcome
    }

    /// Counts a failed attempt of a held event: reschedules it with backoff, or parks it.
    private func fail(_ head: HeldEvent, error: any Error) async throws {
        let updated = configuration.retrySchedule.failed(head, error: "\(error)", at: Date())
        _ = try await store.storage.updateHeldEvent(updated)
        logHeld(updated)
    }
}
