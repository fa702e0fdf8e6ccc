public import Foundation

/// The contract every storage backend fulfils: in-memory, SQLite, PostgreSQL.
///
/// Backends store encoded events; ``EventStore`` sits on top and deals in Swift types.
/// Every backend is checked by the same conformance suite in `EventSourceryTesting`.
///
/// Stream versions start at 1 and have no gaps; a stream that does not exist has version 0.
/// Global positions are greater than 0 and increase in the global order, but need not be
/// dense: the in-memory and SQLite backends count 1, 2, 3, …; PostgreSQL derives them from
/// transaction ids (see `PostgresEventStorage`).
public protocol EventStorage: Sendable {
    /// Commits `batch` atomically.
    ///
    /// - Throws: ``EventStoreError`` `concurrencyConflict` when an expected version does not
    ///   hold (nothing is written), `duplicateEventID` when an event id is already stored.
    func commit(_ batch: WriteBatch) async throws -> CommitOutcome

    /// Commits each batch atomically on its own and returns one result per batch, in order.
    ///
    /// A batch that fails (a version conflict, a duplicate event id, an existing inbox entry
    /// reported as ``CommitOutcome/alreadyProcessed``) writes nothing and fails alone; the
    /// others commit in the order given. Backends may commit the batches in one shared
    /// transaction (a savepoint per batch, or checks before any write), so a set of small
    /// batches costs one commit; when that transaction fails as a whole, every batch in it
    /// reports the failure.
    /// The default implementation commits the batches one after another.
    func commitEach(_ batches: [WriteBatch]) async -> [Result<CommitOutcome, any Error>]

    /// The version of `stream`: the version of its last event, 0 when it does not exist.
    func streamVersion(_ stream: StreamID) async throws -> Int64

    /// Reads the events of `stream` in stream order.
    ///
    /// - Parameters:
    ///   - fromVersion: the first version to return.
    ///   - upToVersion: the last version to return, or `nil` for the end of the stream.
    ///   - createdUpTo: when set, only events whose `createdAt` is at or before it.
    func readStream(_ stream: StreamID, fromVersion: Int64, upToVersion: Int64?, createdUpTo: Date?) async throws -> [RecordedEvent]

    /// Reads up to `limit` events in global order whose position is greater than `position`.
    ///
    /// A backend never returns a position while an event with a smaller position may still
    /// commit (gap-safe reading). A committed event may become visible here a moment after
    /// its commit returned (PostgreSQL: once every older transaction has ended), never
    /// after an event with a greater position.
    func readAll(after position: Int64, limit: Int) async throws -> [RecordedEvent]

    /// The global position of the last event ``readAll(after:limit:)`` can return, 0 when
    /// the store is empty.
    func headPosition() async throws -> Int64

    /// The events of the flow `correlationID`, in global order: those whose correlation id it
    /// is, and the event whose id it is when that event has no correlation id (the start of
    /// a flow written without one). Backends read them through an index on the correlation
    /// id, so the cost follows the size of the flow, not of the store; like
    /// ``readAll(after:limit:)`` they return only what gap-safe reading may see.
    func readFlow(correlationID: UUID) async throws -> [RecordedEvent]

    // MARK: Snapshots

    /// The latest snapshot of `stream`.
    func latestSnapshot(of stream: StreamID) async throws -> Snapshot?

    // MARK: Projections

    /// The stored checkpoint of the projection `name`.
    func checkpoint(named name: String) async throws -> ProjectionCheckpoint?
    /// Deletes the checkpoint of `name` so the projection rebuilds from the start.
    func resetCheckpoint(named name: String) async throws

    // MARK: Inbox

    /// Whether `consumer` has processed the event `eventID`.
    func isProcessed(consumer: String, eventID: UUID) async throws -> Bool

    /// The entries of `entries` that are recorded in the inbox, looked up together.
    ///
    /// The default implementation asks ``isProcessed(consumer:eventID:)`` for each.
    func processedInboxEntries(_ entries: [InboxEntry]) async throws -> Set<InboxEntry>

    /// Deletes the inbox entries of every consumer processed at or before `date`. Returns
    /// how many were deleted.
    ///
    /// An event whose entry is gone is no longer recognised as a duplicate: prune only
    /// entries older than the longest time a copy of their event can still be delivered
    /// (see the consumer's inbox retention).
    func deleteInboxEntries(processedUpTo date: Date) async throws -> Int

    // MARK: Held events

    /// Adds `event` at the end of its sequence (consumer and source stream), in one
    /// transaction with the checks: nothing is written when the consumer already holds an
    /// event with the same id (``HoldOutcome/alreadyHeld``), nor, with `onlyBehindOthers`,
    /// when the sequence is empty (``HoldOutcome/notHeld``).
    ///
    /// A consumer holds an event whose handler failed (`onlyBehindOthers: false`) and every
    /// later event of a source stream that has held events (`onlyBehindOthers: true`), so
    /// the stream's events are applied in order once the head succeeds.
    func holdEvent(_ event: HeldEvent, onlyBehindOthers: Bool) async throws -> HoldOutcome
    /// The events `consumer` holds, in sequence-number order; only those of `sequence` when
    /// given.
    func heldEvents(consumer: String, sequence: HeldEvent.Sequence?) async throws -> [HeldEvent]
    /// Stores the attempts, last error, next attempt time and state of the held event
    /// numbered `event.sequenceNumber`. Returns `false` when it is no longer held.
    func updateHeldEvent(_ event: HeldEvent) async throws -> Bool
    /// Removes the held event numbered `sequenceNumber` (applied or skipped). Returns
    /// whether it was held.
    func releaseHeldEvent(sequenceNumber: Int64) async throws -> Bool

    // MARK: Outbox

    /// Claims up to `limit` pending outbox entries in outbox order whose next attempt is due
    /// at `now`, leasing them until `now + leaseDuration`.
    ///
    /// A leased entry is not handed out again until its lease expires or it is marked
    /// published or failed, so several relays can share one store. An entry is handed out
    /// only when no earlier unpublished entry of its stream is leased, waiting for a retry or
    /// parked, so the events of one stream leave in stream order. A lease of 0 seconds
    /// claims nothing and writes nothing: it lists what is due.
    func claimOutboxEntries(limit: Int, now: Date, leaseDuration: TimeInterval) async throws -> [OutboxEntry]
    /// Marks the entries as published and ends their leases.
    func markPublished(_ entryIDs: [Int64], at date: Date) async throws
    /// Records a failed publish attempt and ends its lease; the entry is parked when it
    /// reaches `attemptLimit`.
    ///
    /// - Returns: the updated entry, or `nil` when no pending entry has that id.
    func recordFailedAttempt(_ entryID: Int64, error: String, nextAttemptAt: Date, attemptLimit: Int) async throws -> OutboxEntry?
    /// Ends the leases of claimed entries that were not published, without recording an
    /// attempt: a relay hands back the later entries of a stream whose earlier entry failed.
    /// They are due again as before, and still wait behind any earlier entry of their stream.
    func releaseOutboxEntries(_ entryIDs: [Int64]) async throws
    /// Extends the leases of claimed entries that are still leased and pending to `until`:
    /// a relay renews the leases of its batch while the batch is in flight, so leases can
    /// be short and a relay that died loses its entries to the next claimer within seconds.
    /// Entries that were marked, failed or released meanwhile keep their state.
    func renewOutboxLeases(_ entryIDs: [Int64], until: Date) async throws
    /// Parked entries (that reached their attempt limit), in outbox order.
    func parkedOutboxEntries(limit: Int) async throws -> [OutboxEntry]
    /// Makes parked entries pending again with zero attempts. Returns how many were requeued.
    func requeueParked(_ entryIDs: [Int64]) async throws -> Int
    /// Deletes entries published at or before `date`. Returns how many were deleted.
    func deletePublishedOutboxEntries(publishedUpTo date: Date) async throws -> Int
    /// How many entries are pending, parked and published.
    func outboxCounts() async throws -> OutboxCounts

    // MARK: Housekeeping

    /// How many rows the store keeps, table by table.
    func sizes() async throws -> StoreSizes

    // MARK: Command outbox

    /// Claims up to `limit` pending commands that are due at `now` (their due time and next
    /// attempt time have come), in due-time order, leasing them until `now + leaseDuration`.
    ///
    /// A leased command is not handed out again until its lease expires or it is marked sent
    /// or failed, so several relays can share one store. Commands carry no stream order: each
    /// one is independent. A lease of 0 seconds claims nothing and writes nothing.
    func claimCommands(limit: Int, now: Date, leaseDuration: TimeInterval) async throws -> [CommandOutboxEntry]
    /// Marks the commands as sent and ends their leases.
    func markCommandsSent(_ commandIDs: [UUID], at date: Date) async throws
    /// Records a failed attempt to send a pending command and ends its lease; it is parked when
    /// it reaches `attemptLimit`.
    ///
    /// - Returns: the updated entry, or `nil` when no pending command has that id.
    func recordFailedCommandAttempt(
        _ commandID: UUID, error: String, nextAttemptAt: Date, attemptLimit: Int
    ) async throws
        -> CommandOutboxEntry?
    /// Makes parked commands pending again with zero attempts, due at once. Returns how many
    /// were requeued.
    func requeueParkedCommands(_ commandIDs: [UUID]) async throws -> Int
    /// The command outbox entries in one of `states`, in due-time order, at most `limit`.
    func commandOutboxEntries(in states: Set<CommandOutboxEntry.State>, limit: Int) async throws -> [CommandOutboxEntry]

    /// Waits until outbox entries may have been added, at most `timeout`.
    ///
    /// Relays call it when nothing is due, so an appended event (or a sent command) is published promptly
    /// without polling the database hard. Backends that can be told about commits (an
    /// in-process signal, PostgreSQL `LISTEN/NOTIFY`) return as soon as one happens; the
    /// default implementation sleeps for `timeout`. Returns on cancellation too.
    func waitForOutboxChange(timeout: Duration) async
}

extension EventStorage {
    public func commitEach(_ batches: [WriteBatch]) async -> [Result<CommitOutcome, any Error>] {
        var results: [Result<CommitOutcome, any Error>] = []
        results.reserveCapacity(batches.count)
        for batch in batches {
            do {
                results.append(.success(try await commit(batch)))
            } catch {
                results.append(.failure(error))
            }
        }
        return results
    }

    public func processedInboxEntries(_ entries: [InboxEntry]) async throws -> Set<InboxEntry> {
        var processed: Set<InboxEntry> = []
        for entry in Set(entries) {
            if try await isProcessed(consumer: entry.consumer, eventID: entry.eventID) {
                processed.insert(entry)
            }
        }
        return processed
    }

    public func waitForOutboxChange(timeout: Duration) async {
        try? await Task.sleep(for: timeout)
    }
}
