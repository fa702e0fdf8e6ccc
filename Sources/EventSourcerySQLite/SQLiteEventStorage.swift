public import EventSourcery
public import Foundation
import GRDB
import NIOConcurrencyHelpers

/// An event storage in an SQLite database file: the embedded default backend.
///
/// ```swift
/// let storage = try SQLiteEventStorage(path: "/var/lib/orders/events.sqlite")
/// let store = EventStore(storage: storage, registry: EventRegistry([OrderPlaced.self]))
/// ```
///
/// The storage creates the schema on first use and migrates it when a newer version of
/// the library opens the file (see the `v1` migration for the tables). The database runs
/// in WAL mode with `synchronous = FULL` by default, so a commit is on disk when
/// ``commit(_:)`` returns; ``Configuration`` explains the alternatives.
///
/// ## Concurrency and global order
///
/// The storage holds one writer connection and a few reader connections
/// ([GRDB](https://github.com/groue/GRDB.swift)'s `DatabasePool`). All writes of this
/// storage go through the single writer, one transaction after the other, and each write
/// transaction starts with `BEGIN IMMEDIATE`, which also takes SQLite's write lock
/// against other processes. A global position is therefore assigned inside the only
/// write transaction running, and positions become visible in commit order: a reader can
/// never see position *n + 1* while position *n* is still uncommitted. This makes
/// ``readAll(after:limit:)`` gap-safe without any extra bookkeeping. Readers see a
/// consistent snapshot of committed data and never block the writer (WAL).
///
/// Batches that arrive while the writer is busy share its next transaction (group
/// commit, one `fsync` for all of them); each still commits or fails alone; see
/// ``commit(_:)``.
///
/// ## Threads
///
/// SQLite calls block their thread, so none runs on Swift's cooperative thread pool:
/// every access uses GRDB's `async` APIs, which in GRDB 7 run the database work on the
/// connection's own serial `DispatchQueue` (through an actor whose executor is that
/// queue) and resume the caller when it is done. Commits are queued to the writer's
/// queue directly and resume the caller through a continuation. Only the initializer, which opens the
/// file and migrates the schema once, and ``close()`` block the calling thread.
///
/// ## Errors
///
/// Every failure is an ``EventStoreError``: a lock held too long by another process, a
/// file that cannot be opened or is not a database, and a closed storage are
/// ``EventStoreError/Code/storageUnavailable``. A failed commit writes nothing, and
/// never affects data committed before.
public final class SQLiteEventStorage: EventStorage {
    /// The configuration the storage was opened with.
    public let configuration: Configuration

    /// The open database, `nil` once closed.
    private let pool: NIOLockedValueBox<DatabasePool?>
    /// Wakes relays waiting in ``waitForOutboxChange(timeout:)``: commits through this
    /// storage, and the ``commitWatcher``.
    let outboxChanged: ChangeSignal
    /// Reports writes to the write-ahead log by any process (see
    /// `SQLiteEventStorage+Waiting.swift`); started by the first wait.
    let commitWatcher: FileChangeWatcher
    /// How many writes to the write-ahead log the ``commitWatcher`` reported.
    let commitNotifications: NIOLockedValueBox<UInt64>
    /// Where the first claim since the last wait found the change signal.
    let outboxClaimMark = NIOLockedValueBox<OutboxMark?>(nil)
    /// Batches waiting for the writer (see `SQLiteEventStorage+GroupCommit.swift`).
    let commitQueue = NIOLockedValueBox(CommitQueue())

    /// Opens (creating if needed) the database at `path` with the default, durable
    /// configuration.
    ///
    /// - Throws: ``EventStoreError`` `storageUnavailable` when the file cannot be opened
    ///   (missing directory, no permission, not a database) or its schema is newer than
    ///   this library.
    public convenience init(path: String) throws {
        try self.init(configuration: Configuration(path: path))
    }

    /// Opens (creating if needed) the database described by `configuration`, and
    /// migrates its schema.
    ///
    /// - Throws: ``EventStoreError`` `storageUnavailable` when the file cannot be opened
    ///   (missing directory, no permission, not a database), when it is locked longer than
    ///   the busy timeout, or when its schema is newer than this library (or, read-only,
    ///   older); `invalidArgument` when ``Configuration/validate()`` rejects the configuration.
    public init(configuration: Configuration) throws {
        try configuration.validate()
        self.configuration = configuration
        let path = configuration.path
        let (changed, notifications) = (ChangeSignal(), NIOLockedValueBox<UInt64>(0))
        self.outboxChanged = changed
        self.commitNotifications = notifications
        self.commitWatcher = FileChangeWatcher(path: path + "-wal") {
            notifications.withLockedValue { $0 += 1 }
            changed.signal()
        }
        var grdb = GRDB.Configuration()
        grdb.label = "EventSourcery.SQLite"
        grdb.readonly = configuration.isReadOnly
        grdb.busyMode = .callback(Self.busyRetry(timeout: configuration.busyTimeout))
        grdb.maximumReaderCount = max(1, configuration.maximumReaderCount)
        grdb.foreignKeysEnabled = false
        let synchronous = configuration.synchronous.rawValue
        let cacheKiB = max(0, configuration.pageCacheKiB)
        let checkpointPages = max(0, configuration.walAutocheckpointPages)
        grdb.prepareDatabase { db in
            try db.execute(sql: "PRAGMA synchronous = \(synchronous); PRAGMA cache_size = -\(cacheKiB)")
            if !db.configuration.readonly {
                try db.execute(sql: "PRAGMA wal_autocheckpoint = \(checkpointPages)")
            }
        }
        let pool = try Self.retryingFirstOpenRace(busyTimeout: configuration.busyTimeout) { () throws -> DatabasePool in
            let pool: DatabasePool
            do {
                pool = try DatabasePool(path: path, configuration: grdb)
                // GRDB switches the writer to `synchronous = NORMAL` when it enables WAL, after
                // `prepareDatabase` ran: set the configured mode again on the writer, the only
                // connection that commits.
                if !configuration.isReadOnly {
                    try pool.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA synchronous = \(synchronous)") }
                }
            } catch {
                throw Self.openError(error, path: path, configuration: configuration)
            }
            do {
                let migrator = Self.migrator
                let isCurrent = try pool.read { db in
                    if try migrator.hasBeenSuperseded(db) {
                        throw EventStoreError(
                            .storageUnavailable,
                            message: "The database at '\(path)' has a schema newer than this version of EventSourcery understands. "
                                + "Upgrade the library, or open a database written by this version."
                        )
                    }
                    let isCurrent = try migrator.hasCompletedMigrations(db)
                    if configuration.isReadOnly, !isCurrent {
                        throw EventStoreError(
                            .storageUnavailable,
                            message: "The database at '\(path)' is opened read-only but its schema is missing or out of date. "
                                + "Open it once without Configuration.isReadOnly so the schema is created or migrated."
                        )
                    }
                    return isCurrent
                }
                // An up-to-date schema needs no write lock: opening then works even while
                // another process holds one.
                if !isCurrent, !configuration.isReadOnly {
                    try migrator.migrate(pool)
                }
            } catch {
                try? pool.close()
                throw Self.openError(error, path: path, configuration: configuration)
            }
            return pool
        }
        self.pool = NIOLockedValueBox(pool)
    }

    /// The pause between two tries to take a lock another connection holds.
    static let busyRetryPause: Duration = .microseconds(500)

    /// Retries a busy lock every ``busyRetryPause`` until `timeout` worth of pauses passed.
    ///
    /// SQLite's own busy timeout sleeps 1, 2, 5, 10, 15, 20, 25… ms between tries: a relay
    /// woken by another process's first write to the log (see
    /// `SQLiteEventStorage+Waiting.swift`) would sleep several milliseconds past the end of
    /// that commit. Short pauses take the lock within half a millisecond of its release. The
    /// callback runs on the connection's own thread (never the cooperative pool).
    static func busyRetry(timeout: Duration) -> Database.BusyCallback {
        let tries = Int(timeout / busyRetryPause)
        let pause = useconds_t(busyRetryPause.components.attoseconds / 1_000_000_000_000)
        return { numberOfTries in
            guard numberOfTries < tries else { return false }
            usleep(pause)
            return true
        }
    }

    /// Runs `open` (open the pool, migrate) again when it lost a race with another process
    /// opening the same new file: both find it unmigrated and one `CREATE TABLE` fails
    /// ("already exists", its migration rolled back), or switching a new file to WAL answers
    /// "locked" at once instead of waiting. The next attempt finds the other's work done. A
    /// lock held longer than the busy timeout is not retried. Blocks the calling thread
    /// between attempts, as opening does anyway.
    private static func retryingFirstOpenRace<Result>(busyTimeout: Duration, _ open: () throws -> Result) throws -> Result {
        var attempt = 1
        while true {
            let started = ContinuousClock.now
            do {
                return try open()
            } catch let error as EventStoreError where attempt < 5 {
                guard let cause = error.underlying as? DatabaseError else { throw error }
                let lostRace =
                    switch cause.resultCode {
                    case .SQLITE_BUSY, .SQLITE_LOCKED: ContinuousClock.now - started < busyTimeout
                    // SQLite has no code of its own for "table … already exists".
                    case .SQLITE_ERROR: cause.message?.contains("already exists") == true
                    default: false
                    }
                guard lostRace else { throw error }
                Thread.sleep(forTimeInterval: 0.02 * Double(attempt))
                attempt += 1
            }
        }
    }

    /// Closes the database. Later calls fail with ``EventStoreError/Code/storageUnavailable``
    /// ("storage is closed"); calling `close()` again does nothing.
    ///
    /// Waits for the accesses already running to finish. Blocks the calling thread.
    ///
    /// - Throws: ``EventStoreError`` when SQLite cannot close the file.
    public func close() throws {
        // Taking the pool out first makes every later access fail before it reaches
        // SQLite; a write already queued behind the close sees `nil` too (see `write`).
        guard
            let pool = pool.withLockedValue({ pool in
                defer { pool = nil }; return pool
            })
        else { return }
        commitWatcher.stop()
        do {
            try pool.close()
        } catch {
            throw Self.mapped(error, path: configuration.path, configuration: configuration)
        }
    }

    /// Whether ``close()`` was called.
    public var isClosed: Bool { pool.withLockedValue { $0 == nil } }

    // MARK: Database access

    /// Runs `body` in an immediate write transaction on the writer's queue.
    ///
    /// - Parameter bookkeeping: the transaction only records outbox progress (leases,
    ///   published marks, failed attempts, clean-up). It then commits without waiting for
    ///   the disk even with `synchronous = FULL`: the next durable commit syncs it too (the
    ///   WAL is written in order), and a power loss before that can only make the relay
    ///   publish an entry again, which the at-least-once outbox already allows. Events,
    ///   inbox entries, snapshots and checkpoints always commit durably.
    func write<T: Sendable>(bookkeeping: Bool = false, _ body: @Sendable (Database) throws -> T) async throws -> T {
        let path = configuration.path
        let relaxes = bookkeeping && configuration.synchronous == .full
        do {
            return try await openPool().writeWithoutTransaction { db in
                // A write queued before close() but running after it must not touch
                // the closed connection.
                guard !self.isClosed else { throw Self.closedError(path: path) }
                if relaxes { try db.execute(sql: "PRAGMA synchronous = NORMAL") }
                var result: Result<T, any Error> = .failure(CancellationError())
                do {
                    try db.inTransaction(.immediate) {
                        result = .success(try body(db))
                        return .commit
                    }
                } catch {
                    result = .failure(error)
                }
                // Restore the durable mode before anything else commits; if that fails,
                // fail loudly rather than leave later commits undurable.
                if relaxes { try db.execute(sql: "PRAGMA synchronous = FULL") }
                return try result.get()
            }
        } catch {
            throw Self.mapped(error, path: path, configuration: configuration)
        }
    }

    /// Runs `body` in a read transaction on a reader's queue.
    func read<T: Sendable>(_ body: @Sendable (Database) throws -> T) async throws -> T {
        do {
            return try await openPool().read(body)
        } catch {
            throw Self.mapped(error, path: configuration.path, configuration: configuration)
        }
    }

    func openPool() throws(EventStoreError) -> DatabasePool {
        guard let pool = pool.withLockedValue({ $0 }) else { throw Self.closedError(path: configuration.path) }
        return pool
    }

    // MARK: Writing

    /// Commits `batch` atomically and durably.
    ///
    /// Batches submitted while the writer is busy are committed together in its next
    /// transaction (group commit): each batch still succeeds or fails on its own (checked
    /// before it writes; one that fails after writing is contained by savepoints), and
    /// returns once the shared transaction is on disk. Task
    /// cancellation does not interrupt a queued commit: it commits or fails as a whole.
    ///
    /// - Throws: ``EventStoreError`` `concurrencyConflict` or `duplicateEventID` (nothing of
    ///   the batch is written), or `storageUnavailable` when the database is closed or
    ///   locked by another process for longer than the busy timeout.
    public func commit(_ batch: WriteBatch) async throws -> CommitOutcome {
        try await commitEach([batch])[0].get()
    }

    /// Commits each batch atomically on its own, all in one transaction when the writer
    /// takes them together, and returns once that transaction is on disk.
    public func commitEach(_ batches: [WriteBatch]) async -> [Result<CommitOutcome, any Error>] {
        guard !batches.isEmpty else { return [] }
        let results = await enqueueCommit(batches)
        let published = zip(batches, results).contains { batch, result in
            guard case .success(.committed) = result else { return false }
            return batch.appends.contains { $0.publishes && !$0.events.isEmpty } || !batch.commands.isEmpty
        }
        if published { outboxChanged.signal() }
        return results
    }

    /// A write that failed after part of its batch was written: the transaction (or the
    /// batch's savepoint) must be rolled back.
    struct PartiallyWritten: Error {
        var underlying: any Error
    }

    /// Commits `batch` inside the current transaction.
    ///
    /// Checks come first and leave nothing written: the inbox entry (`INSERT ... ON CONFLICT
    /// DO NOTHING`; when it exists, the batch is ``CommitOutcome/alreadyProcessed``), then the
    /// expected versions (on a conflict the new inbox entry is deleted again). A failure after
    /// that (a duplicate event id, an I/O error) throws ``PartiallyWritten``.
    ///
    /// - Parameters:
    ///   - statements: the statements of this transaction.
    ///   - versions: the stream versions this transaction has seen or written so far,
    ///     shared by the batches of one group commit; updated when the batch commits.
    static func commit(
        _ batch: WriteBatch, in db: Database, statements: CommitStatements, versions: inout [StreamID: Int64]
    ) throws -> CommitOutcome {
        if let inbox = batch.inboxEntry {
            let processedAt = Date().storedSeconds
            try statements.insertInbox.runDirectly(in: db) { row in
                row.bind(inbox.consumer)
                row.bind(inbox.eventID)
                row.bind(processedAt)
            }
            if db.changesCount == 0 { return .alreadyProcessed }
        }
        var written: [StreamID: Int64] = [:]
        var startVersions: [Int64] = []
        startVersions.reserveCapacity(batch.appends.count)
        for append in batch.appends {
            let stream = append.streamID
            let actual: Int64
            if let version = written[stream] ?? versions[stream] {
                actual = version
            } else {
                actual = try statements.streamVersion.fetchInt64Directly(in: db) { $0.bind(stream.rawValue) } ?? 0
                versions[stream] = actual
            }
            guard append.expectedVersion.isSatisfied(byActualVersion: actual) else {
                if let inbox = batch.inboxEntry {
                    try db.cachedStatement(sql: "DELETE FROM inbox WHERE consumer = ? AND event_id = ?").execute(arguments: [
                        inbox.consumer, inbox.eventID,
                    ])
                }
                throw EventStoreError.conflict(stream: stream, expected: append.expectedVersion, actual: actual)
            }
            startVersions.append(actual)
            written[stream] = actual + Int64(append.events.count)
        }
        do {
            let recorded = try write(batch, startingAt: startVersions, in: db, statements: statements)
            versions.merge(written) { $1 }
            return .committed(recorded)
        } catch {
            throw PartiallyWritten(underlying: error)
        }
    }

    /// Writes a checked batch: its events (and outbox entries) from the given start versions,
    /// its checkpoint and snapshots.
    private static func write(
        _ batch: WriteBatch, startingAt startVersions: [Int64], in db: Database, statements: CommitStatements
    ) throws -> [RecordedEvent] {
        var recorded: [RecordedEvent] = []
        recorded.reserveCapacity(batch.eventCount)
        for (append, startVersion) in zip(batch.appends, startVersions) {
            let stream = append.streamID
            var version = startVersion
            for event in append.events {
                version += 1
                do {
                    try statements.insertEvent.runDirectly(in: db) { row in
                        row.bind(stream.rawValue)
                        row.bind(version)
                        row.bind(event.id)
                        row.bind(event.typeName)
                        row.bind(event.schemaVersion)
                        row.bind(event.createdAt.storedSeconds)
                        row.bind(event.metadata.correlationID)
                        row.bind(event.metadata.causationID)
                        row.bind(traceContextJSON(event.metadata.traceContext))
                        row.bind(event.payload)
                    }
                } catch let error as DatabaseError where error.resultCode == .SQLITE_CONSTRAINT {
                    throw try constraintError(error, event: event, append: append, in: db)
                }
                let position = db.lastInsertedRowID
                if append.publishes {
                    try statements.insertOutbox.runDirectly(in: db) { row in
                        row.bind(position)
                        row.bind(stream.rawValue)
                    }
                }
                recorded.append(RecordedEvent(streamID: stream, streamVersion: version, position: position, event: event))
            }
        }
        if let checkpoint = batch.checkpoint {
            try db.cachedStatement(
                sql: """
                    INSERT INTO checkpoints (name, position, state) VALUES (?, ?, ?)
                    ON CONFLICT (name) DO UPDATE SET position = excluded.position, state = excluded.state
                    """
            )
            .execute(arguments: [checkpoint.name, checkpoint.position, checkpoint.state])
        }
        try writeCommands(batch, in: db)
        for snapshot in batch.snapshots {
            try db.cachedStatement(
                sql: """
                    INSERT INTO snapshots (stream_id, version, schema_version, state) VALUES (?, ?, ?, ?)
                    ON CONFLICT (stream_id) DO UPDATE
                    SET version = excluded.version, schema_version = excluded.schema_version, state = excluded.state
                    """
            )
            .execute(arguments: [snapshot.streamID.rawValue, snapshot.version, snapshot.schemaVersion, snapshot.state])
        }
        return recorded
    }

    /// The error for a unique constraint that failed while inserting `event`.
    ///
    /// The version check above runs inside the same immediate transaction as the insert,
    /// so a clash on (stream_id, stream_version) means another writer that bypasses this
    /// library's locking appended concurrently; it is still reported as the conflict it is.
    private static func constraintError(
        _ error: DatabaseError, event: EncodedEvent, append: WriteBatch.StreamAppend, in db: Database
    ) throws -> any Error {
        let message = error.message ?? ""
        if message.contains("events.event_id") {
            return EventStoreError.duplicateEvent(event.id, stream: append.streamID)
        }
        if message.contains("events.stream_version") {
            let actual =
                try Int64.fetchOne(
                    db, sql: "SELECT max(stream_version) FROM events WHERE stream_id = ?", arguments: [append.streamID.rawValue]) ?? 0
            return EventStoreError.conflict(stream: append.streamID, expected: append.expectedVersion, actual: actual)
        }
        return error
    }

    // MARK: Reading

    public func streamVersion(_ stream: StreamID) async throws -> Int64 {
        try await read { db in
            try Int64.fetchOne(
                db.cachedStatement(sql: "SELECT max(stream_version) FROM events WHERE stream_id = ?"),
                arguments: [stream.rawValue]
            ) ?? 0
        }
    }

    public func readStream(_ stream: StreamID, fromVersion: Int64, upToVersion: Int64?, createdUpTo: Date?) async throws -> [RecordedEvent]
    {
        try await read { db in
            let range = "stream_id = ? AND stream_version >= ? AND stream_version <= ?"
            if let createdUpTo {
                let statement = try db.cachedStatement(
                    sql: """
                        SELECT \(Self.eventColumns) FROM events
                        WHERE \(range) AND created_at <= ? ORDER BY stream_version
                        """)
                return try Self.fetchRecordedEvents(
                    statement,
                    arguments: [stream.rawValue, fromVersion, upToVersion ?? .max, createdUpTo.storedSeconds]
                )
            }
            let statement = try db.cachedStatement(sql: "SELECT \(Self.eventColumns) FROM events WHERE \(range) ORDER BY stream_version")
            return try Self.fetchRecordedEvents(statement, arguments: [stream.rawValue, fromVersion, upToVersion ?? .max])
        }
    }

    public func readAll(after position: Int64, limit: Int) async throws -> [RecordedEvent] {
        guard limit > 0 else { return [] }
        return try await read { db in
            let statement = try db.cachedStatement(
                sql: "SELECT \(Self.eventColumns) FROM events WHERE position > ? ORDER BY position LIMIT ?")
            return try Self.fetchRecordedEvents(statement, arguments: [position, limit])
        }
    }

    public func readFlow(correlationID: UUID) async throws -> [RecordedEvent] {
        try await read { db in
            // Two index seeks (`events_correlation`, the unique `event_id`), not a scan.
            let statement = try db.cachedStatement(
                sql: """
                    SELECT \(Self.eventColumns) FROM events WHERE correlation_id = ?
                    UNION ALL
                    SELECT \(Self.eventColumns) FROM events WHERE event_id = ? AND correlation_id IS NULL
                    ORDER BY 1
                    """)
            return try Self.fetchRecordedEvents(statement, arguments: [correlationID, correlationID])
        }
    }

    public func headPosition() async throws -> Int64 {
        try await read { db in
            try Int64.fetchOne(db.cachedStatement(sql: "SELECT max(position) FROM events")) ?? 0
        }
    }

    // MARK: Snapshots, checkpoints, inbox

    public func latestSnapshot(of stream: StreamID) async throws -> Snapshot? {
        try await read { db in
            let statement = try db.cachedStatement(sql: "SELECT version, state, schema_version FROM snapshots WHERE stream_id = ?")
            return try Row.fetchOne(statement, arguments: [stream.rawValue]).map { row in
                Snapshot(
                    streamID: stream,
                    version: try row.decode(Int64.self, atIndex: 0),
                    state: try row.decode(Data.self, atIndex: 1),
                    schemaVersion: try row.decode(Int.self, atIndex: 2)
                )
            }
        }
    }

    public func checkpoint(named name: String) async throws -> ProjectionCheckpoint? {
        try await read { db in
            let statement = try db.cachedStatement(sql: "SELECT position, state FROM checkpoints WHERE name = ?")
            return try Row.fetchOne(statement, arguments: [name]).map { row in
                ProjectionCheckpoint(
                    name: name, position: try row.decode(Int64.self, atIndex: 0), state: try row.decode(Data.self, atIndex: 1))
            }
        }
    }

    public func resetCheckpoint(named name: String) async throws {
        try await write { db in
            try db.cachedStatement(sql: "DELETE FROM checkpoints WHERE name = ?").execute(arguments: [name])
        }
    }

    public func processedInboxEntries(_ entries: [InboxEntry]) async throws -> Set<InboxEntry> {
        guard !entries.isEmpty else { return [] }
        // The consumers in order of appearance: a context has a few handlers.
        let consumers = entries.reduce(into: [String]()) { consumers, entry in
            if !consumers.contains(entry.consumer) { consumers.append(entry.consumer) }
        }
        return try await read { db in
            // One prepared statement for every call: a fixed number of event ids, the unused
            // ones NULL (which matches nothing).
            let width = Self.inboxLookupWidth
            let statement = try db.cachedStatement(
                sql: "SELECT event_id FROM inbox WHERE consumer = ? AND event_id IN ("
                    + Array(repeating: "?", count: width).joined(separator: ", ") + ")")
            var processed: Set<InboxEntry> = []
            for consumer in consumers {
                let eventIDs = entries.filter { $0.consumer == consumer }.map(\.eventID)
                for start in stride(from: 0, to: eventIDs.count, by: width) {
                    let chunk = eventIDs[start..<min(start + width, eventIDs.count)]
                    try statement.runDirectly(in: db) { row in
                        row.bind(consumer)
                        for eventID in chunk { row.bind(eventID) }
                        for _ in chunk.count..<width { row.bind(UUID?.none) }
                    } row: { row in
                        if let eventID = row.uuid(at: 0) { processed.insert(InboxEntry(consumer: consumer, eventID: eventID)) }
                    }
                }
            }
            return processed
        }
    }

    /// The event ids ``processedInboxEntries(_:)`` asks about in one query.
    static let inboxLookupWidth = 50

    public func deleteInboxEntries(processedUpTo date: Date) async throws -> Int {
        try await write { db in
            try db.cachedStatement(sql: "DELETE FROM inbox WHERE processed_at <= ?").execute(arguments: [date.storedSeconds])
            return db.changesCount
        }
    }

    public func isProcessed(consumer: String, eventID: UUID) async throws -> Bool {
        try await read { db in
            let statement = try db.cachedStatement(sql: "SELECT 1 FROM inbox WHERE consumer = ? AND event_id = ?")
            return try Int.fetchOne(statement, arguments: [consumer, eventID]) != nil
        }
    }
}
