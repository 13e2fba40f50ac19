/*
 * acceptor.c: the accept loop of one listening socket and the least-loaded choice of worker.
 *
 * The thread polls the listening socket and an eventfd that stops it, accepts up to
 * ACCEPTOR_BATCH connections per wake-up and gives each to the worker with the fewest open
 * connections (ties: the lowest index), counting it before assign() so that a burst is
 * spread even before any worker has run. Only this thread increments the counts; workers
 * decrement them from their own threads, so a count read here is never below the truth and
 * max_connections is never exceeded. With the total below max_connections the least-loaded
 * worker is below ceil(max_connections / nworkers), which bounds what a worker's inbox holds.
 *
 * Left to the receivers: adopting the socket (socket options, protocol, their event loop),
 * and telling when a connection ends.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "acceptor.h"
#include "o2d.h"
#include "o2d_alloc.h"
#include "o2d_log.h"
#include "o2d_time.h"

/* Accepts per wake-up before looking at the stop event again. */
#define ACCEPTOR_BATCH 64
/* Out of descriptors: how long accepting pauses. The listening socket stays readable, so
 * polling it again at once would spin; connections wait in the backlog meanwhile. */
#define ACCEPTOR_BACKOFF_MS 100

struct acceptor {
    struct acceptor_config cfg;
    int stop_fd;
    pthread_t thread;
    int started;
    atomic_uint load[ACCEPTOR_MAX_WORKERS];
    atomic_uint_fast64_t accepted;
    atomic_uint_fast64_t refused;
    atomic_uint_fast64_t fd_exhausted;
    /* Rate limit of the warnings, one line a second per kind of trouble. */
    struct o2d_log_limiter log_limit;
};

int acceptor_new(struct acceptor **out, const struct acceptor_config *cfg)
{
    *out = NULL;
    if (cfg->nworkers < 1 || cfg->nworkers > ACCEPTOR_MAX_WORKERS || cfg->assign == NULL ||
        cfg->fd < 0) {
        return O2D_ERR_INTERNAL;
    }
    struct acceptor *a = o2d_calloc(1, sizeof(*a));
    if (a == NULL) {
        return O2D_ERR_NOMEM;
    }
    a->cfg = *cfg;
    for (int i = 0; i < ACCEPTOR_MAX_WORKERS; i++) {
        atomic_init(&a->load[i], 0);
    }
    atomic_init(&a->accepted, 0);
    atomic_init(&a->refused, 0);
    atomic_init(&a->fd_exhausted, 0);
    a->stop_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (a->stop_fd < 0) {
        o2d_free(a);
        return O2D_ERR_SYSTEM;
    }
    *out = a;
    return O2D_OK;
}

static void refuse(struct acceptor *a, int fd, const char *why)
{
    close(fd);
    atomic_fetch_add_explicit(&a->refused, 1, memory_order_relaxed);
    struct o2d_logline l;
    o2d_log_begin_limited(&l, O2D_LOG_WARN, why, &a->log_limit, why, o2d_now_ms());
    o2d_log_cstr(&l, "server", a->cfg.server);
    o2d_log_uint(&l, "max_connections", a->cfg.max_connections);
    o2d_log_end(&l);
}

/* The worker with the fewest open connections, or -1 when max_connections is reached. */
static int pick_worker(struct acceptor *a)
{
    uint64_t total = 0;
    int best = 0;
    uint32_t best_load = UINT32_MAX;
    for (int i = 0; i < a->cfg.nworkers; i++) {
        uint32_t n = atomic_load_explicit(&a->load[i], memory_order_relaxed);
        total += n;
        if (n < best_load) {
            best = i;
            best_load = n;
        }
    }
    return total >= a->cfg.max_connections ? -1 : best;
}

static void dispatch(struct acceptor *a, int fd, const struct sockaddr *addr, socklen_t addrlen)
{
    int w = pick_worker(a);
    if (w < 0) {
        refuse(a, fd, "connection refused: max_connections reached");
        return;
    }
    atomic_fetch_add_explicit(&a->load[w], 1, memory_order_relaxed);
    if (a->cfg.assign(a->cfg.ctx, w, fd, addr, addrlen) != O2D_OK) {
        /* assign() closed fd. */
        atomic_fetch_sub_explicit(&a->load[w], 1, memory_order_relaxed);
        atomic_fetch_add_explicit(&a->refused, 1, memory_order_relaxed);
        return;
    }
    atomic_fetch_add_explicit(&a->accepted, 1, memory_order_relaxed);
}

/* Accepts what is waiting. Returns 1 when accepting must pause (out of descriptors). */
static int accept_batch(struct acceptor *a)
{
    for (int i = 0; i < ACCEPTOR_BATCH; i++) {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof(ss);
        int fd = accept4(a->cfg.fd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd >= 0) {
            dispatch(a, fd, (const struct sockaddr *)&ss, sl);
            continue;
        }
        int e = errno;
        switch (e) {
        case EAGAIN:
#if EWOULDBLOCK != EAGAIN
        case EWOULDBLOCK:
#endif
            return 0;
        /* The connection died in the backlog, or a network error accept() passes on. */
        case EINTR:
        case ECONNABORTED:
        case EPROTO:
        case ENETDOWN:
        case ENOPROTOOPT:
        case EHOSTDOWN:
        case ENONET:
        case EHOSTUNREACH:
        case EOPNOTSUPP:
        case ENETUNREACH:
            continue;
        default:
            break;
        }
        int exhausted = e == EMFILE || e == ENFILE || e == ENOBUFS || e == ENOMEM;
        if (exhausted) {
            atomic_fetch_add_explicit(&a->fd_exhausted, 1, memory_order_relaxed);
        }
        const char *msg = exhausted ? "cannot accept connections: out of file descriptors"
                                    : "cannot accept connections";
        struct o2d_logline l;
        o2d_log_begin_limited(&l, O2D_LOG_WARN, msg, &a->log_limit, msg, o2d_now_ms());
        o2d_log_cstr(&l, "server", a->cfg.server);
        o2d_log_cstr(&l, "error", strerror(e));
        o2d_log_end(&l);
        return 1;
    }
    return 0;
}

/* Waits up to ms for the stop event; 1 when it came. */
static int wait_stop(struct acceptor *a, int ms)
{
    struct pollfd p = {a->stop_fd, POLLIN, 0};
    int64_t deadline = o2d_now_ms() + ms;
    for (;;) {
        int64_t left = deadline - o2d_now_ms();
        int n = poll(&p, 1, left > 0 ? (int)left : 0);
        if (n > 0) {
            return 1;
        }
        if (n == 0 || (n < 0 && errno != EINTR) || left <= 0) {
            return 0;
        }
    }
}

static void *acceptor_main(void *arg)
{
    struct acceptor *a = arg;
    for (;;) {
        struct pollfd p[2] = {{a->cfg.fd, POLLIN, 0}, {a->stop_fd, POLLIN, 0}};
        int n = poll(p, 2, -1);
        if (n < 0) {
            /* EINTR, or ENOMEM: nothing to accept for now, and no spinning either. */
            if (errno != EINTR && wait_stop(a, ACCEPTOR_BACKOFF_MS)) {
                break;
            }
            continue;
        }
        if (p[1].revents != 0) {
            break;
        }
        if (p[0].revents != 0 && accept_batch(a) && wait_stop(a, ACCEPTOR_BACKOFF_MS)) {
            break;
        }
    }
    return NULL;
}

int acceptor_start(struct acceptor *a)
{
    if (a->started) {
        return O2D_ERR_INTERNAL;
    }
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    int rv = pthread_create(&a->thread, NULL, acceptor_main, a);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rv != 0) {
        return O2D_ERR_SYSTEM;
    }
    a->started = 1;
    return O2D_OK;
}

void acceptor_stop(struct acceptor *a)
{
    if (a == NULL || !a->started) {
        return;
    }
    uint64_t one = 1;
    ssize_t n = write(a->stop_fd, &one, sizeof(one));
    (void)n; /* an eventfd write only fails on overflow, and then it is readable anyway */
    pthread_join(a->thread, NULL);
    a->started = 0;
}

void acceptor_release(struct acceptor *a, int worker)
{
    if (a != NULL && worker >= 0 && worker < a->cfg.nworkers) {
        atomic_fetch_sub_explicit(&a->load[worker], 1, memory_order_relaxed);
    }
}

uint32_t acceptor_load(const struct acceptor *a, int worker)
{
    if (worker < 0 || worker >= a->cfg.nworkers) {
        return 0;
    }
    return atomic_load_explicit(&a->load[worker], memory_order_relaxed);
}

void acceptor_get_stats(const struct acceptor *a, struct acceptor_stats *st)
{
    st->accepted = atomic_load_explicit(&a->accepted, memory_order_relaxed);
    st->refused = atomic_load_explicit(&a->refused, memory_order_relaxed);
    st->fd_exhausted = atomic_load_explicit(&a->fd_exhausted, memory_order_relaxed);
}

void acceptor_free(struct acceptor *a)
{
    if (a == NULL) {
        return;
    }
    acceptor_stop(a);
    close(a->stop_fd);
    o2d_free(a);
}
