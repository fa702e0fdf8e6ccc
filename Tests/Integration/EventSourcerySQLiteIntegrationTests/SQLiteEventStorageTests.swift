import EventSourcery
@testable import EventSourcerySQLite
import EventSourceryTesting
import Foundation
import GRDB
import Testing

private typealias F = ConformanceFixtures

private func deposits(_ amounts: [Int], createdAt: Date = Date()) -> [EventEnvelope] {
    amounts.map { EventEnvelope(F.Deposited(amount: $0), createdAt: createdAt) }
}

/// Runs `body` and returns the ``EventStoreError`` it throws, recording an issue when it
/// throws something else or nothing.
private func storeError(sourceLocation: SourceLocation = #_sourceLocation, _ body: () async throws -> Void) async -> EventStoreError? {
    do {
        try await body()
        Issue.record("expected an EventStoreError, but nothing was thrown", sourceLocation: sourceLocation)
    } catch let error as EventStoreError {
        return error
    } catch {
        Issue.record("expected an EventStoreError, got \(error)", sourceLocation: sourceLocation)
    }
    return nil
}

/// A connection outside the storage that holds the write lock, as another process would.
private func lockDatabase(at path: String) async throws -> DatabaseQueue {
    var configuration = GRDB.Configuration()
    configuration.allowsUnsafeTransactions = true
    let locker = try DatabaseQueue(path: path, configuration: configuration)
    try await locker.writeWithoutTransaction { db in try db.execute(sql: "BEGIN EXCLUSIVE") }
    return locker
}

@Suite("SQLite event storage")
struct SQLiteEventStorageTests {
    @Test("everything survives closing and reopening the file")
    func persistenceAcrossReopen() async throws {
        try await withTemporaryDirectory { directory in
            let path = directory.database()
            let createdAt = Date(timeIntervalSinceReferenceDate: 760_000_000.123_456_7)
            let metadata = EventMetadata(correlationID: UUID(), causationID: UUID(), traceContext: ["traceparent": "00-abc-def-01"])
            let opened = EventEnvelope(F.AccountOpened(owner: "Zoë"), createdAt: createdAt, metadata: metadata)
            let processedEventID = UUID()
            let snapshot = Snapshot(streamID: "account-1", version: 3, state: Data("{\"balance\":6}".utf8), schemaVersion: 2)
            let checkpoint = ProjectionCheckpoint(name: "balances", position: 4, state: Data([0, 1, 2, 255]))

            var before: [RecordedEvent] = []
            do {
                let storage = try SQLiteEventStorage(path: path)
                let store = EventStore(storage: storage, registry: F.registry)
                try await store.publish(deposits([1, 2, 3]), to: "account-1", expectedVersion: .noStream)
                try await store.append([opened], to: "account-2", expectedVersion: .noStream)
                // Outbox: one entry published, one parked, one pending.
                let due = try await storage.claimOutboxEntries(limit: 10, now: Date(), leaseDuration: 0)
                try #require(due.count == 3)
                try await storage.markPublished([due[0].id], at: Date())
                let parked = try await storage.recordFailedAttempt(due[1].id, error: "broker down", nextAttemptAt: Date(), attemptLimit: 1)
                #expect(parked?.state == .parked)
                // Inbox, snapshot and checkpoint.
                let outcome = try await store.processOnce(consumer: "ledger", eventID: processedEventID) { _ in }
                #expect(outcome.wasProcessed)
                var batch = WriteBatch()
                batch.snapshots = [snapshot]
                batch.checkpoint = checkpoint
                try await store.commit(batch)
                before = try await storage.readAll(after: 0, limit: 100)
                try storage.close()
            }

            let storage = try SQLiteEventStorage(path: path)
            let store = EventStore(storage: storage, registry: F.registry)
            #expect(try await storage.readAll(after: 0, limit: 100) == before)
            #expect(before.count == 4)
            let account2 = try await store.load("account-2")
            #expect(account2.first?.envelope.id == opened.id)
            #expect(account2.first?.envelope.createdAt == createdAt, "dates round-trip bit for bit")
            #expect(account2.first?.envelope.metadata == opened.metadata)
            #expect(try await storage.streamVersion("account-1") == 3)
            #expect(try await storage.headPosition() == 4)
            #expect(try await storage.outboxCounts() == OutboxCounts(pending: 1, parked: 1, published: 1))
            let parked = try await storage.parkedOutboxEntries(limit: 10)
            #expect(parked.map(\.event.position) == [2])
            #expect(parked.first?.lastError == "broker down")
            #expect(parked.first?.attempts == 1)
            // The parked entry still holds back its stream.
            #expect(try await storage.claimOutboxEntries(limit: 10, now: Date(), leaseDuration: 0).isEmpty)
            #expect(try await storage.isProcessed(consumer: "ledger", eventID: processedEventID))
            #expect(try await store.processOnce(consumer: "ledger", eventID: processedEventID) { _ in }.wasProcessed == false)
            #expect(try await storage.latestSnapshot(of: "account-1") == snapshot)
            #expect(try await storage.checkpoint(named: "balances") == checkpoint)
            // Positions and versions continue where they were.
            let next = try await store.append(deposits([4]), to: "account-1", expectedVersion: .exact(3))
            #expect(next.map(\.position) == [5])
            #expect(next.map(\.streamVersion) == [4])
        }
    }

    @Test("created-at times keep sub-millisecond precision and as-of reads are exact")
    func exactCreatedAt() async throws {
        try await withTemporaryDirectory { directory in
            let storage = try SQLiteEventStorage(path: directory.database())
            let store = EventStore(storage: storage, registry: F.registry)
            let first = Date(timeIntervalSinceReferenceDate: 760_000_000.000_001)
            let second = first.addingTimeInterval(0.000_001)
            try await store.append(deposits([1], createdAt: first) + deposits([2], createdAt: second), to: "account-1")
            #expect(try await store.load("account-1").map(\.envelope.createdAt) == [first, second])
            #expect(try await store.load("account-1", asOf: first).count == 1)
            #expect(try await store.load("account-1", asOf: second).count == 2)
            #expect(
                try await store.load("account-1", asOf: Date(timeIntervalSinceReferenceDate: first.timeIntervalSinceReferenceDate.nextDown))
                    .isEmpty)
        }
    }

    @Test("a database locked by another connection fails fast and keeps its events")
    func lockedDatabase() async throws {
        try await withTemporaryDirectory { directory in
            let path = directory.database()
            var configuration = SQLiteEventStorage.Configuration(path: path)
            configuration.busyTimeout = .milliseconds(200)
            let storage = try SQLiteEventStorage(configuration: configuration)
            let store = EventStore(storage: storage, registry: F.registry)
            let committed = try await store.append(deposits([1, 2]), to: "account-1")

            let locker = try await lockDatabase(at: path)
            let clock = ContinuousClock()
            let start = clock.now
            let error = await storeError { try await store.append(deposits([3]), to: "account-1", expectedVersion: .exact(2)) }
            #expect(error?.code == .storageUnavailable)
            #expect(error?.message.contains("database is locked by another process") == true, "\(error?.message ?? "")")
            #expect(clock.now - start < .seconds(3), "gives up after the busy timeout")
            // Readers are not blocked by the lock, and the committed events are intact.
            #expect(try await store.load("account-1").map(\.envelope.id) == committed.map(\.envelope.id))

            try await locker.writeWithoutTransaction { db in try db.execute(sql: "ROLLBACK") }
            try locker.close()
            let next = try await store.append(deposits([3]), to: "account-1", expectedVersion: .exact(2))
            #expect(next.map(\.position) == [3], "the failed attempt wrote nothing")
        }
    }

    @Test("opening a database that another connection holds locked fails with a typed error")
    func openingLockedDatabase() async throws {
        try await withTemporaryDirectory { directory in
            let path = directory.database()
            try SQLiteEventStorage(path: path).close()
            let locker = try await lockDatabase(at: path)
            defer { try? locker.close() }
            var configuration = SQLiteEventStorage.Configuration(path: path)
            configuration.busyTimeout = .milliseconds(100)
            // Opening may need the lock (GRDB recreates an empty WAL file), or only the
            // first write does: either way the error is typed.
            let error = await storeError {
                let storage = try SQLiteEventStorage(configuration: configuration)
                try await EventStore(storage: storage, registry: F.registry).append(deposits([1]), to: "account-1")
            }
            #expect(error?.code == .storageUnavailable)
            #expect(error?.message.contains("locked") == true, "\(error?.message ?? "")")
        }
    }

    @Test("commits are durable by default: the writer runs with synchronous = FULL")
    func durableByDefault() async throws {
        try await withTemporaryDirectory { directory in
            let storage = try SQLiteEventStorage(path: directory.database())
            #expect(storage.configuration.synchronous == .full)
            // PRAGMA synchronous: 1 = NORMAL, 2 = FULL.
            #expect(try await storage.write { db in try Int.fetchOne(db, sql: "PRAGMA synchronous") } == 2)
            #expect(try await storage.write { db in try String.fetchOne(db, sql: "PRAGMA journal_mode") } == "wal")
            // Outbox bookkeeping commits without waiting for the disk, then restores FULL.
            try await EventStore(storage: storage, registry: F.registry).publish(deposits([1]), to: "account-1")
            let claimed = try await storage.claimOutboxEntries(limit: 10, now: Date(), leaseDuration: 30)
            #expect(try await storage.write(bookkeeping: true) { db in try Int.fetchOne(db, sql: "PRAGMA synchronous") } == 1)
            try await storage.markPublished(claimed.map(\.id), at: Date())
            #expect(try await storage.write { db in try Int.fetchOne(db, sql: "PRAGMA synchronous") } == 2)

            var configuration = SQLiteEventStorage.Configuration(path: directory.database("normal.sqlite"))
            configuration.synchronous = .normal
            let normal = try SQLiteEventStorage(configuration: configuration)
            #expect(try await normal.write { db in try Int.fetchOne(db, sql: "PRAGMA synchronous") } == 1)
        }
    }

    @Test("a configuration out of range is refused naming the field, before the file is touched")
    func invalidConfiguration() async throws {
        try await withTemporaryDirectory { directory in
            let path = directory.appendingPathComponent("events.sqlite").path
            var configuration = SQLiteEventStorage.Configuration(path: path)
            configuration.maximumReaderCount = 0
            let error = await storeError { _ = try SQLiteEventStorage(configuration: configuration) }
            #expect(error?.code == .invalidArgument)
            #expect(error?.field == "maximumReaderCount")
            #expect(error?.message == "maximumReaderCount must be positive, got 0")
            #expect(!FileManager.default.fileExists(atPath: path))
            configuration = SQLiteEventStorage.Configuration(path: path)
            configuration.busyTimeout = .seconds(-1)
            #expect(await storeError { _ = try SQLiteEventStorage(configuration: configuration) }?.field == "busyTimeout")
        }
    }

    @Test("a path in a missing directory gives an error naming the directory")
    func missingDirectory() async throws {
        try await withTemporaryDirectory { directory in
            let path = directory.appendingPathComponent("missing/events.sqlite").path
            let error = await storeError { _ = try SQLiteEventStorage(path: path) }
            #expect(error?.code == .storageUnavailable)
            #expect(error?.message.contains(path) == true, "\(error?.message ?? "")")
            #expect(error?.message.contains("does not exist") == true, "\(error?.message ?? "")")
        }
    }

    @Test("a file that is not a database gives a clear error and is left untouched")
    func garbageFile() async throws {
        try await withTemporaryDirectory { directory in
            let path = directory.database()
            let garbage = Data((0..<8192).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) })
            try garbage.write(to: URL(fileURLWithPath: path))
            let error = await storeError { _ = try SQLiteEventStorage(path: path) }
            #expect(error?.code == .storageUnavailable)
            #expect(error?.message.contains("not an SQLite database") == true, "\(error?.message ?? "")")
            #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == garbage)
        }
    }

    @Test("a closed storage throws a typed error and its data is intact when reopened")
    func closedStorage() async throws {
        try await withTemporaryDirectory { directory in
            let path = directory.database()
            let storage = try SQLiteEventStorage(path: path)
            let store = EventStore(storage: storage, registry: F.registry)
            try await store.publish(deposits([1, 2]), to: "account-1")
            try storage.close()
            #expect(storage.isClosed)

            let appendError = await storeError { try await store.append(deposits([3]), to: "account-1") }
            #expect(appendError?.code == .storageUnavailable)
            #expect(appendError?.message.contains("storage is closed") == true)
            let readError = await storeError { _ = try await store.load("account-1") }
            #expect(readError?.code == .storageUnavailable)
            let outboxError = await storeError { _ = try await storage.claimOutboxEntries(limit: 1, now: Date(), leaseDuration: 10) }
            #expect(outboxError?.code == .storageUnavailable)
            try storage.close()  // closing twice does nothing

            let reopened = try SQLiteEventStorage(path: path)
            #expect(try await reopened.streamVersion("account-1") == 2)
            #expect(try await reopened.outboxCounts().pending == 2)
        }
    }

    @Test("closing while writes are in flight loses no committed event")
    func closeDuringWrites() async throws {
        try await withTemporaryDirectory { directory in
            let path = directory.database()
            var configuration = SQLiteEventStorage.Configuration(path: path)
            configuration.synchronous = .normal
            let storage = try SQLiteEventStorage(configuration: configuration)
            let store = EventStore(storage: storage, registry: F.registry)
            let succeeded = try await withThrowingTaskGroup(of: Bool.self) { group in
                for index in 0..<40 {
                    group.addTask {
                        do {
                            try await store.append(deposits([index]), to: StreamID("account-\(index % 4)"))
                            return true
                        } catch let error as EventStoreError where error.code == .storageUnavailable {
                            return false
                        }
                    }
                }
                group.addTask {
                    try await Task.sleep(for: .milliseconds(5))
                    try storage.close()
                    return false
                }
                return try await group.reduce(0) { $0 + ($1 ? 1 : 0) }
            }
            let reopened = try SQLiteEventStorage(path: path)
            #expect(try await reopened.headPosition() == Int64(succeeded))
            #expect(try await reopened.readAll(after: 0, limit: 100).map(\.position) == (0..<Int64(succeeded)).map { $0 + 1 })
        }
    }

    @Test("storages opening a new file at the same time all open it, migrated once")
    func concurrentFirstOpensAllSucceed() async throws {
        try await withTemporaryDirectory { directory in
            let path = directory.database()
            // Like two processes of one context starting together (the relay and the order API).
            let storages = try await withThrowingTaskGroup(of: SQLiteEventStorage.self) { group in
                for _ in 0..<8 { group.addTask { try SQLiteEventStorage(path: path) } }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            #expect(storages.count == 8)
            try await EventStore(storage: storages[0], registry: F.registry).append(deposits([1]), to: "account-1")
            for storage in storages {
                #expect(try await storage.streamVersion("account-1") == 1)
                try storage.close()
            }
        }
    }

    @Test("opening a database again does not migrate it twice")
    func migrationIsIdempotent() async throws {
        try await withTemporaryDirectory { directory in
            let path = directory.database()
            let first = try SQLiteEventStorage(path: path)
            try await EventStore(storage: first, registry: F.registry).append(deposits([1]), to: "account-1")
            // A second storage on the same file, while the first is still open, then a third.
            let second = try SQLiteEventStorage(path: path)
            #expect(try await second.streamVersion("account-1") == 1)
            try first.close()
            try second.close()
            let third = try SQLiteEventStorage(path: path)
            #expect(try await third.headPosition() == 1)
            try third.close()

            let queue = try DatabaseQueue(path: path)
            let migrations = try await queue.read { db in try String.fetchAll(db, sql: "SELECT identifier FROM grdb_migrations") }
            #expect(
                migrations == [
                    "v1: events, outbox, inbox, snapshots, checkpoints", "v2: held events", "v4: command outbox",
                    "v5: events by correlation id",
                ],
                "each migration once")
            // A flow is read through the correlation index, not by scanning the events.
            let plan = try await queue.read { db in
                try Row.fetchAll(
                    db, sql: "EXPLAIN QUERY PLAN SELECT position FROM events WHERE correlation_id = ? ORDER BY position",
                    arguments: [UUID()]
                )
                .map { row -> String in row["detail"] }
            }
            #expect(
                plan.contains { $0.contains("USING COVERING INDEX events_correlation") || $0.contains("USING INDEX events_correlation") },
                "\(plan)")
            try queue.close()
        }
    }

    @Test("a schema newer than the library is refused")
    func newerSchema() async throws {
        try await withTemporaryDirectory { directory in
            let path = directory.database()
            try SQLiteEventStorage(path: path).close()
            let queue = try DatabaseQueue(path: path)
            try await queue.write { db in try db.execute(sql: "INSERT INTO grdb_migrations (identifier) VALUES ('v99: from the future')") }
            try queue.close()
            let error = await storeError { _ = try SQLiteEventStorage(path: path) }
            #expect(error?.code == .storageUnavailable)
            #expect(error?.message.contains("newer") == true, "\(error?.message ?? "")")
        }
    }

    @Test("a read-only storage reads but refuses writes")
    func readOnly() async throws {
        try await withTemporaryDirectory { directory in
            let path = directory.database()
            var configuration = SQLiteEventStorage.Configuration(path: path)
            configuration.isReadOnly = true
            let missing = await storeError { _ = try SQLiteEventStorage(configuration: configuration) }
            #expect(missing?.code == .storageUnavailable)

            let writer = try SQLiteEventStorage(path: path)
            try await EventStore(storage: writer, registry: F.registry).append(deposits([1]), to: "account-1")
            let reader = try SQLiteEventStorage(configuration: configuration)
            let store = EventStore(storage: reader, registry: F.registry)
            #expect(try await store.load("account-1").count == 1)
            let error = await storeError { try await store.append(deposits([2]), to: "account-1") }
            #expect(error?.code == .storageUnavailable)
            #expect(error?.message.contains("read-only") == true, "\(error?.message ?? "")")
            #expect(try await writer.streamVersion("account-1") == 1)
        }
    }

    @Test("concurrent batches sharing a transaction fail alone and leave no gap")
    func groupCommitIsolatesFailures() async throws {
        try await withTemporaryDirectory { directory in
            let storage = try SQLiteEventStorage(path: directory.database())
            let store = EventStore(storage: storage, registry: F.registry)
            let existing = try await store.append(deposits([0]), to: "account-0")
            let duplicateID = try #require(existing.first?.envelope.id)
            // Every third batch reuses a stored event id; the rest are valid.
            let outcomes = try await withThrowingTaskGroup(of: (Int, EventStoreError.Code?).self) { group in
                for index in 1...60 {
                    group.addTask {
                        var events = deposits([index, index])
                        if index % 3 == 0 { events[1].id = duplicateID }
                        do {
                            try await store.publish(events, to: StreamID("account-\(index)"), expectedVersion: .noStream)
                            return (index, nil)
                        } catch let error as EventStoreError {
                            return (index, error.code)
                        }
                    }
                }
                return try await group.reduce(into: [Int: EventStoreError.Code?]()) { $0[$1.0] = $1.1 }
            }
            for (index, code) in outcomes {
                #expect(code == (index % 3 == 0 ? .duplicateEventID : nil), "batch \(index)")
                #expect(try await storage.streamVersion(StreamID("account-\(index)")) == (index % 3 == 0 ? 0 : 2))
            }
            let all = try await storage.readAll(after: 0, limit: 1_000)
            #expect(all.map(\.position) == Array(1...Int64(1 + 40 * 2)), "positions stay dense")
            #expect(try await storage.outboxCounts().pending == 80)
        }
    }

    @Test("concurrent appenders to one stream: exactly one wins per expected version")
    func concurrentAppenders() async throws {
        try await withTemporaryDirectory { directory in
            let storage = try SQLiteEventStorage(path: directory.database())
            let store = EventStore(storage: storage, registry: F.registry)
            let writers = 12
            for round in Int64(0)..<5 {
                let results = await withTaskGroup(of: Result<[StoredEvent], any Error>.self) { group in
                    for writer in 0..<writers {
                        group.addTask {
                            do {
                                return .success(try await store.append(deposits([writer]), to: "account-1", expectedVersion: .exact(round)))
                            } catch {
                                return .failure(error)
                            }
                        }
                    }
                    return await group.reduce(into: []) { $0.append($1) }
                }
                let winners = results.compactMap { try? $0.get() }
                #expect(winners.count == 1, "round \(round)")
                #expect(winners.first?.first?.streamVersion == round + 1)
                for case .failure(let error) in results {
                    let error = try #require(error as? EventStoreError)
                    #expect(error.code == .concurrencyConflict)
                    #expect(error.expectedVersion == .exact(round))
                    #expect(error.actualVersion == round + 1)
                    #expect(error.streamID == "account-1")
                }
            }
            #expect(try await storage.streamVersion("account-1") == 5)

            // Writers that reload and retry until they win: every one lands exactly once.
            try await withThrowingTaskGroup(of: Void.self) { group in
                for writer in 0..<writers {
                    group.addTask {
                        while true {
                            let version = try await store.streamVersion("account-1")
                            do {
                                try await store.append(deposits([writer]), to: "account-1", expectedVersion: .exact(version))
                                return
                            } catch let error as EventStoreError where error.code == .concurrencyConflict {
                                continue
                            }
                        }
                    }
                }
                try await group.waitForAll()
            }
            let versions = try await store.load("account-1").map(\.streamVersion)
            #expect(versions == Array(1...Int64(5 + writers)))
        }
    }
}
