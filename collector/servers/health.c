/*
 * health.c: the health endpoint on libmicrohttpd with one polling thread. Every request is
 * answered on MHD's first call, from its request line alone, so no body is ever read; a
 * small connection limit, memory limit and timeout keep a misbehaving prober cheap. What the
 * state means (when the collector is ready, when it drains) is decided by main.
 */
#include <microhttpd.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "health.h"
#include "mhd_small.h"
#include "o2d.h"
#include "o2d_alloc.h"

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
    return mhd_small_answer(conn, code, HEALTH_CONTENT_TYPE, NULL, 0, body, allow);
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

int health_server_new(struct health_server **out, const char *endpoint, char *err, size_t errlen)
{
    static const struct mhd_small_limits lim = {
        .connections = HEALTH_CONNECTIONS,
        .timeout_s = HEALTH_TIMEOUT_S,
        .conn_memory = HEALTH_CONN_MEMORY,
    };
    *out = NULL;
    struct health_server *h = o2d_calloc(1, sizeof(*h));
    if (h == NULL) {
        snprintf(err, errlen, "out of memory");
        return O2D_ERR_NOMEM;
    }
    atomic_init(&h->state, HEALTH_STARTING);
    int rv =
        mhd_small_start(&h->daemon, &h->port, "health", endpoint, &lim, on_request, h, err, errlen);
    if (rv != O2D_OK) {
        health_server_free(h);
        return rv;
    }
    *out = h;
    return O2D_OK;
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
