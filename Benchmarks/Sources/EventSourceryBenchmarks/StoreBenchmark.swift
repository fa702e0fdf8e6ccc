import ArgumentParser
import EventSourcery
import EventSourcerySQLite
import Foundation
import GRDB

#if canImport(Glibc)
    import Glibc
#endif

/// SQLite event store benchmarks: appends (with and without outbox rows), `readAll`,
/// aggregate loading with and without a snapshot, and the outbox relay's claim + mark
/// published cycle.
///
/// Every scenario uses its own database file in a temporary directory (removed at the
/// end) with the storage's default, durable settings: WAL and `synchronous = FULL`, one
/// `fsync` per commit.
struct StoreBenchmark: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "store",
        abstract: "SQLite event store benchmarks: appends, readAll, aggregate loading, outbox."
    )

    @Option(help: "Events appended in each 100-events-per-transaction scenario; also what readAll and the outbox scenario read.")
    var events = 100_000

    @Option(help: "Transactions in the 1-event-per-transaction scenarios.")
    var singleAppends = 2_000

    @Option(help: "Concurrent writers in the concurrent publish scenario (their batches share transactions: group commit).")
    var writers = 8

    @Option(help: "SQLite synchronous mode: FULL (durable, the default) or NORMAL.")
    var synchronous = "FULL"

    @Option(help: "WAL pages before a checkpoint (SQLiteEventStorage.Configuration.walAutocheckpointPages).")
    var walAutocheckpoint = SQLiteEventStorage.Configuration(path: "").walAutocheckpointPages

    @Option(help: "Run only these scenario groups (comma-separated): append, concurrent, encoded, baseline, read, aggregate, outbox.")
    var only: String?

    @Option(help: "Directory for the database files (default: a new temporary directory, removed afterwards).")
    var directory: String?

    private typealias F = StoreBenchmarkFixtures

    func validate() throws {
        guard SQLiteEventStorage.SynchronousMode(rawValue: synchronous.uppercased()) != nil else {
            throw ValidationError("--synchronous must be FULL or NORMAL")
        }
        guard events >= 100, singleAppends >= 1 else {
            throw ValidationError("--events must be at least 100 and --single-appends at least 1")
        }
    }

    func run() async throws {
        let root: URL
        let removeRoot: Bool
        if let directory {
            root = URL(fileURLWithPath: directory, isDirectory: true)
            removeRoot = false
        } else {
            root = FileManager.default.temporaryDirectory.appendingPathComponent(
                "eventsourcery-bench-\(UUID().uuidString)", isDirectory: true)
            removeRoot = true
        }
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
        defer { if removeRoot { try? FileManager.default.removeItem(at: root) } }

        let mode = SQLiteEventStorage.SynchronousMode(rawValue: synchronous.uppercased()) ?? .full
        let sqliteVersion = try await DatabaseQueue().read { db in try String.fetchOne(db, sql: "SELECT sqlite_version()") } ?? "?"
        print(
            "SQLite event store benchmark: SQLite \(sqliteVersion) via GRDB, WAL (autocheckpoint \(walAutocheckpoint) pages), synchronous = \(mode.rawValue), "
                + "\(ProcessInfo.processInfo.activeProcessorCount) cores, files in \(root.path)")
        print("")
        BenchmarkTable.header()

        func open(_ name: String) throws -> SQLiteEventStorage {
            var configuration = SQLiteEventStorage.Configuration(path: root.appendingPathComponent("\(name).sqlite").path)
            configuration.synchronous = mode
            configuration.walAutocheckpointPages = walAutocheckpoint
            return try SQLiteEventStorage(configuration: configuration)
        }

        let groups = only.map { Set($0.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces).lowercased() }) }
        func runs(_ group: String) -> Bool { groups?.contains(group) ?? true }

        // MARK: Appends
        // The readAll and outbox scenarios read what "publish, 100 events/tx" wrote.
        let published = try open("publish-100")
        if runs("append") || runs("read") || runs("outbox") {
            if runs("append") {
                try await appendScenario(
                    "publish, 1 event/tx", storage: open("publish-1"), transactions: singleAppends, perTransaction: 1, publishes: true)
                try await appendScenario(
                    "append, 1 event/tx", storage: open("append-1"), transactions: singleAppends, perTransaction: 1, publishes: false)
            }
            try await appendScenario(
                "publish, 100 events/tx", storage: published, transactions: events / 100, perTransaction: 100, publishes: true)
            if runs("append") {
                try await appendScenario(
                    "append, 100 events/tx", storage: open("append-100"), transactions: events / 100, perTransaction: 100, publishes: false)
            }
        }
        if runs("concurrent") {
            try await concurrentPublishScenario(storage: open("publish-concurrent"), transactions: events / 100)
        }
        if runs("encoded") {
            try await encodedScenario(storage: open("encoded-100"), transactions: events / 100)
        }
        if runs("baseline") {
            for ordered in [false, true] {
                try await rawGRDBBaseline(
                    path: root.appendingPathComponent("raw-grdb-\(ordered).sqlite").path, mode: mode, transactions: events / 100,
                    timeOrderedIDs: ordered)
            }
        }

        // MARK: Reading
        if runs("read") {
            try await readAllScenario(storage: published)
        }

        // MARK: Aggregates
        if runs("aggregate") {
            let aggregates = try open("aggregates")
            for length in [1_000, 10_000] {
                try await aggregateScenario(storage: aggregates, length: length)
            }
        }

        // MARK: Outbox
        if runs("outbox") {
            try await outboxScenario(storage: published)
        }
        print("")
        print(
            "p50/p99: per transaction for appends, per call for reads and loads, per claim + mark-published cycle for the outbox. "
                + "CPU/event: CPU time of all threads per event (per load for loads).")
    }

    // MARK: Scenarios

    private func appendScenario(
        _ name: String, storage: SQLiteEventStorage, transactions: Int, perTransaction: Int, publishes: Bool
    ) async throws {
        let store = EventStore(storage: storage, registry: F.registry)
        let streams = 1_000
        var versions = [Int64](repeating: 0, count: streams)
        var latencies: [Duration] = []
        latencies.reserveCapacity(transactions)
        // The envelopes are made beforehand: creating them (a UUID and a Date each) is the
        // caller's work, not the store's. Encoding them to JSON is the store's, and counts.
        let ids = try (0..<streams).map { try StreamID("bench-\($0)") }
        let batches = (0..<transactions).map { F.deposits(perTransaction, account: ids[$0 % streams].rawValue) }
        let clock = ContinuousClock()
        let cpu = CPUTime.now()
        let start = clock.now
        for (transaction, batch) in batches.enumerated() {
            let stream = transaction % streams
            let id = ids[stream]
            let before = clock.now
            if publishes {
                try await store.publish(batch, to: id, expectedVersion: .exact(versions[stream]))
            } else {
                try await store.append(batch, to: id, expectedVersion: .exact(versions[stream]))
            }
            latencies.append(clock.now - before)
            versions[stream] += Int64(perTransaction)
        }
        BenchmarkTable.line(
            name, events: transactions * perTransaction, elapsed: clock.now - start, cpu: CPUTime.now() - cpu, latencies: latencies)
    }

    /// `writers` tasks publish batches of 100 events at once, each to its own streams.
    private func concurrentPublishScenario(storage: SQLiteEventStorage, transactions: Int) async throws {
        let store = EventStore(storage: storage, registry: F.registry)
        let writers = max(1, self.writers)
        let perWriter = transactions / writers
        let work = try (0..<writers).map { writer in
            try (0..<perWriter).map { transaction in
                let id = try StreamID("bench-\(writer)-\(transaction % 100)")
                return (id, F.deposits(100, account: id.rawValue))
            }
        }
        let clock = ContinuousClock()
        let cpu = CPUTime.now()
        let start = clock.now
        let latencies = try await withThrowingTaskGroup(of: [Duration].self) { group in
            for batches in work {
                group.addTask {
                    var latencies: [Duration] = []
                    for (transaction, (id, batch)) in batches.enumerated() {
                        let before = clock.now
                        try await store.publish(batch, to: id, expectedVersion: .exact(Int64(transaction / 100) * 100))
                        latencies.append(clock.now - before)
                    }
                    return latencies
                }
            }
            return try await group.reduce(into: []) { $0 += $1 }
        }
        BenchmarkTable.line(
            "publish, 100 events/tx, \(writers) writers", events: perWriter * writers * 100,
            elapsed: clock.now - start, cpu: CPUTime.now() - cpu, latencies: latencies)
    }

    /// Commits events encoded beforehand, so the time excludes JSON encoding of the payloads.
    private func encodedScenario(storage: SQLiteEventStorage, transactions: Int) async throws {
        let streams = 1_000
        var batches: [WriteBatch] = []
        batches.reserveCapacity(transactions)
        for transaction in 0..<transactions {
            let id = try StreamID("bench-\(transaction % streams)")
            let encoded = try F.deposits(100, account: id.rawValue).map { envelope throws(EventStoreError) in
                try EventRegistry.encode(envelope)
            }
            var batch = WriteBatch()
            batch.append(encoded: encoded, to: id, expectedVersion: .any, publishes: true)
            batches.append(batch)
        }
        var latencies: [Duration] = []
        let clock = ContinuousClock()
        let cpu = CPUTime.now()
        let start = clock.now
        for batch in batches {
            let before = clock.now
            _ = try await storage.commit(batch)
            latencies.append(clock.now - before)
        }
        BenchmarkTable.line(
            "commit encoded, 100/tx +outbox", events: transactions * 100, elapsed: clock.now - start, cpu: CPUTime.now() - cpu,
            latencies: latencies)
    }

    /// The floor: the same rows (event + outbox row) inserted with plain GRDB statements,
    /// 100 events per transaction, no store logic and no JSON.
    /// With `timeOrderedIDs`, event ids grow with time (like UUID version 7) instead of
    /// being random (version 4), which shows what random ids cost the unique index.
    private func rawGRDBBaseline(
        path: String, mode: SQLiteEventStorage.SynchronousMode, transactions: Int, timeOrderedIDs: Bool
    ) async throws {
        let pool = try DatabasePool(path: path)
        try await pool.writeWithoutTransaction { db in
            // The storage's settings: see SQLiteEventStorage.Configuration.
            try db.execute(sql: "PRAGMA synchronous = \(mode.rawValue); PRAGMA wal_autocheckpoint = 10000; PRAGMA cache_size = -16384")
            try db.execute(
                sql: """
                    CREATE TABLE events (
                        position INTEGER PRIMARY KEY AUTOINCREMENT, stream_id TEXT NOT NULL, stream_version INTEGER NOT NULL,
                        event_id BLOB NOT NULL UNIQUE, type_name TEXT NOT NULL, schema_version INTEGER NOT NULL,
                        created_at REAL NOT NULL, correlation_id BLOB, causation_id BLOB, trace_context TEXT, payload BLOB NOT NULL,
                        UNIQUE (stream_id, stream_version));
                    CREATE TABLE outbox (id INTEGER PRIMARY KEY AUTOINCREMENT, position INTEGER NOT NULL, stream_id TEXT NOT NULL,
                        state TEXT NOT NULL DEFAULT 'pending');
                    CREATE INDEX outbox_pending ON outbox (id) WHERE state = 'pending';
                    """)
        }
        let payload = Data(#"{"accountID":"bench-1","amount":42}"#.utf8)
        let ids = (0..<Int64(transactions) * 100).map { timeOrderedIDs ? Self.timeOrderedID($0) : UUID() }
        var latencies: [Duration] = []
        let clock = ContinuousClock()
        let cpu = CPUTime.now()
        let start = clock.now
        for transaction in 0..<transactions {
            let stream = "bench-\(transaction % 1_000)"
            let firstVersion = Int64(transaction / 1_000) * 100
            let before = clock.now
            try await pool.write { db in
                let insertEvent = try db.cachedStatement(
                    sql: """
                        INSERT INTO events (stream_id, stream_version, event_id, type_name, schema_version, created_at, payload)
                        VALUES (?, ?, ?, ?, ?, ?, ?)
                        """)
                let insertOutbox = try db.cachedStatement(sql: "INSERT INTO outbox (position, stream_id) VALUES (?, ?)")
                for index in 0..<Int64(100) {
                    let id = ids[transaction * 100 + Int(index)]
                    try insertEvent.execute(arguments: [
                        stream, firstVersion + index + 1, id, "Deposited", 1, Date().timeIntervalSinceReferenceDate, payload,
                    ])
                    try insertOutbox.execute(arguments: [db.lastInsertedRowID, stream])
                }
            }
            latencies.append(clock.now - before)
        }
        BenchmarkTable.line(
            "raw GRDB inserts, 100/tx +outbox, \(timeOrderedIDs ? "ordered" : "random") ids", events: transactions * 100,
            elapsed: clock.now - start, cpu: CPUTime.now() - cpu, latencies: latencies)
        try pool.close()
    }

    /// A UUID whose first 8 bytes grow with `sequence`, as the timestamp of a version 7 UUID does.
    private static func timeOrderedID(_ sequence: Int64) -> UUID {
        var bytes = UUID().uuid
        withUnsafeMutableBytes(of: &bytes) { buffer in
            withUnsafeBytes(of: UInt64(sequence).bigEndian) { buffer.copyMemory(from: $0) }
        }
        return UUID(uuid: bytes)
    }

    private func readAllScenario(storage: SQLiteEventStorage) async throws {
        let store = EventStore(storage: storage, registry: F.registry)
        let page = 1_000
        for decoded in [false, true] {
            var latencies: [Duration] = []
            var position: Int64 = 0
            var count = 0
            let clock = ContinuousClock()
            let cpu = CPUTime.now()
            let start = clock.now
            while true {
                let before = clock.now
                let last: Int64?
                let read: Int
                if decoded {
                    let events = try await store.readAll(after: position, limit: page)
                    last = events.last?.position
                    read = events.count
                } else {
                    let events = try await store.readAllRecorded(after: position, limit: page)
                    last = events.last?.position
                    read = events.count
                }
                guard let last else { break }
                latencies.append(clock.now - before)
                position = last
                count += read
            }
            BenchmarkTable.line(
                decoded ? "readAll decoded, pages of \(page)" : "readAllRecorded raw, pages of \(page)", events: count,
                elapsed: clock.now - start, cpu: CPUTime.now() - cpu, latencies: latencies)
        }
    }

    private func aggregateScenario(storage: SQLiteEventStorage, length: Int) async throws {
        let store = EventStore(storage: storage, registry: F.registry)
        let plain = Repository<F.Account>(store: store)
        let snapshotting = Repository<F.Account>(store: store, snapshotFrequency: 100)
        let id = "account-\(length)"
        let stream = try F.Account.streamID(for: id)
        // The first length - 1 events in bulk, then the last through the snapshotting
        // repository, which stores the snapshot at version `length`.
        var written = 0
        while written < length - 1 {
            let count = min(1_000, length - 1 - written)
            try await store.append(F.deposits(count, account: id), to: stream, expectedVersion: .exact(Int64(written)))
            written += count
        }
        try await snapshotting.update(id) { $0.deposit(1) }
        guard try await storage.latestSnapshot(of: stream)?.version == Int64(length) else {
            throw ValidationError("the snapshot was not stored at version \(length)")
        }
        for (name, repository) in [("without snapshot", plain), ("from snapshot", snapshotting)] {
            let runs = length >= 10_000 ? 20 : 100
            var latencies: [Duration] = []
            let clock = ContinuousClock()
            let cpu = CPUTime.now()
            let start = clock.now
            for _ in 0..<runs {
                let before = clock.now
                guard let loaded = try await repository.load(id), loaded.version == Int64(length), loaded.aggregate.applied == length else {
                    throw ValidationError("loading \(id) gave the wrong state")
                }
                latencies.append(clock.now - before)
            }
            BenchmarkTable.line(
                "load \(length)-event aggregate \(name) (loads)", events: runs, elapsed: clock.now - start, cpu: CPUTime.now() - cpu,
                latencies: latencies)
        }
    }

    private func outboxScenario(storage: SQLiteEventStorage) async throws {
        let batch = 100
        var latencies: [Duration] = []
        var count = 0
        let clock = ContinuousClock()
        let cpu = CPUTime.now()
        let start = clock.now
        while true {
            let before = clock.now
            let entries = try await storage.claimOutboxEntries(limit: batch, now: Date(), leaseDuration: 30)
            if entries.isEmpty { break }
            try await storage.markPublished(entries.map(\.id), at: Date())
            latencies.append(clock.now - before)
            count += entries.count
        }
        BenchmarkTable.line(
            "outbox claim + markPublished, \(batch)", events: count, elapsed: clock.now - start, cpu: CPUTime.now() - cpu,
            latencies: latencies)
        let counts = try await storage.outboxCounts()
        guard counts.pending == 0, counts.published == count else {
            throw ValidationError("the outbox was not drained: \(counts)")
        }
    }
}
