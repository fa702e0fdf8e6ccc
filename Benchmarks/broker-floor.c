/*
 * The broker's own cost of the flow's kind of traffic, without any EventSourcery code:
 * persistent 600-byte messages with the event wire contract's properties and headers, published
 * with confirms into a quorum queue (`publish_confirmed`, as amqp-baseline publishes) while
 * another connection consumes them (basic.qos <prefetch>, a basic.ack with `multiple` every
 * <ack every> deliveries; 1: one per delivery), both with rabbitmq-c, each on its own thread.
 * Every message of the demo's flow (an event routed to a context's inbox, a command to a
 * command queue) is such a message.
 *
 *   broker-floor <host> <port> <queue> <messages> <window> <prefetch> <ack every> <broker pid>
 *
 * The queue is declared as a quorum queue (deleted first, so it starts empty) and deleted at
 * the end. The broker's CPU time (user + system of the Erlang VM, /proc/<pid>/stat) is read
 * before and after the timed section.
 *
 * Prints one line: "floor rate=<messages/s> seconds=<s> messages=<n> window=<w> prefetch=<p>
 * ack_every=<a> broker_cpu_us_per_message=<broker CPU per message> client_cpu_us_per_message=<this program>".
 * Credentials are guest/guest on vhost "/" (the private test node only allows loopback).
 */
#include "baseline.h"
#include <amqp.h>
#include <amqp_framing.h>
#include <pthread.h>
#include <string.h>
#include <unistd.h>

static const char *host, *queue;
static int port;
static long count, window, prefetch, ack_every;
static char body[601];

static amqp_connection_state_t open_connection(void) { return open_amqp_connection("broker-floor", host, port, "/"); }

static void close_connection(amqp_connection_state_t conn) {
    amqp_connection_close(conn, AMQP_REPLY_SUCCESS);
    amqp_destroy_connection(conn);
}

/* The broker's user + system CPU time in seconds, from /proc/<pid>/stat. */
static double process_cpu_seconds(long pid) {
    char path[64], line[2048];
    snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    FILE *file = fopen(path, "r");
    if (!file || !fgets(line, sizeof line, file)) {
        fprintf(stderr, "broker-floor: cannot read %s (is %ld the broker's process id?)\n", path, pid);
        exit(1);
    }
    fclose(file);
    /* Fields 14 and 15 (utime, stime) follow the command name, which ends with the last ')'. */
    char *rest = strrchr(line, ')');
    unsigned long utime = 0, stime = 0;
    if (!rest || sscanf(rest + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &utime, &stime) != 2) {
        fprintf(stderr, "broker-floor: cannot parse %s\n", path);
        exit(1);
    }
    return (double)(utime + stime) / (double)sysconf(_SC_CLK_TCK);
}

static void *publish(void *unused) {
    (void)unused;
    amqp_connection_state_t conn = open_connection();
    publish_confirmed("broker-floor", conn, queue, body, count, window);
    close_connection(conn);
    return NULL;
}

static void *consume(void *ready) {
    amqp_connection_state_t conn = open_connection();
    amqp_basic_qos(conn, 1, 0, (uint16_t)prefetch, 0);
    die_on_reply(amqp_get_rpc_reply(conn), "basic.qos");
    amqp_basic_consume(conn, 1, amqp_cstring_bytes(queue), amqp_empty_bytes, 0, 0, 0, amqp_empty_table);
    die_on_reply(amqp_get_rpc_reply(conn), "basic.consume");
    pthread_barrier_wait(ready);
    for (long received = 0; received < count; received++) {
        amqp_envelope_t envelope;
        amqp_maybe_release_buffers(conn);
        die_on_reply(amqp_consume_message(conn, &envelope, NULL, 0), "consume");
        int last = received + 1 == count;
        if ((ack_every == 1 || (received + 1) % ack_every == 0 || last) &&
            amqp_basic_ack(conn, 1, envelope.delivery_tag, ack_every > 1) != AMQP_STATUS_OK) {
            fprintf(stderr, "broker-floor: ack failed\n");
            exit(1);
        }
        amqp_destroy_envelope(&envelope);
    }
    close_connection(conn);
    return NULL;
}

int main(int argc, char **argv) {
    if (argc != 9) {
        fprintf(stderr, "usage: %s <host> <port> <queue> <messages> <window> <prefetch> <ack every> <broker pid>\n", argv[0]);
        return 2;
    }
    host = argv[1];
    port = atoi(argv[2]);
    queue = argv[3];
    count = atol(argv[4]);
    window = atol(argv[5]);
    prefetch = atol(argv[6]);
    ack_every = atol(argv[7]);
    long broker = atol(argv[8]);
    if (count <= 0 || window <= 0 || prefetch <= 0 || prefetch > 65535 || ack_every <= 0 || ack_every > prefetch ||
        broker <= 0) {
        fprintf(stderr, "broker-floor: messages, window, prefetch (at most 65535), ack every (at most the prefetch) and the "
                        "broker pid must be positive\n");
        return 2;
    }
    make_json_body(body);

    amqp_connection_state_t admin = open_connection();
    amqp_queue_delete(admin, 1, amqp_cstring_bytes(queue), 0, 0);
    die_on_reply(amqp_get_rpc_reply(admin), "queue.delete");
    amqp_table_entry_t arguments[1];
    arguments[0].key = amqp_cstring_bytes("x-queue-type");
    arguments[0].value.kind = AMQP_FIELD_KIND_UTF8;
    arguments[0].value.value.bytes = amqp_cstring_bytes("quorum");
    amqp_table_t table = {.num_entries = 1, .entries = arguments};
    amqp_queue_declare(admin, 1, amqp_cstring_bytes(queue), 0, 1, 0, 0, table);
    die_on_reply(amqp_get_rpc_reply(admin), "queue.declare (quorum)");

    pthread_barrier_t ready;
    pthread_barrier_init(&ready, NULL, 2);
    pthread_t publisher, consumer;
    pthread_create(&consumer, NULL, consume, &ready);
    pthread_barrier_wait(&ready);
    double start = now_seconds(), cpu_start = cpu_seconds(), broker_start = process_cpu_seconds(broker);
    pthread_create(&publisher, NULL, publish, NULL);
    pthread_join(publisher, NULL);
    pthread_join(consumer, NULL);
    double seconds = now_seconds() - start, cpu = cpu_seconds() - cpu_start;
    double broker_cpu = process_cpu_seconds(broker) - broker_start;

    amqp_queue_delete(admin, 1, amqp_cstring_bytes(queue), 0, 0);
    die_on_reply(amqp_get_rpc_reply(admin), "queue.delete");
    close_connection(admin);
    printf("floor rate=%.1f seconds=%.3f messages=%ld window=%ld prefetch=%ld ack_every=%ld broker_cpu_us_per_message=%.1f "
           "client_cpu_us_per_message=%.1f\n",
           count / seconds, seconds, count, window, prefetch, ack_every, broker_cpu / count * 1e6, cpu / count * 1e6);
    return 0;
}
