public import EventSourcery
public import Foundation
import Logging
import PostgresNIO
import NIOConcurrencyHelpers

extension PostgresEventStorage {
    /// The outbox columns after ``eventColumns``, in the order ``outboxEntry(_:)`` decodes.
    private static let outboxColumns = "o.id, o.state, o.attempts, o.last_error, o.next_attempt_at"

    private typealias OutboxColumns = (
        Int64, String, Int64, UUID, String, Int32, Date, UUID?, UUID?, String, String,
        Int64, String, Int32, String?, Date?
    )

    private static func outboxEntry(_ columns: OutboxColumns) throws -> OutboxEntry {
        let event = try recordedEvent(
            (columns.0, columns.1, columns.2, columns.3, columns.4, columns.5, columns.6, columns.7, columns.8, columns.9, columns.10)
        )
        guard let state = OutboxEntry.State(rawValue: columns.12) else {
            throw EventStoreError(.storageFailure, message: "The outbox entry \(columns.11) has an unknown state '\(columns.12)'.")
        }
        return OutboxEntry(
            id: columns.11, event: event, state: state, attempts: Int(columns.13), lastError: columns.14, nextAttemptAt: columns.15
        )
    }

    /// Decodes rows of ``eventColumns`` followed by ``outboxColumns``.
    private static func outboxEntries(_ rows: PostgresRowSequence) async throws -> [OutboxEntry] {
        var entries: [OutboxEntry] = []
        for try await columns in rows.decode(OutboxColumns.self) {
            entries.append(try outboxEntry(columns))
        }
        return entries
    }

    /// Runs a query whose rows are outbox entries, outside a transaction.
    private func outboxQuery(_ query: PostgresQuery, _ operation: String) async throws -> [OutboxEntry] {
        do {
            return try await Self.outboxEntries(try await runningClient().query(query, logger: logger))
        } catch {
            throw failure(error, operation: operation)
        }
    }

    /// The key space of the per-stream advisory locks of this schema's claimers.
    private var claimLockSpace: String { "eventsourcery.outbox." + configuration.schema }

    // MARK: Claiming

    /// Claims up to `limit` due outbox entries for one relay, leasing them until
    /// `now + leaseDuration`.
    ///
    /// Several relays (processes or tasks) may claim from one store at the same time. The
    /// claim runs in one short transaction of two statements:
    ///
    /// 1. Pick the streams whose oldest unpublished entry is due, pending and not leased,
    ///    in outbox order, and take a per-stream, transaction-level advisory lock on each
    ///    with `pg_try_advisory_xact_lock`, skipping streams another claimer holds (a
    ///    claimer never waits for another).
    /// 2. In a new statement, whose snapshot therefore includes every claim committed by
    ///    earlier holders of those locks, lease the entries of the locked streams that come
    ///    before the stream's first entry that is leased, waiting for a retry or parked
    ///    (`SELECT … FOR UPDATE SKIP LOCKED`, then `UPDATE`).
    ///
    /// Because the lock is per stream and the second statement sees all earlier claims of
    /// that stream, two claimers can never lease entries 1 and 2 of one stream at once, and
    /// an entry whose lease is live is never handed out again. Relays on different streams
    /// do not block each other. A relay whose lease expires loses its entries to the next
    /// claimer (the lease is the only way to recover from a relay that died).
    ///
    /// A lease of 0 seconds (or less) only lists the due entries: no lock, no write.
    public func claimOutboxEntries(limit: Int, now: Date, leaseDuration: TimeInterval) async throws -> [OutboxEntry] {
        guard limit > 0 else { return [] }
        let schema = self.schema
        let logger = self.logger
        guard leaseDuration > 0 else {
            return try await outboxQuery(
                """
                WITH blocked AS (
                    SELECT stream_id, min(id) AS first_blocked FROM \(unescaped: schema).outbox
                    WHERE state <> 'published' AND (state = 'parked' OR next_attempt_at > \(now) OR leased_until > \(now))
                    GROUP BY stream_id
                )
                SELECT \(unescaped: Self.eventColumns), \(unescaped: Self.outboxColumns)
                FROM \(unescaped: schema).outbox o
                JOIN \(unescaped: schema).events e ON e.position = o.id
                LEFT JOIN blocked b ON b.stream_id = o.stream_id
                WHERE o.state = 'pending' AND (b.first_blocked IS NULL OR o.id < b.first_blocked)
                ORDER BY o.id LIMIT \(Int64(limit))
                """,
                "list due outbox entries"
            )
        }
        let leasedUntil = now.addingTimeInterval(leaseDuration)
        // A few more streams than needed, so concurrent claimers spread over streams
        // instead of all trying the same first ones.
        let candidates = Int64(limit) + 16
        let lockSpace = claimLockSpace
        return try await inTransaction("claim outbox entries") { connection in
            var streams: [String] = []
            for try await stream in try await connection.query(
                """
                WITH RECURSIVE heads AS (
                    -- The oldest unpublished entry of each stream: one index probe per stream.
                    (SELECT stream_id, id FROM \(unescaped: schema).outbox WHERE state <> 'published' ORDER BY stream_id, id LIMIT 1)
                    UNION ALL
                    SELECT next.stream_id, next.id FROM heads h
                    CROSS JOIN LATERAL (
                        SELECT o.stream_id, o.id FROM \(unescaped: schema).outbox o
                        WHERE o.state <> 'published' AND o.stream_id > h.stream_id
                        ORDER BY o.stream_id, o.id LIMIT 1
                    ) next
                )
                SELECT stream_id FROM (
                    SELECT h.stream_id, h.id FROM heads h JOIN \(unescaped: schema).outbox o ON o.id = h.id
                    WHERE o.state = 'pending'
                        AND (o.next_attempt_at IS NULL OR o.next_attempt_at <= \(now))
                        AND (o.leased_until IS NULL OR o.leased_until <= \(now))
                    ORDER BY h.id LIMIT \(candidates)
                ) candidates
                WHERE pg_try_advisory_xact_lock(hashtext(\(lockSpace)), hashtext(stream_id))
                """,
                logger: logger
            ).decode(String.self) {
                streams.append(stream)
            }
            guard !streams.isEmpty else { return [] }
            let rows = try await connection.query(
                """
                WITH blocked AS (
                    SELECT stream_id, min(id) AS first_blocked FROM \(unescaped: schema).outbox
                    WHERE stream_id = ANY(\(streams)::text[]) AND state <> 'published'
                        AND (state = 'parked' OR next_attempt_at > \(now) OR leased_until > \(now))
                    GROUP BY stream_id
                ), picked AS (
                    SELECT o.id FROM \(unescaped: schema).outbox o
                    LEFT JOIN blocked b ON b.stream_id = o.stream_id
                    WHERE o.stream_id = ANY(\(streams)::text[]) AND o.state = 'pending'
                        AND (b.first_blocked IS NULL OR o.id < b.first_blocked)
                    ORDER BY o.id LIMIT \(Int64(limit))
                    FOR UPDATE OF o SKIP LOCKED
                ), leased AS (
                    UPDATE \(unescaped: schema).outbox o SET leased_until = \(leasedUntil)
                    FROM picked WHERE o.id = picked.id
                    RETURNING o.id, o.state, o.attempts, o.last_error, o.next_attempt_at
                )
                SELECT \(unescaped: Self.eventColumns), \(unescaped: Self.outboxColumns)
                FROM leased o JOIN \(unescaped: schema).events e ON e.position = o.id
                ORDER BY o.id
                """,
                logger: logger
            )
            return try await Self.outboxEntries(rows)
        }
    }

    // MARK: Results of publishing

    public func markPublished(_ entryIDs: [Int64], at date: Date) async throws {
        guard !entryIDs.isEmpty else { return }
        _ = try await rows(
            """
            UPDATE \(unescaped: schema).outbox SET state = 'published', published_at = \(date), leased_until = NULL
            WHERE id = ANY(\(entryIDs)::bigint[]) AND state <> 'published'
            """,
            "mark outbox entries published"
        )
    }

    public func releaseOutboxEntries(_ entryIDs: [Int64]) async throws {
        guard !entryIDs.isEmpty else { return }
        _ = try await rows(
            """
            UPDATE \(unescaped: schema).outbox SET leased_until = NULL
            WHERE id = ANY(\(entryIDs)::bigint[]) AND state = 'pending'
            """,
            "release outbox entries"
        )
    }

    public func renewOutboxLeases(_ entryIDs: [Int64], until: Date) async throws {
        guard !entryIDs.isEmpty else { return }
        _ = try await rows(
            """
            UPDATE \(unescaped: schema).outbox SET leased_until = \(until)
            WHERE id = ANY(\(entryIDs)::bigint[]) AND state = 'pending' AND leased_until IS NOT NULL
            """,
            "renew outbox leases"
        )
    }

    public func recordFailedAttempt(_ entryID: Int64, error: String, nextAttemptAt: Date, attemptLimit: Int) async throws -> OutboxEntry? {
        try await outboxQuery(
            """
            WITH o AS (
                UPDATE \(unescaped: schema).outbox SET attempts = attempts + 1, last_error = \(error),
                    next_attempt_at = \(nextAttemptAt), leased_until = NULL,
                    state = CASE WHEN attempts + 1 >= \(Int64(attemptLimit)) THEN 'parked' ELSE 'pending' END
                WHERE id = \(entryID) AND state = 'pending'
                RETURNING id, state, attempts, last_error, next_attempt_at
            )
            SELECT \(unescaped: Self.eventColumns), \(unescaped: Self.outboxColumns)
            FROM o JOIN \(unescaped: schema).events e ON e.position = o.id
            """,
            "record a failed publish attempt"
        ).first
    }

    // MARK: Parked entries and housekeeping

    public func parkedOutboxEntries(limit: Int) async throws -> [OutboxEntry] {
        guard limit > 0 else { return [] }
        return try await outboxQuery(
            """
            SELECT \(unescaped: Self.eventColumns), \(unescaped: Self.outboxColumns)
            FROM \(unescaped: schema).outbox o JOIN \(unescaped: schema).events e ON e.position = o.id
            WHERE o.state = 'parked' ORDER BY o.id LIMIT \(Int64(limit))
            """,
            "list parked outbox entries"
        )
    }

    public func requeueParked(_ entryIDs: [Int64]) async throws -> Int {
        guard !entryIDs.isEmpty else { return 0 }
        return try await count(
            """
            WITH requeued AS (
                UPDATE \(unescaped: schema).outbox SET state = 'pending', attempts = 0, next_attempt_at = NULL, leased_until = NULL
                WHERE id = ANY(\(entryIDs)::bigint[]) AND state = 'parked'
                RETURNING 1
            )
            SELECT count(*), pg_notify(\(configuration.notificationChannel), \(configuration.schema)) FROM requeued
            """,
            "requeue parked outbox entries"
        )
    }

    public func deletePublishedOutboxEntries(publishedUpTo date: Date) async throws -> Int {
        try await count(
            """
            WITH deleted AS (
                DELETE FROM \(unescaped: schema).outbox WHERE state = 'published' AND published_at <= \(date)
                RETURNING 1
            )
            SELECT count(*) FROM deleted
            """,
            "delete published outbox entries"
        )
    }

    public func outboxCounts() async throws -> OutboxCounts {
        let rows = try await rows(
            """
            SELECT count(*) FILTER (WHERE state = 'pending'), count(*) FILTER (WHERE state = 'parked'),
                count(*) FILTER (WHERE state = 'published')
            FROM \(unescaped: schema).outbox
            """,
            "count outbox entries"
        )
        do {
            let (pending, parked, published) = try rows[0].decode((Int64, Int64, Int64).self)
            return OutboxCounts(pending: Int(pending), parked: Int(parked), published: Int(published))
        } catch {
            throw failure(error, operation: "count outbox entries")
        }
    }

    public func sizes() async throws -> StoreSizes {
        let outbox = try await outboxCounts()
        let rows = try await rows(
            """
            SELECT (SELECT count(*) FROM \(unescaped: schema).events), (SELECT count(*) FROM \(unescaped: schema).inbox),
                (SELECT count(*) FROM \(unescaped: schema).held_events)
            """,
            "count the store's rows"
        )
        do {
            let (events, inbox, held) = try rows[0].decode((Int64, Int64, Int64).self)
            return StoreSizes(events: Int(events), outbox: outbox, inboxEntries: Int(inbox), heldEvents: Int(held))
        } catch {
            throw failure(error, operation: "count the store's rows")
        }
    }

    func count(_ query: PostgresQuery, _ operation: String) async throws -> Int {
        let rows = try await rows(query, operation)
        do {
            return Int(try rows.first?.decode(Int64.self) ?? 0)
        } catch {
            throw failure(error, operation: operation)
        }
    }

    // MARK: Notifications

    /// Returns a stream that yields once per commit that adds outbox entries to this store
    /// (bursts are coalesced: the stream buffers at most one wake-up), once the listener of
    /// ``run()`` has `LISTEN` in place.
    ///
    /// Every commit that adds outbox rows runs `pg_notify` on
    /// ``Configuration/notificationChannel`` with the schema name as payload; PostgreSQL
    /// delivers it when the transaction commits. The method returns once `LISTEN` is in
    /// place, so a commit made after it returns is always noticed. A relay subscribes
    /// first, then drains the outbox, then waits for the next element (with a timeout as a
    /// safety net: notifications are not durable). If the listening connection drops, the
    /// storage reconnects and yields once, because notifications may have been missed.
    ///
    /// All streams share the one listening connection of ``run()``; a stream ends when
    /// ``run()`` returns, or stops being fed when its consumer stops iterating.
    ///
    /// ```swift
    /// let wakeUps = try await storage.outboxNotifications()
    /// while !Task.isCancelled {
    ///     try await relayDueEntries()
    ///     for await _ in wakeUps { break }
    /// }
    /// ```
    ///
    /// - Throws: ``EventStoreError`` `storageUnavailable` when ``run()`` does not run or
    ///   `LISTEN` cannot be set up.
    public func outboxNotifications() async throws -> AsyncStream<Void> {
        let (stream, continuation) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
        try await subscribeToOutboxChanges(continuation)
        return stream
    }

    /// Waits until a commit adds outbox entries to this store (or parked entries are
    /// requeued), `timeout` passes, or the task is cancelled.
    ///
    /// The listener of ``run()`` wakes the waiters; a commit made between a relay's last
    /// check and its wait is noticed at the latest after `timeout`, so keep the timeout as
    /// the safety net (a few seconds). While the listener cannot listen (the server is down,
    /// or ``run()`` does not run), the call simply sleeps for `timeout`.
    public func waitForOutboxChange(timeout: Duration) async {
        _ = await outboxChanged.wait(timeout: timeout)
    }
}
