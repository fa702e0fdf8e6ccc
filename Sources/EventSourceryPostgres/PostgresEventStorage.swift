public import EventSourcery
public import Foundation
public import Logging
public import PostgresNIO
public import ServiceLifecycle
import NIOConcurrencyHelpers

/// An event storage in a PostgreSQL database: the production backend.
///
/// ```swift
/// let configuration = try PostgresEventStorage.Configuration(url: "postgres://orders:secret@db:5432/orders")
/// let storage = try await PostgresEventStorage.connect(configuration: configuration)
/// let store = EventStore(storage: storage, registry: EventRegistry([OrderPlaced.self]))
/// let group = ServiceGroup(services: [storage, relay], logger: logger)   // the storage first
/// try await group.run()
/// ```
///
/// ``connect(configuration:logger:)`` checks the settings with one connection (so a wrong
/// password, a missing database or an unreachable server fail right there with a typed
/// error), creates and migrates the schema, and creates a postgres-nio `PostgresClient`
/// connection pool. The storage is a ServiceLifecycle `Service`: ``run()`` runs the pool and
/// the listener for outbox notifications until graceful shutdown or cancellation (or
/// ``shutdown()``); queries wait until it runs. Nothing runs in an unstructured task.
/// Applications that manage the pool themselves use ``init(client:configuration:logger:)``
/// and ``migrate()`` instead; ``run()`` then runs the listener only.
///
/// ## Global order without lost events
///
/// A reader of ``readAll(after:limit:)`` (a projection, a subscription) remembers the last
/// position it saw and asks for what comes after. With a plain sequence, a transaction could
/// take position 10, a second one position 11 and commit first: a reader that sees 11 moves
/// past 10 and never reads it once it commits.
///
/// Appends run concurrently here, and readers stay gap-safe, by tying positions to
/// transaction ids:
///
/// - **Positions come from the appending transaction's id:** `pg_current_xact_id() × 2^20`
///   plus a counter of that transaction's events (`append_events`, one statement per batch,
///   see `PostgresEventStorage+Schema.swift`). Transactions that append to different streams never wait
///   for each other.
/// - **Readers read below the oldest running transaction:** ``readAll(after:limit:)`` and
///   ``headPosition()`` return only positions below `pg_snapshot_xmin(pg_current_snapshot())
///   × 2^20`. Every transaction whose id is below that bound has ended, so the set of rows
///   below it is final; a transaction that commits later has an id at or above the bound,
///   hence positions above everything returned so far. A reader therefore never moves past a
///   position that can still appear.
/// - **Stream order is position order:** `append_events` takes an advisory lock per stream
///   (sorted, no deadlocks) *before* the transaction gets its id, so a transaction that
///   appends to a stream after another one committed to it has a newer id and greater
///   positions. A transaction that already had an id (it wrote something before, as a
///   consumer's `commitEach` does) and finds a newer transaction's event in the stream is
///   refused with a concurrency conflict (nothing written); ``commit(_:)`` runs the batch
///   again in a new transaction by itself, a consumer reruns the handler.
///
/// Limits: positions are increasing but not dense (gaps of about a million between
/// transactions); a transaction appends at most 2^20 events; and readers see nothing newer
/// than the oldest transaction running anywhere in the PostgreSQL cluster, so a long
/// transaction (also one of another application on the same server) delays readers — not
/// writers — until it ends. Keep transactions short; monitor `pg_stat_activity` for long
/// ones.
///
/// ## Outbox
///
/// See ``claimOutboxEntries(limit:now:leaseDuration:)`` for how competing relays share
/// the outbox, and ``outboxNotifications()`` for waking a relay on commit. While ``run()``
/// runs, a commit notifies the listeners after it committed, by the storage's notice sender,
/// not inside its transaction: a transaction that notifies holds PostgreSQL's notification
/// lock through its commit's disk flush, which would make appends commit one at a time.
///
/// ## Errors
///
/// Every failure is an ``EventStoreError`` without any postgres-nio or NIO type in it:
/// a rejected login (SQLSTATE 28P01), a missing database (3D000) and an unreachable
/// server are ``EventStoreError/Code/storageUnavailable`` with a message naming the host,
/// port and database and what to check.
public final class PostgresEventStorage: EventStorage, Service {
    /// The configuration the storage connects with.
    public let configuration: Configuration

    /// The connection pool.
    let client: PostgresClient
    let logger: Logger
    /// The configured schema as a quoted SQL identifier.
    let schema: String

    /// Whether ``run()`` runs the pool (``connect(configuration:logger:)`` created it).
    let ownsClient: Bool

    struct Lifecycle {
        /// Whether ``run()`` started.
        var isRunning = false
        /// Whether ``run()`` (or ``shutdown()``, to close it) started the pool the storage owns.
        var poolRuns = false
        /// Whether ``run()`` returned.
        var isFinished = false
        var isShutDown = false
        /// Whether ``run()`` runs the notice sender: commits then notify after they commit,
        /// not inside their transaction.
        var sendsNotices = false
        /// Whether the listener of ``run()`` has `LISTEN` in place.
        var isListening = false
        /// Callers of ``outboxNotifications()`` waiting for `LISTEN` to be in place.
        var listeningWaiters: [CheckedContinuation<Void, any Error>] = []
        /// The streams of ``outboxNotifications()``, by id.
        var subscribers: [Int: AsyncStream<Void>.Continuation] = [:]
        var nextSubscriberID = 0
        /// ``shutdown()`` asked ``run()`` to return.
        var stopRequested = false
        /// ``run()`` waiting for ``shutdown()``.
        var stopWaiter: CheckedContinuation<Void, Never>?
        /// Callers of ``shutdown()`` waiting until ``run()`` returned.
        var finishedWaiters: [CheckedContinuation<Void, Never>] = []
    }

    let lifecycle: NIOLockedValueBox<Lifecycle>
    /// Signalled by the shared notification listener.
    let outboxChanged = ChangeSignal()
    /// Signalled when ``Lifecycle/poolRuns`` becomes true.
    let poolStarted = ChangeSignal()
    /// Signalled by commits that want the notice sender of ``run()`` to notify the listeners.
    let noticeRequests = ChangeSignal()

    /// Connects to PostgreSQL, migrates the schema (unless
    /// ``Configuration/migratesSchema`` is off) and creates the connection pool, which
    /// ``run()`` runs: run the storage as a service (or with ``withRunning(_:)``) before
    /// querying it.
    ///
    /// - Throws: ``EventStoreError`` `storageUnavailable` when the server cannot be reached,
    ///   rejects the login, or has no such database (the message says which and what to
    ///   check); `storageFailure` when the migration fails; `invalidArgument` when
    ///   ``Configuration/validate()`` rejects the configuration.
    public static func connect(
        configuration: Configuration,
        logger: Logger = Logger(label: "EventSourcery.Postgres")
    ) async throws -> PostgresEventStorage {
        try configuration.validate()
        let connection: PostgresConnection
        do {
            connection = try await PostgresConnection.connect(
                configuration: try configuration.connectionConfiguration(), id: 0, logger: logger
            )
        } catch {
            throw storeError(error, configuration: configuration, operation: "connect")
        }
        do {
            if configuration.migratesSchema {
                try await migrate(on: connection, configuration: configuration, logger: logger)
            }
            try? await connection.close()
        } catch {
            try? await connection.close()
            throw storeError(error, configuration: configuration, operation: "migrate the schema '\(configuration.schema)'")
        }
        let client = PostgresClient(configuration: configuration.clientConfiguration, backgroundLogger: logger)
        return PostgresEventStorage(client: client, configuration: configuration, logger: logger, ownsClient: true)
    }

    /// Creates a storage on a connection pool that the caller runs (`client.run()`, or
    /// a ServiceLifecycle `ServiceGroup`), for example to share the pool.
    ///
    /// The schema is not checked nor migrated: call ``migrate()`` once the pool runs.
    /// ``run()`` runs only the storage's notification listener, not the pool.
    public convenience init(client: PostgresClient, configuration: Configuration, logger: Logger = Logger(label: "EventSourcery.Postgres"))
    {
        self.init(client: client, configuration: configuration, logger: logger, ownsClient: false)
    }

    private init(client: PostgresClient, configuration: Configuration, logger: Logger, ownsClient: Bool) {
        self.client = client
        self.configuration = configuration
        self.logger = logger
        self.schema = Self.quotedIdentifier(configuration.schema)
        self.lifecycle = NIOLockedValueBox(Lifecycle())
        self.ownsClient = ownsClient
    }

    /// Creates the configured schema when missing and applies the migrations it lacks;
    /// safe to run from several processes at once.
    public func migrate() async throws {
        do {
            try await runningClient().withConnection { connection in
                try await Self.migrate(on: connection, configuration: configuration, logger: logger)
            }
        } catch {
            throw failure(error, operation: "migrate the schema '\(configuration.schema)'")
        }
    }

    // MARK: Running statements

    /// Runs `body` in a transaction on one pooled connection: `BEGIN`, the body, `COMMIT`
    /// when `shouldCommit` says so and `ROLLBACK` otherwise or when anything throws.
    func inTransaction<Result: Sendable>(
        _ operation: String,
        shouldCommit: (Result) -> Bool = { _ in true },
        _ body: (PostgresConnection) async throws -> Result
    ) async throws -> Result {
        let logger = self.logger
        do {
            return try await runningClient().withConnection { connection in
                try await connection.query("BEGIN", logger: logger)
                do {
                    let result = try await body(connection)
                    try await connection.query(shouldCommit(result) ? "COMMIT" : "ROLLBACK", logger: logger)
                    return result
                } catch {
                    _ = try? await connection.query("ROLLBACK", logger: logger)
                    throw error
                }
            }
        } catch {
            throw failure(error, operation: operation)
        }
    }

    /// Runs one statement on a pooled connection and collects its rows.
    func rows(_ query: PostgresQuery, _ operation: String) async throws -> [PostgresRow] {
        do {
            return try await runningClient().query(query, logger: logger).collect()
        } catch {
            throw failure(error, operation: operation)
        }
    }

    // MARK: Commit

    /// How often ``commit(_:)`` runs a batch again in a new transaction when its transaction
    /// was older than one that appended to the same stream first (see ``appendEvents``).
    private static let orderRetries = 20

    public func commit(_ batch: WriteBatch) async throws -> CommitOutcome {
        let notifiesAfterCommit = batch.wakesRelays && defersNotices
        var attempt = 1
        while true {
            do {
                let outcome: CommitOutcome
                if batch.isOnlyAppends {
                    // One statement, no BEGIN or COMMIT: the function call is its own transaction.
                    do {
                        outcome = .committed(
                            try await runningClient().withConnection {
                                try await appendEvents(batch, on: $0, notifying: !notifiesAfterCommit)
                            })
                    } catch {
                        throw failure(error, operation: "commit a batch")
                    }
                } else if batch.inboxEntry != nil && batch.isInboxAndAppends {
                    // A consumer's batch: one call of `commit_each`, its own transaction.
                    outcome = try await commitInOneCall([batch], notifying: !notifiesAfterCommit)[0].get()
                } else {
                    outcome = try await inTransaction(
                        "commit a batch", shouldCommit: { if case .committed = $0 { true } else { false } }
                    ) { connection in
                        try await write(batch, on: connection, notifying: !notifiesAfterCommit)
                    }
                }
                if notifiesAfterCommit, case .committed = outcome { committedWithoutNotice() }
                return outcome
            } catch let error as EventStoreError where error.isTransactionOrderConflict && attempt < Self.orderRetries {
                attempt += 1
            }
        }
    }

    /// Writes one batch inside the current transaction: its inbox entry first
    /// (``CommitOutcome/alreadyProcessed`` when it exists), checkpoint, snapshots, then its
    /// events and commands; `notifying`: whether the transaction notifies the listeners when
    /// it adds outbox or command rows (otherwise the caller does after the commit, see
    /// ``committedWithoutNotice()``).
    func write(_ batch: WriteBatch, on connection: PostgresConnection, notifying: Bool) async throws -> CommitOutcome {
        let schema = self.schema
        let logger = self.logger
        if let inbox = batch.inboxEntry {
            // Waits for a concurrent transaction inserting the same entry, then skips
            // when that one committed.
            let inserted = try await connection.query(
                """
                INSERT INTO \(unescaped: schema).inbox (consumer, event_id) VALUES (\(inbox.consumer), \(inbox.eventID))
                ON CONFLICT DO NOTHING RETURNING 1
                """,
                logger: logger
            ).collect()
            if inserted.isEmpty { return .alreadyProcessed }
        }
        if let checkpoint = batch.checkpoint {
            try await connection.query(
                """
                INSERT INTO \(unescaped: schema).checkpoints (name, position, state)
                VALUES (\(checkpoint.name), \(checkpoint.position), \(checkpoint.state))
                ON CONFLICT (name) DO UPDATE SET position = excluded.position, state = excluded.state, updated_at = now()
                """,
                logger: logger
            )
        }
        for snapshot in batch.snapshots {
            try await connection.query(
                """
                INSERT INTO \(unescaped: schema).snapshots (stream_id, version, schema_version, state)
                VALUES (\(snapshot.streamID.rawValue), \(snapshot.version), \(Int32(clamping: snapshot.schemaVersion)), \(snapshot.state))
                ON CONFLICT (stream_id) DO UPDATE SET version = excluded.version,
                    schema_version = excluded.schema_version, state = excluded.state, taken_at = now()
                """,
                logger: logger
            )
        }
        // Commands after the events: `append_events` takes its stream locks before the
        // transaction gets an id.
        let recorded = try await appendEvents(batch, on: connection, notifying: notifying)
        try await writeCommands(batch, on: connection, notifying: notifying)
        return .committed(recorded)
    }

    /// Appends the batch's events with one call of `append_events` (see
    /// ``PostgresEventStorage`` for the order it gives and
    /// the `append_events` function in `PostgresEventStorage+Schema.swift` for what it does); `notifying`: whether the
    /// function notifies the listeners when it adds outbox rows.
    private func appendEvents(_ batch: WriteBatch, on connection: PostgresConnection, notifying: Bool) async throws -> [RecordedEvent] {
        let appends = batch.writtenAppends
        guard !appends.isEmpty else { return [] }
        var input = AppendInput()
        try input.add(appends)
        var positions: [Int64] = []
        var versions: [Int64] = []
        positions.reserveCapacity(input.eventIDs.count)
        versions.reserveCapacity(input.eventIDs.count)
        do {
            for try await (position, version) in try await connection.query(
                """
                SELECT event_position, event_version FROM \(unescaped: schema).append_events(
                    \(input.streams)::text[], \(input.expected)::bigint[], \(input.counts)::integer[],
                    \(input.eventIDs)::uuid[], \(input.typeNames)::text[], \(input.schemaVersions)::integer[],
                    \(input.createdAts)::timestamptz[], \(input.correlationIDs)::text[], \(input.causationIDs)::text[],
                    \(input.traceContexts)::text[], \(input.payloads)::text[], \(input.publishes)::boolean[],
                    \(notifying ? configuration.notificationChannel : nil)::text, \(configuration.schema))
                """,
                logger: logger
            ).decode((Int64, Int64).self) {
                positions.append(position)
                versions.append(version)
            }
        } catch {
            throw ServerError(error).flatMap { Self.appendError($0, appends: appends) } ?? error
        }
        return try Self.recordedEvents(appends, positions: positions, versions: versions)
    }

    /// Maps a failed append: a version conflict, a transaction older than one that appended
    /// to the same stream first, a stored event id, a stream version taken by a writer that
    /// bypassed `append_events`, or a payload that is not JSON; `nil` for other errors.
    static func appendError(_ error: ServerError, appends: [WriteBatch.StreamAppend]) -> EventStoreError? {
        let detail = error.detail ?? ""
        let numbers = detail.split(separator: " ").compactMap { Int64($0) }
        let failedAppend = numbers.count == 2 && appends.indices.contains(Int(numbers[0])) ? appends[Int(numbers[0])] : nil
        switch error.state {
        case SQLState.versionConflict where failedAppend != nil:
            return EventStoreError.conflict(stream: failedAppend!.streamID, expected: failedAppend!.expectedVersion, actual: numbers[1])
        case SQLState.transactionOrderConflict where !appends.isEmpty:
            let stream = failedAppend?.streamID ?? appends[0].streamID
            return EventStoreError(
                .concurrencyConflict,
                message: transactionOrderMessage(stream: stream),
                streamID: stream,
                expectedVersion: failedAppend?.expectedVersion ?? .any,
                actualVersion: numbers.count == 2 ? numbers[1] : nil
            )
        case SQLState.uniqueViolation where error.constraint == "events_event_id_unique":
            for append in appends {
                for event in append.events where detail.localizedCaseInsensitiveContains(event.id.uuidString) {
                    return EventStoreError.duplicateEvent(event.id, stream: append.streamID)
                }
            }
            let first = appends.first { !$0.events.isEmpty }
            return EventStoreError.duplicateEvent(first?.events.first?.id ?? UUID(), stream: first?.streamID ?? "unknown")
        case SQLState.uniqueViolation where error.constraint == "events_stream_version_unique" && !appends.isEmpty:
            let append = appends.first { detail.contains("(\($0.streamID.rawValue),") } ?? appends[0]
            return EventStoreError(
                .concurrencyConflict,
                message: "Stream '\(append.streamID)' was appended to concurrently by a writer that bypassed the store's "
                    + "append_events function. Reload the stream and retry the command.",
                streamID: append.streamID,
                expectedVersion: append.expectedVersion
            )
        case SQLState.invalidTextRepresentation, SQLState.untranslatableCharacter:
            return EventStoreError(
                .unencodableEvent,
                message: "PostgreSQL rejected an event's payload or trace context as JSON (\(detail)). "
                    + "Payloads must be valid UTF-8 JSON without \\u0000 characters."
            )
        default:
            return nil
        }
    }

    // MARK: Reading

    /// The columns of an events row aliased `e`, in the order ``recordedEvent(_:)`` decodes.
    static let eventColumns = """
        e.position, e.stream_id, e.stream_version, e.event_id, e.type_name, e.schema_version, e.created_at,
        e.correlation_id, e.causation_id, e.trace_context::text, e.payload::text
        """

    typealias EventColumns = (Int64, String, Int64, UUID, String, Int32, Date, UUID?, UUID?, String, String)

    static func recordedEvent(_ columns: EventColumns) throws -> RecordedEvent {
        let (position, stream, version, id, typeName, schemaVersion, createdAt, correlationID, causationID, trace, payload) = columns
        let traceContext: [String: String]
        do {
            traceContext = try JSONDecoder().decode([String: String].self, from: Data(trace.utf8))
        } catch {
            throw EventStoreError(
                .storageFailure, message: "The trace context of the event at position \(position) is not a JSON object of strings.")
        }
        return RecordedEvent(
            streamID: try StreamID(stream),
            streamVersion: version,
            position: position,
            event: EncodedEvent(
                id: id,
                typeName: typeName,
                schemaVersion: Int(schemaVersion),
                createdAt: createdAt,
                metadata: EventMetadata(correlationID: correlationID, causationID: causationID, traceContext: traceContext),
                payload: Data(payload.utf8)
            )
        )
    }

    /// Runs a query whose rows are ``eventColumns`` and decodes them.
    private func events(_ query: PostgresQuery, _ operation: String) async throws -> [RecordedEvent] {
        do {
            var result: [RecordedEvent] = []
            for try await columns in try await runningClient().query(query, logger: logger).decode(EventColumns.self) {
                result.append(try Self.recordedEvent(columns))
            }
            return result
        } catch {
            throw failure(error, operation: operation)
        }
    }

    public func streamVersion(_ stream: StreamID) async throws -> Int64 {
        let rows = try await rows(
            "SELECT version FROM \(unescaped: schema).streams WHERE stream_id = \(stream.rawValue)", "read a stream version")
        return try rows.first.map { try $0.decode(Int64.self) } ?? 0
    }

    public func readStream(_ stream: StreamID, fromVersion: Int64, upToVersion: Int64?, createdUpTo: Date?) async throws -> [RecordedEvent]
    {
        try await events(
            """
            SELECT \(unescaped: Self.eventColumns) FROM \(unescaped: schema).events e
            WHERE e.stream_id = \(stream.rawValue) AND e.stream_version >= \(fromVersion)
                AND e.stream_version <= \(upToVersion ?? Int64.max)
                AND (\(createdUpTo)::timestamptz IS NULL OR e.created_at <= \(createdUpTo)::timestamptz)
            ORDER BY e.stream_version
            """,
            "read stream '\(stream)'"
        )
    }

    /// Gap-safe: it reads only positions below the oldest transaction still in progress
    /// (see the type's documentation).
    public func readAll(after position: Int64, limit: Int) async throws -> [RecordedEvent] {
        try await events(
            """
            SELECT \(unescaped: Self.eventColumns) FROM \(unescaped: schema).events e
            WHERE e.position > \(position) AND e.position < \(unescaped: Self.visibleLimit)
            ORDER BY e.position LIMIT \(Int64(max(limit, 0)))
            """,
            "read the global order"
        )
    }

    public func readFlow(correlationID: UUID) async throws -> [RecordedEvent] {
        try await events(
            """
            SELECT \(unescaped: Self.eventColumns) FROM \(unescaped: schema).events e
            WHERE (e.correlation_id = \(correlationID) OR (e.event_id = \(correlationID) AND e.correlation_id IS NULL))
                AND e.position < \(unescaped: Self.visibleLimit)
            ORDER BY e.position
            """,
            "read a flow"
        )
    }

    /// The last position a reader can see: below the oldest transaction still running.
    public func headPosition() async throws -> Int64 {
        let rows = try await rows(
            """
            SELECT coalesce(max(position), 0) FROM \(unescaped: schema).events
            WHERE position < \(unescaped: Self.visibleLimit)
            """,
            "read the head position"
        )
        return try rows.first.map { try $0.decode(Int64.self) } ?? 0
    }

    /// The first position no reader may see yet: that of the oldest transaction still in
    /// progress (`pg_snapshot_xmin` of the statement's snapshot), shifted as positions are.
    static let visibleLimit = "((pg_snapshot_xmin(pg_current_snapshot())::text::bigint) << 20)"

    // MARK: Snapshots, checkpoints, inbox

    public func latestSnapshot(of stream: StreamID) async throws -> Snapshot? {
        let rows = try await rows(
            "SELECT version, state, schema_version FROM \(unescaped: schema).snapshots WHERE stream_id = \(stream.rawValue)",
            "read the snapshot of '\(stream)'"
        )
        guard let row = rows.first else { return nil }
        do {
            let (version, state, schemaVersion) = try row.decode((Int64, Data, Int32).self)
            return Snapshot(streamID: stream, version: version, state: state, schemaVersion: Int(schemaVersion))
        } catch {
            throw failure(error, operation: "read the snapshot of '\(stream)'")
        }
    }

    public func checkpoint(named name: String) async throws -> ProjectionCheckpoint? {
        let rows = try await rows(
            "SELECT position, state FROM \(unescaped: schema).checkpoints WHERE name = \(name)", "read the checkpoint '\(name)'"
        )
        guard let row = rows.first else { return nil }
        do {
            let (position, state) = try row.decode((Int64, Data).self)
            return ProjectionCheckpoint(name: name, position: position, state: state)
        } catch {
            throw failure(error, operation: "read the checkpoint '\(name)'")
        }
    }

    public func resetCheckpoint(named name: String) async throws {
        _ = try await rows("DELETE FROM \(unescaped: schema).checkpoints WHERE name = \(name)", "reset the checkpoint '\(name)'")
    }

    public func processedInboxEntries(_ entries: [InboxEntry]) async throws -> Set<InboxEntry> {
        let consumers = entries.map(\.consumer)
        let eventIDs = entries.map(\.eventID)
        let rows = try await rows(
            """
            SELECT inbox.consumer, inbox.event_id FROM \(unescaped: schema).inbox AS inbox
            JOIN unnest(\(consumers)::text[], \(eventIDs)::uuid[]) AS wanted (consumer, event_id)
              ON inbox.consumer = wanted.consumer AND inbox.event_id = wanted.event_id
            """,
            "read the inbox"
        )
        var processed: Set<InboxEntry> = []
        for row in rows {
            do {
                let (consumer, eventID) = try row.decode((String, UUID).self)
                processed.insert(InboxEntry(consumer: consumer, eventID: eventID))
            } catch {
                throw failure(error, operation: "read the inbox")
            }
        }
        return processed
    }

    public func deleteInboxEntries(processedUpTo date: Date) async throws -> Int {
        try await count(
            """
            WITH deleted AS (DELETE FROM \(unescaped: schema).inbox WHERE processed_at <= \(date) RETURNING 1)
            SELECT count(*) FROM deleted
            """,
            "delete inbox entries"
        )
    }

    public func isProcessed(consumer: String, eventID: UUID) async throws -> Bool {
        let rows = try await rows(
            "SELECT 1 FROM \(unescaped: schema).inbox WHERE consumer = \(consumer) AND event_id = \(eventID)", "read the inbox"
        )
        return !rows.isEmpty
    }
}
