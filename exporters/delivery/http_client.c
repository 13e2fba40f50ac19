/*
 * http_client.c: one thread, one libcurl multi handle, every Datadog request (http_client.h).
 *
 * Submitters put requests in a small locked inbox and wake the multi handle with
 * curl_multi_wakeup; only the client's thread touches curl. A request keeps its easy handle
 * across attempts, so a retry reuses the connection pool of the multi handle. Between
 * attempts a request sits on a list of timers. Nothing here disables curl's own proxy
 * handling or certificate checks: HTTPS_PROXY, NO_PROXY and the system CA bundle apply.
 * What to send, how to batch it and how to count a loss belong to the exporters.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <curl/curl.h>

#include "http_client.h"
#include "o2d.h"
#include "o2d_alloc.h"
#include "o2d_buf.h"
#include "o2d_log.h"
#include "o2d_time.h"

#define HTTP_DEFAULT_BACKOFF_BASE_MS 100
#define HTTP_DEFAULT_BACKOFF_MAX_MS  10000
#define HTTP_DEFAULT_RETRY_AFTER_MAX 300000
#define HTTP_DEFAULT_MAX_RESPONSE    (64 * 1024)
#define HTTP_CONNECT_TIMEOUT_MAX_MS  10000
#define HTTP_IDLE_POLL_MS            1000

struct http_req {
    struct http_req *next; /* in exactly one list: inbox, active or waiting */
    int is_post;
    char *url;
    struct curl_slist *headers;
    uint8_t *body;
    size_t body_len;
    int body_borrowed; /* the caller's: never freed here */
    int64_t timeout_ms;
    int64_t max_elapsed_ms;
    const char *name;
    http_done_fn done;
    http_done_fn retrying;
    http_verdict_fn verdict;
    void *ctx;

    CURL *easy; /* kept across attempts */
    int64_t first_ms;
    int64_t due_ms;
    int attempts;
    /* the current attempt */
    struct o2d_buf resp;
    int resp_truncated;
    int64_t retry_after_ms;
    long http_status;
    int status;
    char errbuf[CURL_ERROR_SIZE];
};

struct http_client {
    CURLM *multi;
    pthread_t thread;
    int started;
    pthread_mutex_t mu;
    struct http_req *inbox; /* under mu, newest first; reversed when taken */
    int stopping;           /* under mu */
    atomic_size_t pending;
    struct http_req *active;  /* client thread only */
    struct http_req *waiting; /* client thread only */
    struct http_client_config cfg;
    char *user_agent;
    uint64_t rng;
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_result;

static void init_curl(void)
{
    curl_init_result = curl_global_init(CURL_GLOBAL_DEFAULT);
}

/* ---- the retry policy ---- */

enum http_verdict http_verdict_of(int status, long http_status)
{
    switch (status) {
    case O2D_OK:
        break;
    case O2D_ERR_TIMEOUT:
    case O2D_ERR_SYSTEM:
    case O2D_ERR_NOMEM:
        return HTTP_VERDICT_RETRY;
    default:
        return HTTP_VERDICT_DROP;
    }
    if (http_status >= 200 && http_status <= 299) {
        return HTTP_VERDICT_OK;
    }
    if (http_status >= 500 && http_status <= 599) {
        return HTTP_VERDICT_RETRY;
    }
    if (http_status == 408 || http_status == 429) {
        return HTTP_VERDICT_RETRY;
    }
    /* Any other 4xx (403 wrong key or site, 413 too large, 400 bad payload), and statuses
     * an intake never sends (1xx, 3xx: redirects are not followed). */
    return HTTP_VERDICT_DROP;
}

int64_t http_backoff_ms(int retry, int64_t base_ms, int64_t max_ms, uint64_t rnd)
{
    if (base_ms <= 0 || max_ms <= 0) {
        return 0;
    }
    int64_t ceil = base_ms;
    for (int i = 0; i < retry && ceil < max_ms; i++) {
        ceil *= 2;
    }
    if (ceil > max_ms) {
        ceil = max_ms;
    }
    return (int64_t)(rnd % ((uint64_t)ceil + 1));
}

int64_t http_retry_after_ms(const char *v, size_t len, time_t now)
{
    while (len > 0 && (*v == ' ' || *v == '\t')) {
        v++;
        len--;
    }
    while (len > 0 &&
           (v[len - 1] == ' ' || v[len - 1] == '\t' || v[len - 1] == '\r' || v[len - 1] == '\n')) {
        len--;
    }
    if (len == 0 || len > 64) {
        return -1;
    }
    size_t digits = 0;
    while (digits < len && v[digits] >= '0' && v[digits] <= '9') {
        digits++;
    }
    if (digits == len) {
        int64_t s = 0;
        for (size_t i = 0; i < len; i++) {
            s = s * 10 + (v[i] - '0');
            if (s > INT64_MAX / 10000) {
                return INT64_MAX / 10;
            }
        }
        return s * 1000;
    }
    char tmp[65];
    memcpy(tmp, v, len);
    tmp[len] = '\0';
    /* An HTTP-date has letters and a comma or spaces; curl_getdate also takes the obsolete
     * RFC 850 and asctime forms RFC 9110 asks recipients to accept. */
    if (digits > 0) {
        return -1; /* "12abc" is neither form */
    }
    time_t t = curl_getdate(tmp, NULL);
    if (t == -1) {
        return -1;
    }
    if (t <= now) {
        return 0;
    }
    return (int64_t)(t - now) * 1000;
}

int http_status_of_curl(int curl_code)
{
    switch ((CURLcode)curl_code) {
    case CURLE_OK:
        return O2D_OK;
    case CURLE_OPERATION_TIMEDOUT:
        return O2D_ERR_TIMEOUT;
    case CURLE_OUT_OF_MEMORY:
        return O2D_ERR_NOMEM;
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_URL_MALFORMAT:
    case CURLE_NOT_BUILT_IN:
    case CURLE_BAD_FUNCTION_ARGUMENT:
        return O2D_ERR_CONFIG;
    default:
        /* DNS, connect, TLS, reset, empty reply, HTTP/2 stream errors: the network or the
         * intake is unwell for now. */
        return O2D_ERR_SYSTEM;
    }
}

/* ---- requests ---- */

static uint64_t next_random(struct http_client *c)
{
    /* xorshift64*: jitter needs spread, not secrecy */
    uint64_t x = c->rng;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    c->rng = x;
    return x * 0x2545F4914F6CDD1DULL;
}

static void req_free(struct http_req *r)
{
    if (r == NULL) {
        return;
    }
    if (r->easy != NULL) {
        curl_easy_cleanup(r->easy);
    }
    curl_slist_free_all(r->headers);
    o2d_buf_cleanup(&r->resp);
    if (!r->body_borrowed) {
        o2d_free(r->body);
    }
    o2d_free(r->url);
    o2d_free(r);
}

static void result_of(const struct http_req *r, enum http_outcome outcome, struct http_result *res)
{
    *res = (struct http_result){
        .outcome = outcome,
        .status = r->status,
        .http_status = r->http_status,
        .error = r->errbuf,
        .body = r->resp.data,
        .body_len = r->resp.len,
        .attempts = r->attempts,
    };
}

static void complete(struct http_client *c, struct http_req *r, enum http_outcome outcome)
{
    struct http_result res;
    result_of(r, outcome, &res);
    atomic_fetch_sub(&c->pending, 1); /* before the callback, which may wake a waiter */
    if (r->done != NULL) {
        r->done(r->ctx, &res);
    }
    req_free(r);
}

int http_client_submit(struct http_client *c, const struct http_request *q)
{
    int rv = O2D_ERR_NOMEM;
    struct http_req *r = o2d_calloc(1, sizeof(*r));
    if (r == NULL) {
        goto out;
    }
    r->body = q->body;
    r->body_len = q->body_len;
    r->body_borrowed = q->body_borrowed;
    r->is_post = strcmp(q->method, "POST") == 0;
    r->timeout_ms = q->timeout_ms > 0 ? q->timeout_ms : 30000;
    r->max_elapsed_ms = q->max_elapsed_ms;
    r->name = q->name != NULL ? q->name : "http";
    r->verdict = q->verdict;
    r->done = q->done;
    r->retrying = q->retrying;
    r->ctx = q->ctx;
    r->retry_after_ms = -1;
    o2d_buf_init(&r->resp, c->cfg.max_response_bytes);
    r->url = o2d_strndup(q->url, strlen(q->url));
    if (r->url == NULL) {
        goto out;
    }
    for (size_t i = 0; i < q->n_headers; i++) {
        struct curl_slist *h = curl_slist_append(r->headers, q->headers[i]);
        if (h == NULL) {
            goto out;
        }
        r->headers = h;
    }
    /* No "Expect: 100-continue" wait (curl adds it to bodies over 1 MiB): the intake answers
     * a body it does not want with a status anyway. */
    struct curl_slist *h = curl_slist_append(r->headers, "Expect:");
    if (h == NULL) {
        goto out;
    }
    r->headers = h;

    pthread_mutex_lock(&c->mu);
    if (c->stopping) {
        pthread_mutex_unlock(&c->mu);
        rv = O2D_ERR_SHUTDOWN;
        goto out;
    }
    r->next = c->inbox;
    c->inbox = r;
    atomic_fetch_add(&c->pending, 1);
    pthread_mutex_unlock(&c->mu);
    r = NULL;
    curl_multi_wakeup(c->multi);
    rv = O2D_OK;
out:
    if (r != NULL) {
        req_free(r); /* frees the body too, unless borrowed */
    } else if (rv != O2D_OK && !q->body_borrowed) {
        o2d_free(q->body);
    }
    return rv;
}

size_t http_client_pending(struct http_client *c)
{
    return atomic_load(&c->pending);
}

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
    struct http_req *r = ud;
    size_t len = size * n;
    size_t room = r->resp.max - r->resp.len;
    if (len > room) {
        /* Keep what fits and stop reading: an answer is never buffered past the cap. */
        o2d_buf_append(&r->resp, p, room);
        r->resp_truncated = 1;
        return 0;
    }
    if (o2d_buf_append(&r->resp, p, len) != O2D_OK) {
        r->resp_truncated = 1;
        return 0;
    }
    return len;
}

static size_t on_header(char *p, size_t size, size_t n, void *ud)
{
    struct http_req *r = ud;
    size_t len = size * n;
    if (len >= 5 && strncasecmp(p, "HTTP/", 5) == 0) {
        r->retry_after_ms = -1; /* a new answer (after a 100 Continue) */
    } else if (len > 12 && strncasecmp(p, "Retry-After:", 12) == 0) {
        r->retry_after_ms = http_retry_after_ms(p + 12, len - 12, time(NULL));
    }
    return len;
}

static int setup_easy(struct http_client *c, struct http_req *r)
{
    r->easy = curl_easy_init();
    if (r->easy == NULL) {
        return O2D_ERR_NOMEM;
    }
    CURL *e = r->easy;
    int bad = 0;
    bad |= curl_easy_setopt(e, CURLOPT_URL, r->url) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_HTTPHEADER, r->headers) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_USERAGENT, c->user_agent) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)r->timeout_ms) != CURLE_OK;
    long connect_ms = r->timeout_ms < HTTP_CONNECT_TIMEOUT_MAX_MS ? (long)r->timeout_ms
                                                                  : HTTP_CONNECT_TIMEOUT_MAX_MS;
    bad |= curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, connect_ms) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https") != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_WRITEDATA, r) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_HEADERDATA, r) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_ERRORBUFFER, r->errbuf) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_PRIVATE, r) != CURLE_OK;
    if (r->is_post) {
        static const char empty[1] = "";
        const void *body = r->body != NULL ? (const void *)r->body : (const void *)empty;
        bad |= curl_easy_setopt(e, CURLOPT_POST, 1L) != CURLE_OK;
        bad |=
            curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)r->body_len) != CURLE_OK;
        bad |= curl_easy_setopt(e, CURLOPT_POSTFIELDS, body) != CURLE_OK;
    } else {
        bad |= curl_easy_setopt(e, CURLOPT_HTTPGET, 1L) != CURLE_OK;
    }
    return bad ? O2D_ERR_INTERNAL : O2D_OK;
}

static void schedule_or_finish(struct http_client *c, struct http_req *r);

static void start_attempt(struct http_client *c, struct http_req *r)
{
    if (r->attempts == 0) {
        r->first_ms = o2d_now_ms();
    }
    o2d_buf_reset(&r->resp);
    r->resp_truncated = 0;
    r->retry_after_ms = -1;
    r->http_status = 0;
    r->errbuf[0] = '\0';
    int rv = r->easy == NULL ? setup_easy(c, r) : O2D_OK;
    if (rv == O2D_OK && curl_multi_add_handle(c->multi, r->easy) != CURLM_OK) {
        rv = O2D_ERR_NOMEM;
    }
    if (rv != O2D_OK) {
        r->status = rv;
        snprintf(r->errbuf, sizeof(r->errbuf), "%s", o2d_strerror(rv));
        schedule_or_finish(c, r);
        return;
    }
    r->next = c->active;
    c->active = r;
}

static void unlink_active(struct http_client *c, struct http_req *r)
{
    for (struct http_req **pp = &c->active; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == r) {
            *pp = r->next;
            r->next = NULL;
            return;
        }
    }
}

/* After an attempt: done, or back on the timer list, or given up. */
static void schedule_or_finish(struct http_client *c, struct http_req *r)
{
    r->attempts++;
    enum http_verdict v = r->verdict != NULL ? r->verdict(r->status, r->http_status)
                                             : http_verdict_of(r->status, r->http_status);
    if (v == HTTP_VERDICT_OK) {
        complete(c, r, HTTP_DONE_OK);
        return;
    }
    if (v == HTTP_VERDICT_DROP) {
        complete(c, r, HTTP_DONE_REJECTED);
        return;
    }
    int64_t delay;
    if (r->status == O2D_OK && (r->http_status == 429 || r->http_status == 503) &&
        r->retry_after_ms >= 0) {
        delay = r->retry_after_ms < c->cfg.retry_after_max_ms ? r->retry_after_ms
                                                              : c->cfg.retry_after_max_ms;
    } else {
        delay = http_backoff_ms(r->attempts - 1, c->cfg.backoff_base_ms, c->cfg.backoff_max_ms,
                                next_random(c));
    }
    int64_t now = o2d_now_ms();
    if (now + delay - r->first_ms > r->max_elapsed_ms) {
        complete(c, r, HTTP_DONE_EXHAUSTED);
        return;
    }
    if (r->retrying != NULL) {
        struct http_result res;
        result_of(r, HTTP_DONE_EXHAUSTED, &res);
        r->retrying(r->ctx, &res);
    }
    struct o2d_logline l;
    o2d_log_begin(&l, O2D_LOG_WARN, "retrying");
    o2d_log_cstr(&l, "request", r->name);
    o2d_log_int(&l, "attempt", r->attempts);
    if (r->status == O2D_OK) {
        o2d_log_int(&l, "http_status", r->http_status);
    } else {
        o2d_log_cstr(&l, "error", r->errbuf);
    }
    o2d_log_int(&l, "delay_ms", delay);
    o2d_log_end(&l);
    r->due_ms = now + delay;
    r->next = c->waiting;
    c->waiting = r;
}

static void finish_attempt(struct http_client *c, struct http_req *r, CURLcode cc)
{
    long code = 0;
    curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &code);
    curl_multi_remove_handle(c->multi, r->easy);
    unlink_active(c, r);
    if (cc == CURLE_OK || (cc == CURLE_WRITE_ERROR && r->resp_truncated && code > 0)) {
        r->status = O2D_OK;
        r->http_status = code;
        r->errbuf[0] = '\0';
    } else {
        r->status = http_status_of_curl((int)cc);
        r->http_status = code;
        if (r->errbuf[0] == '\0') {
            snprintf(r->errbuf, sizeof(r->errbuf), "%s", curl_easy_strerror(cc));
        }
    }
    schedule_or_finish(c, r);
}

static void *client_main(void *arg)
{
    struct http_client *c = arg;
    for (;;) {
        pthread_mutex_lock(&c->mu);
        int stop = c->stopping;
        struct http_req *in = c->inbox;
        c->inbox = NULL;
        pthread_mutex_unlock(&c->mu);
        if (stop) {
            /* what was just taken goes back so that free() completes it */
            pthread_mutex_lock(&c->mu);
            c->inbox = in;
            pthread_mutex_unlock(&c->mu);
            break;
        }
        struct http_req *rev = NULL; /* oldest first */
        while (in != NULL) {
            struct http_req *nx = in->next;
            in->next = rev;
            rev = in;
            in = nx;
        }
        while (rev != NULL) {
            struct http_req *nx = rev->next;
            start_attempt(c, rev);
            rev = nx;
        }
        int64_t now = o2d_now_ms();
        struct http_req **pp = &c->waiting;
        while (*pp != NULL) {
            struct http_req *r = *pp;
            if (r->due_ms <= now) {
                *pp = r->next;
                start_attempt(c, r);
            } else {
                pp = &r->next;
            }
        }
        int running = 0;
        curl_multi_perform(c->multi, &running);
        CURLMsg *m;
        int left;
        while ((m = curl_multi_info_read(c->multi, &left)) != NULL) {
            if (m->msg != CURLMSG_DONE) {
                continue;
            }
            struct http_req *r = NULL;
            CURL *easy = m->easy_handle;
            CURLcode cc = m->data.result;
            curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&r);
            finish_attempt(c, r, cc);
        }
        long t = -1;
        curl_multi_timeout(c->multi, &t);
        if (t < 0 || t > HTTP_IDLE_POLL_MS) {
            t = HTTP_IDLE_POLL_MS;
        }
        now = o2d_now_ms();
        for (struct http_req *r = c->waiting; r != NULL; r = r->next) {
            int64_t d = r->due_ms - now;
            if (d < t) {
                t = d < 0 ? 0 : (long)d;
            }
        }
        if (t > 0) {
            curl_multi_poll(c->multi, NULL, 0, (int)t, NULL);
        }
    }
    return NULL;
}

int http_client_new(struct http_client **out, const struct http_client_config *cfg)
{
    int rv = O2D_ERR_NOMEM;
    pthread_once(&curl_once, init_curl);
    if (curl_init_result != CURLE_OK) {
        return O2D_ERR_INTERNAL;
    }
    struct http_client *c = o2d_calloc(1, sizeof(*c));
    if (c == NULL) {
        return O2D_ERR_NOMEM;
    }
    pthread_mutex_init(&c->mu, NULL);
    if (cfg != NULL) {
        c->cfg = *cfg;
    }
    if (c->cfg.backoff_base_ms <= 0) {
        c->cfg.backoff_base_ms = HTTP_DEFAULT_BACKOFF_BASE_MS;
    }
    if (c->cfg.backoff_max_ms <= 0) {
        c->cfg.backoff_max_ms = HTTP_DEFAULT_BACKOFF_MAX_MS;
    }
    if (c->cfg.retry_after_max_ms <= 0) {
        c->cfg.retry_after_max_ms = HTTP_DEFAULT_RETRY_AFTER_MAX;
    }
    if (c->cfg.max_response_bytes == 0) {
        c->cfg.max_response_bytes = HTTP_DEFAULT_MAX_RESPONSE;
    }
    const char *ua = c->cfg.user_agent != NULL ? c->cfg.user_agent : "otel2dd/" O2D_VERSION;
    c->user_agent = o2d_strndup(ua, strlen(ua));
    c->cfg.user_agent = NULL;
    c->rng = (uint64_t)o2d_now_ms() * 6364136223846793005ULL ^ (uint64_t)getpid() ^
             (uint64_t)(uintptr_t)c;
    if (c->rng == 0) {
        c->rng = 1;
    }
    c->multi = curl_multi_init();
    if (c->user_agent == NULL || c->multi == NULL) {
        goto out;
    }
    if (pthread_create(&c->thread, NULL, client_main, c) != 0) {
        rv = O2D_ERR_SYSTEM;
        goto out;
    }
    c->started = 1;
    *out = c;
    c = NULL;
    rv = O2D_OK;
out:
    if (c != NULL) {
        http_client_free(c);
    }
    return rv;
}

void http_client_free(struct http_client *c)
{
    if (c == NULL) {
        return;
    }
    pthread_mutex_lock(&c->mu);
    c->stopping = 1;
    pthread_mutex_unlock(&c->mu);
    if (c->started) {
        curl_multi_wakeup(c->multi);
        pthread_join(c->thread, NULL);
    }
    while (c->active != NULL) {
        struct http_req *r = c->active;
        c->active = r->next;
        curl_multi_remove_handle(c->multi, r->easy);
        complete(c, r, HTTP_DONE_SHUTDOWN);
    }
    while (c->waiting != NULL) {
        struct http_req *r = c->waiting;
        c->waiting = r->next;
        complete(c, r, HTTP_DONE_SHUTDOWN);
    }
    pthread_mutex_lock(&c->mu);
    struct http_req *in = c->inbox;
    c->inbox = NULL;
    pthread_mutex_unlock(&c->mu);
    while (in != NULL) {
        struct http_req *r = in;
        in = r->next;
        complete(c, r, HTTP_DONE_SHUTDOWN);
    }
    if (c->multi != NULL) {
        curl_multi_cleanup(c->multi);
    }
    pthread_mutex_destroy(&c->mu);
    o2d_free(c->user_agent);
    o2d_free(c);
}

/* ---- logging intake answers ---- */

#define HTTP_REJECTION_LOG_INTERVAL_MS 60000
#define HTTP_LOG_BODY_MAX              512

void http_log_rejection(struct http_rejection_log *rl, const char *site, const char *request,
                        const char *unit, size_t count, const struct http_result *r)
{
    int64_t now = o2d_now_ms();
    if (rl->logged_ms != 0 && now - rl->logged_ms < HTTP_REJECTION_LOG_INTERVAL_MS) {
        rl->suppressed++;
        return;
    }
    struct o2d_logline l;
    if (r->http_status == 403) {
        o2d_log_begin(&l, O2D_LOG_ERROR,
                      "intake rejected the payload (403): the API key or the site is wrong");
        o2d_log_cstr(&l, "site", site);
    } else {
        o2d_log_begin(&l, O2D_LOG_ERROR, "intake rejected the payload");
    }
    o2d_log_cstr(&l, "request", request);
    o2d_log_int(&l, "http_status", r->http_status);
    if (r->status != O2D_OK) {
        o2d_log_cstr(&l, "error", r->error);
    }
    o2d_log_uint(&l, unit, count);
    o2d_log_str(&l, "response", (const char *)r->body,
                r->body_len < HTTP_LOG_BODY_MAX ? r->body_len : HTTP_LOG_BODY_MAX);
    if (rl->suppressed > 0) {
        o2d_log_uint(&l, "rejections_not_logged_since_last_line", rl->suppressed);
    }
    o2d_log_end(&l);
    rl->logged_ms = now;
    rl->suppressed = 0;
}

void http_log_gave_up(const char *request, const char *unit, size_t count,
                      const struct http_result *r)
{
    struct o2d_logline l;
    o2d_log_begin(&l, O2D_LOG_ERROR, "gave up sending: retries exhausted");
    o2d_log_cstr(&l, "request", request);
    o2d_log_int(&l, "attempts", r->attempts);
    if (r->status == O2D_OK) {
        o2d_log_int(&l, "http_status", r->http_status);
    } else {
        o2d_log_cstr(&l, "error", r->error);
    }
    o2d_log_uint(&l, unit, count);
    o2d_log_end(&l);
}
