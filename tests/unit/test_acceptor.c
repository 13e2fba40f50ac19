/*
 * test_acceptor.c: the acceptor thread against real sockets on 127.0.0.1: least-loaded choice
 * of worker (with releases), max_connections, a failing assign(), eviction at
 * max_connections (the newcomer waits for the slot evict() frees, is refused when nothing
 * is idle, or after ACCEPTOR_WAIT_MS when no slot comes), tick(), and the fast
 * refusal when accept() runs out of descriptors (RLIMIT_NOFILE lowered under it). Waits poll
 * with a deadline.
 */
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "acceptor.h"
#include "net.h"
#include "o2d.h"
#include "o2d_time.h"

#define MAX_CONNS 64
#define WAIT_MS   5000

/* What assign() was given, in order. */
struct record {
    pthread_mutex_t mu;
    int n;
    int worker[MAX_CONNS];
    int fd[MAX_CONNS];
    int fail_next; /* assign() fails this many times */
    int evicts;    /* evict() calls */
    int evict_ok;  /* what evict() answers: 1 O2D_OK, 0 O2D_ERR_BUSY */
    int ticks;     /* tick() calls */
};

struct fixture {
    int lfd;
    uint16_t port;
    struct acceptor *a;
    struct record rec;
    int clients[MAX_CONNS];
    int nclients;
};

static int record_assign(void *ctx, int worker, int fd, const struct sockaddr *addr,
                         socklen_t addrlen)
{
    struct record *r = ctx;
    pthread_mutex_lock(&r->mu);
    int rv = O2D_OK;
    if (r->fail_next > 0) {
        r->fail_next--;
        close(fd);
        rv = O2D_ERR_BUSY;
    } else if (r->n < MAX_CONNS && addr != NULL && addrlen > 0) {
        r->worker[r->n] = worker;
        r->fd[r->n] = fd;
        r->n++;
    } else {
        close(fd);
        rv = O2D_ERR_INTERNAL;
    }
    pthread_mutex_unlock(&r->mu);
    return rv;
}

static int record_evict(void *ctx)
{
    struct record *r = ctx;
    pthread_mutex_lock(&r->mu);
    r->evicts++;
    int rv = r->evict_ok ? O2D_OK : O2D_ERR_BUSY;
    pthread_mutex_unlock(&r->mu);
    return rv;
}

static void record_tick(void *ctx, int64_t now_ms)
{
    struct record *r = ctx;
    (void)now_ms;
    pthread_mutex_lock(&r->mu);
    r->ticks++;
    pthread_mutex_unlock(&r->mu);
}

static int read_field(struct record *r, const int *field)
{
    pthread_mutex_lock(&r->mu);
    int n = *field;
    pthread_mutex_unlock(&r->mu);
    return n;
}

static int recorded(struct record *r)
{
    pthread_mutex_lock(&r->mu);
    int n = r->n;
    pthread_mutex_unlock(&r->mu);
    return n;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {0, ms * 1000000L};
    nanosleep(&ts, NULL);
}

static void wait_recorded(struct record *r, int n)
{
    int64_t deadline = o2d_now_ms() + WAIT_MS;
    while (recorded(r) < n && o2d_now_ms() < deadline) {
        sleep_ms(2);
    }
    assert_int_equal(recorded(r), n);
}

/* The counts move just after assign() returns or the socket is closed: wait for them. */
static void wait_stats(struct fixture *f, uint64_t accepted, uint64_t refused)
{
    struct acceptor_stats st;
    int64_t deadline = o2d_now_ms() + WAIT_MS;
    for (;;) {
        acceptor_get_stats(f->a, &st);
        if ((st.accepted >= accepted && st.refused >= refused) || o2d_now_ms() >= deadline) {
            break;
        }
        sleep_ms(1);
    }
    assert_int_equal(st.accepted, accepted);
    assert_int_equal(st.refused, refused);
}

static void start_with(struct fixture *f, int nworkers, uint32_t max_connections, int evict)
{
    memset(f, 0, sizeof(*f));
    char err[128];
    assert_int_equal(o2d_listen("127.0.0.1:0", 64, &f->lfd, &f->port, err, sizeof(err)), O2D_OK);
    pthread_mutex_init(&f->rec.mu, NULL);
    struct acceptor_config cfg = {
        .server = "test",
        .fd = f->lfd,
        .nworkers = nworkers,
        .max_connections = max_connections,
        .assign = record_assign,
        .evict = evict ? record_evict : NULL,
        .tick = evict ? record_tick : NULL,
        .ctx = &f->rec,
    };
    assert_int_equal(acceptor_new(&f->a, &cfg), O2D_OK);
    assert_int_equal(acceptor_start(f->a), O2D_OK);
}

static void start(struct fixture *f, int nworkers, uint32_t max_connections)
{
    start_with(f, nworkers, max_connections, 0);
}

static int client_socket(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    return fd;
}

static void client_connect(struct fixture *f, int fd)
{
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons(f->port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_true(f->nclients < MAX_CONNS);
    f->clients[f->nclients++] = fd;
}

static int connect_one(struct fixture *f)
{
    int fd = client_socket();
    client_connect(f, fd);
    return fd;
}

/* 1 when the server closed the client's connection within WAIT_MS. */
static int closed_by_server(int fd)
{
    struct pollfd p = {fd, POLLIN, 0};
    if (poll(&p, 1, WAIT_MS) != 1) {
        return 0;
    }
    char c;
    ssize_t n = recv(fd, &c, 1, 0);
    return n == 0 || (n < 0 && errno == ECONNRESET);
}

static void stop(struct fixture *f)
{
    acceptor_free(f->a);
    for (int i = 0; i < f->rec.n; i++) {
        close(f->rec.fd[i]);
    }
    for (int i = 0; i < f->nclients; i++) {
        close(f->clients[i]);
    }
    close(f->lfd);
    pthread_mutex_destroy(&f->rec.mu);
}

static void least_loaded_worker_gets_each_connection(void **state)
{
    (void)state;
    struct fixture f;
    start(&f, 3, 100);
    for (int i = 0; i < 9; i++) {
        connect_one(&f);
    }
    wait_recorded(&f.rec, 9);
    /* Counted as handed over, so a burst alternates before any worker has run. */
    for (int i = 0; i < 9; i++) {
        assert_int_equal(f.rec.worker[i], i % 3);
    }
    for (int w = 0; w < 3; w++) {
        assert_int_equal(acceptor_load(f.a, w), 3);
    }
    /* Two connections of worker 1 end: it is the least loaded until it has 3 again. */
    acceptor_release(f.a, 1);
    acceptor_release(f.a, 1);
    assert_int_equal(acceptor_load(f.a, 1), 1);
    connect_one(&f);
    connect_one(&f);
    wait_recorded(&f.rec, 11);
    assert_int_equal(f.rec.worker[9], 1);
    assert_int_equal(f.rec.worker[10], 1);
    connect_one(&f);
    wait_recorded(&f.rec, 12);
    assert_int_equal(f.rec.worker[11], 0);
    wait_stats(&f, 12, 0);
    struct acceptor_stats st;
    acceptor_get_stats(f.a, &st);
    assert_int_equal(st.fd_exhausted, 0);
    stop(&f);
}

static void over_max_connections_closed_at_once(void **state)
{
    (void)state;
    struct fixture f;
    start(&f, 2, 3);
    for (int i = 0; i < 3; i++) {
        connect_one(&f);
    }
    wait_recorded(&f.rec, 3);
    int extra = connect_one(&f);
    assert_true(closed_by_server(extra));
    wait_stats(&f, 3, 1);
    assert_int_equal(recorded(&f.rec), 3);
    /* A slot that comes back is used again, by the worker that freed it. */
    acceptor_release(f.a, 1);
    connect_one(&f);
    wait_recorded(&f.rec, 4);
    assert_int_equal(f.rec.worker[3], 1);
    stop(&f);
}

static void failed_assign_gives_the_slot_back(void **state)
{
    (void)state;
    struct fixture f;
    start(&f, 2, 10);
    pthread_mutex_lock(&f.rec.mu);
    f.rec.fail_next = 1;
    pthread_mutex_unlock(&f.rec.mu);
    int first = connect_one(&f);
    assert_true(closed_by_server(first));
    /* The slot comes back once assign() has returned, just after it closed the socket. */
    wait_stats(&f, 0, 1);
    int64_t deadline = o2d_now_ms() + WAIT_MS;
    while (acceptor_load(f.a, 0) != 0 && o2d_now_ms() < deadline) {
        sleep_ms(1);
    }
    assert_int_equal(acceptor_load(f.a, 0), 0);
    connect_one(&f);
    wait_recorded(&f.rec, 1);
    assert_int_equal(f.rec.worker[0], 0);
    wait_stats(&f, 1, 1);
    stop(&f);
}

static void wait_field(struct record *r, const int *field, int n)
{
    int64_t deadline = o2d_now_ms() + WAIT_MS;
    while (read_field(r, field) < n && o2d_now_ms() < deadline) {
        sleep_ms(2);
    }
    assert_int_equal(read_field(r, field), n);
}

static void full_slots_evict_and_the_newcomer_waits(void **state)
{
    (void)state;
    struct fixture f;
    start_with(&f, 2, 4, 1);
    pthread_mutex_lock(&f.rec.mu);
    f.rec.evict_ok = 1;
    pthread_mutex_unlock(&f.rec.mu);
    for (int i = 0; i < 4; i++) {
        connect_one(&f);
    }
    wait_recorded(&f.rec, 4);
    assert_int_equal(read_field(&f.rec, &f.rec.evicts), 0);
    /* Full: the newcomer asks for one eviction and waits, not handed over yet. */
    int newcomer = connect_one(&f);
    wait_field(&f.rec, &f.rec.evicts, 1);
    assert_int_equal(recorded(&f.rec), 4);
    /* The evicted connection of worker 1 ends: its slot goes to the newcomer. */
    acceptor_release(f.a, 1);
    wait_recorded(&f.rec, 5);
    assert_int_equal(f.rec.worker[4], 1);
    struct acceptor_stats st;
    acceptor_get_stats(f.a, &st);
    assert_int_equal(st.evictions, 1);
    assert_int_equal(st.refused, 0);
    /* The newcomer is open: nothing closed it. */
    struct pollfd p = {newcomer, POLLIN, 0};
    assert_int_equal(poll(&p, 1, 0), 0);
    /* tick() runs on its own. */
    wait_field(&f.rec, &f.rec.ticks, 2);
    stop(&f);
}

static void full_slots_nothing_idle_refused_at_once(void **state)
{
    (void)state;
    struct fixture f;
    start_with(&f, 2, 2, 1); /* evict_ok = 0: nothing idle */
    connect_one(&f);
    connect_one(&f);
    wait_recorded(&f.rec, 2);
    int extra = connect_one(&f);
    assert_true(closed_by_server(extra));
    wait_stats(&f, 2, 1);
    assert_true(read_field(&f.rec, &f.rec.evicts) >= 1); /* asked again for 100 ms */
    struct acceptor_stats st;
    acceptor_get_stats(f.a, &st);
    assert_int_equal(st.evictions, 0);
    stop(&f);
}

static void eviction_that_frees_nothing_refuses_after_the_wait(void **state)
{
    (void)state;
    struct fixture f;
    start_with(&f, 1, 1, 1);
    pthread_mutex_lock(&f.rec.mu);
    f.rec.evict_ok = 1;
    pthread_mutex_unlock(&f.rec.mu);
    connect_one(&f);
    wait_recorded(&f.rec, 1);
    /* evict() agreed, but the connection got busy meanwhile and no slot comes back. */
    int64_t t0 = o2d_now_ms();
    int extra = connect_one(&f);
    assert_true(closed_by_server(extra));
    assert_true(o2d_now_ms() - t0 >= ACCEPTOR_WAIT_MS - 50);
    wait_stats(&f, 1, 1);
    assert_int_equal(recorded(&f.rec), 1);
    /* The slot that comes back later serves the next client at once. */
    acceptor_release(f.a, 0);
    connect_one(&f);
    wait_recorded(&f.rec, 2);
    stop(&f);
}

static void out_of_descriptors_refuses_fast_then_recovers(void **state)
{
    (void)state;
    struct fixture f;
    start(&f, 2, 10);
    int fds[3];
    for (int i = 0; i < 3; i++) {
        fds[i] = client_socket(); /* made before the limit: connect() needs no new one */
    }
    struct rlimit old, low;
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &old), 0);
    int lowest_free = dup(0);
    assert_true(lowest_free >= 0);
    close(lowest_free);
    low = old;
    low.rlim_cur = (rlim_t)lowest_free; /* no new descriptor can be opened */
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
    /* Each client is accepted with the spare descriptor and closed at once, instead of
     * waiting in the backlog. */
    for (int i = 0; i < 3; i++) {
        client_connect(&f, fds[i]);
        assert_true(closed_by_server(fds[i]));
    }
    struct acceptor_stats st;
    acceptor_get_stats(f.a, &st);
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &old), 0);
    assert_true(st.fd_exhausted >= 3);
    assert_int_equal(st.refused, 3);
    assert_int_equal(recorded(&f.rec), 0);
    /* Descriptors are back: the next client is taken. */
    connect_one(&f);
    wait_recorded(&f.rec, 1);
    stop(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(least_loaded_worker_gets_each_connection),
        cmocka_unit_test(over_max_connections_closed_at_once),
        cmocka_unit_test(failed_assign_gives_the_slot_back),
        cmocka_unit_test(full_slots_evict_and_the_newcomer_waits),
        cmocka_unit_test(full_slots_nothing_idle_refused_at_once),
        cmocka_unit_test(eviction_that_frees_nothing_refuses_after_the_wait),
        cmocka_unit_test(out_of_descriptors_refuses_fast_then_recovers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
