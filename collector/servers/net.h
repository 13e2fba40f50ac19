/*
 * net.h: listening sockets for the three servers (gRPC, HTTP, health). An endpoint is
 * "host:port" (host may be empty, "0.0.0.0", "localhost", an IPv4 or a [bracketed] IPv6
 * address); port 0 asks the kernel for an ephemeral port, which tests use.
 */
#ifndef O2D_NET_H
#define O2D_NET_H

#include <stddef.h>
#include <stdint.h>

/* Opens a non-blocking, close-on-exec listening TCP socket. On success *fd is the socket
 * and *port the port it is bound to. On failure writes why into err. */
int o2d_listen(const char *endpoint, int backlog, int *fd, uint16_t *port, char *err,
               size_t errlen);

#endif
