public import EventSourcery
public import Foundation
import GRDB

/// The outbox: rows written by ``WriteBatch/publish(_:to:expectedVersion:)`` in the same
/// transaction as their events, handed to the relay in outbox (id) order.
extension SQLiteEventStorage {
    /// The columns of an outbox entry, followed by its event's columns.
    private static let entryColumns = "o.id, o.state, o.attempts, o.last_error, o.next_attempt_at, \(eventColumns(alias: "e"))"

    public func claimOutboxEntries(limit: Int, now: Date, leaseDuration: TimeInterval) async throws -> [OutboxEntry] {
        guard limit > 0 else { return [] }
        markOutboxClaim()
        let arguments: StatementArguments = [now.storedSeconds, limit]
        guard leaseDuration > 0 else {
            // A zero lease claims nothing, so listing needs no write lock.
            return try await read { db in try Self.fetchEntries(db.cachedStatement(sql: Self.dueEntriesQuery), arguments: arguments) }
        }
        let leasedUntil = now.addingTimeInterval(leaseDuration).storedSeconds
        return try await write(bookkeeping: true) { db in
            let entries = try Self.fetchEntries(db.cachedStatement(sql: Self.dueEntriesQuery), arguments: arguments)
            let lease = try db.cachedStatement(sql: "UPDATE outbox SET leased_until = ? WHERE id = ?")
            for entry in entries {
                try lease.execute(arguments: [leasedUntil, entry.id])
            }
            return entries
        }
    }

    /// The entries due at `?1`, at most `?2`, in outbox order.
    ///
    /// Scans the pending entries in id order through `outbox_pending`. An entry is held
    /// back while an earlier unpublished entry of its stream is parked, waits for its retry
    /// time or is leased: that probe runs on `outbox_in_flight`, which holds only the
    /// entries that were claimed or failed and are not published yet.
    private static let dueEntriesQuery = """
        SELECT \(entryColumns)
        FROM outbox AS o INDEXED BY outbox_pending
        JOIN events AS e ON e.position = o.position
        WHERE o.state = 'pending'
          AND (o.next_attempt_at IS NULL OR o.next_attempt_at <= ?1)
          AND (o.leased_until IS NULL OR o.leased_until <= ?1)
          AND NOT EXISTS (
              SELECT 1 FROM outbox AS b INDEXED BY outbox_in_flight
              WHERE b.stream_id = o.stream_id AND b.id < o.id
                AND b.state != 'published' AND (b.next_attempt_at IS NOT NULL OR b.leased_until IS NOT NULL)
                AND (b.state = 'parked' OR b.next_attempt_at > ?1 OR b.leased_until > ?1))
        ORDER BY o.id
        LIMIT ?2
        """

    public func markPublished(_ entryIDs: [Int64], at date: Date) async throws {
        guard !entryIDs.isEmpty else { return }
        try await write(bookkeeping: true) { db in
            let statement = try db.cachedStatement(
                sql: """
                    UPDATE outbox SET state = 'published', published_at = ?, leased_until = NULL WHERE id = ? AND state != 'published'
                    """)
            let publishedAt = date.storedSeconds
            for id in entryIDs {
                try statement.execute(arguments: [publishedAt, id])
            }
        }
    }

    public func releaseOutboxEntries(_ entryIDs: [Int64]) async throws {
        guard !entryIDs.isEmpty else { return }
        try await write(bookkeeping: true) { db in
            let statement = try db.cachedStatement(sql: "UPDATE outbox SET leased_until = NULL WHERE id = ? AND state = 'pending'")
            for id in entryIDs {
                try statement.execute(arguments: [id])
            }
        }
    }

    public func renewOutboxLeases(_ entryIDs: [Int64], until: Date) async throws {
        guard !entryIDs.isEmpty else { return }
        let leasedUntil = until.storedSeconds
        try await write(bookkeeping: true) { db in
            let statement = try db.cachedStatement(
                sql: "UPDATE outbox SET leased_until = ? WHERE id = ? AND state = 'pending' AND leased_until IS NOT NULL")
            for id in entryIDs {
                try statement.execute(arguments: [leasedUntil, id])
            }
        }
    }

    public func recordFailedAttempt(_ entryID: Int64, error: String, nextAttemptAt: Date, attemptLimit: Int) async throws -> OutboxEntry? {
        try await write(bookkeeping: true) { db in
            // `attempts` on the right-hand side is the value before the update.
            try db.cachedStatement(
                sql: """
                    UPDATE outbox
                    SET attempts = attempts + 1, last_error = ?, next_attempt_at = ?, leased_until = NULL,
                        state = CASE WHEN attempts + 1 >= ? THEN 'parked' ELSE 'pending' END
                    WHERE id = ? AND state = 'pending'
                    """
            )
            .execute(arguments: [error, nextAttemptAt.storedSeconds, attemptLimit, entryID])
            guard db.changesCount > 0 else { return nil }
            let statement = try db.cachedStatement(
                sql: """
                    SELECT \(Self.entryColumns) FROM outbox AS o JOIN events AS e ON e.position = o.position WHERE o.id = ?
                    """)
            return try Self.fetchEntries(statement, arguments: [entryID]).first
        }
    }

    public func parkedOutboxEntries(limit: Int) async throws -> [OutboxEntry] {
        guard limit > 0 else { return [] }
        return try await read { db in
            let statement = try db.cachedStatement(
                sql: """
                    SELECT \(Self.entryColumns)
                    FROM outbox AS o INDEXED BY outbox_parked
                    JOIN events AS e ON e.position = o.position
                    WHERE o.state = 'parked'
                    ORDER BY o.id
                    LIMIT ?
                    """)
            return try Self.fetchEntries(statement, arguments: [limit])
        }
    }

    public func requeueParked(_ entryIDs: [Int64]) async throws -> Int {
        guard !entryIDs.isEmpty else { return 0 }
        defer { outboxChanged.signal() }
        return try await write { db in
            let statement = try db.cachedStatement(
                sql: """
                    UPDATE outbox SET state = 'pending', attempts = 0, next_attempt_at = NULL, leased_until = NULL WHERE id = ? AND state = 'parked'
                    """)
            var count = 0
            for id in entryIDs {
                try statement.execute(arguments: [id])
                count += db.changesCount
            }
            return count
        }
    }

    public func deletePublishedOutboxEntries(publishedUpTo date: Date) async throws -> Int {
        try await write(bookkeeping: true) { db in
            try db.cachedStatement(sql: "DELETE FROM outbox WHERE state = 'published' AND published_at <= ?")
                .execute(arguments: [date.storedSeconds])
            return db.changesCount
        }
    }

    public func outboxCounts() async throws -> OutboxCounts {
        try await read { db in
            // Each count reads only its partial index.
            let row = try Row.fetchOne(
                db.cachedStatement(
                    sql: """
                        SELECT (SELECT count(*) FROM outbox WHERE state = 'pending'),
                               (SELECT count(*) FROM outbox WHERE state = 'parked'),
                               (SELECT count(*) FROM outbox WHERE state = 'published')
                        """))
            guard let row else { return OutboxCounts(pending: 0, parked: 0, published: 0) }
            return OutboxCounts(
                pending: try row.decode(Int.self, atIndex: 0),
                parked: try row.decode(Int.self, atIndex: 1),
                published: try row.decode(Int.self, atIndex: 2)
            )
        }
    }

    public func sizes() async throws -> StoreSizes {
        let outbox = try await outboxCounts()
        return try await read { db in
            let row = try Row.fetchOne(
                db.cachedStatement(
                    sql: """
                        SELECT (SELECT count(*) FROM events), (SELECT count(*) FROM inbox),
                               (SELECT count(*) FROM held_events)
                        """))
            return StoreSizes(
                events: try row?.decode(Int.self, atIndex: 0) ?? 0, outbox: outbox,
                inboxEntries: try row?.decode(Int.self, atIndex: 1) ?? 0, heldEvents: try row?.decode(Int.self, atIndex: 2) ?? 0)
        }
    }

    private static func fetchEntries(_ statement: Statement, arguments: StatementArguments) throws -> [OutboxEntry] {
        var traceDecoder: JSONDecoder?
        var entries: [OutboxEntry] = []
        let rows = try Row.fetchCursor(statement, arguments: arguments)
        while let row = try rows.next() {
            let stateName = try row.decode(String.self, atIndex: 1)
            guard let state = OutboxEntry.State(rawValue: stateName) else {
                throw EventStoreError(
                    .storageFailure,
                    message: "Outbox entry \(try row.decode(Int64.self, atIndex: 0)) has the unknown state '\(stateName)'; "
                        + "the database was changed outside EventSourcery."
                )
            }
            entries.append(
                OutboxEntry(
                    id: try row.decode(Int64.self, atIndex: 0),
                    event: try recordedEvent(from: row, at: 5, traceDecoder: &traceDecoder),
                    state: state,
                    attempts: try row.decode(Int.self, atIndex: 2),
                    lastError: try row.decode(String?.self, atIndex: 3),
                    nextAttemptAt: try row.decode(Double?.self, atIndex: 4).map(Date.init(timeIntervalSinceReferenceDate:))
                ))
        }
        return entries
    }
}
