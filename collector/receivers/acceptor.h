/*
 * acceptor.h: one thread that accepts the connections of one listening socket and hands each
 * to the least-loaded of a receiver's workers, so connections opened together spread evenly
 * whatever the kernel's wake-up order (EPOLLEXCLUSIVE and MHD's pool threads both let one
 * thread take a burst of connections).
 *
 * The acceptor owns the per-worker count of open connections and max_connections. Slots are
 * earned: at the limit, a receiver that gives an evict() callback is asked to close its
 * longest-idle connection (no request in progress), and the newcomer waits in the acceptor
 * (at most ACCEPTOR_WAIT_MAX of them, ACCEPTOR_WAIT_MS each) for the slot that frees; with
 * nothing idle for 100 ms it is closed, with a rate-limited warning. It knows
 * nothing of the protocol: the receiver's assign() adopts the socket on the chosen worker,
 * and the receiver calls acceptor_release() when that connection ends. Out of descriptors
 * (EMFILE, ENFILE), a spare descriptor is given up for a moment to accept the waiting
 * client and close it at once, so clients are refused fast instead of timing out in the
 * backlog; only when that fails too does accepting pause briefly.
 */
#ifndef O2D_ACCEPTOR_H
#define O2D_ACCEPTOR_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define ACCEPTOR_MAX_WORKERS 16
/* Newcomers held while the slots they asked evict() for free up, and for how long. */
#define ACCEPTOR_WAIT_MAX 64
#define ACCEPTOR_WAIT_MS  1000
/* How often tick() runs. */
#define ACCEPTOR_TICK_MS 250

struct acceptor;

/* Why a newcomer was accepted and closed at once: a closed set, safe as a metric label. */
enum acceptor_refusal {
    ACCEPTOR_REFUSED_FULL = 0,  /* max_connections reached: nothing idle made room in time */
    ACCEPTOR_REFUSED_NO_FD = 1, /* out of descriptors: taken with the spare and closed */
};

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
    /*
     * Optional; runs on the acceptor thread when max_connections is reached and a client
     * waits. Asks the receiver to close its longest-idle connection, on the thread that owns
     * it; acceptor_release() follows when it is closed. O2D_OK: one will be closed;
     * O2D_ERR_BUSY: no connection is idle (asked again every 10 ms; after 100 ms the
     * newcomer is refused). Must not block on I/O.
     */
    int (*evict)(void *ctx);
    /* Optional; runs on the acceptor thread about every ACCEPTOR_TICK_MS (receiver timers). */
    void (*tick)(void *ctx, int64_t now_ms);
    /* Optional; runs on the acceptor thread for each newcomer refused for `why`, before it is
     * closed, so that a client that sees the close finds it counted. Must not block. */
    void (*refused)(void *ctx, enum acceptor_refusal why);
    void *ctx;
};

struct acceptor_stats {
    uint64_t accepted;      /* handed to a worker */
    uint64_t refused;       /* closed at once: max_connections reached with nothing idle, no
                               slot freed within ACCEPTOR_WAIT_MS, out of descriptors, or
                               assign() failed */
    uint64_t refused_full;  /* of those, at max_connections (ACCEPTOR_REFUSED_FULL) */
    uint64_t refused_no_fd; /* of those, out of descriptors (ACCEPTOR_REFUSED_NO_FD) */
    uint64_t evictions;     /* evict() agreed to close an idle connection for a newcomer */
    uint64_t fd_exhausted;  /* accept() failed with EMFILE/ENFILE/ENOBUFS/ENOMEM */
};

/* Copies cfg; no thread runs until acceptor_start(). */
int acceptor_new(struct acceptor **out, const struct acceptor_config *cfg);
/* Starts the thread (all signals blocked on it). */
int acceptor_start(struct acceptor *a);
/* Stops and joins the thread: no assign(), evict() or tick() runs after it returns, and
 * the newcomers still waiting are closed. Idempotent. */
void acceptor_stop(struct acceptor *a);
/* A connection that assign() handed to worker has ended. Any thread; wakes the acceptor
 * when a newcomer waits for the slot. */
void acceptor_release(struct acceptor *a, int worker);
/* Open connections of worker, counted from assign() to acceptor_release(). */
uint32_t acceptor_load(const struct acceptor *a, int worker);
void acceptor_get_stats(const struct acceptor *a, struct acceptor_stats *st);
/* Stops if needed; NULL is a no-op. */
void acceptor_free(struct acceptor *a);

#endif
