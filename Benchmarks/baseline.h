/*
 * Helpers shared by the C baselines of the benchmarks (amqp-baseline.c, consumer-baseline.c).
 */
#ifndef EVENTSOURCERY_BASELINE_H
#define EVENTSOURCERY_BASELINE_H

#include <amqp.h>
#include <amqp_framing.h>
#include <amqp_tcp_socket.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <time.h>

static inline double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* The process's user and system CPU time. */
static inline double cpu_seconds(void) {
    struct rusage usage;
    getrusage(RUSAGE_SELF, &usage);
    return usage.ru_utime.tv_sec + usage.ru_stime.tv_sec + (usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
}

/* Exits with a message naming `context` unless `reply` is normal. */
static inline void die_on_reply(amqp_rpc_reply_t reply, const char *context) {
    if (reply.reply_type == AMQP_RESPONSE_NORMAL) return;
    fprintf(stderr, "baseline: %s failed (reply type %d, library error %s)\n", context, reply.reply_type,
            amqp_error_string2(reply.library_error));
    exit(1);
}

/* Opens a connection to `host`:`port` as guest/guest on `vhost` with channel 1 open; exits
 * with a message naming `program` when that fails. */
static inline amqp_connection_state_t open_amqp_connection(const char *program, const char *host, int port, const char *vhost) {
    amqp_connection_state_t conn = amqp_new_connection();
    amqp_socket_t *socket = amqp_tcp_socket_new(conn);
    if (!socket || amqp_socket_open(socket, host, port) != AMQP_STATUS_OK) {
        fprintf(stderr, "%s: cannot connect to %s:%d\n", program, host, port);
        exit(1);
    }
    die_on_reply(amqp_login(conn, vhost, 0, 131072, 60, AMQP_SASL_METHOD_PLAIN, "guest", "guest"), "login");
    amqp_channel_open(conn, 1);
    die_on_reply(amqp_get_rpc_reply(conn), "channel.open");
    return conn;
}

/* Writes the benchmarks' 600-byte JSON document (and its terminating NUL) into `body`. */
static inline void make_json_body(char body[601]) {
    int n = snprintf(body, 601, "{\"orderId\":\"0f8fad5b-d9cb-469f-a165-70867728950e\",\"customer\":\"c-42\",\"amount\":1234.5,\"currency\":\"EUR\",\"note\":\"");
    while (n < 598) body[n++] = 'x';
    body[n++] = '"';
    body[n++] = '}';
    body[n] = 0;
}

/* Publishes `count` persistent messages with `body` and the event wire contract's properties
 * and headers to `queue` through the default exchange, with confirms, at most `window`
 * unconfirmed; reads basic.ack / basic.nack (honouring `multiple`) and basic.return. Exits with
 * a message naming `program` on a failure. */
static inline void publish_confirmed(const char *program, amqp_connection_state_t conn, const char *queue, const char *body,
                                     long count, long window) {
    amqp_confirm_select(conn, 1);
    die_on_reply(amqp_get_rpc_reply(conn), "confirm.select");

    amqp_table_entry_t headers[5];
    headers[0].key = amqp_cstring_bytes("x-stream-id");
    headers[0].value.kind = AMQP_FIELD_KIND_UTF8;
    headers[0].value.value.bytes = amqp_cstring_bytes("order-0f8fad5b");
    headers[1].key = amqp_cstring_bytes("x-stream-version");
    headers[1].value.kind = AMQP_FIELD_KIND_I64;
    headers[2].key = amqp_cstring_bytes("x-causation-id");
    headers[2].value.kind = AMQP_FIELD_KIND_UTF8;
    headers[2].value.value.bytes = amqp_cstring_bytes("7c9e6679-7425-40de-944b-e07fc1f90ae7");
    headers[3].key = amqp_cstring_bytes("x-schema-version");
    headers[3].value.kind = AMQP_FIELD_KIND_I32;
    headers[3].value.value.i32 = 1;
    headers[4].key = amqp_cstring_bytes("traceparent");
    headers[4].value.kind = AMQP_FIELD_KIND_UTF8;
    headers[4].value.value.bytes = amqp_cstring_bytes("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");

    long published = 0, confirmed = 0;
    uint64_t acked_upto = 0;
    char message_id[64];
    while (confirmed < count) {
        while (published < count && published - confirmed < window) {
            amqp_basic_properties_t props;
            memset(&props, 0, sizeof props);
            props._flags = AMQP_BASIC_CONTENT_TYPE_FLAG | AMQP_BASIC_DELIVERY_MODE_FLAG |
                           AMQP_BASIC_MESSAGE_ID_FLAG | AMQP_BASIC_TYPE_FLAG | AMQP_BASIC_TIMESTAMP_FLAG |
                           AMQP_BASIC_APP_ID_FLAG | AMQP_BASIC_CORRELATION_ID_FLAG | AMQP_BASIC_HEADERS_FLAG;
            props.content_type = amqp_cstring_bytes("application/json");
            props.delivery_mode = 2;
            snprintf(message_id, sizeof message_id, "00000000-0000-4000-8000-%012ld", published);
            props.message_id = amqp_cstring_bytes(message_id);
            props.type = amqp_cstring_bytes("OrderPlaced");
            props.timestamp = (uint64_t)time(NULL);
            props.app_id = amqp_cstring_bytes("order");
            props.correlation_id = amqp_cstring_bytes("9b2c4f1e-8a8e-4d5c-9d8e-2f1b6c7d8e9f");
            headers[1].value.value.i64 = published + 1;
            props.headers.num_entries = 5;
            props.headers.entries = headers;
            int status = amqp_basic_publish(conn, 1, amqp_empty_bytes, amqp_cstring_bytes(queue), 1, 0,
                                            &props, amqp_cstring_bytes(body));
            if (status != AMQP_STATUS_OK) {
                fprintf(stderr, "%s: publish failed: %s\n", program, amqp_error_string2(status));
                exit(1);
            }
            published++;
        }
        amqp_frame_t frame;
        int status = amqp_simple_wait_frame(conn, &frame);
        if (status != AMQP_STATUS_OK) {
            fprintf(stderr, "%s: wait frame failed: %s\n", program, amqp_error_string2(status));
            exit(1);
        }
        if (frame.frame_type == AMQP_FRAME_METHOD) {
            uint64_t tag = 0;
            int multiple = 0;
            if (frame.payload.method.id == AMQP_BASIC_ACK_METHOD) {
                amqp_basic_ack_t *ack = frame.payload.method.decoded;
                tag = ack->delivery_tag;
                multiple = ack->multiple;
            } else if (frame.payload.method.id == AMQP_BASIC_NACK_METHOD) {
                amqp_basic_nack_t *nack = frame.payload.method.decoded;
                tag = nack->delivery_tag;
                multiple = nack->multiple;
            } else if (frame.payload.method.id == AMQP_BASIC_RETURN_METHOD) {
                amqp_message_t message;
                die_on_reply(amqp_read_message(conn, frame.channel, &message, 0), "read returned message");
                amqp_destroy_message(&message);
            } else {
                fprintf(stderr, "%s: unexpected method 0x%08x\n", program, frame.payload.method.id);
                exit(1);
            }
            if (tag) {
                if (multiple) {
                    confirmed += (long)(tag - acked_upto);
                    acked_upto = tag;
                } else {
                    confirmed += 1;
                    if (tag == acked_upto + 1) acked_upto = tag;
                }
            }
        }
        amqp_maybe_release_buffers(conn);
    }
}

#endif
