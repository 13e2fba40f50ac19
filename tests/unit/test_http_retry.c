/*
 * test_http_retry.c: the shared HTTP layer (exporters/http_client.c): the retry table
 * (status -> OK / RETRY / DROP), the full-jitter backoff bounds, Retry-After in both of its
 * forms, and the client itself against a scripted HTTP/1.1 server on 127.0.0.1: retries
 * until a 2xx, no retry of a 403, Retry-After honoured, giving up after max_elapsed_ms,
 * a response body cut at the cap, and pending requests completed at shutdown.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>

#include "http_client.h"
#include "loopback.h"
#include "o2d.h"
#include "o2d_alloc.h"
#include "o2d_log.h"
#include "o2d_time.h"

static void verdict_table(void **state)
{
    (void)state;
    static const struct {
        int status;
        long http;
        enum http_verdict want;
    } cases[] = {
        {O2D_OK, 200, HTTP_VERDICT_OK},
        {O2D_OK, 202, HTTP_VERDICT_OK},
        {O2D_OK, 204, HTTP_VERDICT_OK},
        {O2D_OK, 299, HTTP_VERDICT_OK},
        {O2D_OK, 500, HTTP_VERDICT_RETRY},
        {O2D_OK, 502, HTTP_VERDICT_RETRY},
        {O2D_OK, 503, HTTP_VERDICT_RETRY},
        {O2D_OK, 504, HTTP_VERDICT_RETRY},
        {O2D_OK, 599, HTTP_VERDICT_RETRY},
        {O2D_OK, 408, HTTP_VERDICT_RETRY},
        {O2D_OK, 429, HTTP_VERDICT_RETRY},
        {O2D_OK, 400, HTTP_VERDICT_DROP},
        {O2D_OK, 401, HTTP_VERDICT_DROP},
        {O2D_OK, 403, HTTP_VERDICT_DROP},
        {O2D_OK, 404, HTTP_VERDICT_DROP},
        {O2D_OK, 413, HTTP_VERDICT_DROP},
        {O2D_OK, 415, HTTP_VERDICT_DROP},
        {O2D_OK, 499, HTTP_VERDICT_DROP},
        {O2D_OK, 301, HTTP_VERDICT_DROP},
        {O2D_OK, 100, HTTP_VERDICT_DROP},
        {O2D_OK, 0, HTTP_VERDICT_DROP},
        {O2D_ERR_TIMEOUT, 0, HTTP_VERDICT_RETRY},
        {O2D_ERR_SYSTEM, 0, HTTP_VERDICT_RETRY},
        {O2D_ERR_NOMEM, 0, HTTP_VERDICT_RETRY},
        /* a network error after a status line arrived is still a network error */
        {O2D_ERR_SYSTEM, 200, HTTP_VERDICT_RETRY},
        {O2D_ERR_CONFIG, 0, HTTP_VERDICT_DROP},
        {O2D_ERR_INTERNAL, 0, HTTP_VERDICT_DROP},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        if (http_verdict_of(cases[i].status, cases[i].http) != cases[i].want) {
            fail_msg("case %zu: status %d http %ld", i, cases[i].status, cases[i].http);
        }
    }
}

static void curl_codes_map(void **state)
{
    (void)state;
    assert_int_equal(http_status_of_curl(0), O2D_OK);
    assert_int_equal(http_status_of_curl(28), O2D_ERR_TIMEOUT); /* CURLE_OPERATION_TIMEDOUT */
    assert_int_equal(http_status_of_curl(7), O2D_ERR_SYSTEM);   /* CURLE_COULDNT_CONNECT */
    assert_int_equal(http_status_of_curl(6), O2D_ERR_SYSTEM);   /* CURLE_COULDNT_RESOLVE_HOST */
    assert_int_equal(http_status_of_curl(52), O2D_ERR_SYSTEM);  /* CURLE_GOT_NOTHING */
    assert_int_equal(http_status_of_curl(56), O2D_ERR_SYSTEM);  /* CURLE_RECV_ERROR */
    assert_int_equal(http_status_of_curl(1), O2D_ERR_CONFIG);   /* UNSUPPORTED_PROTOCOL */
    assert_int_equal(http_status_of_curl(3), O2D_ERR_CONFIG);   /* CURLE_URL_MALFORMAT */
}

static void backoff_bounds(void **state)
{
    (void)state;
    /* The ceiling doubles from the base and stops at the cap. */
    static const int64_t ceil_ms[] = {100, 200, 400, 800, 1600, 3200, 6400, 10000, 10000};
    for (int retry = 0; retry < 9; retry++) {
        assert_int_equal(http_backoff_ms(retry, 100, 10000, (uint64_t)ceil_ms[retry]),
                         ceil_ms[retry]);
        assert_int_equal(http_backoff_ms(retry, 100, 10000, 0), 0);
        uint64_t x = 88172645463325252ULL;
        for (int i = 0; i < 1000; i++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            int64_t d = http_backoff_ms(retry, 100, 10000, x);
            assert_true(d >= 0 && d <= ceil_ms[retry]);
        }
    }
    /* No overflow for absurd retry counts. */
    assert_true(http_backoff_ms(1000, 100, 10000, 12345) <= 10000);
    assert_true(http_backoff_ms(62, INT64_MAX / 4, INT64_MAX / 2, 7) >= 0);
    assert_int_equal(http_backoff_ms(3, 0, 10000, 5), 0);
}

static void retry_after_parsing(void **state)
{
    (void)state;
    time_t now = 1700000000; /* Tue, 14 Nov 2023 22:13:20 GMT */
    assert_int_equal(http_retry_after_ms("2", 1, now), 2000);
    assert_int_equal(http_retry_after_ms(" 120\r\n", 6, now), 120000);
    assert_int_equal(http_retry_after_ms("0", 1, now), 0);
    /* not NUL-terminated: only len bytes count */
    assert_int_equal(http_retry_after_ms("35xyz", 2, now), 35000);
    /* the three date forms RFC 9110 asks a recipient to accept */
    assert_int_equal(http_retry_after_ms("Tue, 14 Nov 2023 22:13:25 GMT", 29, now), 5000);
    assert_int_equal(http_retry_after_ms("Tuesday, 14-Nov-23 22:13:30 GMT", 31, now), 10000);
    assert_int_equal(http_retry_after_ms("Tue Nov 14 22:13:21 2023", 24, now), 1000);
    /* a date in the past means now */
    assert_int_equal(http_retry_after_ms("Tue, 14 Nov 2023 22:00:00 GMT", 29, now), 0);
    assert_int_equal(http_retry_after_ms("", 0, now), -1);
    assert_int_equal(http_retry_after_ms("  ", 2, now), -1);
    assert_int_equal(http_retry_after_ms("-5", 2, now), -1);
    assert_int_equal(http_retry_after_ms("1.5", 3, now), -1);
    assert_int_equal(http_retry_after_ms("soon", 4, now), -1);
    assert_true(http_retry_after_ms("99999999999999999999999", 23, now) > 0);
}

/* ---- a scripted HTTP/1.1 server ---- */

struct answer {
    int status;
    const char *headers; /* extra header lines, each ending in \r\n */
    size_t body_len;     /* bytes of 'x' */
};

struct server {
    int fd;
    int port;
    pthread_t thread;
    pthread_mutex_t mu;
    const struct answer *script;
    int n_script;
    int repeat_last; /* past the script: its last answer again, not 202 */
    int next;
    int64_t times_ms[16];
    int n_times;
    int stop;
};

static int read_request(int c)
{
    char buf[8192];
    size_t len = 0;
    for (;;) {
        ssize_t r = read(c, buf + len, sizeof(buf) - 1 - len);
        if (r <= 0) {
            return -1;
        }
        len += (size_t)r;
        buf[len] = '\0';
        char *end = strstr(buf, "\r\n\r\n");
        if (end == NULL) {
            continue;
        }
        size_t want = 0;
        char *cl = strcasestr(buf, "Content-Length:");
        if (cl != NULL && cl < end) {
            want = strtoul(cl + 15, NULL, 10);
        }
        size_t have = len - (size_t)(end + 4 - buf);
        while (have < want) {
            r = read(c, buf, sizeof(buf) - 1);
            if (r <= 0) {
                return -1;
            }
            have += (size_t)r;
        }
        return 0;
    }
}

static void *server_main(void *arg)
{
    struct server *s = arg;
    for (;;) {
        int c = accept(s->fd, NULL, NULL);
        if (c < 0) {
            return NULL;
        }
        while (read_request(c) == 0) {
            pthread_mutex_lock(&s->mu);
            struct answer a = {202, "", 2};
            if (s->next < s->n_script) {
                a = s->script[s->next];
            } else if (s->repeat_last && s->n_script > 0) {
                a = s->script[s->n_script - 1];
            }
            s->next++;
            if (s->n_times < 16) {
                s->times_ms[s->n_times++] = o2d_now_ms();
            }
            pthread_mutex_unlock(&s->mu);
            char head[512];
            int hl = snprintf(head, sizeof(head), "HTTP/1.1 %d X\r\nContent-Length: %zu\r\n%s\r\n",
                              a.status, a.body_len, a.headers);
            if (send(c, head, (size_t)hl, MSG_NOSIGNAL) != hl) {
                break;
            }
            size_t left = a.body_len;
            char xs[4096];
            memset(xs, 'x', sizeof(xs));
            while (left > 0) {
                size_t n = left < sizeof(xs) ? left : sizeof(xs);
                ssize_t w = send(c, xs, n, MSG_NOSIGNAL);
                if (w <= 0) {
                    break;
                }
                left -= (size_t)w;
            }
        }
        close(c);
    }
}

static void server_start(struct server *s, const struct answer *script, int n)
{
    memset(s, 0, sizeof(*s));
    pthread_mutex_init(&s->mu, NULL);
    s->script = script;
    s->n_script = n;
    s->fd = loopback_listen(&s->port);
    assert_true(s->fd >= 0);
    pthread_create(&s->thread, NULL, server_main, s);
}

static void server_stop(struct server *s)
{
    shutdown(s->fd, SHUT_RDWR);
    close(s->fd);
    pthread_join(s->thread, NULL);
    pthread_mutex_destroy(&s->mu);
}

struct outcome {
    pthread_mutex_t mu;
    pthread_cond_t cond;
    int done;
    struct http_result r;
    char body[128];
    size_t body_len;
};

static void on_done(void *ctx, const struct http_result *r)
{
    struct outcome *o = ctx;
    pthread_mutex_lock(&o->mu);
    o->r = *r;
    o->r.error = NULL;
    o->r.body = NULL;
    o->body_len = r->body_len;
    if (r->body_len > 0) {
        memcpy(o->body, r->body, r->body_len < sizeof(o->body) ? r->body_len : sizeof(o->body));
    }
    o->done = 1;
    pthread_cond_broadcast(&o->cond);
    pthread_mutex_unlock(&o->mu);
}

static void run(struct http_client *c, int port, int64_t max_elapsed, struct outcome *o)
{
    memset(o, 0, sizeof(*o));
    pthread_mutex_init(&o->mu, NULL);
    pthread_cond_init(&o->cond, NULL);
    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/api/v0.2/traces", port);
    const char *headers[] = {"Content-Type: application/x-protobuf"};
    uint8_t *body = o2d_malloc(5);
    memcpy(body, "hello", 5);
    struct http_request q = {
        .method = "POST",
        .url = url,
        .headers = headers,
        .n_headers = 1,
        .body = body,
        .body_len = 5,
        .timeout_ms = 5000,
        .max_elapsed_ms = max_elapsed,
        .name = "test",
        .done = on_done,
        .ctx = o,
    };
    assert_int_equal(http_client_submit(c, &q), O2D_OK);
    pthread_mutex_lock(&o->mu);
    while (!o->done) {
        pthread_cond_wait(&o->cond, &o->mu);
    }
    pthread_mutex_unlock(&o->mu);
}

static struct http_client *client(void)
{
    struct http_client_config cfg = {
        .backoff_base_ms = 10,
        .backoff_max_ms = 50,
        .max_response_bytes = 100,
    };
    struct http_client *c = NULL;
    assert_int_equal(http_client_new(&c, &cfg), O2D_OK);
    return c;
}

static void client_retries_until_2xx(void **state)
{
    (void)state;
    static const struct answer script[] = {{500, "", 3}, {503, "", 0}, {408, "", 0}};
    struct server s;
    server_start(&s, script, 3);
    struct http_client *c = client();
    struct outcome o;
    run(c, s.port, 10000, &o);
    assert_int_equal(o.r.outcome, HTTP_DONE_OK);
    assert_int_equal(o.r.http_status, 202);
    assert_int_equal(o.r.attempts, 4);
    assert_int_equal(http_client_pending(c), 0);
    http_client_free(c);
    server_stop(&s);
}

static void client_drops_4xx_at_once(void **state)
{
    (void)state;
    static const struct answer script[] = {{403, "", 20}};
    struct server s;
    server_start(&s, script, 1);
    struct http_client *c = client();
    struct outcome o;
    run(c, s.port, 10000, &o);
    assert_int_equal(o.r.outcome, HTTP_DONE_REJECTED);
    assert_int_equal(o.r.http_status, 403);
    assert_int_equal(o.r.attempts, 1);
    assert_int_equal(o.body_len, 20);
    http_client_free(c);
    server_stop(&s);
}

static void client_honours_retry_after(void **state)
{
    (void)state;
    static const struct answer script[] = {{429, "Retry-After: 1\r\n", 0}};
    struct server s;
    server_start(&s, script, 1);
    struct http_client *c = client();
    struct outcome o;
    run(c, s.port, 10000, &o);
    assert_int_equal(o.r.outcome, HTTP_DONE_OK);
    assert_int_equal(o.r.attempts, 2);
    assert_int_equal(s.n_times, 2);
    /* the jitter alone would have waited at most 10 ms */
    assert_true(s.times_ms[1] - s.times_ms[0] >= 990);
    http_client_free(c);
    server_stop(&s);
}

static void client_gives_up_after_max_elapsed(void **state)
{
    (void)state;
    static const struct answer script[] = {
        {500, "", 0}, {500, "", 0}, {500, "", 0}, {500, "", 0}, {500, "", 0}, {500, "", 0},
        {500, "", 0}, {500, "", 0}, {500, "", 0}, {500, "", 0}, {500, "", 0}, {500, "", 0},
    };
    struct server s;
    server_start(&s, script, 12);
    /* the backoff's jitter may be near 0 each time: more than 12 attempts fit in 150 ms */
    pthread_mutex_lock(&s.mu);
    s.repeat_last = 1;
    pthread_mutex_unlock(&s.mu);
    struct http_client *c = client();
    struct outcome o;
    int64_t t0 = o2d_now_ms();
    run(c, s.port, 150, &o);
    assert_int_equal(o.r.outcome, HTTP_DONE_EXHAUSTED);
    assert_int_equal(o.r.http_status, 500);
    assert_true(o.r.attempts >= 2);
    assert_true(o2d_now_ms() - t0 < 1000);
    /* a Retry-After longer than what is left gives up at once */
    static const struct answer slow[] = {{503, "Retry-After: 30\r\n", 0}};
    struct server s2;
    server_start(&s2, slow, 1);
    t0 = o2d_now_ms();
    run(c, s2.port, 5000, &o);
    assert_int_equal(o.r.outcome, HTTP_DONE_EXHAUSTED);
    assert_int_equal(o.r.attempts, 1);
    assert_true(o2d_now_ms() - t0 < 2000);
    http_client_free(c);
    server_stop(&s);
    server_stop(&s2);
}

static void client_caps_response_body(void **state)
{
    (void)state;
    static const struct answer script[] = {{400, "", 10 * 1024 * 1024}};
    struct server s;
    server_start(&s, script, 1);
    struct http_client *c = client();
    struct outcome o;
    run(c, s.port, 10000, &o);
    assert_int_equal(o.r.outcome, HTTP_DONE_REJECTED);
    assert_int_equal(o.r.http_status, 400);
    assert_int_equal(o.body_len, 100);
    http_client_free(c);
    server_stop(&s);
}

static void client_network_error_retried(void **state)
{
    (void)state;
    /* a port nobody listens on: connection refused, retried until max_elapsed */
    struct server s;
    server_start(&s, NULL, 0);
    int port = s.port;
    server_stop(&s);
    struct http_client *c = client();
    struct outcome o;
    run(c, port, 200, &o);
    assert_int_equal(o.r.outcome, HTTP_DONE_EXHAUSTED);
    assert_int_not_equal(o.r.status, O2D_OK);
    assert_true(o.r.attempts >= 2);
    http_client_free(c);
}

static int shutdown_done;
static void count_shutdown(void *ctx, const struct http_result *r)
{
    (void)ctx;
    if (r->outcome == HTTP_DONE_SHUTDOWN) {
        shutdown_done++;
    }
}

static void client_free_completes_pending(void **state)
{
    (void)state;
    struct server s;
    server_start(&s, NULL, 0);
    int port = s.port;
    server_stop(&s);
    struct http_client *c = client();
    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/", port);
    shutdown_done = 0;
    for (int i = 0; i < 3; i++) {
        struct http_request q = {
            .method = "GET",
            .url = url,
            .max_elapsed_ms = 60000,
            .done = count_shutdown,
        };
        assert_int_equal(http_client_submit(c, &q), O2D_OK);
    }
    http_client_free(c);
    assert_int_equal(shutdown_done, 3);
}

int main(void)
{
    o2d_log_set_level(O2D_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(verdict_table),
        cmocka_unit_test(curl_codes_map),
        cmocka_unit_test(backoff_bounds),
        cmocka_unit_test(retry_after_parsing),
        cmocka_unit_test(client_retries_until_2xx),
        cmocka_unit_test(client_drops_4xx_at_once),
        cmocka_unit_test(client_honours_retry_after),
        cmocka_unit_test(client_gives_up_after_max_elapsed),
        cmocka_unit_test(client_caps_response_body),
        cmocka_unit_test(client_network_error_retried),
        cmocka_unit_test(client_free_completes_pending),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
