/*
 * http_server.h: the OTLP/HTTP receiver (HTTP/1.1, libmicrohttpd; over TLS when
 * cfg->tls_cert_file and tls_key_file are set, with MHD's GnuTLS). It only frames: it routes
 * POST /v1/{traces,logs,metrics}, checks content type, encoding and size, buffers the body
 * within the memory budget of ingest_reserve(), hands it to ingest_request() and writes the
 * answer the OTLP specification asks for (status_map.h). Decoding, inflating and counting
 * belong to ingest.
 */
#ifndef O2D_HTTP_SERVER_H
#define O2D_HTTP_SERVER_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"

struct http_server;
struct ingest;

/*
 * Loads and checks the TLS files when set (tls.h), binds cfg->endpoint and logs
 * {"msg":"listening","server":"http",...,"port":N,"tls":bool}; nothing is served before
 * http_server_start(). Copies cfg; borrows ing, which must outlive the server. On failure
 * writes why into err (for a TLS file: the configuration key and the path).
 */
int http_server_new(struct http_server **out, const struct o2d_http_config *cfg, struct ingest *ing,
                    char *err, size_t errlen);
/* Starts one MHD daemon with its polling thread per online CPU (at most 16, at most
 * max_connections), then the acceptor that spreads connections over them (acceptor.h). */
int http_server_start(struct http_server *s);
uint16_t http_server_port(const struct http_server *s);
/*
 * Stops accepting connections, answers new requests on open connections with 503, lets the
 * requests in flight finish until deadline_ms (monotonic, o2d_now_ms()), then closes every
 * connection and stops the threads.
 */
void http_server_shutdown(struct http_server *s, int64_t deadline_ms);
/* Shuts down at once if still running; NULL is a no-op. */
void http_server_free(struct http_server *s);

#endif
