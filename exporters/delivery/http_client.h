/*
 * http_client.h: the one HTTP layer of the Datadog exporters (traces, stats, and later LLM
 * Observability). One thread runs a libcurl multi handle: connections are reused, HTTP/1.1
 * or HTTP/2 as curl negotiates, TLS verified against the default CA bundle, HTTPS_PROXY and
 * NO_PROXY taken from the environment by curl itself. Each attempt has a timeout, and a
 * response body is read up to a cap, never more (OTLP: clients MUST cap response size).
 *
 * A request is submitted from any thread; it is retried here by one rule
 * (http_verdict_of: 2xx OK; 5xx, 408, 429 and network errors RETRY; other statuses DROP),
 * with capped exponential backoff and full jitter, honouring Retry-After on 429 and 503,
 * until max_elapsed_ms has passed. Its callback runs once, with the final outcome. What the
 * payload is and how its loss is counted is the caller's business.
 */
#ifndef O2D_HTTP_CLIENT_H
#define O2D_HTTP_CLIENT_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

struct http_client;

enum http_verdict {
    HTTP_VERDICT_OK = 0,    /* delivered */
    HTTP_VERDICT_RETRY = 1, /* try again after a delay */
    HTTP_VERDICT_DROP = 2,  /* the intake refused it for good: do not send it again */
};

/* The outcome handed to a request's callback. */
enum http_outcome {
    HTTP_DONE_OK = 0,        /* a 2xx answer */
    HTTP_DONE_REJECTED = 1,  /* a status that is not retried (4xx other than 408/429) */
    HTTP_DONE_EXHAUSTED = 2, /* still failing when max_elapsed_ms ran out */
    HTTP_DONE_SHUTDOWN = 3,  /* the client was freed before the request was done */
};

struct http_result {
    enum http_outcome outcome;
    int status;          /* o2d status of the last attempt's transport: O2D_OK when an HTTP
                            answer arrived, O2D_ERR_TIMEOUT / O2D_ERR_SYSTEM when not */
    long http_status;    /* the last answer's status, 0 if none */
    const char *error;   /* the last transport error ("" if none); borrowed for the call */
    const uint8_t *body; /* the last answer's body, at most max_response_bytes; borrowed */
    size_t body_len;
    int attempts; /* attempts made (retries = attempts - 1) */
};

typedef void (*http_done_fn)(void *ctx, const struct http_result *r);
/* An intake's own reading of an answer; status and http_status as for http_verdict_of. */
typedef enum http_verdict (*http_verdict_fn)(int status, long http_status);

struct http_request {
    const char *method; /* "GET" or "POST" */
    const char *url;    /* copied */
    /* "Name: value" lines, copied. Never logged (they may hold the API key). */
    const char *const *headers;
    size_t n_headers;
    uint8_t *body; /* POST body: ownership moves to the client (o2d_free), even on error */
    size_t body_len;
    /* 1: the body stays the caller's instead: the client reads it until it calls done (or
     * submit fails) and never frees it, so the caller can use its storage again. */
    int body_borrowed;
    int64_t timeout_ms;      /* per attempt */
    int64_t max_elapsed_ms;  /* no new attempt after this long since the first; 0 = one try */
    const char *name;        /* static label for log lines ("traces", "stats", ...) */
    http_verdict_fn verdict; /* NULL: http_verdict_of */
    /* Called once, on the client's thread (or in http_client_free for HTTP_DONE_SHUTDOWN);
     * must not block nor call back into the client except http_client_submit. */
    http_done_fn done;
    /* Optional: after each failed attempt that will be made again (a RETRY verdict with time
     * left), with that attempt's status, error and answer (outcome HTTP_DONE_EXHAUSTED, the
     * attempts so far); on the client's thread, under the same rules as done. */
    http_done_fn retrying;
    void *ctx;
};

struct http_client_config {
    int64_t backoff_base_ms;    /* first retry waits up to this; default 100 */
    int64_t backoff_max_ms;     /* cap of the exponential; default 10000 */
    int64_t retry_after_max_ms; /* a longer Retry-After is cut to this; default 300000 */
    size_t max_response_bytes;  /* bytes of an answer kept; the rest aborts the read; 64 KiB */
    const char *user_agent;     /* copied; default "otel2dd/<version>" */
};

/* Starts the client's thread. cfg may be NULL (defaults); zero fields take defaults. */
int http_client_new(struct http_client **out, const struct http_client_config *cfg);
/* Stops the thread; requests still pending get HTTP_DONE_SHUTDOWN, on the caller's thread.
 * NULL is a no-op. */
void http_client_free(struct http_client *c);

/* Queues a request; any thread. O2D_OK, O2D_ERR_NOMEM, or O2D_ERR_SHUTDOWN once freeing has
 * begun. On error the callback is not called and the body has been freed. */
int http_client_submit(struct http_client *c, const struct http_request *req);

/* Requests submitted and not yet completed (for tests and flush logging). */
size_t http_client_pending(struct http_client *c);

/* ---- the retry policy, pure so it is table-tested ---- */

/* status: o2d status of the transport (O2D_OK when an answer arrived); http_status: its
 * status code. */
enum http_verdict http_verdict_of(int status, long http_status);

/* Full jitter: a delay in [0, min(max_ms, base_ms * 2^retry)], from the random value rnd. */
int64_t http_backoff_ms(int retry, int64_t base_ms, int64_t max_ms, uint64_t rnd);

/* Retry-After: delay-seconds or an HTTP-date (RFC 9110 10.2.3), relative to `now`. Returns
 * milliseconds (0 for a date in the past), or -1 when the value is neither. v[0..len) need
 * not be NUL-terminated. */
int64_t http_retry_after_ms(const char *v, size_t len, time_t now);

/* A libcurl result -> o2d status: O2D_ERR_TIMEOUT, O2D_ERR_SYSTEM (network, retried),
 * O2D_ERR_NOMEM, O2D_ERR_CONFIG (bad URL, unsupported scheme: not retried). */
int http_status_of_curl(int curl_code);

/*
 * Logging what an intake answered, shared by the Datadog exporters. A rejection (a 4xx other
 * than 408/429) is logged at most once a minute per `rl`, with the count of those not logged
 * since; a wrong key would otherwise log on every flush. `request` names the payload
 * ("traces", "stats", "llmobs"), `unit` what `count` counts ("spans", "events"). Call from
 * the HTTP client's thread (the completion callbacks), which is what serialises `rl`.
 */
struct http_rejection_log {
    int64_t logged_ms;
    uint64_t suppressed;
};
void http_log_rejection(struct http_rejection_log *rl, const char *site, const char *request,
                        const char *unit, size_t count, const struct http_result *r);
void http_log_gave_up(const char *request, const char *unit, size_t count,
                      const struct http_result *r);

#endif
