import GRDB

extension SQLiteEventStorage {
    /// The migrations that create and update the schema, applied in order when a storage
    /// opens. Applied migrations are recorded in `grdb_migrations`, so opening a database
    /// again runs nothing. Never edit a shipped migration: add a new one.
    ///
    /// Column conventions:
    /// - times (`created_at`, `processed_at`, `next_attempt_at`, `published_at`) are `REAL`
    ///   seconds since 2001-01-01 00:00:00 UTC, Foundation's reference date. A `Date`
    ///   round-trips bit for bit, so `createdUpTo` comparisons are exact, with
    ///   sub-microsecond precision. In SQL: `datetime(created_at + 978307200, 'unixepoch')`.
    /// - ids (`event_id`, `correlation_id`, `causation_id`) are 16-byte `BLOB`s: half the
    ///   size of their text form, which keeps the unique index on event ids small.
    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1: events, outbox, inbox, snapshots, checkpoints") { db in
            // The global order. AUTOINCREMENT never reuses a position, and a rolled back
            // transaction rolls back its positions too, so positions are dense: 1, 2, 3…
            // A stream's version is max(stream_version), found through the unique index:
            // one index seek, and no second table to update on every append.
            try db.execute(
                sql: """
                    CREATE TABLE events (
                        position INTEGER PRIMARY KEY AUTOINCREMENT,
                        stream_id TEXT NOT NULL,
                        stream_version INTEGER NOT NULL,
                        event_id BLOB NOT NULL UNIQUE,
                        type_name TEXT NOT NULL,
                        schema_version INTEGER NOT NULL,
                        created_at REAL NOT NULL,
                        correlation_id BLOB,
                        causation_id BLOB,
                        trace_context TEXT,
                        payload BLOB NOT NULL,
                        UNIQUE (stream_id, stream_version)
                    );

                    -- One row per event appended with publish. Outbox order is id order.
                    -- state: 'pending', 'parked' or 'published'. leased_until: a relay claimed
                    -- the entry and nobody else gets it before then.
                    CREATE TABLE outbox (
                        id INTEGER PRIMARY KEY AUTOINCREMENT,
                        position INTEGER NOT NULL,
                        stream_id TEXT NOT NULL,
                        state TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'parked', 'published')),
                        attempts INTEGER NOT NULL DEFAULT 0,
                        last_error TEXT,
                        next_attempt_at REAL,
                        leased_until REAL,
                        published_at REAL
                    );
                    -- The relay's scan: pending entries in outbox order.
                    CREATE INDEX outbox_pending ON outbox (id) WHERE state = 'pending';
                    CREATE INDEX outbox_parked ON outbox (id) WHERE state = 'parked';
                    -- Entries that may hold back the later entries of their stream: unpublished
                    -- entries that were claimed or failed. Small: the entries in flight.
                    CREATE INDEX outbox_in_flight ON outbox (stream_id, id)
                        WHERE state != 'published' AND (next_attempt_at IS NOT NULL OR leased_until IS NOT NULL);
                    -- Clean-up of published entries.
                    CREATE INDEX outbox_published ON outbox (published_at) WHERE state = 'published';

                    -- No expiry: a duplicate delivery is caught however late it arrives.
                    CREATE TABLE inbox (
                        consumer TEXT NOT NULL,
                        event_id BLOB NOT NULL,
                        processed_at REAL NOT NULL,
                        PRIMARY KEY (consumer, event_id)
                    ) WITHOUT ROWID;

                    -- The latest snapshot of each stream.
                    CREATE TABLE snapshots (
                        stream_id TEXT NOT NULL PRIMARY KEY,
                        version INTEGER NOT NULL,
                        schema_version INTEGER NOT NULL,
                        state BLOB NOT NULL
                    );

                    CREATE TABLE checkpoints (
                        name TEXT NOT NULL PRIMARY KEY,
                        position INTEGER NOT NULL,
                        state BLOB NOT NULL
                    );
                    """)
        }
        migrator.registerMigration("v2: held events") { db in
            // A consumer's held events: one sequence per consumer and source stream, in
            // sequence_number order. The event columns mirror `events`; the head's state,
            // attempts, last_error and next_attempt_at describe its sequence.
            try db.execute(
                sql: """
                    CREATE TABLE held_events (
                        sequence_number INTEGER PRIMARY KEY AUTOINCREMENT,
                        consumer TEXT NOT NULL,
                        source_context TEXT NOT NULL,
                        source_stream TEXT NOT NULL,
                        stream_version INTEGER NOT NULL,
                        event_id BLOB NOT NULL,
                        type_name TEXT NOT NULL,
                        schema_version INTEGER NOT NULL,
                        created_at REAL NOT NULL,
                        correlation_id BLOB,
                        causation_id BLOB,
                        trace_context TEXT,
                        payload BLOB NOT NULL,
                        attempts INTEGER NOT NULL,
                        last_error TEXT,
                        next_attempt_at REAL NOT NULL,
                        state TEXT NOT NULL CHECK (state IN ('waiting', 'parked')),
                        UNIQUE (consumer, event_id)
                    );
                    CREATE INDEX held_events_sequence ON held_events (consumer, source_context, source_stream, sequence_number);
                    """)
        }
        migrator.registerMigration("v4: command outbox") { db in
            // Commands sent through this store, and deadlines (commands due later), until the
            // relay sent them. The command columns mirror `events`; `seq` keeps the send
            // order among commands due at the same time. state: 'pending', 'parked', 'sent'
            // or 'cancelled'. (Schema version 3 is PostgreSQL's held events, which SQLite
            // added as v2; the numbers are aligned from here on.)
            try db.execute(
                sql: """
                    CREATE TABLE command_outbox (
                        seq INTEGER PRIMARY KEY AUTOINCREMENT,
                        command_id BLOB NOT NULL UNIQUE,
                        target TEXT NOT NULL,
                        type_name TEXT NOT NULL,
                        schema_version INTEGER NOT NULL,
                        created_at REAL NOT NULL,
                        correlation_id BLOB,
                        causation_id BLOB,
                        trace_context TEXT,
                        payload BLOB NOT NULL,
                        due_at REAL NOT NULL,
                        state TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'parked', 'sent', 'cancelled')),
                        attempts INTEGER NOT NULL DEFAULT 0,
                        last_error TEXT,
                        next_attempt_at REAL,
                        leased_until REAL,
                        sent_at REAL
                    );
                    -- The relay's scan: pending commands in due order.
                    CREATE INDEX command_outbox_due ON command_outbox (due_at, seq) WHERE state = 'pending';
                    """)
        }
        migrator.registerMigration("v5: events by correlation id") { db in
            // A flow's events (flow-trace, `readFlow(correlationID:)`) through an index
            // instead of a scan of the whole store.
            try db.execute(sql: "CREATE INDEX events_correlation ON events (correlation_id, position)")
        }
        return migrator
    }
}
