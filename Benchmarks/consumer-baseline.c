/*
 * Baseline for the context consumer benchmark: the consumer's work written in C with
 * rabbitmq-c, jansson and the SQLite C API, run on the same pre-filled queue in the same run.
 *
 *   consumer-baseline <host> <port> <vhost> <queue> <count> <prefetch> <batch> <database> <consumer> <streams>
 *
 * basic.qos <prefetch>, basic.consume; then, until <count> deliveries are handled: take the
 * deliveries waiting (the first blocking, at most <batch>), and for each one parse the JSON
 * body (jansson), read its event id (message id) and correlation id, check and insert the
 * inbox row (consumer, event id) with INSERT ... ON CONFLICT DO NOTHING (a duplicate is
 * skipped), look up the version of the target stream "handled-<index % streams>", insert one
 * event row there with a JSON payload {"index": n} (encoded with jansson), a time-ordered id,
 * the source event as causation; commit the batch in one transaction, then ack each
 * delivery. The database must exist with the store's schema (the benchmark creates it
 * through SQLiteEventStorage); it runs in WAL mode with synchronous = FULL, the page cache
 * and checkpoint threshold of the storage's defaults.
 *
 * Prints one line: "consumer rate=<deliveries/s> seconds=<s> messages=<n> param=<batch>
 * cpu_us_per_message=<client CPU per delivery>".
 */
#include "baseline.h"
#include <amqp.h>
#include <amqp_framing.h>
#include <jansson.h>
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <time.h>

static double wall_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static sqlite3 *db;

static void check(int rc, const char *context) {
    if (rc == SQLITE_OK || rc == SQLITE_DONE || rc == SQLITE_ROW) return;
    fprintf(stderr, "consumer-baseline: %s: %s\n", context, sqlite3_errmsg(db));
    exit(1);
}

static sqlite3_stmt *prepare(const char *sql) {
    sqlite3_stmt *statement;
    check(sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, &statement, NULL), sql);
    return statement;
}

/* A UUID string (36 characters) as 16 bytes; 0 when malformed. */
static int parse_uuid(amqp_bytes_t text, unsigned char out[16]) {
    if (text.len != 36) return 0;
    const char *s = text.bytes;
    int n = 0;
    for (int i = 0; i < 36 && n < 16; i++) {
        if (s[i] == '-') continue;
        int hi, lo;
        char c = s[i], d = s[i + 1];
        hi = c <= '9' ? c - '0' : (c | 32) - 'a' + 10;
        lo = d <= '9' ? d - '0' : (d | 32) - 'a' + 10;
        if (hi < 0 || hi > 15 || lo < 0 || lo > 15) return 0;
        out[n++] = (unsigned char)(hi << 4 | lo);
        i++;
    }
    return n == 16;
}

/* A time-ordered (version 7) UUID: 48 bits of milliseconds, then a counter and random bits. */
static void new_event_id(unsigned char out[16]) {
    static uint64_t counter;
    uint64_t ms = (uint64_t)(wall_seconds() * 1000);
    for (int i = 0; i < 6; i++) out[i] = (unsigned char)(ms >> (40 - 8 * i));
    uint64_t tail = ++counter ^ ((uint64_t)rand() << 32);
    for (int i = 6; i < 16; i++) out[i] = (unsigned char)(tail >> (8 * (i % 8)));
    out[6] = (out[6] & 0x0f) | 0x70;
    out[8] = (out[8] & 0x3f) | 0x80;
}

static amqp_bytes_t header(amqp_basic_properties_t *properties, const char *key) {
    if (!(properties->_flags & AMQP_BASIC_HEADERS_FLAG)) return amqp_empty_bytes;
    for (int i = 0; i < properties->headers.num_entries; i++) {
        amqp_table_entry_t *entry = &properties->headers.entries[i];
        if (entry->key.len == strlen(key) && memcmp(entry->key.bytes, key, entry->key.len) == 0 &&
            (entry->value.kind == AMQP_FIELD_KIND_UTF8 || entry->value.kind == AMQP_FIELD_KIND_BYTES))
            return entry->value.value.bytes;
    }
    return amqp_empty_bytes;
}

int main(int argc, char **argv) {
    if (argc != 11) {
        fprintf(stderr, "usage: %s <host> <port> <vhost> <queue> <count> <prefetch> <batch> <database> <consumer> <streams>\n",
                argv[0]);
        return 2;
    }
    const char *host = argv[1], *vhost = argv[3], *queue = argv[4], *path = argv[8], *consumer = argv[9];
    int port = atoi(argv[2]), prefetch = atoi(argv[6]), batch = atoi(argv[7]), streams = atoi(argv[10]);
    long count = atol(argv[5]);

    check(sqlite3_open(path, &db), "open");
    check(sqlite3_busy_timeout(db, 5000), "busy_timeout");
    check(sqlite3_exec(db,
                       "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA cache_size = -16384; "
                       "PRAGMA wal_autocheckpoint = 10000",
                       NULL, NULL, NULL),
          "pragmas");
    sqlite3_stmt *begin = prepare("BEGIN IMMEDIATE");
    sqlite3_stmt *commit = prepare("COMMIT");
    sqlite3_stmt *insert_inbox =
        prepare("INSERT INTO inbox (consumer, event_id, processed_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING");
    sqlite3_stmt *version = prepare("SELECT max(stream_version) FROM events WHERE stream_id = ?");
    sqlite3_stmt *insert_event = prepare(
        "INSERT INTO events (stream_id, stream_version, event_id, type_name, schema_version, created_at, correlation_id, "
        "causation_id, trace_context, payload) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");

    amqp_connection_state_t conn = open_amqp_connection("consumer-baseline", host, port, vhost);

    double start = now_seconds(), cpu_start = cpu_seconds();
    amqp_basic_qos(conn, 1, 0, (uint16_t)prefetch, 0);
    die_on_reply(amqp_get_rpc_reply(conn), "basic.qos");
    amqp_basic_consume(conn, 1, amqp_cstring_bytes(queue), amqp_empty_bytes, 0, 0, 0, amqp_empty_table);
    die_on_reply(amqp_get_rpc_reply(conn), "basic.consume");

    amqp_envelope_t *envelopes = calloc((size_t)batch, sizeof(amqp_envelope_t));
    char stream[64];
    long handled = 0;
    struct timeval no_wait = {0, 0};
    while (handled < count) {
        /* The deliveries waiting, at most `batch`: the first one blocks. */
        int taken = 0;
        while (taken < batch && handled + taken < count) {
            amqp_rpc_reply_t reply = amqp_consume_message(conn, &envelopes[taken], taken == 0 ? NULL : &no_wait, 0);
            if (taken > 0 && reply.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION &&
                reply.library_error == AMQP_STATUS_TIMEOUT)
                break;
            die_on_reply(reply, "consume");
            taken++;
        }
        check(sqlite3_step(begin), "begin");
        sqlite3_reset(begin);
        double now = wall_seconds() - 978307200.0; /* seconds since 2001, as the store keeps them */
        for (int i = 0; i < taken; i++) {
            amqp_message_t *message = &envelopes[i].message;
            json_error_t error;
            json_t *document = json_loadb(message->body.bytes, message->body.len, 0, &error);
            json_t *index_value = document ? json_object_get(document, "index") : NULL;
            unsigned char event_id[16], correlation_id[16], new_id[16];
            if (!json_is_integer(index_value) || !(message->properties._flags & AMQP_BASIC_MESSAGE_ID_FLAG) ||
                !parse_uuid(message->properties.message_id, event_id)) {
                fprintf(stderr, "consumer-baseline: malformed delivery\n");
                return 1;
            }
            json_int_t index = json_integer_value(index_value);
            int has_correlation = (message->properties._flags & AMQP_BASIC_CORRELATION_ID_FLAG) &&
                                  parse_uuid(message->properties.correlation_id, correlation_id);
            (void)header(&message->properties, "x-stream-id");

            sqlite3_bind_text(insert_inbox, 1, consumer, -1, SQLITE_STATIC);
            sqlite3_bind_blob(insert_inbox, 2, event_id, 16, SQLITE_STATIC);
            sqlite3_bind_double(insert_inbox, 3, now);
            check(sqlite3_step(insert_inbox), "insert inbox");
            sqlite3_reset(insert_inbox);
            if (sqlite3_changes(db) == 0) {
                json_decref(document);
                continue; /* already processed */
            }

            int length = snprintf(stream, sizeof stream, "handled-%lld", (long long)(index % streams));
            sqlite3_bind_text(version, 1, stream, length, SQLITE_STATIC);
            check(sqlite3_step(version), "version");
            sqlite3_int64 current = sqlite3_column_int64(version, 0);
            sqlite3_reset(version);

            json_t *handled_event = json_pack("{sI}", "index", index);
            char payload[64];
            size_t payload_length = json_dumpb(handled_event, payload, sizeof payload, JSON_COMPACT);
            json_decref(handled_event);
            new_event_id(new_id);
            sqlite3_bind_text(insert_event, 1, stream, length, SQLITE_STATIC);
            sqlite3_bind_int64(insert_event, 2, current + 1);
            sqlite3_bind_blob(insert_event, 3, new_id, 16, SQLITE_STATIC);
            sqlite3_bind_text(insert_event, 4, "QueuedItemHandled", -1, SQLITE_STATIC);
            sqlite3_bind_int(insert_event, 5, 1);
            sqlite3_bind_double(insert_event, 6, now);
            if (has_correlation)
                sqlite3_bind_blob(insert_event, 7, correlation_id, 16, SQLITE_STATIC);
            else
                sqlite3_bind_null(insert_event, 7);
            sqlite3_bind_blob(insert_event, 8, event_id, 16, SQLITE_STATIC);
            sqlite3_bind_null(insert_event, 9);
            sqlite3_bind_blob(insert_event, 10, payload, (int)payload_length, SQLITE_STATIC);
            check(sqlite3_step(insert_event), "insert event");
            sqlite3_reset(insert_event);
            json_decref(document);
        }
        check(sqlite3_step(commit), "commit");
        sqlite3_reset(commit);
        for (int i = 0; i < taken; i++) {
            if (amqp_basic_ack(conn, 1, envelopes[i].delivery_tag, 0) != AMQP_STATUS_OK) {
                fprintf(stderr, "consumer-baseline: ack failed\n");
                return 1;
            }
            amqp_destroy_envelope(&envelopes[i]);
        }
        handled += taken;
        amqp_maybe_release_buffers(conn);
    }
    double seconds = now_seconds() - start, cpu = cpu_seconds() - cpu_start;
    amqp_channel_close(conn, 1, AMQP_REPLY_SUCCESS);
    amqp_connection_close(conn, AMQP_REPLY_SUCCESS);
    amqp_destroy_connection(conn);
    sqlite3_stmt *statements[] = {begin, commit, insert_inbox, version, insert_event};
    for (size_t i = 0; i < sizeof statements / sizeof statements[0]; i++) sqlite3_finalize(statements[i]);
    sqlite3_close(db);
    free(envelopes);
    printf("consumer rate=%.1f seconds=%.3f messages=%ld param=%d cpu_us_per_message=%.2f\n", count / seconds, seconds, count,
           batch, cpu / count * 1e6);
    return 0;
}
