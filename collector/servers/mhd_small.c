/*
 * mhd_small.c: see mhd_small.h.
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "mhd_small.h"
#include "net.h"
#include "o2d.h"
#include "o2d_alloc.h"
#include "o2d_log.h"
#include "o2d_time.h"

#define MHD_SMALL_BACKLOG 64

/* MHD says most of what it says once per bad request (a header flood: one line each), so
 * each message is rate-limited on its own. */
static struct o2d_log_limiter mhd_log_limit;

void mhd_small_log(void *cls, const char *fmt, va_list ap)
{
    const char *server = cls != NULL ? cls : "?";
    char msg[512];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    size_t n = strlen(msg);
    while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == ' ' || msg[n - 1] == '.')) {
        msg[--n] = '\0';
    }
    /* MHD says this of every failed TLS handshake (a plaintext client, a scanner, TLS 1.1):
     * the client's problem, not the operator's, so it stays out of the default log as on
     * the gRPC port. */
    int peer_tls = strcmp(msg, "Error: received handshake message out of context") == 0;
    struct o2d_logline l;
    o2d_log_begin_limited(&l, peer_tls ? O2D_LOG_DEBUG : O2D_LOG_WARN, "microhttpd", &mhd_log_limit,
                          msg, o2d_now_ms());
    o2d_log_cstr(&l, "server", server);
    o2d_log_str(&l, "detail", msg, n);
    o2d_log_end(&l);
}

enum MHD_Result mhd_small_answer(struct MHD_Connection *conn, unsigned int code, const char *ctype,
                                 uint8_t *owned, size_t len, const char *body, const char *allow)
{
    struct MHD_Response *r;
    if (owned != NULL) {
        r = MHD_create_response_from_buffer_with_free_callback(len, owned, o2d_free);
        if (r == NULL) {
            o2d_free(owned);
        }
    } else {
        r = MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_PERSISTENT);
    }
    if (r == NULL) {
        return MHD_NO;
    }
    enum MHD_Result ok = MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
    if (ok == MHD_YES) {
        ok = MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    }
    if (ok == MHD_YES && allow != NULL) {
        ok = MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, allow);
    }
    if (ok == MHD_YES) {
        ok = MHD_queue_response(conn, code, r);
    }
    MHD_destroy_response(r);
    return ok;
}

int mhd_small_start(struct MHD_Daemon **out, uint16_t *port, const char *server,
                    const char *endpoint, const struct mhd_small_limits *lim,
                    MHD_AccessHandlerCallback handler, void *cls, char *err, size_t errlen)
{
    int fd = -1;
    *out = NULL;
    int rv = o2d_listen(endpoint, MHD_SMALL_BACKLOG, &fd, port, err, errlen);
    if (rv != O2D_OK) {
        return rv;
    }
    struct MHD_Daemon *d = MHD_start_daemon(
        MHD_USE_EPOLL_INTERNAL_THREAD | MHD_USE_ERROR_LOG, 0, NULL, NULL, handler, cls,
        MHD_OPTION_EXTERNAL_LOGGER, (MHD_LogCallback)mhd_small_log, (void *)server, /* first */
        MHD_OPTION_LISTEN_SOCKET, (MHD_socket)fd,             /* bound by o2d_listen */
        MHD_OPTION_CONNECTION_LIMIT, lim->connections,        /* probes are few */
        MHD_OPTION_CONNECTION_TIMEOUT, lim->timeout_s,        /* and quick */
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, lim->conn_memory, /* bounds headers */
        MHD_OPTION_END);
    if (d == NULL) {
        close(fd);
        snprintf(err, errlen, "cannot start the %s server on '%s'", server, endpoint);
        return O2D_ERR_SYSTEM;
    }
    struct o2d_logline l;
    o2d_log_begin(&l, O2D_LOG_INFO, "listening");
    o2d_log_cstr(&l, "server", server);
    o2d_log_cstr(&l, "endpoint", endpoint);
    o2d_log_int(&l, "port", *port);
    o2d_log_end(&l);
    *out = d;
    return O2D_OK;
}
