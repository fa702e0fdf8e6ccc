public import EventSourcery
public import Foundation
public import Logging
public import PostgresNIO
import Synchronization

/// An event storage in a PostgreSQL database: the production backend.
///
/// ```swift
/// let configuration = try PostgresEventStorage.Configuration(url: "postgres://orders:secret@db:5432/orders")
/// let storage = try await PostgresEventStorage.connect(configuration: configuration)
/// let store = EventStore(storage: storage, registry: EventRegistry([OrderPlaced.self]))
/// // ...
/// await storage.shutdown()
/// ```
///
/// ``connect(configuration:logger:)`` checks the settings with one connection (so a wrong
/// password, a missing database or an unreachable server fail right there with a typed
/// error), creates and migrates the schema, and then starts a postgres-nio
/// `PostgresClient` connection pool in a task the storage owns until ``shutdown()``.
/// Applications that manage the pool themselves (for example in a ServiceLifecycle
/// `ServiceGroup`) use ``init(client:configuration:logger:)`` and ``migrate()`` instead.
///
/// ## Global order without lost events
///
/// A reader of ``readAll(after:limit:)`` (a projection, the outbox relay) remembers the
/// last position it saw and asks for what comes after. With a plain sequence, a
/// transaction could take position 10, a second one position 11 and commit first: a reader
/// that sees 11 moves past 10 and never reads it once it commits.
///
/// This storage makes position order equal commit order instead. Every transaction that
/// appends events locks the single `store_head` row (`SELECT … FOR UPDATE`) right before it
/// reads the stream versions and assigns positions, and holds the lock until it commits
/// or rolls back. Appending transactions therefore assign positions one after the other,
/// each continuing from the committed head of the one before, and PostgreSQL releases a
/// row lock only after the commit is visible. When a reader sees position *n*, every
/// position below *n* is already committed: ``readAll(after:limit:)`` is gap-safe with a
/// plain `WHERE position > $1 ORDER BY position`, positions are dense (a rejected batch
/// takes none), and the lock also makes the optimistic concurrency check exact.
///
/// The price is that appends to the store are serialised from the head lock to the
/// commit (a few round trips and the commit's WAL flush); everything else (reading,
/// claiming outbox entries, inbox and checkpoint writes) runs concurrently. The `postgres`
/// benchmark measures it. The alternative, tagging rows with `pg_current_xact_id()` and
/// hiding rows above the oldest running transaction, allows concurrent appends but
/// leaves gaps in the positions and delays readers behind every long transaction.
///
/// ## Outbox
///
/// See ``claimOutboxEntries(limit:now:leaseDuration:)`` for how competing relays share
/// the outbox, and ``outboxNotifications()`` for waking a relay on commit.
///
/// ## Errors
///
/// Every failure is an ``EventStoreError`` without any postgres-nio or NIO type in it:
/// a rejected login (SQLSTATE 28P01), a missing database (3D000) and an unreachable
/// server are ``EventStoreError/Code/storageUnavailable`` with a message naming the host,
/// port and database and what to check.
public final class PostgresEventStorage: EventStorage {
    /// The configuration the storage connects with.
    public let configuration: Configuration

    /// The connection pool.
    let client: PostgresClient
    let logger: Logger
    /// The configured schema as a quoted SQL identifier.
    let schema: String

    struct Lifecycle {
        /// The task running the pool when the storage owns it.
        var runTask: Task<Void, Never>?
        /// Running notification listeners, by id.
        var listeners: [Int: Task<Void, Never>] = [:]
        var nextListenerID = 0
        /// Whether the listener behind ``waitForOutboxChange(timeout:)`` runs.
        var sharedListenerStarted = false
        var isShutDown = false
    }

    let lifecycle: Mutex<Lifecycle>
    /// Signalled by the shared notification listener.
    let outboxChanged = ChangeSignal()

    /// Connects to PostgreSQL, migrates the schema (unless
    /// ``Configuration/migratesSchema`` is off) and starts the connection pool.
    ///
    /// Call ``shutdown()`` when done; it stops the pool.
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
        let storage = PostgresEventStorage(client: client, configuration: configuration, logger: logger)
        storage.lifecycle.withLock { $0.runTask = Task { await client.run() } }
        return storage
    }

    /// Creates a storage on a connection pool that the caller runs (`client.run()`, or
    /// a ServiceLifecycle `ServiceGroup`), for example to share the pool.
    ///
    /// The schema is not checked nor migrated: call ``migrate()`` once the pool runs.
    /// ``shutdown()`` stops only the storage's notification listeners, not the pool.
    public init(client: PostgresClient, configuration: Configuration, logger: Logger = Logger(label: "EventSourcery.Postgres")) {
        self.client = client
        self.configuration = configuration
        self.logger = logger
        self.schema = Self.quotedIdentifier(configuration.schema)
        self.lifecycle = Mutex(Lifecycle())
    }

    /// Creates the configured schema when missing and applies the migrations it lacks;
    /// safe to run from several processes at once.
    public func migrate() async throws {
        do {
            try await client.withConnection { connection in
                try await Self.migrate(on: connection, configuration: configuration, logger: logger)
            }
        } catch {
            throw failure(error, operation: "migrate the schema '\(configuration.schema)'")
        }
    }

    /// Stops the notification listeners and, when ``connect(configuration:logger:)``
    /// created the pool, closes it. Calls made after it fail with `storageUnavailable`.
    public func shutdown() async {
        let (runTask, listeners) = lifecycle.withLock { state in
            state.isShutDown = true
            defer {
                state.runTask = nil
                state.listeners = [:]
            }
            return (state.runTask, Array(state.listeners.values))
        }
        for listener in listeners {
            listener.cancel()
            await listener.value
        }
        runTask?.cancel()
        await runTask?.value
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
            return try await client.withConnection { connection in
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
            return try await client.query(query, logger: logger).collect()
        } catch {
            throw failure(error, operation: operation)
        }
    }

    // MARK: Commit

    /// How one commit's appends look once versions and positions are assigned.
    private struct Insertion {
        var positions: [Int64] = []
        var streamIDs: [String] = []
        var versions: [Int64] = []
        var eventIDs: [UUID] = []
        var typeNames: [String] = []
        var schemaVersions: [Int32] = []
        var createdAts: [Date] = []
        var correlationIDs: [String] = []
        var causationIDs: [String] = []
        var traceContexts: [String] = []
        var payloads: [String] = []
        var publishedPositions: [Int64] = []
        var recorded: [RecordedEvent] = []
        var streamVersions: [String: Int64] = [:]
    }

    public func commit(_ batch: WriteBatch) async throws -> CommitOutcome {
        try await inTransaction("commit a batch", shouldCommit: { if case .committed = $0 { true } else { false } }) { connection in
            try await write(batch, on: connection)
        }
    }

    /// Commits each batch atomically on its own, all in one transaction with a savepoint per
    /// batch: a batch that fails (or whose inbox entry exists) is rolled back to its
    /// savepoint alone, and the set costs one commit.
    public func commitEach(_ batches: [WriteBatch]) async -> [Result<CommitOutcome, any Error>] {
        if batches.isEmpty { return [] }
        if batches.count == 1 {
            // Alone: its own transaction, without a savepoint.
            do { return [.success(try await commit(batches[0]))] } catch { return [.failure(error)] }
        }
        let logger = self.logger
        do {
            return try await inTransaction("commit batches") { connection in
                var results: [Result<CommitOutcome, any Error>] = []
                results.reserveCapacity(batches.count)
                for batch in batches {
                    try await connection.query("SAVEPOINT batch", logger: logger)
                    do {
                        let outcome = try await write(batch, on: connection)
                        let keeps = if case .committed = outcome { true } else { false }
                        try await connection.query(keeps ? "RELEASE SAVEPOINT batch" : "ROLLBACK TO SAVEPOINT batch", logger: logger)
                        results.append(.success(outcome))
                    } catch {
                        try await connection.query("ROLLBACK TO SAVEPOINT batch", logger: logger)
                        results.append(.failure(failure(error, operation: "commit a batch")))
                    }
                }
                return results
            }
        } catch {
            return batches.map { _ in .failure(error) }
        }
    }

    /// Writes one batch inside the current transaction: its inbox entry first
    /// (``CommitOutcome/alreadyProcessed`` when it exists), checkpoint, snapshots, then its
    /// events with the append lock.
    private func write(_ batch: WriteBatch, on connection: PostgresConnection) async throws -> CommitOutcome {
        let schema = self.schema
        let logger = self.logger
        let needsAppendLock = batch.appends.contains { !$0.events.isEmpty || $0.expectedVersion != .any }
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
        guard needsAppendLock else { return .committed([]) }
        return .committed(try await appendEvents(batch, on: connection))
    }

    /// Locks the head, checks the expected versions and inserts the events, their outbox
    /// rows and the new stream versions in one statement.
    private func appendEvents(_ batch: WriteBatch, on connection: PostgresConnection) async throws -> [RecordedEvent] {
        let schema = self.schema
        // The lock that orders appends: held until this transaction ends.
        var head: Int64 = 0
        for try await position in try await connection.query(
            "SELECT last_position FROM \(unescaped: schema).store_head WHERE id = 1 FOR UPDATE", logger: logger
        ).decode(Int64.self) {
            head = position
        }
        // A new statement, so its snapshot sees every commit made before the lock was granted.
        let streamNames = Array(Set(batch.appends.map(\.streamID.rawValue)))
        var versions: [String: Int64] = [:]
        for try await (stream, version) in try await connection.query(
            "SELECT stream_id, version FROM \(unescaped: schema).streams WHERE stream_id = ANY(\(streamNames))", logger: logger
        ).decode((String, Int64).self) {
            versions[stream] = version
        }

        var insertion = Insertion()
        var batchIDs: Set<UUID> = []
        var position = head
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        for append in batch.appends {
            let actual = insertion.streamVersions[append.streamID.rawValue] ?? versions[append.streamID.rawValue] ?? 0
            guard append.expectedVersion.isSatisfied(byActualVersion: actual) else {
                throw EventStoreError.conflict(stream: append.streamID, expected: append.expectedVersion, actual: actual)
            }
            var version = actual
            for event in append.events {
                guard batchIDs.insert(event.id).inserted else { throw EventStoreError.duplicateEvent(event.id, stream: append.streamID) }
                position += 1
                version += 1
                insertion.positions.append(position)
                insertion.streamIDs.append(append.streamID.rawValue)
                insertion.versions.append(version)
                insertion.eventIDs.append(event.id)
                insertion.typeNames.append(event.typeName)
                insertion.schemaVersions.append(Int32(clamping: event.schemaVersion))
                insertion.createdAts.append(event.createdAt)
                insertion.correlationIDs.append(event.metadata.correlationID?.uuidString ?? "")
                insertion.causationIDs.append(event.metadata.causationID?.uuidString ?? "")
                let trace = (try? encoder.encode(event.metadata.traceContext)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
                insertion.traceContexts.append(trace)
                insertion.payloads.append(String(decoding: event.payload, as: UTF8.self))
                if append.publishes { insertion.publishedPositions.append(position) }
                insertion.recorded.append(
                    RecordedEvent(streamID: append.streamID, streamVersion: version, position: position, event: event))
            }
            insertion.streamVersions[append.streamID.rawValue] = version
        }
        guard !insertion.positions.isEmpty else { return [] }

        let touchedStreams = Array(insertion.streamVersions.keys)
        let touchedVersions = touchedStreams.map { insertion.streamVersions[$0]! }
        let notifies = !insertion.publishedPositions.isEmpty
        do {
            _ = try await connection.query(
                """
                WITH new_events AS (
                    INSERT INTO \(unescaped: schema).events (position, stream_id, stream_version, event_id, type_name,
                        schema_version, created_at, correlation_id, causation_id, trace_context, payload)
                    SELECT position, stream_id, stream_version, event_id, type_name, schema_version, created_at,
                        NULLIF(correlation_id, '')::uuid, NULLIF(causation_id, '')::uuid, trace_context::jsonb, payload::jsonb
                    FROM unnest(\(insertion.positions)::bigint[], \(insertion.streamIDs)::text[], \(insertion.versions)::bigint[],
                        \(insertion.eventIDs)::uuid[], \(insertion.typeNames)::text[], \(insertion.schemaVersions)::integer[],
                        \(insertion.createdAts)::timestamptz[], \(insertion.correlationIDs)::text[], \(insertion.causationIDs)::text[],
                        \(insertion.traceContexts)::text[], \(insertion.payloads)::text[])
                        AS input (position, stream_id, stream_version, event_id, type_name, schema_version, created_at,
                            correlation_id, causation_id, trace_context, payload)
                    RETURNING position, stream_id
                ), new_outbox AS (
                    INSERT INTO \(unescaped: schema).outbox (id, stream_id)
                    SELECT position, stream_id FROM new_events WHERE position = ANY(\(insertion.publishedPositions)::bigint[])
                ), new_streams AS (
                    INSERT INTO \(unescaped: schema).streams (stream_id, version)
                    SELECT * FROM unnest(\(touchedStreams)::text[], \(touchedVersions)::bigint[])
                    ON CONFLICT (stream_id) DO UPDATE SET version = excluded.version
                ), new_head AS (
                    UPDATE \(unescaped: schema).store_head SET last_position = \(position) WHERE id = 1
                )
                SELECT pg_notify(\(configuration.notificationChannel), \(configuration.schema)) WHERE \(notifies)
                """,
                logger: logger
            ).collect()
        } catch {
            throw insertError(error, batch: batch)
        }
        return insertion.recorded
    }

    /// Maps a failed insert: a stored event id, a stream version taken by a writer that
    /// bypassed the head lock, or a payload that is not JSON.
    private func insertError(_ error: any Error, batch: WriteBatch) -> any Error {
        let detail = Self.errorDetail(of: error) ?? ""
        switch Self.sqlState(of: error) {
        case SQLState.uniqueViolation where Self.constraintName(of: error) == "events_event_id_unique":
            for append in batch.appends {
                for event in append.events where detail.localizedCaseInsensitiveContains(event.id.uuidString) {
                    return EventStoreError.duplicateEvent(event.id, stream: append.streamID)
                }
            }
            let first = batch.appends.first { !$0.events.isEmpty }
            return EventStoreError.duplicateEvent(first?.events.first?.id ?? UUID(), stream: first?.streamID ?? "unknown")
        case SQLState.uniqueViolation where Self.constraintName(of: error) == "events_stream_version_unique":
            let append = batch.appends.first { detail.contains("(\($0.streamID.rawValue),") } ?? batch.appends[0]
            return EventStoreError(
                .concurrencyConflict,
                message: "Stream '\(append.streamID)' was appended to concurrently by a writer that bypassed the store's "
                    + "head lock. Reload the stream and retry the command.",
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
            return error
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
            for try await columns in try await client.query(query, logger: logger).decode(EventColumns.self) {
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

    /// Gap-safe because positions become visible in order (see the type's documentation).
    public func readAll(after position: Int64, limit: Int) async throws -> [RecordedEvent] {
        try await events(
            """
            SELECT \(unescaped: Self.eventColumns) FROM \(unescaped: schema).events e
            WHERE e.position > \(position) ORDER BY e.position LIMIT \(Int64(max(limit, 0)))
            """,
            "read the global order"
        )
    }

    public func headPosition() async throws -> Int64 {
        let rows = try await rows("SELECT last_position FROM \(unescaped: schema).store_head WHERE id = 1", "read the head position")
        return try rows.first.map { try $0.decode(Int64.self) } ?? 0
    }

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

    public func isProcessed(consumer: String, eventID: UUID) async throws -> Bool {
        let rows = try await rows(
            "SELECT 1 FROM \(unescaped: schema).inbox WHERE consumer = \(consumer) AND event_id = \(eventID)", "read the inbox"
        )
        return !rows.isEmpty
    }
}
