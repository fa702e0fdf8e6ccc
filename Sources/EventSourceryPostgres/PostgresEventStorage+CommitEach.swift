public import EventSourcery
import Foundation
import PostgresNIO

/// `commitEach`: a consumer's batches, each with its inbox entry, committed atomically each on
/// its own in one transaction.
extension PostgresEventStorage {
    /// Commits each batch atomically on its own, all in one transaction: a batch that fails
    /// (or whose inbox entry exists) writes nothing, and the set costs one commit.
    ///
    /// Batches that hold appends and inbox entries only (a context consumer's) are written by
    /// one call of the schema's `commit_each` function (migration 8 in
    /// `PostgresEventStorage+Schema.swift`): one round trip for the whole set,
    /// all batches written together on the server, or, when one of them fails, each batch in
    /// a subtransaction of its own. Other sets (checkpoints, snapshots,
    /// commands, or one inbox entry named twice) are written batch by batch, each after a
    /// savepoint of its own.
    public func commitEach(_ batches: [WriteBatch]) async -> [Result<CommitOutcome, any Error>] {
        if batches.isEmpty { return [] }
        let entries = batches.compactMap(\.inboxEntry)
        guard batches.allSatisfy(\.isInboxAndAppends), Set(entries).count == entries.count else {
            if batches.count == 1 {
                // Alone: its own transaction, without a savepoint.
                do { return [.success(try await commit(batches[0]))] } catch { return [.failure(error)] }
            }
            return await commitEachWithSavepoints(batches)
        }
        let notifiesAfterCommit = defersNotices
        let results: [Result<CommitOutcome, any Error>]
        do {
            results = try await commitInOneCall(batches, notifying: !notifiesAfterCommit)
        } catch {
            return batches.map { _ in .failure(error) }
        }
        if notifiesAfterCommit && Self.wokeRelays(batches, results) { committedWithoutNotice() }
        return results
    }

    /// Commits batches of appends and inbox entries (``WriteBatch/isInboxAndAppends``, no
    /// inbox entry twice) with one call of `commit_each`, in one transaction of its own;
    /// `notifying`: whether the function notifies the listeners when it adds outbox rows.
    ///
    /// - Throws: when the call as a whole fails (nothing is written then); a batch that fails
    ///   alone has a failure in its place of the result.
    func commitInOneCall(_ batches: [WriteBatch], notifying: Bool) async throws -> [Result<CommitOutcome, any Error>] {
        var results: [Result<CommitOutcome, any Error>] = batches.map { _ in .success(.alreadyProcessed) }
        var input = AppendInput()
        var called: [(index: Int, appends: [WriteBatch.StreamAppend])] = []
        var hasInbox: [Bool] = []
        var consumers: [String] = []
        var inboxEventIDs: [UUID] = []
        var appendCounts: [Int32] = []
        for (index, batch) in batches.enumerated() {
            let appends = batch.writtenAppends
            do {
                try input.add(appends)
            } catch {
                results[index] = .failure(error)
                continue
            }
            called.append((index, appends))
            hasInbox.append(batch.inboxEntry != nil)
            consumers.append(batch.inboxEntry?.consumer ?? "")
            inboxEventIDs.append(batch.inboxEntry?.eventID ?? Self.noInboxEntry)
            appendCounts.append(Int32(appends.count))
        }
        guard !called.isEmpty else { return results }
        let operation = "commit batches"
        let rows = try await rows(
            """
            SELECT outcome, event_positions, event_versions, error_state, error_message, error_detail, error_constraint
            FROM \(unescaped: schema).commit_each(
                \(hasInbox)::boolean[], \(consumers)::text[], \(inboxEventIDs)::uuid[], \(appendCounts)::integer[],
                \(input.streams)::text[], \(input.expected)::bigint[], \(input.counts)::integer[],
                \(input.eventIDs)::uuid[], \(input.typeNames)::text[], \(input.schemaVersions)::integer[],
                \(input.createdAts)::timestamptz[], \(input.correlationIDs)::text[], \(input.causationIDs)::text[],
                \(input.traceContexts)::text[], \(input.payloads)::text[], \(input.publishes)::boolean[],
                \(notifying ? configuration.notificationChannel : nil)::text, \(configuration.schema))
            """,
            operation)
        guard rows.count == called.count else {
            throw EventStoreError(
                .storageFailure,
                message: "commit_each returned \(rows.count) rows for \(called.count) batches: the schema's function is not the one "
                    + "this library created.")
        }
        for ((index, appends), row) in zip(called, rows) {
            let outcome: String
            let positions: [Int64]?
            let versions: [Int64]?
            let error: ServerError?
            do {
                let columns = try row.decode((String, [Int64]?, [Int64]?, String?, String?, String?, String?).self)
                (outcome, positions, versions) = (columns.0, columns.1, columns.2)
                error = columns.3.map {
                    ServerError(state: $0, message: columns.4 ?? "no message", detail: columns.5, constraint: columns.6)
                }
            } catch {
                throw failure(error, operation: operation)
            }
            switch (outcome, positions, versions, error) {
            case ("committed", let positions?, let versions?, _):
                results[index] = Result { .committed(try Self.recordedEvents(appends, positions: positions, versions: versions)) }
            case ("processed", _, _, _):
                results[index] = .success(.alreadyProcessed)
            case ("failed", _, _, let error?):
                results[index] = .failure(
                    Self.appendError(error, appends: appends)
                        ?? Self.serverError(error, configuration: configuration, operation: "commit a batch"))
            default:
                throw EventStoreError(
                    .storageFailure,
                    message: "commit_each returned the outcome '\(outcome)': the schema's function is not the one this library created.")
            }
        }
        return results
    }

    /// The inbox event id passed for a batch without an inbox entry (`in_has_inbox` false).
    private static let noInboxEntry = UUID(uuid: (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0))

    /// Whether a batch that gives relays work committed.
    private static func wokeRelays(_ batches: [WriteBatch], _ results: [Result<CommitOutcome, any Error>]) -> Bool {
        zip(batches, results).contains { batch, result in
            if batch.wakesRelays, case .success(.committed) = result { true } else { false }
        }
    }

    /// Commits each batch after a savepoint of its own, all in one transaction.
    ///
    /// Round trips: the batches' inbox entries are inserted together by one statement first
    /// (a batch whose entry exists is already processed and writes nothing), then each other
    /// batch costs a savepoint and its writes (one `append_events` call for its events). The
    /// savepoints are not released: each batch's savepoint nests in the previous one, and
    /// `ROLLBACK TO SAVEPOINT` undoes only the latest, the failing batch's writes, whose inbox
    /// entry is then deleted again. Batches that name the same inbox entry twice are written
    /// one after another with their entries, as ``commit(_:)`` does.
    private func commitEachWithSavepoints(_ batches: [WriteBatch]) async -> [Result<CommitOutcome, any Error>] {
        let logger = self.logger
        let notifiesAfterCommit = defersNotices
        let entries = batches.compactMap(\.inboxEntry)
        let insertsEntriesFirst = !entries.isEmpty && Set(entries).count == entries.count
        do {
            let results = try await inTransaction("commit batches") { connection in
                let inserted = insertsEntriesFirst ? try await insertInboxEntries(entries, on: connection) : []
                var results: [Result<CommitOutcome, any Error>] = []
                results.reserveCapacity(batches.count)
                for var batch in batches {
                    let entry = batch.inboxEntry
                    if insertsEntriesFirst, let entry {
                        guard inserted.contains(entry) else {
                            results.append(.success(.alreadyProcessed))
                            continue
                        }
                        batch.inboxEntry = nil
                    }
                    try await connection.query("SAVEPOINT batch", logger: logger)
                    do {
                        let outcome = try await write(batch, on: connection, notifying: !notifiesAfterCommit)
                        if case .alreadyProcessed = outcome {
                            try await connection.query("ROLLBACK TO SAVEPOINT batch", logger: logger)
                        }
                        results.append(.success(outcome))
                    } catch {
                        try await connection.query("ROLLBACK TO SAVEPOINT batch", logger: logger)
                        if insertsEntriesFirst, let entry {
                            try await connection.query(
                                """
                                DELETE FROM \(unescaped: schema).inbox WHERE consumer = \(entry.consumer) AND event_id = \(entry.eventID)
                                """,
                                logger: logger)
                        }
                        results.append(.failure(failure(error, operation: "commit a batch")))
                    }
                }
                return results
            }
            if notifiesAfterCommit && Self.wokeRelays(batches, results) { committedWithoutNotice() }
            return results
        } catch {
            return batches.map { _ in .failure(error) }
        }
    }

    /// Inserts inbox entries (all distinct) in the current transaction with one statement, in
    /// a fixed order (so that two transactions inserting the same entries do not deadlock),
    /// and returns those that were new; an entry a concurrent transaction is inserting is
    /// waited for, and is not new when that one commits.
    private func insertInboxEntries(_ entries: [InboxEntry], on connection: PostgresConnection) async throws -> Set<InboxEntry> {
        let consumers = entries.map(\.consumer)
        let eventIDs = entries.map(\.eventID)
        var inserted: Set<InboxEntry> = []
        for try await (consumer, eventID) in try await connection.query(
            """
            INSERT INTO \(unescaped: schema).inbox (consumer, event_id)
            SELECT consumer, event_id FROM unnest(\(consumers)::text[], \(eventIDs)::uuid[]) AS entry (consumer, event_id)
            ORDER BY consumer, event_id
            ON CONFLICT DO NOTHING RETURNING consumer, event_id
            """,
            logger: logger
        ).decode((String, UUID).self) {
            inserted.insert(InboxEntry(consumer: consumer, eventID: eventID))
        }
        return inserted
    }
}
