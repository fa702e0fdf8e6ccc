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
    char body[601];
    make_json_body(body);

    amqp_connection_state_t conn = open_connection(host, port);
    amqp_queue_declare(conn, 1, amqp_cstring_bytes(queue), 0, 1, 0, 0, amqp_empty_table);
    die_on_reply(amqp_get_rpc_reply(conn), "queue.declare");
    amqp_queue_purge(conn, 1, amqp_cstring_bytes(queue));
    die_on_reply(amqp_get_rpc_reply(conn), "queue.purge");

    double seconds, cpu;
    if (strcmp(mode, "publish") == 0) {
        double start = now_seconds(), cpu_start = cpu_seconds();
        publish_confirmed("amqp-baseline", conn, queue, body, count, param);
        seconds = now_seconds() - start;
        cpu = cpu_seconds() - cpu_start;
    } else if (strcmp(mode, "consume") == 0) {
        publish_confirmed("amqp-baseline", conn, queue, body, count, 1000);
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
