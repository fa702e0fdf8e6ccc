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
    /// `v2` lets appends run concurrently (see "Global order without lost events" on
    /// ``PostgresEventStorage``): it drops `store_head`, gives `streams` the position of each
    /// stream's last event, and creates `append_events`, the function that appends one
    /// batch in one statement.
    ///
    /// `v3` creates `held_events`: the events consumers hold back for retries (``HeldEvent``).
    ///
    /// `v6` replaces `append_events` by ``appendFunctionNotifyingWhenAsked``, which notifies
    /// only when given a channel, so that appends can leave the notification to after their
    /// commit.
    ///
    /// `v7` creates `commit_each` (``commitEachFunction``): a consumer's batches, each with its
    /// inbox entry, in one call.
    ///
    /// `v8` replaces `commit_each` by ``commitEachSetBasedFunction``, which writes all batches
    /// with one statement per table and falls back to the batch-by-batch blocks only when that
    /// fails.
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
            name: "concurrent appends",
            statements: [
                "ALTER TABLE {schema}.streams ADD COLUMN last_position bigint NOT NULL DEFAULT 0",
                """
                UPDATE {schema}.streams s SET last_position = coalesce(
                    (SELECT max(e.position) FROM {schema}.events e WHERE e.stream_id = s.stream_id), 0)
                """,
                "DROP TABLE {schema}.store_head",
                appendFunction,
            ]
        ),
        Migration(
            version: 3,
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
        Migration(
            version: 4,
            name: "command outbox",
            statements: [
                // Commands sent through this store, and deadlines (commands due later), until
                // the relay sent them. `seq` keeps the send order among commands due at the
                // same time.
                """
                CREATE TABLE {schema}.command_outbox (
                    seq bigserial PRIMARY KEY,
                    command_id uuid NOT NULL UNIQUE,
                    target text NOT NULL,
                    type_name text NOT NULL,
                    schema_version integer NOT NULL,
                    created_at timestamptz NOT NULL,
                    correlation_id uuid,
                    causation_id uuid,
                    trace_context text NOT NULL,
                    payload text NOT NULL,
                    due_at timestamptz NOT NULL,
                    state text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'parked', 'sent', 'cancelled')),
                    attempts integer NOT NULL DEFAULT 0,
                    last_error text,
                    next_attempt_at timestamptz,
                    leased_until timestamptz,
                    sent_at timestamptz
                )
                """,
                "CREATE INDEX command_outbox_due ON {schema}.command_outbox (due_at, seq) WHERE state = 'pending'",
            ]
        ),
        Migration(
            version: 5,
            name: "events by correlation id",
            statements: [
                // A flow's events (flow-trace, `readFlow(correlationID:)`) through an index
                // instead of a scan of the whole store.
                "CREATE INDEX events_correlation ON {schema}.events (correlation_id, position)"
            ]
        ),
        Migration(
            version: 6,
            name: "notify after commit",
            statements: [appendFunctionNotifyingWhenAsked]
        ),
        Migration(
            version: 7,
            name: "commit each in one call",
            statements: [commitEachFunction]
        ),
        Migration(
            version: 8,
            name: "commit each set-based",
            statements: [commitEachSetBasedFunction]
        ),
    ]

    /// `append_events`: appends a batch's events to their streams in one statement.
    ///
    /// It first takes a transaction-level advisory lock per stream (sorted, so two batches
    /// never deadlock), and only then the transaction id. For each append (`in_streams[i]`,
    /// `in_expected[i]`: -1 any, 0 no stream, n exact; `in_counts[i]` events) it locks the
    /// stream's row (creating it when new), checks the
    /// expected version (SQLSTATE `ES001`, detail `<append index> <actual version>`), and
    /// checks that no event of the stream has a position above the ones this transaction
    /// hands out (SQLSTATE `ES002`: the transaction's id is older than that of a transaction
    /// that appended to the stream and committed first; retrying in a new transaction
    /// succeeds). Positions are `transaction id × 2^20 + n`, n counting this transaction's
    /// events. Then it inserts the events and, where `publishes[j]`, their outbox rows,
    /// updates the streams and notifies `in_channel` when anything was published (since
    /// migration 6: only when `in_channel` is not null, see ``appendFunctionNotifyingWhenAsked``).
    /// Returns each event's position and stream version, in order.
    static let appendFunction = appendFunctionText(create: "CREATE FUNCTION", notifyWhen: "true = ANY (in_publishes)")

    /// `append_events` as migration 6 replaces it: the same, except that it notifies only when
    /// `in_channel` is not null. Commits made while ``PostgresEventStorage/run()`` runs pass
    /// null and leave the notification to the storage's notice sender, which sends it after
    /// the commit in a transaction of its own: a transaction that notifies holds PostgreSQL's
    /// notification lock (one per server) from its pre-commit through its commit record's
    /// flush, so appends that notified could not commit in parallel (see docs/POSTGRESQL.md).
    static let appendFunctionNotifyingWhenAsked = appendFunctionText(
        create: "CREATE OR REPLACE FUNCTION", notifyWhen: "in_channel IS NOT NULL AND true = ANY (in_publishes)")

    /// `commit_each`: commits several batches of appends, each with an optional inbox entry,
    /// atomically each on its own, in one call (see
    /// ``PostgresEventStorage/commitEach(_:)``).
    ///
    /// Batch `b` has an inbox entry when `in_has_inbox[b]` (`in_consumers[b]`,
    /// `in_inbox_event_ids[b]`) and `in_append_counts[b]` appends; the append and event arrays
    /// are those of `append_events`, the batches' parts one after another. The function first
    /// inserts all inbox entries with one statement, in one order (two transactions inserting
    /// the same entries do not deadlock; an entry a concurrent transaction is inserting is
    /// waited for). A batch whose entry existed is `processed` and writes nothing. Each other
    /// batch calls `append_events` with its part inside its own `BEGIN … EXCEPTION` block (a
    /// subtransaction): when it fails, only its writes are rolled back, its inbox entry is
    /// deleted again, and its row is `failed` with the error's SQLSTATE, message, detail and
    /// constraint, which the storage maps as it maps a failed `append_events` call. Returns one
    /// row per batch, in order: `committed` with the positions and stream versions of its
    /// events, `processed`, or `failed`.
    static let commitEachFunction = commitEachText(create: "CREATE FUNCTION", setBased: false)

    /// `commit_each` as migration 8 replaces it: the same arguments, rows and guarantees, with a
    /// set-based fast path.
    ///
    /// It first takes the advisory locks of all the batches' streams, sorted (as
    /// `append_events` does, before the transaction has an id), then inserts the inbox entries
    /// as before. Then, in one `BEGIN … EXCEPTION` block, it writes all batches that are not
    /// processed together: one statement creates their missing streams, one locks the streams'
    /// rows, one computes each append's version before it (the stream's version plus the
    /// events of the earlier appends to it in this call) and its first position (positions
    /// are `transaction id × 2^20 + n` in the batches' order, as `append_events` hands them
    /// out), one inserts all events, one their outbox rows and one updates the streams. When an
    /// expected version does not match, a stream has an event of a newer transaction, or any
    /// statement fails, the block's writes are rolled back and the function goes on as
    /// ``commitEachFunction`` does, batch by batch, so that each batch commits or fails alone
    /// with its own error.
    static let commitEachSetBasedFunction = commitEachText(create: "CREATE OR REPLACE FUNCTION", setBased: true)

    /// The text of `commit_each`, created with `create`, with the set-based fast path of
    /// ``commitEachSetBasedFunction`` when `setBased`.
    private static func commitEachText(create: String, setBased: Bool) -> String {
        """
        \(create) {schema}.commit_each(
            in_has_inbox boolean[], in_consumers text[], in_inbox_event_ids uuid[], in_append_counts integer[],
            in_streams text[], in_expected bigint[], in_counts integer[],
            in_event_ids uuid[], in_type_names text[], in_schema_versions integer[], in_created_ats timestamptz[],
            in_correlation_ids text[], in_causation_ids text[], in_trace_contexts text[], in_payloads text[],
            in_publishes boolean[], in_channel text, in_notice text
        ) RETURNS TABLE (
            outcome text, event_positions bigint[], event_versions bigint[],
            error_state text, error_message text, error_detail text, error_constraint text
        )
        LANGUAGE plpgsql AS $fn$
        DECLARE
            writes boolean[];
            first_append integer := 1;
            last_append integer;
            first_event integer := 1;
            last_event integer;
        \(setBased ? commitEachDeclarations : "")BEGIN
        \(setBased ? streamLocks : "")    WITH inserted AS (
                INSERT INTO {schema}.inbox (consumer, event_id)
                SELECT e.consumer, e.event_id FROM unnest(in_has_inbox, in_consumers, in_inbox_event_ids) AS e (has, consumer, event_id)
                WHERE e.has ORDER BY e.consumer, e.event_id
                ON CONFLICT DO NOTHING RETURNING consumer, event_id
            )
            SELECT array_agg(NOT e.has OR i.consumer IS NOT NULL ORDER BY e.n) INTO writes
            FROM unnest(in_has_inbox, in_consumers, in_inbox_event_ids) WITH ORDINALITY AS e (has, consumer, event_id, n)
            LEFT JOIN inserted i ON e.has AND i.consumer = e.consumer AND i.event_id = e.event_id;
        \(setBased ? commitEachFastPath : "")    FOR b IN 1 .. coalesce(array_length(in_append_counts, 1), 0) LOOP
                last_append := first_append + in_append_counts[b] - 1;
                last_event := first_event - 1
                    + coalesce((SELECT sum(c)::integer FROM unnest(in_counts[first_append:last_append]) AS c), 0);
                outcome := 'processed';
                event_positions := NULL;
                event_versions := NULL;
                error_state := NULL;
                error_message := NULL;
                error_detail := NULL;
                error_constraint := NULL;
                IF writes[b] THEN
                    BEGIN
                        outcome := 'committed';
                        event_positions := '{}';
                        event_versions := '{}';
                        IF in_append_counts[b] > 0 THEN
                            SELECT coalesce(array_agg(a.event_position ORDER BY a.n), '{}'),
                                coalesce(array_agg(a.event_version ORDER BY a.n), '{}')
                            INTO event_positions, event_versions
                            FROM {schema}.append_events(
                                in_streams[first_append:last_append], in_expected[first_append:last_append],
                                in_counts[first_append:last_append], in_event_ids[first_event:last_event],
                                in_type_names[first_event:last_event], in_schema_versions[first_event:last_event],
                                in_created_ats[first_event:last_event], in_correlation_ids[first_event:last_event],
                                in_causation_ids[first_event:last_event], in_trace_contexts[first_event:last_event],
                                in_payloads[first_event:last_event], in_publishes[first_event:last_event], in_channel, in_notice
                            ) WITH ORDINALITY AS a (event_position, event_version, n);
                        END IF;
                    EXCEPTION WHEN OTHERS THEN
                        GET STACKED DIAGNOSTICS error_state = RETURNED_SQLSTATE, error_message = MESSAGE_TEXT,
                            error_detail = PG_EXCEPTION_DETAIL, error_constraint = CONSTRAINT_NAME;
                        outcome := 'failed';
                        event_positions := NULL;
                        event_versions := NULL;
                        IF in_has_inbox[b] THEN
                            DELETE FROM {schema}.inbox WHERE consumer = in_consumers[b] AND event_id = in_inbox_event_ids[b];
                        END IF;
                    END;
                END IF;
                RETURN NEXT;
                first_append := last_append + 1;
                first_event := last_event + 1;
            END LOOP;
        END
        $fn$
        """
    }

    /// The variables of the set-based fast path of `commit_each`.
    private static let commitEachDeclarations = """
            append_batch integer[];
            event_append integer[];
            event_offset integer[];
            before_versions bigint[];
            first_positions bigint[];
            conflicting boolean;
            total integer;
            base bigint;
            next_position bigint;
            fast boolean := false;

        """

    /// The stream locks `append_events` and `commit_each` take first, in one order (no deadlock
    /// between two callers) and before the transaction has an id.
    private static let streamLocks = """
            PERFORM pg_advisory_xact_lock(k) FROM (
                SELECT DISTINCT hashtextextended('{schema}.' || s, 0) AS k FROM unnest(in_streams) AS s ORDER BY 1
            ) AS keys;

        """

    /// The set-based fast path of `commit_each`: all batches that are not processed at once.
    private static let commitEachFastPath = """
            SELECT coalesce(array_agg(b ORDER BY b, k), '{}') INTO append_batch
                FROM generate_subscripts(in_append_counts, 1) AS b, generate_series(1, in_append_counts[b]) AS k;
            SELECT coalesce(array_agg(i ORDER BY i, k), '{}'), coalesce(array_agg(k ORDER BY i, k), '{}')
                INTO event_append, event_offset
                FROM generate_subscripts(in_counts, 1) AS i, generate_series(1, in_counts[i]) AS k;
            BEGIN
                INSERT INTO {schema}.streams (stream_id, version)
                SELECT DISTINCT in_streams[i], 0 FROM generate_subscripts(in_streams, 1) AS i WHERE writes[append_batch[i]]
                ORDER BY 1 ON CONFLICT (stream_id) DO NOTHING;
                PERFORM 1 FROM {schema}.streams s WHERE s.stream_id IN (
                    SELECT in_streams[i] FROM generate_subscripts(in_streams, 1) AS i WHERE writes[append_batch[i]]
                ) ORDER BY s.stream_id FOR UPDATE;
                base := (pg_current_xact_id()::text::bigint) << 20;
                SELECT coalesce(max(e.position) + 1, base) INTO next_position FROM {schema}.events e
                    WHERE e.position >= base AND e.position < base + 1048576;
                SELECT array_agg(x.before_version ORDER BY a.i), array_agg(x.first_position ORDER BY a.i),
                    coalesce(bool_or(x.conflict), false), coalesce(sum(x.events), 0)::integer
                INTO before_versions, first_positions, conflicting, total
                FROM generate_subscripts(in_streams, 1) AS a (i) LEFT JOIN (
                    SELECT y.i, y.events, y.before_version, y.first_position,
                        (y.expected <> -1 AND y.expected <> y.before_version)
                            OR (y.events > 0 AND y.last_position >= next_position) AS conflict
                    FROM (
                        SELECT p.i, p.expected, p.events, s.last_position,
                            s.version + coalesce(sum(p.events) OVER (
                                PARTITION BY p.stream ORDER BY p.i ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0)
                                AS before_version,
                            next_position + coalesce(sum(p.events) OVER (
                                ORDER BY p.i ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0) AS first_position
                        FROM unnest(in_streams, in_expected, in_counts) WITH ORDINALITY AS p (stream, expected, events, i)
                        JOIN {schema}.streams s ON s.stream_id = p.stream
                        WHERE writes[append_batch[p.i::integer]]
                    ) AS y
                ) AS x ON x.i = a.i;
                IF conflicting OR next_position + total > base + 1048576 THEN
                    RAISE EXCEPTION 'a batch conflicts' USING ERRCODE = 'ES003';
                END IF;
                INSERT INTO {schema}.events (position, stream_id, stream_version, event_id, type_name, schema_version,
                    created_at, correlation_id, causation_id, trace_context, payload)
                SELECT first_positions[ea] + k - 1, in_streams[ea], before_versions[ea] + k, id, t, sv, ca,
                    NULLIF(co, '')::uuid, NULLIF(cs, '')::uuid, tc::jsonb, pl::jsonb
                FROM unnest(event_append, event_offset, in_event_ids, in_type_names, in_schema_versions,
                    in_created_ats, in_correlation_ids, in_causation_ids, in_trace_contexts, in_payloads)
                    AS x (ea, k, id, t, sv, ca, co, cs, tc, pl)
                WHERE writes[append_batch[ea]];
                INSERT INTO {schema}.outbox (id, stream_id)
                SELECT first_positions[ea] + k - 1, in_streams[ea]
                FROM unnest(event_append, event_offset, in_publishes) AS x (ea, k, published)
                WHERE published AND writes[append_batch[ea]];
                UPDATE {schema}.streams s SET version = u.version, last_position = coalesce(u.last_position, s.last_position)
                FROM (
                    SELECT in_streams[i] AS stream, max(before_versions[i] + in_counts[i]) AS version,
                        max(first_positions[i] + in_counts[i] - 1) FILTER (WHERE in_counts[i] > 0) AS last_position
                    FROM generate_subscripts(in_streams, 1) AS i WHERE writes[append_batch[i]] GROUP BY 1
                ) AS u
                WHERE s.stream_id = u.stream;
                IF in_channel IS NOT NULL AND EXISTS (
                    SELECT FROM unnest(event_append, in_publishes) AS x (ea, published) WHERE published AND writes[append_batch[ea]]
                ) THEN
                    PERFORM pg_notify(in_channel, in_notice);
                END IF;
                fast := true;
            EXCEPTION WHEN OTHERS THEN
                fast := false;
            END;
            IF fast THEN
                RETURN QUERY
                SELECT CASE WHEN writes[b] THEN 'committed' ELSE 'processed' END,
                    CASE WHEN writes[b] THEN coalesce(ev.positions, '{}') END,
                    CASE WHEN writes[b] THEN coalesce(ev.versions, '{}') END,
                    NULL::text, NULL::text, NULL::text, NULL::text
                FROM generate_subscripts(in_append_counts, 1) AS b LEFT JOIN (
                    SELECT append_batch[ea] AS batch, array_agg(first_positions[ea] + k - 1 ORDER BY j) AS positions,
                        array_agg(before_versions[ea] + k ORDER BY j) AS versions
                    FROM unnest(event_append, event_offset) WITH ORDINALITY AS x (ea, k, j) GROUP BY 1
                ) AS ev ON ev.batch = b
                ORDER BY b;
                RETURN;
            END IF;

        """

    /// The text of `append_events`, created with `create` and notifying when `notifyWhen` holds.
    private static func appendFunctionText(create: String, notifyWhen: String) -> String {
        """
        \(create) {schema}.append_events(
            in_streams text[], in_expected bigint[], in_counts integer[],
            in_event_ids uuid[], in_type_names text[], in_schema_versions integer[], in_created_ats timestamptz[],
            in_correlation_ids text[], in_causation_ids text[], in_trace_contexts text[], in_payloads text[],
            in_publishes boolean[], in_channel text, in_notice text
        ) RETURNS TABLE (event_position bigint, event_version bigint)
        LANGUAGE plpgsql AS $fn$
        DECLARE
            base bigint;
            next_position bigint;
            current_version bigint;
            current_last bigint;
            positions bigint[] := '{}';
            versions bigint[] := '{}';
            event_streams text[] := '{}';
        BEGIN
            -- Stream locks first, in one order (no deadlock between two batches), and only
            -- then the transaction id: a transaction that had none yet gets one newer than
            -- that of every transaction that appended to these streams before it.
        \(streamLocks)    base := (pg_current_xact_id()::text::bigint) << 20;
            SELECT coalesce(max(e.position) + 1, base) INTO next_position FROM {schema}.events e
                WHERE e.position >= base AND e.position < base + 1048576;
            FOR i IN 1 .. coalesce(array_length(in_streams, 1), 0) LOOP
                INSERT INTO {schema}.streams (stream_id, version) VALUES (in_streams[i], 0) ON CONFLICT (stream_id) DO NOTHING;
                SELECT s.version, s.last_position INTO current_version, current_last
                    FROM {schema}.streams s WHERE s.stream_id = in_streams[i] FOR UPDATE;
                IF in_expected[i] <> -1 AND in_expected[i] <> current_version THEN
                    RAISE EXCEPTION 'stream % is at version %, not %', in_streams[i], current_version, in_expected[i]
                        USING ERRCODE = 'ES001', DETAIL = (i - 1) || ' ' || current_version;
                END IF;
                CONTINUE WHEN in_counts[i] = 0;
                IF current_last >= next_position THEN
                    RAISE EXCEPTION 'stream % has an event committed by a newer transaction', in_streams[i]
                        USING ERRCODE = 'ES002', DETAIL = (i - 1) || ' ' || current_version;
                END IF;
                IF next_position + in_counts[i] > base + 1048576 THEN
                    RAISE EXCEPTION 'a transaction appends at most 1048576 events' USING ERRCODE = '54000';
                END IF;
                FOR k IN 1 .. in_counts[i] LOOP
                    positions := positions || (next_position + k - 1);
                    versions := versions || (current_version + k);
                    event_streams := event_streams || in_streams[i];
                END LOOP;
                next_position := next_position + in_counts[i];
                UPDATE {schema}.streams SET version = current_version + in_counts[i], last_position = next_position - 1
                    WHERE stream_id = in_streams[i];
            END LOOP;
            INSERT INTO {schema}.events (position, stream_id, stream_version, event_id, type_name, schema_version,
                created_at, correlation_id, causation_id, trace_context, payload)
            SELECT p, s, v, id, t, sv, ca, NULLIF(co, '')::uuid, NULLIF(cs, '')::uuid, tc::jsonb, pl::jsonb
            FROM unnest(positions, event_streams, versions, in_event_ids, in_type_names, in_schema_versions,
                in_created_ats, in_correlation_ids, in_causation_ids, in_trace_contexts, in_payloads)
                AS x (p, s, v, id, t, sv, ca, co, cs, tc, pl);
            INSERT INTO {schema}.outbox (id, stream_id)
            SELECT p, s FROM unnest(positions, event_streams, in_publishes) AS x (p, s, published) WHERE published;
            IF \(notifyWhen) THEN
                PERFORM pg_notify(in_channel, in_notice);
            END IF;
            RETURN QUERY SELECT * FROM unnest(positions, versions);
        END
        $fn$
        """
    }

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
