/*
 * acceptor.c: the accept loop of one listening socket, the least-loaded choice of worker, and
 * the earning of slots when they run short.
 *
 * The thread polls the listening socket, an eventfd that stops it and an eventfd that
 * releases ring while newcomers wait; it accepts up to ACCEPTOR_BATCH connections per
 * wake-up and gives each to the worker with the fewest open connections (ties: the lowest
 * index), counting it before assign() so that a burst is spread even before any worker has
 * run. Only this thread increments the counts; workers decrement them from their own threads,
 * so a count read here is never below the truth and max_connections is never exceeded. With
 * the total below max_connections the least-loaded worker is below
 * ceil(max_connections / nworkers), which bounds what a worker's inbox holds. Eviction keeps
 * that bound: a newcomer is handed over only once the evicted connection has released its
 * slot, never before.
 *
 * At max_connections a newcomer is not refused while something idle can make room: evict()
 * asks the receiver to close its longest-idle connection, and the newcomer waits in a small
 * FIFO (ACCEPTOR_WAIT_MAX descriptors) until a slot is released or ACCEPTOR_WAIT_MS passes.
 * When nothing is idle, evict() is asked again every ACCEPTOR_RETRY_MS for ACCEPTOR_BUSY_MS
 * (connections just handed over become idle on their worker a moment later), then the
 * newcomer is refused.
 * While the FIFO is full the listening socket is not polled: further clients wait in the
 * backlog, which costs no descriptor.
 *
 * Out of descriptors, a spare one (/dev/null, opened at start) is closed so that accept()
 * can take the client, which is closed at once, and the spare is opened again: the client
 * learns at once that it was refused, instead of timing out in the backlog while the
 * listening socket stays readable. When even that fails (another thread took the freed
 * number), accepting pauses ACCEPTOR_BACKOFF_MS instead of spinning.
 *
 * Left to the receivers: adopting the socket (socket options, protocol, their event loop),
 * choosing and closing the idle connection to evict, and telling when a connection ends.
 */
#include <errno.h>
#include <fcntl.h>
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
/* accept() failed for want of memory or descriptors even with the spare given up: how long
 * accepting pauses. The listening socket stays readable, so polling it again at once would
 * spin; connections wait in the backlog meanwhile. */
#define ACCEPTOR_BACKOFF_MS 100

/* How long a newcomer waits for a connection to become evictable, asking again every
 * ACCEPTOR_RETRY_MS: connections just handed over are not yet idle on their worker. */
#define ACCEPTOR_BUSY_MS  100
#define ACCEPTOR_RETRY_MS 10

/* A newcomer waiting for the slot an eviction frees. */
struct waiter {
    int fd;
    int evicting; /* evict() agreed for it */
    int64_t since_ms;
    struct sockaddr_storage addr;
    socklen_t addrlen;
};

struct acceptor {
    struct acceptor_config cfg;
    int stop_fd;
    int wake_fd; /* acceptor_release() rings it while newcomers wait */
    int spare_fd;
    pthread_t thread;
    int started;
    atomic_uint load[ACCEPTOR_MAX_WORKERS];
    atomic_uint_fast64_t accepted;
    atomic_uint_fast64_t refused;
    atomic_uint_fast64_t refused_why[2]; /* by enum acceptor_refusal */
    atomic_uint_fast64_t evictions;
    atomic_uint_fast64_t fd_exhausted;
    /* The FIFO of waiting newcomers, acceptor thread only; nwaiting is also read by
     * acceptor_release() to know whether to ring. */
    struct waiter waiting[ACCEPTOR_WAIT_MAX];
    size_t wait_head;
    int64_t head_ms; /* when the waiter at the head got there */
    atomic_size_t nwaiting;
    int short_of_evictions; /* some waiter has no eviction yet: ask again soon */
    int64_t next_tick_ms;
    /* Rate limit of the warnings, one line a second per kind of trouble. */
    struct o2d_log_limiter log_limit;
};

static int open_spare(void)
{
    return open("/dev/null", O_RDONLY | O_CLOEXEC);
}

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
    atomic_init(&a->refused_why[ACCEPTOR_REFUSED_FULL], 0);
    atomic_init(&a->refused_why[ACCEPTOR_REFUSED_NO_FD], 0);
    atomic_init(&a->evictions, 0);
    atomic_init(&a->fd_exhausted, 0);
    atomic_init(&a->nwaiting, 0);
    a->stop_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    a->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    a->spare_fd = open_spare();
    if (a->stop_fd < 0 || a->wake_fd < 0 || a->spare_fd < 0) {
        if (a->stop_fd >= 0) {
            close(a->stop_fd);
        }
        if (a->wake_fd >= 0) {
            close(a->wake_fd);
        }
        if (a->spare_fd >= 0) {
            close(a->spare_fd);
        }
        o2d_free(a);
        return O2D_ERR_SYSTEM;
    }
    *out = a;
    return O2D_OK;
}

/* Counts a refusal and tells the receiver; before the close, so the client can see it. */
static void count_refusal(struct acceptor *a, enum acceptor_refusal why)
{
    atomic_fetch_add_explicit(&a->refused, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&a->refused_why[why], 1, memory_order_relaxed);
    if (a->cfg.refused != NULL) {
        a->cfg.refused(a->cfg.ctx, why);
    }
}

/* A newcomer refused at max_connections. */
static void refuse(struct acceptor *a, int fd, const char *why)
{
    count_refusal(a, ACCEPTOR_REFUSED_FULL);
    close(fd);
    struct o2d_logline l;
    o2d_log_begin_limited(&l, O2D_LOG_WARN, why, &a->log_limit, why, o2d_now_ms());
    o2d_log_cstr(&l, "server", a->cfg.server);
    o2d_log_uint(&l, "max_connections", a->cfg.max_connections);
    o2d_log_end(&l);
}

/* The worker with the fewest open connections, or -1 when max_connections is reached. The
 * loads are read sequentially consistent: see acceptor_release(). */
static int pick_worker(struct acceptor *a)
{
    uint64_t total = 0;
    int best = 0;
    uint32_t best_load = UINT32_MAX;
    for (int i = 0; i < a->cfg.nworkers; i++) {
        uint32_t n = atomic_load(&a->load[i]);
        total += n;
        if (n < best_load) {
            best = i;
            best_load = n;
        }
    }
    return total >= a->cfg.max_connections ? -1 : best;
}

static void hand_over(struct acceptor *a, int w, int fd, const struct sockaddr *addr,
                      socklen_t addrlen)
{
    atomic_fetch_add_explicit(&a->load[w], 1, memory_order_relaxed);
    if (a->cfg.assign(a->cfg.ctx, w, fd, addr, addrlen) != O2D_OK) {
        /* assign() closed fd. */
        atomic_fetch_sub_explicit(&a->load[w], 1, memory_order_relaxed);
        atomic_fetch_add_explicit(&a->refused, 1, memory_order_relaxed);
        return;
    }
    atomic_fetch_add_explicit(&a->accepted, 1, memory_order_relaxed);
}

static size_t waiting_count(struct acceptor *a)
{
    return atomic_load(&a->nwaiting);
}

/* Asks evict() for the waiters that have no eviction yet. 1 when some still have none. */
static int ask_evictions(struct acceptor *a)
{
    size_t n = waiting_count(a);
    int short_of = 0;
    for (size_t i = 0; i < n; i++) {
        struct waiter *wt = &a->waiting[(a->wait_head + i) % ACCEPTOR_WAIT_MAX];
        if (wt->evicting) {
            continue;
        }
        if (a->cfg.evict(a->cfg.ctx) != O2D_OK) {
            short_of = 1;
            break;
        }
        wt->evicting = 1;
        atomic_fetch_add_explicit(&a->evictions, 1, memory_order_relaxed);
    }
    return short_of;
}

/* When the head waiter is refused. Without an eviction, ACCEPTOR_BUSY_MS counts from when
 * it reached the head: behind waiters whose evictions are under way, it waits for the
 * connections those bring in to become idle. ACCEPTOR_WAIT_MS bounds every wait. */
static int64_t waiter_deadline(const struct acceptor *a, const struct waiter *wt)
{
    int64_t last = wt->since_ms + ACCEPTOR_WAIT_MS;
    if (wt->evicting) {
        return last;
    }
    int64_t from = a->head_ms > wt->since_ms ? a->head_ms : wt->since_ms;
    return from + ACCEPTOR_BUSY_MS < last ? from + ACCEPTOR_BUSY_MS : last;
}

static int waiter_expired(const struct acceptor *a, const struct waiter *wt, int64_t now)
{
    return now >= waiter_deadline(a, wt);
}

/* Hands the waiting newcomers slots that came free, oldest first. Refuses one that found
 * nothing idle within ACCEPTOR_BUSY_MS, or whose eviction freed no slot within
 * ACCEPTOR_WAIT_MS (the connection got busy meanwhile). */
static void serve_waiting(struct acceptor *a, int64_t now)
{
    while (waiting_count(a) > 0) {
        struct waiter *wt = &a->waiting[a->wait_head];
        int w = pick_worker(a);
        if (w < 0 && !waiter_expired(a, wt, now)) {
            break;
        }
        int fd = wt->fd;
        a->wait_head = (a->wait_head + 1) % ACCEPTOR_WAIT_MAX;
        a->head_ms = now;
        atomic_fetch_sub(&a->nwaiting, 1);
        if (w >= 0) {
            hand_over(a, w, fd, (const struct sockaddr *)&wt->addr, wt->addrlen);
        } else if (wt->evicting) {
            refuse(a, fd, "connection refused: max_connections reached, no slot came free");
        } else {
            refuse(a, fd, "connection refused: max_connections reached and none idle");
        }
    }
    a->short_of_evictions = waiting_count(a) > 0 && ask_evictions(a);
}

static void dispatch(struct acceptor *a, int fd, const struct sockaddr *addr, socklen_t addrlen)
{
    serve_waiting(a, o2d_now_ms());
    if (waiting_count(a) == 0) {
        int w = pick_worker(a);
        if (w >= 0) {
            hand_over(a, w, fd, addr, addrlen);
            return;
        }
    }
    size_t n = waiting_count(a);
    if (a->cfg.evict == NULL || n >= ACCEPTOR_WAIT_MAX) {
        refuse(a, fd, "connection refused: max_connections reached");
        return;
    }
    /* Published before evict() asks for the slot, so the release that frees it rings. */
    struct waiter *wt = &a->waiting[(a->wait_head + n) % ACCEPTOR_WAIT_MAX];
    wt->fd = fd;
    wt->evicting = 0;
    wt->since_ms = o2d_now_ms();
    wt->addrlen = addrlen <= sizeof(wt->addr) ? addrlen : sizeof(wt->addr);
    memcpy(&wt->addr, addr, wt->addrlen);
    atomic_fetch_add(&a->nwaiting, 1);
    /* Asks for its eviction; a slot released between pick_worker() and now may not have
     * rung, so this also looks again. */
    serve_waiting(a, wt->since_ms);
}

static void log_exhausted(struct acceptor *a, const char *msg, int e)
{
    struct o2d_logline l;
    o2d_log_begin_limited(&l, O2D_LOG_WARN, msg, &a->log_limit, msg, o2d_now_ms());
    o2d_log_cstr(&l, "server", a->cfg.server);
    o2d_log_cstr(&l, "error", strerror(e));
    o2d_log_end(&l);
}

/*
 * Out of descriptors: the spare one makes room to accept the waiting client and close it at
 * once. 1 when a client was refused (look at the backlog again), 0 when the backlog is
 * empty, -1 when accepting must pause.
 */
static int refuse_with_spare(struct acceptor *a)
{
    if (a->spare_fd < 0) {
        a->spare_fd = open_spare();
        if (a->spare_fd < 0) {
            return -1;
        }
    }
    close(a->spare_fd);
    a->spare_fd = -1;
    int fd = accept4(a->cfg.fd, NULL, NULL, SOCK_CLOEXEC);
    int e = errno;
    if (fd >= 0) {
        count_refusal(a, ACCEPTOR_REFUSED_NO_FD);
        close(fd);
    }
    a->spare_fd = open_spare();
    if (fd >= 0) {
        log_exhausted(a, "connection refused: out of file descriptors", EMFILE);
        return 1;
    }
    return e == EAGAIN || e == EWOULDBLOCK ? 0 : -1;
}

/* Accepts what is waiting. Returns 1 when accepting must pause (out of descriptors). */
static int accept_batch(struct acceptor *a)
{
    for (int i = 0; i < ACCEPTOR_BATCH && waiting_count(a) < ACCEPTOR_WAIT_MAX; i++) {
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
        if (e == EMFILE || e == ENFILE) {
            int r = refuse_with_spare(a);
            if (r > 0) {
                continue;
            }
            if (r == 0) {
                return 0;
            }
        }
        log_exhausted(a,
                      exhausted ? "cannot accept connections: out of file descriptors"
                                : "cannot accept connections",
                      e);
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

/* Milliseconds until the next timer (the oldest waiter's expiry, tick()), -1 for none. */
static int poll_timeout(struct acceptor *a, int64_t now)
{
    int64_t next = INT64_MAX;
    if (waiting_count(a) > 0) {
        next = waiter_deadline(a, &a->waiting[a->wait_head]);
        if (a->short_of_evictions && now + ACCEPTOR_RETRY_MS < next) {
            next = now + ACCEPTOR_RETRY_MS;
        }
    }
    if (a->cfg.tick != NULL && a->next_tick_ms < next) {
        next = a->next_tick_ms;
    }
    if (next == INT64_MAX) {
        return -1;
    }
    return next <= now ? 0 : next - now > ACCEPTOR_TICK_MS ? ACCEPTOR_TICK_MS : (int)(next - now);
}

static void *acceptor_main(void *arg)
{
    struct acceptor *a = arg;
    a->next_tick_ms = o2d_now_ms() + ACCEPTOR_TICK_MS;
    for (;;) {
        int64_t now = o2d_now_ms();
        serve_waiting(a, now);
        if (a->cfg.tick != NULL && now >= a->next_tick_ms) {
            a->cfg.tick(a->cfg.ctx, now);
            a->next_tick_ms = now + ACCEPTOR_TICK_MS;
        }
        /* A full FIFO leaves further clients in the backlog until slots free. */
        short listen_events = waiting_count(a) < ACCEPTOR_WAIT_MAX ? POLLIN : 0;
        struct pollfd p[3] = {
            {a->cfg.fd, listen_events, 0}, {a->stop_fd, POLLIN, 0}, {a->wake_fd, POLLIN, 0}};
        int n = poll(p, 3, poll_timeout(a, now));
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
        if (p[2].revents != 0) {
            uint64_t v;
            ssize_t r = read(a->wake_fd, &v, sizeof(v));
            (void)r; /* reset; the FIFO is looked at on every pass */
            serve_waiting(a, o2d_now_ms());
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
    while (waiting_count(a) > 0) {
        close(a->waiting[a->wait_head].fd);
        a->wait_head = (a->wait_head + 1) % ACCEPTOR_WAIT_MAX;
        atomic_fetch_sub(&a->nwaiting, 1);
    }
}

void acceptor_release(struct acceptor *a, int worker)
{
    if (a != NULL && worker >= 0 && worker < a->cfg.nworkers) {
        /* Sequentially consistent with dispatch(): either it sees this slot free, or this
         * sees its waiter and rings. */
        atomic_fetch_sub(&a->load[worker], 1);
        if (atomic_load(&a->nwaiting) > 0) {
            uint64_t one = 1;
            ssize_t n = write(a->wake_fd, &one, sizeof(one));
            (void)n;
        }
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
    st->refused_full =
        atomic_load_explicit(&a->refused_why[ACCEPTOR_REFUSED_FULL], memory_order_relaxed);
    st->refused_no_fd =
        atomic_load_explicit(&a->refused_why[ACCEPTOR_REFUSED_NO_FD], memory_order_relaxed);
    st->evictions = atomic_load_explicit(&a->evictions, memory_order_relaxed);
    st->fd_exhausted = atomic_load_explicit(&a->fd_exhausted, memory_order_relaxed);
}

void acceptor_free(struct acceptor *a)
{
    if (a == NULL) {
        return;
    }
    acceptor_stop(a);
    close(a->stop_fd);
    close(a->wake_fd);
    if (a->spare_fd >= 0) {
        close(a->spare_fd);
    }
    o2d_free(a);
}
