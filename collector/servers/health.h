/*
 * health.h: the health endpoint for load balancers and ECS health checks. GET / (or HEAD)
 * answers 200 {"status":"ready"} while the collector serves, 503 while it starts or drains.
 * It reads no request body and serves nothing else.
 */
#ifndef O2D_HEALTH_H
#define O2D_HEALTH_H

#include <stddef.h>
#include <stdint.h>

enum health_state {
    HEALTH_STARTING = 0,
    HEALTH_READY = 1,
    HEALTH_DRAINING = 2,
};

struct health_server;

/* Binds endpoint ("host:port"), starts serving in state HEALTH_STARTING and logs
 * {"msg":"listening","server":"health",...,"port":N}. On failure writes why into err. */
int health_server_new(struct health_server **out, const char *endpoint, char *err, size_t errlen);
/* Thread-safe; takes effect for the next request. */
void health_set_state(struct health_server *h, enum health_state st);
uint16_t health_server_port(const struct health_server *h);
/* Stops serving and frees; NULL is a no-op. */
void health_server_free(struct health_server *h);

#endif
