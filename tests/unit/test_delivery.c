/*
 * test_delivery.c: the delivery layer (exporters/delivery/delivery.h) with a toy destination
 * whose items are short texts and whose body is the texts joined by '\n'.
 *
 * The body builder, pure: groups by item header, packs in order within the limit, halves a
 * compressed body that comes out too large, splits an item alone too large, leaves out (and
 * reports) what cannot fit, and keeps every unit accounted for when allocations fail. A
 * destination against a real HTTP/1.1 server on 127.0.0.1: every item delivered once with
 * its identity seen by the observer (queued, then sent); a body refused with 413 is sent
 * again as two until each fits; a full queue answers busy; a flush forces the tick and
 * honours its deadline; what is still queued at stop is counted as shutdown.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <zlib.h>

#include "delivery.h"
#include "disk_log.h"
#include "loopback.h"
#include "o2d.h"
#include "o2d_alloc.h"
#include "o2d_log.h"
#include "o2d_time.h"

/* ---- the toy destination ---- */

/* An item: head (the group) then the text; NULL when out of memory. */
static struct dlv_item *try_item(const char *head, const char *text, size_t tl)
{
    size_t hl = strlen(head);
    struct dlv_item *it = dlv_item_new(hl + tl, hl, 0);
    if (it == NULL) {
        return NULL;
    }
    memcpy(it->data, head, hl);
    memcpy(it->data + hl, text, tl);
    /* a text "a+b+c" counts its parts: split cuts it at the middle '+' */
    for (size_t i = 0; i < tl; i++) {
        it->count += text[i] == '+';
    }
    return it;
}

static struct dlv_item *item(const char *head, const char *text)
{
    struct dlv_item *it = try_item(head, text, strlen(text));
    assert_non_null(it);
    return it;
}

static size_t toy_cost(void *ctx, const struct dlv_item *it)
{
    (void)ctx;
    return dlv_item_body_len(it) + 1; /* and its '\n' */
}

static int toy_encode(void *ctx, struct dlv_item *const *items, size_t n, struct o2d_buf *out)
{
    (void)ctx;
    for (size_t i = 0; i < n; i++) {
        int rv = o2d_buf_append(out, dlv_item_body(items[i]), dlv_item_body_len(items[i]));
        if (rv == O2D_OK) {
            rv = o2d_buf_append_byte(out, '\n');
        }
        if (rv != O2D_OK) {
            return rv;
        }
    }
    return O2D_OK;
}

static int toy_split(const struct dlv_item *it, struct dlv_item **a, struct dlv_item **b)
{
    const char *t = (const char *)dlv_item_body(it);
    size_t len = dlv_item_body_len(it);
    size_t parts = it->count;
    if (parts < 2) {
        return O2D_ERR_TOO_LARGE;
    }
    size_t seen = 0, cut = 0;
    for (size_t i = 0; i < len; i++) {
        if (t[i] == '+' && ++seen == parts / 2) {
            cut = i;
            break;
        }
    }
    char head[64];
    snprintf(head, sizeof(head), "%.*s", (int)it->head_len, (const char *)it->data);
    *a = try_item(head, t, cut + 1);
    *b = try_item(head, t + cut + 1, len - cut - 1);
    if (*a == NULL || *b == NULL) {
        dlv_item_free(*a);
        dlv_item_free(*b);
        return O2D_ERR_NOMEM;
    }
    return O2D_OK;
}

static void toy_headers(void *ctx, struct dlv_item *const *items, size_t n, struct dlv_headers *h)
{
    (void)ctx;
    dlv_headers_add(h, "Content-Type: text/plain", 0);
    dlv_headers_addf(h, "X-Items: %zu", n);
    (void)items;
}

static const struct dlv_dest_type toy = {
    .name = "toy",
    .request = "toy",
    .unit = "parts",
    .body_overhead = 0,
    .item_cost = toy_cost,
    .encode = toy_encode,
    .split = toy_split,
    .headers = toy_headers,
};

static const struct dlv_dest_type toy_grouped = {
    .name = "toy",
    .request = "toy",
    .unit = "parts",
    .item_cost = toy_cost,
    .max_items = 3,
    .group_by_head = 1,
    .encode = toy_encode,
    .headers = toy_headers,
};

/* ---- the builder ---- */

#define MAX_BODIES 128
struct sink {
    size_t n;
    char *text[MAX_BODIES];
    char head[MAX_BODIES][16];
    size_t items[MAX_BODIES];
    size_t units;
    size_t left_units;
    int left_reason;
};

static char *gunzip_text(const uint8_t *in, size_t len)
{
    size_t cap = 1 << 20;
    char *out = malloc(cap + 1);
    z_stream zs;
    memset(&zs, 0, sizeof(zs));
    assert_int_equal(inflateInit2(&zs, 15 + 16), Z_OK);
    zs.next_in = (Bytef *)in;
    zs.avail_in = (uInt)len;
    zs.next_out = (Bytef *)out;
    zs.avail_out = (uInt)cap;
    assert_int_equal(inflate(&zs, Z_FINISH), Z_STREAM_END);
    out[cap - zs.avail_out] = '\0';
    inflateEnd(&zs);
    return out;
}

static int sink_gzip;

static void collect(void *ctx, struct dlv_body *b)
{
    struct sink *s = ctx;
    assert_true(s->n < MAX_BODIES);
    s->text[s->n] = sink_gzip ? gunzip_text(b->data, b->len) : strndup((char *)b->data, b->len);
    snprintf(s->head[s->n], sizeof(s->head[0]), "%.*s", (int)b->items[0]->head_len,
             (const char *)b->items[0]->data);
    for (size_t i = 0; i < b->n; i++) {
        /* every item of a body has the body's header when grouping */
        assert_int_equal(b->items[i]->head_len, b->items[0]->head_len);
        if (b->items[i]->parent != NULL) {
            assert_null(dlv_item_release(b->items[i])); /* the body's hold on a half */
        }
    }
    s->items[s->n++] = b->n;
    s->units += b->units;
    dlv_body_free(b);
}

static void left(void *ctx, const struct dlv_item *it, int reason)
{
    struct sink *s = ctx;
    s->left_units += it->count;
    s->left_reason = reason;
}

static void sink_free(struct sink *s)
{
    for (size_t i = 0; i < s->n; i++) {
        free(s->text[i]);
    }
    memset(s, 0, sizeof(*s));
}

static int run_build(const struct dlv_dest_type *t, struct dlv_item **items, size_t n,
                     size_t max_body, enum dlv_compression c, struct sink *s, struct dlv_build *out)
{
    memset(s, 0, sizeof(*s));
    sink_gzip = c == DLV_COMPRESS_GZIP;
    struct dlv_build b = {
        .type = t,
        .max_body = max_body,
        .batch_bytes = c == DLV_COMPRESS_GZIP ? 1 << 20 : 0,
        .compression = c,
        .emit = collect,
        .emit_ctx = s,
        .left_out = left,
    };
    int rv = dlv_build_bodies(&b, items, n);
    *out = b;
    return rv;
}

static void free_all(struct dlv_item **items, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        dlv_item_free(items[i]);
    }
}

static void packs_in_order_within_the_limit(void **state)
{
    (void)state;
    struct dlv_item *items[5] = {item("", "aaaa+"), item("", "bbbb+"), item("", "cccc+"),
                                 item("", "dd+"), item("", "e+")};
    struct sink s;
    struct dlv_build b;
    /* 6 + 6 fit in 12; "cccc+\n" starts the next; then "dd+\n" and "e+\n" join it */
    assert_int_equal(run_build(&toy, items, 5, 12, DLV_COMPRESS_NONE, &s, &b), O2D_OK);
    assert_int_equal(s.n, 3);
    assert_string_equal(s.text[0], "aaaa+\nbbbb+\n");
    assert_string_equal(s.text[1], "cccc+\ndd+\n");
    assert_string_equal(s.text[2], "e+\n");
    assert_int_equal(s.units, 5);
    assert_int_equal(b.too_large + b.failed, 0);
    for (size_t i = 0; i < 5; i++) {
        assert_int_equal(atomic_load(&items[i]->refs), 1); /* one body holds each */
    }
    sink_free(&s);
    free_all(items, 5);
}

static void groups_by_header_with_max_items(void **state)
{
    (void)state;
    struct dlv_item *items[7] = {item("A", "1+"), item("B", "2+"), item("A", "3+"), item("A", "4+"),
                                 item("B", "5+"), item("A", "6+"), item("C", "7+")};
    struct sink s;
    struct dlv_build b;
    assert_int_equal(run_build(&toy_grouped, items, 7, 1000, DLV_COMPRESS_NONE, &s, &b), O2D_OK);
    /* A: 1 3 4 | 6 (max 3 a body); B: 2 5; C: 7 -- in order of first appearance */
    assert_int_equal(s.n, 4);
    assert_string_equal(s.head[0], "A");
    assert_string_equal(s.text[0], "1+\n3+\n4+\n");
    assert_string_equal(s.text[1], "6+\n");
    assert_string_equal(s.head[2], "B");
    assert_string_equal(s.text[2], "2+\n5+\n");
    assert_string_equal(s.head[3], "C");
    assert_int_equal(s.units, 7);
    sink_free(&s);
    free_all(items, 7);
}

static void splits_an_item_alone_too_large(void **state)
{
    (void)state;
    /* 8 parts in 25 bytes, limit 10: split in halves (13), then quarters (7) */
    struct dlv_item *items[2] = {item("", "p1+p2+p3+p4+p5+p6+p7+p8+"), item("", "q+")};
    struct sink s;
    struct dlv_build b;
    assert_int_equal(run_build(&toy, items, 2, 10, DLV_COMPRESS_NONE, &s, &b), O2D_OK);
    assert_int_equal(s.units, 8 + 1);
    assert_int_equal(b.too_large, 0);
    size_t bodies_of_first = 0;
    for (size_t i = 0; i < s.n; i++) {
        assert_true(strlen(s.text[i]) <= 10);
        bodies_of_first += s.text[i][0] == 'p';
    }
    assert_int_equal(bodies_of_first, 4);
    assert_string_equal(s.text[0], "p1+p2+\n");
    assert_string_equal(s.text[3], "p7+p8+\n");
    /* the halves were let go, and with them their holds on the item */
    assert_int_equal(atomic_load(&items[0]->refs), 0);
    sink_free(&s);
    free_all(items, 2);
}

static void leaves_out_what_cannot_fit(void **state)
{
    (void)state;
    /* one part alone over the limit: left out, reported, the rest sent */
    struct dlv_item *items[3] = {item("", "ok+"), item("", "a-very-long-single-part+"),
                                 item("", "ok2+")};
    struct sink s;
    struct dlv_build b;
    assert_int_equal(run_build(&toy, items, 3, 10, DLV_COMPRESS_NONE, &s, &b), O2D_OK);
    assert_int_equal(b.too_large, 1);
    assert_int_equal(s.left_units, 1);
    assert_int_equal(s.left_reason, DLV_DROP_TOO_LARGE);
    assert_int_equal(s.units, 2);
    assert_int_equal(atomic_load(&items[1]->refs), 0);
    sink_free(&s);
    free_all(items, 3);
}

static void compressed_bodies_halved_until_they_fit(void **state)
{
    (void)state;
    /* incompressible texts: 40 items of ~100 bytes, gzip limit 1000 */
    enum { N = 40 };
    struct dlv_item *items[N];
    uint64_t x = 88172645463325252ULL;
    for (int i = 0; i < N; i++) {
        char t[104];
        for (int k = 0; k < 100; k++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            t[k] = (char)('A' + (x % 26));
        }
        t[100] = '+';
        t[101] = '\0';
        items[i] = item("", t);
    }
    struct sink s;
    struct dlv_build b;
    assert_int_equal(run_build(&toy, items, N, 1000, DLV_COMPRESS_GZIP, &s, &b), O2D_OK);
    assert_true(s.n >= 4);
    assert_int_equal(s.units, N);
    /* in order, each once */
    size_t k = 0;
    for (size_t i = 0; i < s.n; i++) {
        for (char *line = s.text[i]; *line != '\0'; k++) {
            assert_memory_equal(line, dlv_item_body(items[k]), 101);
            line += 102;
        }
    }
    assert_int_equal(k, N);
    sink_free(&s);
    free_all(items, N);
}

static void allocation_failures_keep_every_unit_counted(void **state)
{
    (void)state;
    for (long fail = 0; fail < 60; fail++) {
        struct dlv_item *items[4] = {item("", "p1+p2+p3+p4+p5+p6+"), item("", "q+"),
                                     item("", "r1+r2+"), item("", "s+")};
        struct sink s;
        struct dlv_build b;
        o2d_alloc_fail_after(fail);
        int rv = run_build(&toy, items, 4, 12, DLV_COMPRESS_NONE, &s, &b);
        o2d_alloc_fail_after(-1);
        assert_true(rv == O2D_OK || rv == O2D_ERR_NOMEM);
        assert_int_equal(s.units + b.too_large + b.failed, 6 + 1 + 2 + 1);
        sink_free(&s);
        free_all(items, 4);
    }
}

/* ---- a destination against a real server ---- */

struct server {
    int fd;
    int port;
    pthread_t thread;
    pthread_mutex_t mu;
    size_t max_body; /* a longer body gets 413 */
    int delay_ms;
    size_t n_ok;
    size_t n_413;
    int fail_503; /* the next bodies answered 503 (with a body), then 202 again */
    size_t n_503;
    char got[8192]; /* the bodies accepted, concatenated */
    size_t got_len;
    int active;    /* connection threads still running */
    int conns[64]; /* their sockets while open (-1: a free slot) */
    pthread_cond_t idle;
};

struct conn {
    struct server *s;
    int fd;
    int slot; /* in s->conns, or -1 */
};

/* One connection: its requests in turn (curl keeps several open at once). */
static void *conn_main(void *arg)
{
    struct conn *cn = arg;
    struct server *s = cn->s;
    int c = cn->fd, slot = cn->slot;
    free(cn);
    {
        char buf[65536];
        size_t len = 0;
        for (;;) {
            ssize_t r = read(c, buf + len, sizeof(buf) - 1 - len);
            if (r <= 0) {
                break;
            }
            len += (size_t)r;
            buf[len] = '\0';
            char *end = strstr(buf, "\r\n\r\n");
            if (end == NULL) {
                continue;
            }
            char *cl = strcasestr(buf, "Content-Length:");
            size_t want = cl != NULL && cl < end ? strtoul(cl + 15, NULL, 10) : 0;
            size_t have = len - (size_t)(end + 4 - buf);
            if (have < want) {
                continue;
            }
            if (s->delay_ms > 0) {
                usleep((useconds_t)s->delay_ms * 1000);
            }
            pthread_mutex_lock(&s->mu);
            int status = want > s->max_body ? 413 : 202;
            if (status == 202 && s->fail_503 > 0) {
                s->fail_503--;
                s->n_503++;
                status = 503;
            }
            if (status == 202) {
                s->n_ok++;
                if (s->got_len + want < sizeof(s->got)) {
                    memcpy(s->got + s->got_len, end + 4, want);
                    s->got_len += want;
                }
            } else {
                s->n_413++;
            }
            pthread_mutex_unlock(&s->mu);
            char head[128];
            int hl = status == 503
                         ? snprintf(head, sizeof(head),
                                    "HTTP/1.1 503 X\r\nContent-Length: 17\r\n\r\n"
                                    "{\"error\":\"busy!\"}")
                         : snprintf(head, sizeof(head),
                                    "HTTP/1.1 %d X\r\nContent-Length: 2\r\n\r\n{}", status);
            if (send(c, head, (size_t)hl, MSG_NOSIGNAL) != hl) {
                break;
            }
            size_t used = (size_t)(end + 4 - buf) + want;
            memmove(buf, buf + used, len - used);
            len -= used;
            buf[len] = '\0';
        }
        pthread_mutex_lock(&s->mu);
        if (slot >= 0) {
            s->conns[slot] = -1; /* server_stop no longer shuts it down */
        }
        pthread_mutex_unlock(&s->mu);
        close(c);
    }
    pthread_mutex_lock(&s->mu);
    s->active--;
    pthread_cond_broadcast(&s->idle);
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

static void *server_main(void *arg)
{
    struct server *s = arg;
    for (;;) {
        int c = accept(s->fd, NULL, NULL);
        if (c < 0) {
            return NULL;
        }
        struct conn *cn = malloc(sizeof(*cn));
        cn->s = s;
        cn->fd = c;
        cn->slot = -1;
        pthread_mutex_lock(&s->mu);
        s->active++;
        for (int i = 0; i < 64 && cn->slot < 0; i++) {
            if (s->conns[i] < 0) {
                s->conns[i] = c;
                cn->slot = i;
            }
        }
        pthread_mutex_unlock(&s->mu);
        pthread_t t;
        pthread_create(&t, NULL, conn_main, cn);
        pthread_detach(t);
    }
}

static void server_start(struct server *s, size_t max_body)
{
    memset(s, 0, sizeof(*s));
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->idle, NULL);
    s->max_body = max_body;
    for (int i = 0; i < 64; i++) {
        s->conns[i] = -1;
    }
    s->fd = loopback_listen(&s->port);
    assert_true(s->fd >= 0);
    pthread_create(&s->thread, NULL, server_main, s);
}

static void server_stop(struct server *s)
{
    shutdown(s->fd, SHUT_RDWR);
    close(s->fd);
    pthread_join(s->thread, NULL);
    /* The connections end when their client closes them (it was freed before). One that a
     * failed test left open (its threads still holding a client) is shut down after 10 s, so
     * the tests after it still run. */
    int64_t deadline = o2d_now_ms() + 10000;
    int forced = 0;
    pthread_mutex_lock(&s->mu);
    while (s->active > 0) {
        if (!forced && o2d_now_ms() >= deadline) {
            for (int i = 0; i < 64; i++) {
                if (s->conns[i] >= 0) {
                    shutdown(s->conns[i], SHUT_RDWR);
                }
            }
            forced = 1;
        }
        struct timespec ts = o2d_timespec_from_ms(o2d_now_ms() + 100);
        pthread_cond_timedwait(&s->idle, &s->mu, &ts);
    }
    pthread_mutex_unlock(&s->mu);
    pthread_cond_destroy(&s->idle);
    pthread_mutex_destroy(&s->mu);
}

/* What the observer saw, per item id. */
#define MAX_SEEN 64
struct seen {
    pthread_mutex_t mu;
    uint64_t id[MAX_SEEN];
    uint64_t origin[MAX_SEEN];
    int queued[MAX_SEEN];
    int sent[MAX_SEEN];
    int dropped[MAX_SEEN];
    int retrying[MAX_SEEN];
    int retry_attempts[MAX_SEEN];
    int reason[MAX_SEEN];
    size_t n;
};

static void observe(void *ctx, const struct dlv_event *ev)
{
    struct seen *s = ctx;
    pthread_mutex_lock(&s->mu);
    size_t i = 0;
    while (i < s->n && s->id[i] != ev->item_id) {
        i++;
    }
    if (i == s->n && s->n < MAX_SEEN) {
        s->id[s->n++] = ev->item_id;
    }
    if (i < MAX_SEEN) {
        s->origin[i] = ev->origin;
        s->queued[i] += ev->state == DLV_QUEUED;
        s->sent[i] += ev->state == DLV_SENT;
        s->dropped[i] += ev->state == DLV_DROPPED;
        if (ev->state == DLV_RETRYING) {
            s->retrying[i]++;
            s->retry_attempts[i] = ev->attempts;
        } else {
            s->reason[i] = ev->reason;
        }
    }
    pthread_mutex_unlock(&s->mu);
}

struct ticker {
    int ticks;
    int forced;
    const char *pending; /* queued at the next tick */
};

static int tick(void *ctx, struct dlv_dest *d, int force)
{
    struct ticker *t = ctx;
    t->ticks++;
    t->forced += force;
    if (t->pending != NULL) {
        dlv_dest_enqueue(d, item("", t->pending), 77);
        t->pending = NULL;
    }
    return 0;
}

/* Sender threads of the destinations dest() makes. */
static int test_builders = 1;

/* A destination whose tenants may hold share_pct % of its queue (0: no rule). */
static struct dlv_dest *dest_share(struct server *srv, struct http_client *http, size_t max_body,
                                   size_t queue_max, struct ticker *t, unsigned share_pct)
{
    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/in", srv->port);
    struct dlv_dest_config c = {
        .url = url,
        .where = "test",
        .queue_max_bytes = queue_max,
        .max_body = max_body,
        .flush_interval_ms = 3600 * 1000, /* only a flush sends */
        .tick = t != NULL ? tick : NULL,
        .tick_ctx = t,
        .tick_ms = 3600 * 1000,
        .max_elapsed_ms = 2000,
        .attempt_timeout_ms = 2000,
        .max_inflight = test_builders > 1 ? test_builders + 1 : 2,
        .builders = test_builders,
        .tenant_share_pct = share_pct,
    };
    struct dlv_dest *d = NULL;
    assert_int_equal(dlv_dest_new(&d, &toy, NULL, &c, http), O2D_OK);
    return d;
}

static struct dlv_dest *dest(struct server *srv, struct http_client *http, size_t max_body,
                             size_t queue_max, struct ticker *t)
{
    return dest_share(srv, http, max_body, queue_max, t, 0);
}

static struct http_client *client(void)
{
    struct http_client_config hc = {.backoff_base_ms = 5, .backoff_max_ms = 20};
    struct http_client *c = NULL;
    assert_int_equal(http_client_new(&c, &hc), O2D_OK);
    return c;
}

static void delivers_each_item_once_with_its_identity(void **state)
{
    (void)state;
    struct server srv;
    server_start(&srv, 1 << 20);
    struct http_client *http = client();
    struct ticker t = {.pending = "from-tick+"};
    struct dlv_dest *d = dest(&srv, http, 1 << 16, 1 << 20, &t);
    struct seen seen = {.n = 0};
    pthread_mutex_init(&seen.mu, NULL);
    dlv_dest_observe(d, observe, &seen);
    assert_int_equal(dlv_dest_start(d), O2D_OK);
    struct dlv_item *list = item("", "one+");
    list->next = item("", "two+three+");
    assert_int_equal(dlv_dest_admit(d, 3), O2D_OK);
    assert_int_equal(dlv_dest_enqueue(d, list, 42), O2D_OK);
    dlv_dest_flush_begin(d);
    assert_int_equal(dlv_dest_flush_wait(d, o2d_now_ms() + 5000), O2D_OK);
    assert_int_equal(t.forced, 1); /* the flush ticked at once, forced */
    pthread_mutex_lock(&srv.mu);
    assert_int_equal(srv.n_ok, 1); /* the flush ticked, then sent all in one body */
    srv.got[srv.got_len] = '\0';
    assert_string_equal(srv.got, "one+\ntwo+three+\nfrom-tick+\n");
    pthread_mutex_unlock(&srv.mu);
    struct dlv_metrics m;
    memset(&m, 0, sizeof(m));
    dlv_dest_metrics(d, &m);
    assert_string_equal(m.name, "toy");
    assert_int_equal(m.sent_items, 4);
    assert_int_equal(m.sent_payloads, 1);
    assert_int_equal(m.queue_items, 0);
    assert_int_equal(m.queue_bytes, 0);
    assert_int_equal(dlv_dest_queued_units(d), 4);
    pthread_mutex_lock(&seen.mu);
    assert_int_equal(seen.n, 3);
    assert_true(seen.id[0] != seen.id[1]);
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(seen.queued[i], 1);
        assert_int_equal(seen.sent[i], 1);
        assert_int_equal(seen.dropped[i], 0);
    }
    assert_int_equal(seen.origin[0], 42);
    assert_int_equal(seen.origin[1], 42);
    assert_int_equal(seen.origin[2], 77);
    pthread_mutex_unlock(&seen.mu);
    dlv_dest_stop(d);
    http_client_free(http);
    assert_int_equal(dlv_dest_undelivered(d, NULL, "toy"), 0);
    dlv_dest_free(d);
    pthread_mutex_destroy(&seen.mu);
    server_stop(&srv);
}

static void a_413_body_goes_again_as_two(void **state)
{
    (void)state;
    /* the intake takes 12 bytes at most; otel2dd believes 1000 */
    struct server srv;
    server_start(&srv, 12);
    struct http_client *http = client();
    struct dlv_dest *d = dest(&srv, http, 1000, 1 << 20, NULL);
    assert_int_equal(dlv_dest_start(d), O2D_OK);
    struct dlv_item *list = item("", "a1+a2+a3+a4+");
    list->next = item("", "b+");
    list->next->next = item("", "c+");
    list->next->next->next = item("", "one-part-too-long+");
    assert_int_equal(dlv_dest_enqueue(d, list, 1), O2D_OK);
    dlv_dest_flush_begin(d);
    assert_int_equal(dlv_dest_flush_wait(d, o2d_now_ms() + 5000), O2D_OK);
    pthread_mutex_lock(&srv.mu);
    srv.got[srv.got_len] = '\0';
    assert_true(srv.n_413 >= 2);
    /* every part that fits arrived once */
    const char *want[] = {"a1", "a2", "a3", "a4", "b+", "c+"};
    for (size_t i = 0; i < 6; i++) {
        const char *p = strstr(srv.got, want[i]);
        assert_non_null(p);
        assert_null(strstr(p + 1, want[i]));
    }
    assert_null(strstr(srv.got, "one-part"));
    pthread_mutex_unlock(&srv.mu);
    dlv_dest_stop(d);
    http_client_free(http);
    struct dlv_metrics m;
    memset(&m, 0, sizeof(m));
    dlv_dest_metrics(d, &m);
    assert_int_equal(m.sent_items, 4 + 1 + 1);
    assert_int_equal(dlv_dest_dropped(d, DLV_DROP_TOO_LARGE), 1);
    assert_int_equal(dlv_dest_dropped(d, DLV_DROP_REJECTED_4XX), 0);
    assert_int_equal(m.queue_bytes, 0);
    dlv_dest_free(d);
    server_stop(&srv);
}

/* A 503 being retried is an intake error too: the last error says so, with the body, even
 * though the retry delivered; so does a connection refused while it is retried. */
static void last_error_records_retried_attempts(void **state)
{
    (void)state;
    struct server srv;
    server_start(&srv, 1 << 20);
    srv.fail_503 = 1;
    struct http_client *http = client();
    struct dlv_dest *d = dest(&srv, http, 1000, 1 << 20, NULL);
    struct seen seen = {.n = 0};
    pthread_mutex_init(&seen.mu, NULL);
    dlv_dest_observe(d, observe, &seen);
    assert_int_equal(dlv_dest_start(d), O2D_OK);
    int64_t before = o2d_realtime_ns() / 1000000;
    assert_int_equal(dlv_dest_enqueue(d, item("", "x+"), 1), O2D_OK);
    dlv_dest_flush_begin(d);
    assert_int_equal(dlv_dest_flush_wait(d, o2d_now_ms() + 5000), O2D_OK);
    pthread_mutex_lock(&srv.mu);
    assert_int_equal(srv.n_503, 1);
    assert_int_equal(srv.n_ok, 1);
    pthread_mutex_unlock(&srv.mu);
    struct dlv_metrics m;
    memset(&m, 0, sizeof(m));
    dlv_dest_metrics(d, &m);
    assert_int_equal(m.sent_items, 1);
    assert_int_equal(m.retried_items, 1);
    assert_true(m.last_error.at_ms >= before);
    assert_string_equal(m.last_error.what, "retrying");
    assert_int_equal(m.last_error.http_status, 503);
    assert_string_equal(m.last_error.transport, "");
    assert_int_equal(m.last_error.body_len, 17);
    assert_memory_equal(m.last_error.body, "{\"error\":\"busy!\"}", 17);
    /* the observer saw the item retried after its first attempt, then sent */
    pthread_mutex_lock(&seen.mu);
    assert_int_equal(seen.n, 1);
    assert_int_equal(seen.queued[0], 1);
    assert_int_equal(seen.retrying[0], 1);
    assert_int_equal(seen.retry_attempts[0], 1);
    assert_int_equal(seen.sent[0], 1);
    assert_int_equal(seen.dropped[0], 0);
    pthread_mutex_unlock(&seen.mu);
    dlv_dest_stop(d);
    http_client_free(http);
    dlv_dest_free(d);
    pthread_mutex_destroy(&seen.mu);
    server_stop(&srv);
    http = client();

    /* nobody listens: each refused connection is recorded while it is retried */
    int port = 0;
    int fd = loopback_listen(&port);
    assert_true(fd >= 0);
    close(fd);
    struct server gone = {.port = port};
    d = dest(&gone, http, 1000, 1 << 20, NULL);
    assert_int_equal(dlv_dest_start(d), O2D_OK);
    assert_int_equal(dlv_dest_enqueue(d, item("", "y+"), 2), O2D_OK);
    dlv_dest_flush_begin(d);
    int64_t deadline = o2d_now_ms() + 5000;
    do {
        memset(&m, 0, sizeof(m));
        dlv_dest_metrics(d, &m);
        if (m.last_error.at_ms != 0) {
            break;
        }
        usleep(5000);
    } while (o2d_now_ms() < deadline);
    assert_non_null(m.last_error.what);
    assert_string_equal(m.last_error.what, "retrying"); /* max_elapsed_ms is 2 s */
    assert_int_equal(m.last_error.http_status, 0);
    assert_true(strlen(m.last_error.transport) > 0);
    assert_int_equal(m.last_error.body_len, 0);
    dlv_dest_stop(d);
    http_client_free(http);
    dlv_dest_free(d);
}

static void full_queue_busy_deadline_and_shutdown(void **state)
{
    (void)state;
    struct server srv;
    server_start(&srv, 1 << 20);
    srv.delay_ms = 1500; /* every answer takes 1.5 s */
    struct http_client *http = client();
    struct dlv_dest *d = dest(&srv, http, 16, 40, NULL);
    assert_int_equal(dlv_dest_start(d), O2D_OK);
    /* 3 items of 14 bytes: over the 40-byte budget once queued */
    struct dlv_item *list = item("", "aaaaaaaaaaaaa+");
    list->next = item("", "bbbbbbbbbbbbb+");
    list->next->next = item("", "ccccccccccccc+");
    assert_int_equal(dlv_dest_enqueue(d, list, 1), O2D_OK);
    assert_int_equal(dlv_dest_admit(d, 5), O2D_ERR_BUSY);
    assert_int_equal(dlv_dest_dropped(d, DLV_DROP_QUEUE_FULL), 5);
    dlv_dest_flush_begin(d);
    int64_t t0 = o2d_now_ms();
    assert_int_equal(dlv_dest_flush_wait(d, t0 + 300), O2D_ERR_TIMEOUT);
    int64_t took = o2d_now_ms() - t0;
    assert_true(took >= 290 && took < 1400); /* the deadline, not the intake, ended it */
    /* two bodies in flight (max_inflight), one still queued: counted at stop and at the
     * client's freeing */
    dlv_dest_stop(d);
    assert_int_equal(dlv_dest_admit(d, 1), O2D_ERR_SHUTDOWN);
    http_client_free(http);
    assert_int_equal(dlv_dest_dropped(d, DLV_DROP_SHUTDOWN), 3);
    struct dlv_metrics m;
    memset(&m, 0, sizeof(m));
    dlv_dest_metrics(d, &m);
    assert_int_equal(m.queue_bytes, 0);
    assert_int_equal(m.queue_items, 0);
    assert_int_equal(dlv_dest_undelivered(d, NULL, "toy"), 3);
    dlv_dest_free(d);
    server_stop(&srv);
}

/* Fairness: a tenant's queued bytes go up at enqueue and down once its items are delivered;
 * past its share only that tenant is refused, a tenant holding nothing always admitted. */
static void tenant_share_of_the_queue(void **state)
{
    (void)state;
    struct server srv;
    server_start(&srv, 1 << 20);
    struct http_client *http = client();
    /* A queue under four batches sends a quarter at once (send_now_bytes): the answers are held
     * 400 ms so that what was sent still counts (in flight) when the shares are checked. */
    srv.delay_ms = 400;
    struct dlv_dest *d = dest_share(&srv, http, 1 << 16, 100, NULL, 50); /* 50 bytes each */
    assert_int_equal(dlv_dest_start(d), O2D_OK);
    struct dlv_item *list = item("", "aaaaaaaaaaaaa+"); /* 14 bytes */
    list->next = item("", "bbbbbbbbbbbbb+");
    assert_int_equal(dlv_dest_admit_tenant(d, 2, 3), O2D_OK); /* holding nothing */
    assert_int_equal(dlv_dest_enqueue_tenant(d, list, 1, 3), O2D_OK);
    assert_int_equal(dlv_dest_tenant_bytes(d, 3), 28);
    assert_int_equal(dlv_dest_tenant_bytes(d, 4), 0);
    assert_int_equal(dlv_dest_admit_tenant(d, 2, 3), O2D_OK); /* 28 < 50 */
    list = item("", "ccccccccccccc+");
    list->next = item("", "ddddddddddddd+");
    assert_int_equal(dlv_dest_enqueue_tenant(d, list, 2, 3), O2D_OK);
    assert_int_equal(dlv_dest_tenant_bytes(d, 3), 56);
    /* tenant 3 holds its share: refused (counted queue_full); the queue itself has room */
    assert_int_equal(dlv_dest_admit_tenant(d, 2, 3), O2D_ERR_TENANT_BUSY);
    assert_int_equal(dlv_dest_dropped(d, DLV_DROP_QUEUE_FULL), 2);
    assert_int_equal(dlv_dest_admit_tenant(d, 1, 4), O2D_OK);
    assert_int_equal(dlv_dest_admit_tenant(d, 1, -1), O2D_OK);
    assert_int_equal(dlv_dest_admit(d, 1), O2D_OK);
    assert_int_equal(dlv_dest_enqueue_tenant(d, item("", "eeeeeeeeeeeee+"), 3, 4), O2D_OK);
    assert_int_equal(dlv_dest_tenant_bytes(d, 4), 14);
    /* items of no tenant count for nobody */
    assert_int_equal(dlv_dest_enqueue(d, item("", "f+"), 4), O2D_OK);
    dlv_dest_flush_begin(d);
    assert_int_equal(dlv_dest_flush_wait(d, o2d_now_ms() + 5000), O2D_OK);
    assert_int_equal(dlv_dest_tenant_bytes(d, 3), 0);
    assert_int_equal(dlv_dest_tenant_bytes(d, 4), 0);
    assert_int_equal(dlv_dest_admit_tenant(d, 2, 3), O2D_OK);
    /* the queue full: everyone is refused as busy (queue_full), a tenant's share aside */
    list = item("", "0123456789012345678901234567890123456789012345678+"); /* 50 */
    list->next = item("", "0123456789012345678901234567890123456789012345678+");
    assert_int_equal(dlv_dest_enqueue_tenant(d, list, 5, 3), O2D_OK);
    assert_int_equal(dlv_dest_admit_tenant(d, 1, 4), O2D_ERR_BUSY);
    assert_int_equal(dlv_dest_admit_tenant(d, 1, 3), O2D_ERR_BUSY);
    assert_int_equal(dlv_dest_admit_tenant(d, 1, -1), O2D_ERR_BUSY);
    assert_int_equal(dlv_dest_tenant_bytes(d, 3), 100);
    dlv_dest_stop(d); /* they wait for the flush interval: drained, counted shutdown */
    http_client_free(http);
    assert_int_equal(dlv_dest_tenant_bytes(d, 3), 0);
    dlv_dest_free(d);
    server_stop(&srv);
}

/* Halves from a 413's splits, items too large and drops: the tenant's bytes all come back. */
static void tenant_bytes_come_back_from_splits_and_drops(void **state)
{
    (void)state;
    struct server srv;
    server_start(&srv, 12);
    struct http_client *http = client();
    struct dlv_dest *d = dest_share(&srv, http, 1000, 1 << 20, NULL, 10);
    assert_int_equal(dlv_dest_start(d), O2D_OK);
    struct dlv_item *list = item("", "a1+a2+a3+a4+");
    list->next = item("", "b+");
    list->next->next = item("", "one-part-too-long+");
    assert_int_equal(dlv_dest_enqueue_tenant(d, list, 1, 7), O2D_OK);
    assert_int_equal(dlv_dest_tenant_bytes(d, 7), 12 + 2 + 18);
    dlv_dest_flush_begin(d);
    assert_int_equal(dlv_dest_flush_wait(d, o2d_now_ms() + 5000), O2D_OK);
    pthread_mutex_lock(&srv.mu);
    assert_true(srv.n_413 >= 1);
    pthread_mutex_unlock(&srv.mu);
    assert_int_equal(dlv_dest_dropped(d, DLV_DROP_TOO_LARGE), 1);
    assert_int_equal(dlv_dest_tenant_bytes(d, 7), 0);
    dlv_dest_stop(d);
    http_client_free(http);
    dlv_dest_free(d);
    server_stop(&srv);
}

/* Stopping: what is queued is drained, what is in flight settled by the client's freeing;
 * the tenant's bytes come back from both. */
static void tenant_bytes_come_back_at_stop(void **state)
{
    (void)state;
    struct server srv;
    server_start(&srv, 1 << 20);
    srv.delay_ms = 1500;
    struct http_client *http = client();
    struct dlv_dest *d = dest_share(&srv, http, 16, 1000, NULL, 50);
    assert_int_equal(dlv_dest_start(d), O2D_OK);
    struct dlv_item *list = item("", "aaaaaaaaaaaaa+");
    list->next = item("", "bbbbbbbbbbbbb+");
    list->next->next = item("", "ccccccccccccc+");
    assert_int_equal(dlv_dest_enqueue_tenant(d, list, 1, 2), O2D_OK);
    assert_int_equal(dlv_dest_tenant_bytes(d, 2), 42);
    dlv_dest_flush_begin(d);
    /* two bodies in flight (max_inflight), one still queued */
    assert_int_equal(dlv_dest_flush_wait(d, o2d_now_ms() + 300), O2D_ERR_TIMEOUT);
    assert_int_equal(dlv_dest_tenant_bytes(d, 2), 42); /* in flight still counts */
    dlv_dest_stop(d);
    assert_true(dlv_dest_tenant_bytes(d, 2) < 42); /* the drained one went */
    http_client_free(http);
    assert_int_equal(dlv_dest_tenant_bytes(d, 2), 0);
    assert_int_equal(dlv_dest_dropped(d, DLV_DROP_SHUTDOWN), 3);
    dlv_dest_free(d);
    server_stop(&srv);
}

/* 100 % (or none): no rule, nothing counted, a tenant is never refused for its share. */
static void no_tenant_rule_at_100_percent(void **state)
{
    (void)state;
    struct server srv;
    server_start(&srv, 1 << 20);
    struct http_client *http = client();
    srv.delay_ms = 400; /* as tenant_share_of_the_queue: what was sent at once still counts */
    struct dlv_dest *d = dest_share(&srv, http, 1 << 16, 100, NULL, 100);
    assert_int_equal(dlv_dest_start(d), O2D_OK);
    struct dlv_item *list = item("", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa+"); /* 50 */
    list->next = item("", "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb+");              /* 48 */
    assert_int_equal(dlv_dest_enqueue_tenant(d, list, 1, 3), O2D_OK);
    assert_int_equal(dlv_dest_tenant_bytes(d, 3), 0);
    assert_int_equal(dlv_dest_admit_tenant(d, 1, 3), O2D_OK); /* 98 of 100 */
    assert_int_equal(dlv_dest_enqueue_tenant(d, item("", "cc+"), 2, 3), O2D_OK);
    assert_int_equal(dlv_dest_admit_tenant(d, 1, 3), O2D_ERR_BUSY); /* full, for everyone */
    assert_int_equal(dlv_dest_admit_tenant(d, 1, 4), O2D_ERR_BUSY);
    dlv_dest_flush_begin(d);
    assert_int_equal(dlv_dest_flush_wait(d, o2d_now_ms() + 5000), O2D_OK);
    assert_int_equal(dlv_dest_admit_tenant(d, 1, 3), O2D_OK);
    dlv_dest_stop(d);
    http_client_free(http);
    dlv_dest_free(d);
    server_stop(&srv);
}

static double process_cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* An idle destination sleeps: a sender that sent at once (flush interval 0) and ticks (LLM Obs,
 * stats) once woke in a loop with a deadline already past, a core at 100 % while idle. The
 * window is what is measured, not a wait for something to happen. */
static void idle_destination_sleeps(void **state)
{
    (void)state;
    struct server srv;
    server_start(&srv, 1 << 20);
    struct http_client *http = client();
    struct ticker t = {.pending = NULL};
    /* as the LLM Obs and stats destinations: no flush interval, a tick */
    struct dlv_dest *d = NULL;
    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/in", srv.port);
    struct dlv_dest_config c = {
        .url = url,
        .queue_max_bytes = 1 << 20,
        .max_body = 1 << 16,
        .flush_interval_ms = 0,
        .tick = tick,
        .tick_ctx = &t,
        .tick_ms = 100,
        .max_elapsed_ms = 1000,
        .attempt_timeout_ms = 1000,
        .max_inflight = 1,
    };
    assert_int_equal(dlv_dest_new(&d, &toy, NULL, &c, http), O2D_OK);
    assert_int_equal(dlv_dest_start(d), O2D_OK);
    assert_int_equal(dlv_dest_enqueue(d, item("", "x+"), 1), O2D_OK);
    dlv_dest_flush_begin(d);
    assert_int_equal(dlv_dest_flush_wait(d, o2d_now_ms() + 5000), O2D_OK);
    double cpu0 = process_cpu_s();
    int64_t t0 = o2d_now_ms();
    while (o2d_now_ms() - t0 < 400) {
        usleep(50 * 1000);
    }
    double used = process_cpu_s() - cpu0;
    assert_true(used < 0.15);  /* a spinning sender uses about 0.4 s here */
    assert_true(t.ticks >= 2); /* and the tick still runs */
    dlv_dest_stop(d);
    http_client_free(http);
    dlv_dest_free(d);
    server_stop(&srv);
}

/* The same with three senders: the rebuilds of refused bodies go to whichever is free. */
static void a_413_body_goes_again_as_two_with_three_builders(void **state)
{
    test_builders = 3;
    a_413_body_goes_again_as_two(state);
    test_builders = 1;
}

/* A toy whose encoder waits at a gate: the sender is held while it builds a body. */
struct gate {
    pthread_mutex_t mu;
    pthread_cond_t cond;
    int inside; /* the sender is in the encoder */
    int open;
};
static struct gate the_gate = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0};

static int gated_encode(void *ctx, struct dlv_item *const *items, size_t n, struct o2d_buf *out)
{
    pthread_mutex_lock(&the_gate.mu);
    the_gate.inside = 1;
    pthread_cond_broadcast(&the_gate.cond);
    /* held until opened, or 30 s: a test that failed before opening still stops */
    int64_t deadline = o2d_now_ms() + 30000;
    while (!the_gate.open && o2d_now_ms() < deadline) {
        struct timespec ts = o2d_timespec_from_ms(o2d_now_ms() + 50);
        pthread_cond_timedwait(&the_gate.cond, &the_gate.mu, &ts);
    }
    pthread_mutex_unlock(&the_gate.mu);
    return toy_encode(ctx, items, n, out);
}

static const struct dlv_dest_type toy_gated = {
    .name = "toy",
    .request = "toy",
    .unit = "parts",
    .item_cost = toy_cost,
    .encode = gated_encode,
    .headers = toy_headers,
};

/* Items the sender has taken off the queue and is building into a body are still queued
 * items for the metrics (CI once scraped 0 queued while a 1.2 MB batch was being compressed). */
static void items_being_built_still_count_as_queued(void **state)
{
    (void)state;
    struct server srv;
    server_start(&srv, 1 << 20);
    struct http_client *http = client();
    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/in", srv.port);
    struct dlv_dest_config c = {
        .url = url,
        .queue_max_bytes = 1 << 20,
        .max_body = 1 << 16,
        .flush_interval_ms = 0,
        .max_elapsed_ms = 2000,
        .attempt_timeout_ms = 2000,
        .max_inflight = 1,
    };
    struct dlv_dest *d = NULL;
    assert_int_equal(dlv_dest_new(&d, &toy_gated, NULL, &c, http), O2D_OK);
    assert_int_equal(dlv_dest_start(d), O2D_OK);
    struct dlv_item *list = item("", "one+");
    list->next = item("", "two+three+");
    assert_int_equal(dlv_dest_admit(d, 3), O2D_OK);
    assert_int_equal(dlv_dest_enqueue(d, list, 1), O2D_OK);
    int64_t deadline = o2d_now_ms() + 5000;
    pthread_mutex_lock(&the_gate.mu);
    while (!the_gate.inside && o2d_now_ms() < deadline) {
        struct timespec ts = o2d_timespec_from_ms(o2d_now_ms() + 50);
        pthread_cond_timedwait(&the_gate.cond, &the_gate.mu, &ts);
    }
    assert_true(the_gate.inside);
    pthread_mutex_unlock(&the_gate.mu);
    struct dlv_metrics m;
    memset(&m, 0, sizeof(m));
    dlv_dest_metrics(d, &m);
    assert_int_equal(m.queue_items, 3); /* off the queue, in the encoder, not yet in flight */
    pthread_mutex_lock(&the_gate.mu);
    the_gate.open = 1;
    pthread_cond_broadcast(&the_gate.cond);
    pthread_mutex_unlock(&the_gate.mu);
    dlv_dest_flush_begin(d);
    assert_int_equal(dlv_dest_flush_wait(d, o2d_now_ms() + 5000), O2D_OK);
    memset(&m, 0, sizeof(m));
    dlv_dest_metrics(d, &m);
    assert_int_equal(m.sent_items, 3);
    assert_int_equal(m.queue_items, 0);
    assert_int_equal(m.queue_bytes, 0);
    dlv_dest_stop(d);
    http_client_free(http);
    dlv_dest_free(d);
    server_stop(&srv);
}

/* A toy whose encoder counts the senders inside it and holds them until the gate opens. */
struct many_gate {
    pthread_mutex_t mu;
    pthread_cond_t cond;
    int inside;     /* senders in the encoder now */
    int max_inside; /* the most at once */
    int open;
};
static struct many_gate many = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, 0};

static int many_encode(void *ctx, struct dlv_item *const *items, size_t n, struct o2d_buf *out)
{
    pthread_mutex_lock(&many.mu);
    many.inside++;
    if (many.inside > many.max_inside) {
        many.max_inside = many.inside;
    }
    pthread_cond_broadcast(&many.cond);
    int64_t deadline = o2d_now_ms() + 30000; /* as gated_encode */
    while (!many.open && o2d_now_ms() < deadline) {
        struct timespec ts = o2d_timespec_from_ms(o2d_now_ms() + 50);
        pthread_cond_timedwait(&many.cond, &many.mu, &ts);
    }
    many.inside--;
    pthread_mutex_unlock(&many.mu);
    return toy_encode(ctx, items, n, out);
}

static const struct dlv_dest_type toy_many = {
    .name = "toy",
    .request = "toy",
    .unit = "parts",
    .item_cost = toy_cost,
    .encode = many_encode,
    .headers = toy_headers,
};

static void many_reset(void)
{
    pthread_mutex_lock(&many.mu);
    many.inside = 0;
    many.max_inside = 0;
    many.open = 0;
    pthread_mutex_unlock(&many.mu);
}

static void many_open(void)
{
    pthread_mutex_lock(&many.mu);
    many.open = 1;
    pthread_cond_broadcast(&many.cond);
    pthread_mutex_unlock(&many.mu);
}

/* Waits until `k` senders are in the encoder at once (5 s at most); what is there then. */
static int many_wait_inside(int k)
{
    int64_t deadline = o2d_now_ms() + 5000;
    pthread_mutex_lock(&many.mu);
    while (many.inside < k && o2d_now_ms() < deadline) {
        struct timespec ts = o2d_timespec_from_ms(o2d_now_ms() + 50);
        pthread_cond_timedwait(&many.cond, &many.mu, &ts);
    }
    int n = many.inside;
    pthread_mutex_unlock(&many.mu);
    return n;
}

/* Three senders, gzip, one item a batch (batch_bytes 1): a destination with three batches
 * waiting builds three bodies at once. */
static struct dlv_dest *dest_many_q(struct server *srv, struct http_client *http, int builders,
                                    struct dlv_queue *q)
{
    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/in", srv->port);
    struct dlv_dest_config c = {
        .url = url,
        .queue_max_bytes = 1 << 20,
        .max_body = 1 << 16,
        .batch_bytes = 1,
        .compression = DLV_COMPRESS_GZIP,
        .compression_level = 6,
        .builders = builders,
        .flush_interval_ms = 0,
        .max_elapsed_ms = 2000,
        .attempt_timeout_ms = 2000,
        .max_inflight = builders + 1,
        .queue = q,
    };
    struct dlv_dest *d = NULL;
    assert_int_equal(dlv_dest_new(&d, &toy_many, NULL, &c, http), O2D_OK);
    return d;
}

static struct dlv_dest *dest_many(struct server *srv, struct http_client *http, int builders)
{
    return dest_many_q(srv, http, builders, NULL);
}

static void enqueue_parts(struct dlv_dest *d, int n)
{
    struct dlv_item *list = NULL;
    for (int i = n - 1; i >= 0; i--) {
        char text[32];
        snprintf(text, sizeof(text), "part-%02d+", i);
        struct dlv_item *it = item("", text);
        it->next = list;
        list = it;
    }
    assert_int_equal(dlv_dest_admit(d, (size_t)n), O2D_OK);
    assert_int_equal(dlv_dest_enqueue(d, list, 9), O2D_OK);
}

/* Units are queued, building, in flight or settled, exactly once, with several builds at
 * once; a flush waits for the builds in progress; every unit arrives once. */
static void several_builders_build_at_once(void **state)
{
    (void)state;
    many_reset();
    struct server srv;
    server_start(&srv, 1 << 20);
    struct http_client *http = client();
    struct dlv_dest *d = dest_many(&srv, http, 3);
    assert_int_equal(dlv_dest_start(d), O2D_OK);
    enqueue_parts(d, 7);
    assert_int_equal(many_wait_inside(3), 3); /* three bodies being built at once */
    struct dlv_metrics m;
    memset(&m, 0, sizeof(m));
    dlv_dest_metrics(d, &m);
    assert_int_equal(m.queue_items, 7); /* 4 waiting + 3 building: each counted once */
    assert_int_equal(m.sent_items, 0);
    /* the flush cannot be done while builds are held */
    dlv_dest_flush_begin(d);
    assert_int_equal(dlv_dest_flush_wait(d, o2d_now_ms() + 200), O2D_ERR_TIMEOUT);
    many_open();
    dlv_dest_flush_begin(d);
    assert_int_equal(dlv_dest_flush_wait(d, o2d_now_ms() + 5000), O2D_OK);
    memset(&m, 0, sizeof(m));
    dlv_dest_metrics(d, &m);
    assert_int_equal(m.sent_items, 7);
    assert_int_equal(m.sent_payloads, 7);
    assert_int_equal(m.queue_items, 0);
    assert_int_equal(m.queue_bytes, 0);
    pthread_mutex_lock(&many.mu);
    assert_true(many.max_inside <= 3); /* never more builds than senders */
    pthread_mutex_unlock(&many.mu);
    pthread_mutex_lock(&srv.mu);
    assert_int_equal(srv.n_ok, 7);
    pthread_mutex_unlock(&srv.mu);
    dlv_dest_stop(d);
    http_client_free(http);
    assert_int_equal(dlv_dest_undelivered(d, NULL, "toy"), 0);
    dlv_dest_free(d);
    server_stop(&srv);
}

struct stopper {
    struct dlv_dest *d;
    pthread_t thread;
};

static void *stop_main(void *arg)
{
    struct stopper *s = arg;
    dlv_dest_stop(s->d);
    return NULL;
}

/* Stop while two builds are held in the encoder: they finish (their bodies posted or
 * counted), what still waits is counted shutdown, and every unit is counted exactly once. */
static void stop_with_builds_in_progress(void **state)
{
    (void)state;
    many_reset();
    struct server srv;
    server_start(&srv, 1 << 20);
    struct http_client *http = client();
    struct dlv_dest *d = dest_many(&srv, http, 2);
    assert_int_equal(dlv_dest_start(d), O2D_OK);
    enqueue_parts(d, 5);
    assert_int_equal(many_wait_inside(2), 2);
    struct stopper st = {.d = d};
    assert_int_equal(pthread_create(&st.thread, NULL, stop_main, &st), 0);
    int64_t deadline = o2d_now_ms() + 5000;
    while (!dlv_dest_stopping(d) && o2d_now_ms() < deadline) {
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    assert_true(dlv_dest_stopping(d));
    many_open();
    pthread_join(st.thread, NULL);
    http_client_free(http); /* completes what is still in flight */
    struct dlv_metrics m;
    memset(&m, 0, sizeof(m));
    dlv_dest_metrics(d, &m);
    uint64_t shutdown = dlv_dest_dropped(d, DLV_DROP_SHUTDOWN);
    assert_int_equal(m.sent_items + shutdown, 5);
    assert_true(shutdown >= 3); /* the three never taken */
    assert_int_equal(m.queue_items, 0);
    assert_int_equal(m.queue_bytes, 0);
    dlv_dest_free(d);
    server_stop(&srv);
}

static struct dlv_queue *disk_queue(const char *dir, struct dlog_stats *st)
{
    struct dlog_config lc = {
        .dir = dir,
        .max_bytes = 1 << 20,
        .segment_bytes = 200, /* a few records a segment: reads cross segments */
        .fsync = DLOG_FSYNC_NEVER,
    };
    struct dlv_queue *q = NULL;
    char err[256];
    assert_int_equal(dlv_queue_disk_new(&q, &lc, err, sizeof(err)), O2D_OK);
    if (st != NULL) {
        q->type->disk_stats(q, st);
    }
    return q;
}

/* A disk queue read by three senders, one at a time: every record is delivered once and
 * settled, so that nothing is replayed at the next open. */
static void disk_queue_with_three_builders(void **state)
{
    (void)state;
    many_reset();
    char dir[] = "/tmp/o2d-dlv-XXXXXX";
    assert_non_null(mkdtemp(dir));
    struct server srv;
    server_start(&srv, 1 << 20);
    struct http_client *http = client();
    struct dlv_dest *d = dest_many_q(&srv, http, 3, disk_queue(dir, NULL));
    assert_int_equal(dlv_dest_start(d), O2D_OK);
    enqueue_parts(d, 9);
    assert_int_equal(many_wait_inside(3), 3);
    struct dlv_metrics m;
    memset(&m, 0, sizeof(m));
    dlv_dest_metrics(d, &m);
    assert_int_equal(m.queue_items, 9);
    assert_int_equal(m.disk_records, 9);
    many_open();
    dlv_dest_flush_begin(d);
    assert_int_equal(dlv_dest_flush_wait(d, o2d_now_ms() + 5000), O2D_OK);
    memset(&m, 0, sizeof(m));
    dlv_dest_metrics(d, &m);
    assert_int_equal(m.sent_items, 9);
    assert_int_equal(m.queue_items, 0);
    assert_int_equal(m.disk_records, 0); /* every record settled */
    pthread_mutex_lock(&srv.mu);
    assert_int_equal(srv.n_ok, 9); /* one body a record (bodies are gzip: not read here) */
    pthread_mutex_unlock(&srv.mu);
    assert_int_equal(dlv_dest_undelivered(d, NULL, "toy"), 0);
    dlv_dest_stop(d);
    http_client_free(http);
    dlv_dest_free(d);
    struct dlog_stats st;
    memset(&st, 0, sizeof(st));
    struct dlv_queue *again = disk_queue(dir, &st);
    assert_int_equal(st.records, 0);
    assert_int_equal(st.recovered, 0);
    again->type->free(again);
    server_stop(&srv);
    char cmd[64];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

/* A queue smaller than four batches sends a quarter of itself at once instead of waiting for
 * the flush interval (a 1 MiB queue under a 3.2 MB batch once took one batch a second and
 * refused everything else). */
static void small_queue_sends_a_quarter_at_once(void **state)
{
    (void)state;
    struct server srv;
    server_start(&srv, 1 << 20);
    struct http_client *http = client();
    struct dlv_dest *d = dest(&srv, http, 1 << 16, 4096, NULL); /* interval: an hour */
    assert_int_equal(dlv_dest_start(d), O2D_OK);
    char text[1101];
    memset(text, 'q', 1099);
    text[1099] = '+';
    text[1100] = '\0';
    assert_int_equal(dlv_dest_enqueue(d, item("", text), 1), O2D_OK); /* > 4096 / 4 */
    int64_t deadline = o2d_now_ms() + 5000;
    size_t ok = 0;
    while (ok == 0 && o2d_now_ms() < deadline) {
        pthread_mutex_lock(&srv.mu);
        ok = srv.n_ok;
        pthread_mutex_unlock(&srv.mu);
        if (ok == 0) {
            usleep(10 * 1000);
        }
    }
    assert_int_equal(ok, 1); /* sent without a flush */
    dlv_dest_stop(d);
    http_client_free(http);
    dlv_dest_free(d);
    server_stop(&srv);
}

/* Body buffers: a buffer given back serves the next body that fits it; the pool keeps the
 * largest `keep` (2 here), never one over a caller's max, and lets go of them when idle. */
static void pool_reuses_and_lets_go(void **state)
{
    (void)state;
    struct dlv_pool *p = dlv_pool_new(2);
    assert_non_null(p);
    size_t cap = 1;
    assert_null(dlv_pool_get(p, 0, SIZE_MAX, &cap)); /* nothing free yet */
    assert_int_equal(cap, 0);
    uint8_t *a = dlv_pool_get(p, 100000, SIZE_MAX, &cap);
    assert_non_null(a);
    assert_true(cap >= 100000);
    size_t cap_a = cap;
    memset(a, 1, cap_a);
    dlv_pool_put(p, a, cap_a);
    /* the same one again, for a smaller body; not for a caller whose limit it passes */
    assert_null(dlv_pool_get(p, 0, cap_a - 1, &cap));
    assert_ptr_equal(dlv_pool_get(p, 5000, SIZE_MAX, &cap), a);
    assert_int_equal(cap, cap_a);
    dlv_pool_put(p, a, cap_a);
    /* too small for this one: grown (its bytes are the caller's to overwrite) */
    uint8_t *g = dlv_pool_get(p, 2 * cap_a, SIZE_MAX, &cap);
    assert_non_null(g);
    assert_true(cap >= 2 * cap_a);
    memset(g, 2, cap);
    dlv_pool_put(p, g, cap);
    /* full: the smallest goes, whichever it is (g, too large for these, stays) */
    uint8_t *bufs[3];
    size_t caps[3];
    for (int i = 0; i < 3; i++) {
        bufs[i] = dlv_pool_get(p, (size_t)(i + 1) * 1000, (size_t)(i + 1) * 1000, &caps[i]);
        assert_non_null(bufs[i]);
        assert_true(caps[i] <= (size_t)(i + 1) * 1000);
    }
    for (int i = 0; i < 3; i++) {
        dlv_pool_put(p, bufs[i], caps[i]);
    }
    assert_null(dlv_pool_get(p, 0, 2999, &cap)); /* the two smallest went */
    /* idle: kept for 2 s after its last use, then freed */
    int64_t now = o2d_now_ms();
    int64_t due = dlv_pool_idle(p, now);
    assert_true(due > now && due <= now + 2000);
    assert_int_equal(dlv_pool_idle(p, now + 2000), INT64_MAX);
    assert_null(dlv_pool_get(p, 0, SIZE_MAX, &cap));
    /* without a pool: plain allocations */
    uint8_t *q = dlv_pool_get(NULL, 10, SIZE_MAX, &cap);
    assert_non_null(q);
    assert_int_equal(cap, 10);
    dlv_pool_put(NULL, q, cap);
    dlv_pool_free(p);
}

int main(void)
{
    o2d_log_set_level(O2D_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(packs_in_order_within_the_limit),
        cmocka_unit_test(pool_reuses_and_lets_go),
        cmocka_unit_test(groups_by_header_with_max_items),
        cmocka_unit_test(splits_an_item_alone_too_large),
        cmocka_unit_test(leaves_out_what_cannot_fit),
        cmocka_unit_test(compressed_bodies_halved_until_they_fit),
        cmocka_unit_test(allocation_failures_keep_every_unit_counted),
        cmocka_unit_test(delivers_each_item_once_with_its_identity),
        cmocka_unit_test(a_413_body_goes_again_as_two),
        cmocka_unit_test(last_error_records_retried_attempts),
        cmocka_unit_test(full_queue_busy_deadline_and_shutdown),
        cmocka_unit_test(tenant_share_of_the_queue),
        cmocka_unit_test(tenant_bytes_come_back_from_splits_and_drops),
        cmocka_unit_test(tenant_bytes_come_back_at_stop),
        cmocka_unit_test(no_tenant_rule_at_100_percent),
        cmocka_unit_test(idle_destination_sleeps),
        cmocka_unit_test(items_being_built_still_count_as_queued),
        cmocka_unit_test(small_queue_sends_a_quarter_at_once),
        cmocka_unit_test(a_413_body_goes_again_as_two_with_three_builders),
        cmocka_unit_test(several_builders_build_at_once),
        cmocka_unit_test(stop_with_builds_in_progress),
        cmocka_unit_test(disk_queue_with_three_builders),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
