/*
 * acceptor.h: one thread that accepts the connections of one listening socket and hands each
 * to the least-loaded of a receiver's workers, so connections opened together spread evenly
 * whatever the kernel's wake-up order (EPOLLEXCLUSIVE and MHD's pool threads both let one
 * thread take a burst of connections).
 *
 * The acceptor owns the per-worker count of open connections and max_connections: over the
 * limit it accepts and closes, with a rate-limited warning. It knows nothing of the protocol:
 * the receiver's assign() adopts the socket on the chosen worker, and the receiver calls
 * acceptor_release() when that connection ends. Running out of descriptors (EMFILE, ENFILE)
 * pauses accepting briefly instead of spinning on a listening socket that stays readable.
 */
#ifndef O2D_ACCEPTOR_H
#define O2D_ACCEPTOR_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define ACCEPTOR_MAX_WORKERS 16

struct acceptor;

struct acceptor_config {
    const char *server; /* "grpc", "http": the server field of the log lines; borrowed */
    int fd;             /* the non-blocking listening socket; borrowed, the receiver closes it */
    int nworkers;       /* 1..ACCEPTOR_MAX_WORKERS */
    uint32_t max_connections; /* open connections over all workers */
    /*
     * Runs on the acceptor thread: hands fd (non-blocking, close-on-exec) to worker, which
     * counts as one open connection of that worker from now on. Takes ownership of fd
     * whatever it returns. O2D_OK: the worker adopts it and acceptor_release() follows when
     * it ends. An error: fd is closed and the acceptor releases the slot itself.
     */
    int (*assign)(void *ctx, int worker, int fd, const struct sockaddr *addr, socklen_t addrlen);
    void *ctx;
};

struct acceptor_stats {
    uint64_t accepted;     /* handed to a worker */
    uint64_t refused;      /* closed at once: max_connections reached, or assign() failed */
    uint64_t fd_exhausted; /* accept() failed with EMFILE/ENFILE/ENOBUFS/ENOMEM (backed off) */
};

/* Copies cfg; no thread runs until acceptor_start(). */
int acceptor_new(struct acceptor **out, const struct acceptor_config *cfg);
/* Starts the thread (all signals blocked on it). */
int acceptor_start(struct acceptor *a);
/* Stops and joins the thread: no assign() runs after it returns. Idempotent. */
void acceptor_stop(struct acceptor *a);
/* A connection that assign() handed to worker has ended. Any thread. */
void acceptor_release(struct acceptor *a, int worker);
/* Open connections of worker, counted from assign() to acceptor_release(). */
uint32_t acceptor_load(const struct acceptor *a, int worker);
void acceptor_get_stats(const struct acceptor *a, struct acceptor_stats *st);
/* Stops if needed; NULL is a no-op. */
void acceptor_free(struct acceptor *a);

#endif
