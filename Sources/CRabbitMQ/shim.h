#ifndef CRABBITMQ_SHIM_H
#define CRABBITMQ_SHIM_H

// amqp.h only forward-declares `struct timeval`; without the full definition every
// timeout parameter imports into Swift as an OpaquePointer.
#include <sys/time.h>

#if __has_include(<rabbitmq-c/amqp.h>)
// rabbitmq-c 0.12 and later
#include <rabbitmq-c/amqp.h>
#include <rabbitmq-c/framing.h>
#include <rabbitmq-c/tcp_socket.h>
#include <rabbitmq-c/ssl_socket.h>
#else
// rabbitmq-c 0.11 (Debian 12 librabbitmq-dev)
#include <amqp.h>
#include <amqp_framing.h>
#include <amqp_tcp_socket.h>
#include <amqp_ssl_socket.h>
#endif

/// Fixed-arity wrapper over the C-variadic `amqp_login_with_properties`, which Swift cannot
/// call: PLAIN authentication with a user name and password.
static inline amqp_rpc_reply_t cramqp_login_plain(amqp_connection_state_t state,
                                                  const char *vhost, int channel_max,
                                                  int frame_max, int heartbeat,
                                                  const amqp_table_t *client_properties,
                                                  const char *user, const char *password) {
    return amqp_login_with_properties(state, vhost, channel_max, frame_max, heartbeat,
                                      client_properties, AMQP_SASL_METHOD_PLAIN, user,
                                      password);
}

/// Fixed-arity wrapper over the C-variadic `amqp_login_with_properties`: EXTERNAL
/// authentication (the identity comes from the TLS client certificate).
static inline amqp_rpc_reply_t cramqp_login_external(amqp_connection_state_t state,
                                                     const char *vhost, int channel_max,
                                                     int frame_max, int heartbeat,
                                                     const amqp_table_t *client_properties,
                                                     const char *identity) {
    return amqp_login_with_properties(state, vhost, channel_max, frame_max, heartbeat,
                                      client_properties, AMQP_SASL_METHOD_EXTERNAL, identity);
}

#endif
