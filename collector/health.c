/*
 * health.c: the health endpoint on libmicrohttpd with one polling thread. Every request is
 * answered on MHD's first call, from its request line alone, so no body is ever read; a
 * small connection limit, memory limit and timeout keep a misbehaving prober cheap. What the
 * state means (when the collector is ready, when it drains) is decided by main.
 */
#include <microhttpd.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "health.h"
#include "net.h"
#include "o2d.h"
#include "o2d_alloc.h"
#include "o2d_log.h"

#define HEALTH_BACKLOG      64
#define HEALTH_CONNECTIONS  32
#define HEALTH_TIMEOUT_S    5
#define HEALTH_CONN_MEMORY  (8 * 1024)
#define HEALTH_CONTENT_TYPE "application/json"

struct health_server {
    struct MHD_Daemon *daemon;
    uint16_t port;
    atomic_int state;
};

static enum MHD_Result answer(struct MHD_Connection *conn, unsigned int code, const char *body,
                              const char *allow)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_PERSISTENT);
    if (r == NULL) {
        return MHD_NO;
    }
    enum MHD_Result ok =
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, HEALTH_CONTENT_TYPE);
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

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    struct health_server *h = cls;
    if (strcmp(url, "/") != 0) {
        return answer(conn, MHD_HTTP_NOT_FOUND, "{\"error\":\"not found\"}", NULL);
    }
    if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0) {
        return answer(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "{\"error\":\"method not allowed\"}",
                      "GET, HEAD");
    }
    switch (atomic_load(&h->state)) {
    case HEALTH_READY:
        return answer(conn, MHD_HTTP_OK, "{\"status\":\"ready\"}", NULL);
    case HEALTH_DRAINING:
        return answer(conn, MHD_HTTP_SERVICE_UNAVAILABLE, "{\"status\":\"draining\"}", NULL);
    default:
        return answer(conn, MHD_HTTP_SERVICE_UNAVAILABLE, "{\"status\":\"starting\"}", NULL);
    }
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    char msg[512];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    size_t n = strlen(msg);
    while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == ' ' || msg[n - 1] == '.')) {
        msg[--n] = '\0';
    }
    struct o2d_logline l;
    o2d_log_begin(&l, O2D_LOG_WARN, "microhttpd");
    o2d_log_cstr(&l, "server", "health");
    o2d_log_str(&l, "detail", msg, n);
    o2d_log_end(&l);
}

int health_server_new(struct health_server **out, const char *endpoint, char *err, size_t errlen)
{
    int rv = O2D_ERR_NOMEM;
    int fd = -1;
    *out = NULL;
    struct health_server *h = o2d_calloc(1, sizeof(*h));
    if (h == NULL) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    atomic_init(&h->state, HEALTH_STARTING);
    rv = o2d_listen(endpoint, HEALTH_BACKLOG, &fd, &h->port, err, errlen);
    if (rv != O2D_OK) {
        goto out;
    }
    h->daemon = MHD_start_daemon(
        MHD_USE_EPOLL_INTERNAL_THREAD | MHD_USE_ERROR_LOG, 0, NULL, NULL, on_request, h,
        MHD_OPTION_EXTERNAL_LOGGER, (MHD_LogCallback)on_mhd_log, NULL,  /* first, to see all */
        MHD_OPTION_LISTEN_SOCKET, (MHD_socket)fd,                       /* bound by o2d_listen */
        MHD_OPTION_CONNECTION_LIMIT, (unsigned int)HEALTH_CONNECTIONS,  /* probes are few */
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)HEALTH_TIMEOUT_S,  /* and quick */
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)HEALTH_CONN_MEMORY, /* bounds headers */
        MHD_OPTION_END);
    if (h->daemon == NULL) {
        snprintf(err, errlen, "cannot start the health server on '%s'", endpoint);
        rv = O2D_ERR_SYSTEM;
        goto out;
    }
    fd = -1; /* MHD's now */
    struct o2d_logline l;
    o2d_log_begin(&l, O2D_LOG_INFO, "listening");
    o2d_log_cstr(&l, "server", "health");
    o2d_log_cstr(&l, "endpoint", endpoint);
    o2d_log_int(&l, "port", h->port);
    o2d_log_end(&l);
    *out = h;
    h = NULL;
out:
    if (fd >= 0) {
        close(fd);
    }
    health_server_free(h);
    return rv;
}

void health_set_state(struct health_server *h, enum health_state st)
{
    atomic_store(&h->state, st);
}

uint16_t health_server_port(const struct health_server *h)
{
    return h->port;
}

void health_server_free(struct health_server *h)
{
    if (h == NULL) {
        return;
    }
    if (h->daemon != NULL) {
        MHD_stop_daemon(h->daemon);
    }
    o2d_free(h);
}
