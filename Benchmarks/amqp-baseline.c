/*
 * Baseline for the AMQP benchmark: rabbitmq-c used directly, the way the Swift wrapper
 * uses it, so the two can be compared in the same run.
 *
 *   amqp-baseline publish <host> <port> <queue> <messages> <window>
 *   amqp-baseline consume <host> <port> <queue> <messages> <prefetch>
 *
 * publish: confirm.select, then persistent 600-byte JSON messages with the event wire
 *   contract's properties and headers to the default exchange, at most <window>
 *   unconfirmed; reads basic.ack / basic.nack (honouring `multiple`).
 * consume: fills the queue first (not timed), then basic.qos <prefetch>, basic.consume and
 *   one basic.ack per delivery.
 *
 * Prints one line: "<mode> rate=<messages/s> seconds=<s> messages=<n> param=<window|prefetch>
 * cpu_us_per_message=<client CPU time per message in the timed section>".
 * Credentials are guest/guest on vhost "/" (the private test node only allows loopback).
 */
#include "baseline.h"
#include <amqp.h>
#include <amqp_framing.h>
#include <stdio.h>
#include <sys/resource.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static amqp_connection_state_t open_connection(const char *host, int port) {
    return open_amqp_connection("amqp-baseline", host, port, "/");
}

static char body[601];

static void make_body(void) {
    /* A 600-byte JSON document. */
    int n = snprintf(body, sizeof body, "{\"orderId\":\"0f8fad5b-d9cb-469f-a165-70867728950e\",\"customer\":\"c-42\",\"amount\":1234.5,\"currency\":\"EUR\",\"note\":\"");
    while (n < 598) body[n++] = 'x';
    body[n++] = '"';
    body[n++] = '}';
    body[n] = 0;
}

/* Publishes `count` messages with confirms, at most `window` outstanding. */
static void publish(amqp_connection_state_t conn, const char *queue, long count, long window) {
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
                fprintf(stderr, "amqp-baseline: publish failed: %s\n", amqp_error_string2(status));
                exit(1);
            }
            published++;
        }
        amqp_frame_t frame;
        int status = amqp_simple_wait_frame(conn, &frame);
        if (status != AMQP_STATUS_OK) {
            fprintf(stderr, "amqp-baseline: wait frame failed: %s\n", amqp_error_string2(status));
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
                fprintf(stderr, "amqp-baseline: unexpected method 0x%08x\n", frame.payload.method.id);
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

static void consume(amqp_connection_state_t conn, const char *queue, long count, int prefetch) {
    amqp_basic_qos(conn, 1, 0, (uint16_t)prefetch, 0);
    die_on_reply(amqp_get_rpc_reply(conn), "basic.qos");
    amqp_basic_consume(conn, 1, amqp_cstring_bytes(queue), amqp_empty_bytes, 0, 0, 0, amqp_empty_table);
    die_on_reply(amqp_get_rpc_reply(conn), "basic.consume");
    for (long received = 0; received < count; received++) {
        amqp_envelope_t envelope;
        amqp_maybe_release_buffers(conn);
        amqp_rpc_reply_t reply = amqp_consume_message(conn, &envelope, NULL, 0);
        die_on_reply(reply, "consume");
        /* Copy the body out, as the Swift wrapper does. */
        char *copy = malloc(envelope.message.body.len);
        memcpy(copy, envelope.message.body.bytes, envelope.message.body.len);
        free(copy);
        if (amqp_basic_ack(conn, 1, envelope.delivery_tag, 0) != AMQP_STATUS_OK) {
            fprintf(stderr, "amqp-baseline: ack failed\n");
            exit(1);
        }
        amqp_destroy_envelope(&envelope);
    }
}

int main(int argc, char **argv) {
    if (argc != 7) {
        fprintf(stderr, "usage: %s publish|consume <host> <port> <queue> <messages> <window|prefetch>\n", argv[0]);
        return 2;
    }
    const char *mode = argv[1], *host = argv[2], *queue = argv[4];
    int port = atoi(argv[3]);
    long count = atol(argv[5]), param = atol(argv[6]);
    make_body();

    amqp_connection_state_t conn = open_connection(host, port);
    amqp_queue_declare(conn, 1, amqp_cstring_bytes(queue), 0, 1, 0, 0, amqp_empty_table);
    die_on_reply(amqp_get_rpc_reply(conn), "queue.declare");
    amqp_queue_purge(conn, 1, amqp_cstring_bytes(queue));
    die_on_reply(amqp_get_rpc_reply(conn), "queue.purge");

    double seconds, cpu;
    if (strcmp(mode, "publish") == 0) {
        double start = now_seconds(), cpu_start = cpu_seconds();
        publish(conn, queue, count, param);
        seconds = now_seconds() - start;
        cpu = cpu_seconds() - cpu_start;
    } else if (strcmp(mode, "consume") == 0) {
        publish(conn, queue, count, 1000);
        /* A separate connection for consuming, like the Swift side. */
        amqp_connection_state_t consumer = open_connection(host, port);
        double start = now_seconds(), cpu_start = cpu_seconds();
        consume(consumer, queue, count, (int)param);
        seconds = now_seconds() - start;
        cpu = cpu_seconds() - cpu_start;
        amqp_connection_close(consumer, AMQP_REPLY_SUCCESS);
        amqp_destroy_connection(consumer);
    } else {
        fprintf(stderr, "amqp-baseline: unknown mode %s\n", mode);
        return 2;
    }
    amqp_queue_delete(conn, 1, amqp_cstring_bytes(queue), 0, 0);
    amqp_connection_close(conn, AMQP_REPLY_SUCCESS);
    amqp_destroy_connection(conn);
    printf("%s rate=%.1f seconds=%.3f messages=%ld param=%ld cpu_us_per_message=%.2f\n", mode, count / seconds,
           seconds, count, param, cpu / count * 1e6);
    return 0;
}
