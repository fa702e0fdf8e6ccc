/*
 * Helpers shared by the C baselines of the benchmarks (amqp-baseline.c, consumer-baseline.c).
 */
#ifndef EVENTSOURCERY_BASELINE_H
#define EVENTSOURCERY_BASELINE_H

#include <amqp.h>
#include <amqp_tcp_socket.h>
#include <stdio.h>
#include <stdlib.h>
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

#endif
