-- pgbench baseline of "append 1/tx, publish": one event row and its outbox row per
-- transaction, in tables shaped like the event store's (set up by the postgres benchmark
-- in schema :schema), without any ordering guarantee or version check.
\set stream random(0, 99)
BEGIN;
INSERT INTO :schema.events (position, stream_id, stream_version, event_id, type_name, schema_version, created_at,
    correlation_id, trace_context, payload)
VALUES (nextval(':schema.positions'), 'bench-' || :stream, currval(':schema.positions'), gen_random_uuid(), 'Deposited', 1,
    now(), gen_random_uuid(), '{}', '{"amount": 1, "currency": "EUR", "note": "benchmark event"}');
INSERT INTO :schema.outbox (id, stream_id) VALUES (currval(':schema.positions'), 'bench-' || :stream);
END;
