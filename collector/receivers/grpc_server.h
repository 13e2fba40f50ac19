/*
 * grpc_server.h: the OTLP/gRPC receiver, HTTP/2 over cleartext TCP with prior knowledge (h2c),
 * or over TLS (ALPN h2) when cfg->tls_cert_file and tls_key_file are set; built on libnghttp2
 * and OpenSSL. It serves the unary Export methods of the trace, logs and metrics
 * services, unframes each request and hands it to ingest_request(); it never decodes or
 * counts itself. Worker threads (one per online CPU, 1..16) each run an epoll loop and own
 * their connections and streams outright; one acceptor thread (acceptor.h) accepts and gives
 * each connection to the worker with the fewest.
 */
#ifndef O2D_GRPC_SERVER_H
#define O2D_GRPC_SERVER_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "ingest.h"

struct grpc_server;

/*
 * Loads and checks the TLS files when set (tls.h), binds cfg->endpoint and logs
 * {"msg":"listening","server":"grpc","endpoint":..,"port":N,"tls":bool}. Copies cfg; borrows
 * ing, which must outlive the server. No thread runs until grpc_server_start(). On failure
 * writes why into err (for a TLS file: the configuration key and the path).
 */
int grpc_server_new(struct grpc_server **out, const struct o2d_grpc_config *cfg, struct ingest *ing,
                    char *err, size_t errlen);
/* Starts the worker threads, then the acceptor. */
int grpc_server_start(struct grpc_server *s);
/* The port bound (the ephemeral one when the endpoint asked for port 0). */
uint16_t grpc_server_port(const struct grpc_server *s);
/*
 * Stops accepting, sends GOAWAY on every connection, lets streams in flight finish until
 * deadline_ms (monotonic, o2d_now_ms()), then closes what is left and joins the threads.
 */
void grpc_server_shutdown(struct grpc_server *s, int64_t deadline_ms);
/* Shuts down at once if that has not been done; NULL is a no-op. */
void grpc_server_free(struct grpc_server *s);

#endif
