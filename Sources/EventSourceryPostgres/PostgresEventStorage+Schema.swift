import EventSourcery
import Foundation
import Logging
import PostgresNIO

extension PostgresEventStorage {
    /// One step of the schema's history. Migrations run in order, each in its own
    /// transaction, and are recorded in `schema_migrations`; a migration never changes
    /// once released (add a new one instead).
    struct Migration {
        var version: Int
        var name: String
        /// The statements, with `{schema}` standing for the quoted schema name.
        var statements: [String]
    }

    /// The schema's migrations, oldest first.
    ///
    /// `v1` creates:
    /// - `store_head`: one row with the last global position. Appending transactions lock
    ///   it (`FOR UPDATE`) before they assign positions, which makes position order equal
    ///   commit order (see ``PostgresEventStorage``).
    /// - `streams`: each stream's current version.
    /// - `events`: the events; `position` is the global order, unique
    ///   `(stream_id, stream_version)` and `event_id`.
    /// - `outbox`: one row per published event, `id` = the event's position, with state,
    ///   attempts, retry time, lease and publish time; partial indexes keep the unpublished
    ///   rows cheap to scan.
    /// - `inbox`, `checkpoints`, `snapshots`.
    ///
    /// `v2` creates `held_events`: the events consumers hold back for retries (``HeldEvent``).
    static let migrations: [Migration] = [
        Migration(
            version: 1,
            name: "create event store",
            statements: [
                """
                CREATE TABLE {schema}.store_head (
                    id integer PRIMARY KEY CHECK (id = 1),
                    last_position bigint NOT NULL
                )
                """,
                "INSERT INTO {schema}.store_head (id, last_position) VALUES (1, 0)",
                """
                CREATE TABLE {schema}.streams (
                    stream_id text PRIMARY KEY,
                    version bigint NOT NULL
                )
                """,
                """
                CREATE TABLE {schema}.events (
                    position bigint PRIMARY KEY,
                    stream_id text NOT NULL,
                    stream_version bigint NOT NULL,
                    event_id uuid NOT NULL,
                    type_name text NOT NULL,
                    schema_version integer NOT NULL,
                    created_at timestamptz NOT NULL,
                    correlation_id uuid,
                    causation_id uuid,
                    trace_context jsonb NOT NULL DEFAULT '{}',
                    payload jsonb NOT NULL,
                    recorded_at timestamptz NOT NULL DEFAULT now(),
                    CONSTRAINT events_event_id_unique UNIQUE (event_id),
                    CONSTRAINT events_stream_version_unique UNIQUE (stream_id, stream_version)
                )
                """,
                """
                CREATE TABLE {schema}.outbox (
                    id bigint PRIMARY KEY REFERENCES {schema}.events (position),
                    stream_id text NOT NULL,
                    state text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'parked', 'published')),
                    attempts integer NOT NULL DEFAULT 0,
                    last_error text,
                    next_attempt_at timestamptz,
                    leased_until timestamptz,
                    published_at timestamptz
                )
                """,
                "CREATE INDEX outbox_unpublished_by_stream ON {schema}.outbox (stream_id, id) WHERE state <> 'published'",
                "CREATE INDEX outbox_unpublished ON {schema}.outbox (id) WHERE state <> 'published'",
                "CREATE INDEX outbox_published_at ON {schema}.outbox (published_at) WHERE state = 'published'",
                """
                CREATE TABLE {schema}.inbox (
                    consumer text NOT NULL,
                    event_id uuid NOT NULL,
                    processed_at timestamptz NOT NULL DEFAULT now(),
                    PRIMARY KEY (consumer, event_id)
                )
                """,
                """
                CREATE TABLE {schema}.checkpoints (
                    name text PRIMARY KEY,
                    position bigint NOT NULL,
                    state bytea NOT NULL,
                    updated_at timestamptz NOT NULL DEFAULT now()
                )
                """,
                """
                CREATE TABLE {schema}.snapshots (
                    stream_id text PRIMARY KEY,
                    version bigint NOT NULL,
                    schema_version integer NOT NULL,
                    state bytea NOT NULL,
                    taken_at timestamptz NOT NULL DEFAULT now()
                )
                """,
            ]
        ),
        Migration(
            version: 2,
            name: "held events",
            statements: [
                // A consumer's held events: one sequence per consumer and source stream, in
                // sequence_number order. The head's state, attempts, last_error and
                // next_attempt_at describe its sequence.
                """
                CREATE TABLE {schema}.held_events (
                    sequence_number bigserial PRIMARY KEY,
                    consumer text NOT NULL,
                    source_context text NOT NULL,
                    source_stream text NOT NULL,
                    stream_version bigint NOT NULL,
                    event_id uuid NOT NULL,
                    type_name text NOT NULL,
                    schema_version integer NOT NULL,
                    created_at timestamptz NOT NULL,
                    correlation_id uuid,
                    causation_id uuid,
                    trace_context text NOT NULL,
                    payload text NOT NULL,
                    attempts integer NOT NULL,
                    last_error text,
                    next_attempt_at timestamptz NOT NULL,
                    state text NOT NULL CHECK (state IN ('waiting', 'parked')),
                    CONSTRAINT held_events_event_unique UNIQUE (consumer, event_id)
                )
                """,
                "CREATE INDEX held_events_sequence ON {schema}.held_events (consumer, source_context, source_stream, sequence_number)",
            ]
        ),
    ]

    /// Creates the schema when missing and applies the migrations it lacks.
    ///
    /// Safe to run from several processes at once: each run holds a transaction-level
    /// advisory lock on the schema's name while it checks and migrates.
    static func migrate(on connection: PostgresConnection, configuration: Configuration, logger: Logger) async throws {
        let schema = quotedIdentifier(configuration.schema)
        let lockKey = "eventsourcery.migrate." + configuration.schema
        try await connection.withTransaction(logger: logger) { connection in
            _ = try await connection.query("SELECT pg_advisory_xact_lock(hashtext(\(lockKey)))", logger: logger).collect()
            try await connection.query("CREATE SCHEMA IF NOT EXISTS \(unescaped: schema)", logger: logger)
            try await connection.query(
                """
                CREATE TABLE IF NOT EXISTS \(unescaped: schema).schema_migrations (
                    version integer PRIMARY KEY,
                    name text NOT NULL,
                    applied_at timestamptz NOT NULL DEFAULT now()
                )
                """,
                logger: logger
            )
            var applied: Set<Int> = []
            for try await version in try await connection.query(
                "SELECT version FROM \(unescaped: schema).schema_migrations", logger: logger
            ).decode(Int.self) {
                applied.insert(version)
            }
            if let newest = applied.max(), let known = migrations.last?.version, newest > known {
                throw EventStoreError(
                    .storageUnavailable,
                    message: "The schema '\(configuration.schema)' has migration \(newest), newer than this library knows "
                        + "(\(known)). Upgrade the library before using this store."
                )
            }
            for migration in migrations where !applied.contains(migration.version) {
                logger.info(
                    "Migrating the event store schema",
                    metadata: ["es.schema": "\(configuration.schema)", "es.migration": "\(migration.version) \(migration.name)"]
                )
                for statement in migration.statements {
                    let sql = statement.replacingOccurrences(of: "{schema}", with: schema)
                    try await connection.query(PostgresQuery(unsafeSQL: sql), logger: logger)
                }
                try await connection.query(
                    "INSERT INTO \(unescaped: schema).schema_migrations (version, name) VALUES (\(migration.version), \(migration.name))",
                    logger: logger
                )
            }
        }
    }

    /// `name` as a double-quoted SQL identifier.
    static func quotedIdentifier(_ name: String) -> String {
        "\"" + name.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }
}
