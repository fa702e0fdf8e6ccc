public import EventSourcery

extension SQLiteEventStorage {
    /// How an ``SQLiteEventStorage`` opens and uses its database file.
    ///
    /// The defaults are durable: every commit is on disk before ``SQLiteEventStorage/commit(_:)``
    /// returns, even if the machine loses power.
    ///
    /// ```swift
    /// var configuration = SQLiteEventStorage.Configuration(path: "/var/lib/orders/events.sqlite")
    /// configuration.busyTimeout = .seconds(2)
    /// let storage = try SQLiteEventStorage(configuration: configuration)
    /// ```
    public struct Configuration: Sendable {
        /// The path of the database file. Its directory must exist; the file is created
        /// when missing (unless ``isReadOnly``), together with its `-wal` and `-shm` files.
        public var path: String

        /// When SQLite waits for the disk. Defaults to ``SynchronousMode/full``.
        public var synchronous: SynchronousMode = .full

        /// How long a write waits for a lock held by another process or connection
        /// before failing with ``EventStoreError/Code/storageUnavailable``. Defaults to 5 seconds.
        ///
        /// Writers of this storage never wait for each other this way: they queue up in
        /// the storage's single writer. The timeout matters only when another process
        /// writes to the same file (or holds a transaction open on it).
        public var busyTimeout: Duration = .seconds(5)

        /// Opens the database read-only: every write fails with
        /// ``EventStoreError/Code/storageUnavailable`` and the schema is not migrated (it
        /// must already be current). Defaults to `false`.
        public var isReadOnly = false

        /// The most connections that read concurrently (reads never block the writer
        /// nor each other in WAL mode). Defaults to 4.
        public var maximumReaderCount = 4

        /// The page cache of each connection, in KiB. Defaults to 16 MiB; SQLite's own
        /// default of 2 MiB makes appends to large stores slower, as the unique indexes on
        /// event ids and stream versions stop fitting in memory.
        public var pageCacheKiB = 16 * 1024

        /// How many pages (4 KiB each) the WAL grows to before a commit folds it back into the
        /// database file (SQLite's `wal_autocheckpoint`). Defaults to 10,000 pages, about
        /// 40 MiB; SQLite's default of 1,000 makes appends about 40% slower, because the
        /// checkpoint runs inside a commit and random event ids dirty a different index page
        /// per event, which a larger WAL writes back once instead of many times. A larger
        /// value costs disk space and a longer recovery after a crash.
        public var walAutocheckpointPages = 10_000

        /// Whether relays waiting on this storage are woken by commits of other processes on
        /// the same file as they happen: on Linux an `inotify` watch on the write-ahead log,
        /// read on a thread of its own, started by the first
        /// ``SQLiteEventStorage/waitForOutboxChange(timeout:)``. Defaults to `true`; without
        /// it (or without inotify) only ``crossProcessPollInterval`` finds those commits.
        public var watchesOtherProcesses = true

        /// How often a relay waiting on this storage checks the write-ahead log's
        /// modification time for commits of other processes: the fallback when
        /// ``watchesOtherProcesses`` reports nothing. Defaults to 20 ms.
        public var crossProcessPollInterval: Duration = .milliseconds(20)

        /// Creates a configuration with the durable defaults for the database at `path`.
        /// ``SQLiteEventStorage/init(configuration:)`` checks it with ``validate()``.
        public init(path: String) {
            self.path = path
        }

        /// Checks every field: a path, a busy timeout of zero or more, at least one reader, a
        /// positive page cache, a WAL checkpoint threshold of zero (never) or more pages and a
        /// positive cross-process poll interval.
        ///
        /// - Throws: ``EventStoreError`` ``EventStoreError/Code/invalidArgument`` naming the
        ///   ``EventStoreError/field``.
        public func validate() throws(EventStoreError) {
            guard !path.isEmpty else { throw .invalidField("path", "must name the database file") }
            guard busyTimeout >= .zero else { throw .invalidField("busyTimeout", "must not be negative, got \(busyTimeout)") }
            guard maximumReaderCount > 0 else {
                throw .invalidField("maximumReaderCount", "must be positive, got \(maximumReaderCount)")
            }
            guard pageCacheKiB > 0 else { throw .invalidField("pageCacheKiB", "must be positive, got \(pageCacheKiB)") }
            guard walAutocheckpointPages >= 0 else {
                throw .invalidField("walAutocheckpointPages", "must not be negative, got \(walAutocheckpointPages)")
            }
            guard crossProcessPollInterval > .zero else {
                throw .invalidField("crossProcessPollInterval", "must be positive, got \(crossProcessPollInterval)")
            }
        }
    }

    /// SQLite's `synchronous` setting, which decides when a commit waits for the disk.
    ///
    /// The database always runs in WAL (write-ahead log) mode.
    public enum SynchronousMode: String, Sendable, CaseIterable {
        /// `synchronous = FULL`: each commit waits until its WAL frames are on disk (an
        /// `fsync` per transaction). A committed event survives a crash of the process
        /// *and* a power loss or kernel panic. The default: an event store is the system
        /// of record, and an event the outbox has published must never vanish.
        case full = "FULL"
        /// `synchronous = NORMAL`: commits do not wait for the disk; the WAL is synced at
        /// checkpoints. A committed event survives a crash of the process, but the last
        /// commits before a power loss or kernel panic may be lost (the database stays
        /// consistent). Use only when the events can be recreated, for example in tests
        /// or caches.
        case normal = "NORMAL"
    }
}
