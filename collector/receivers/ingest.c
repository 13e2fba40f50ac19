/*
 * ingest.c: the one ingest path shared by the gRPC and HTTP receivers: inflate within the
 * limit, decode into this thread's arena, validate, count, hand to the pipeline. Also the
 * answers both receivers send (Export*ServiceResponse, google.rpc.Status), so that their
 * encoding lives in one place, and the receivers' counters: what was accepted, what was
 * refused and why (a closed set of reasons, never the client's words), and how long
 * ingest_request took, which ingest_write_metrics() shows at scrape time. The receivers'
 * memory budget lives here too: reservations as body bytes arrive, each connection's share.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "auth.h"
#include "google/rpc/error_details.pb-c.h"
#include "google/rpc/status.pb-c.h"
#include "ingest.h"
#include "o2d.h"
#include "o2d_alloc.h"
#include "o2d_inflate.h"
#include "o2d_json_out.h"
#include "o2d_log.h"
#include "o2d_time.h"

/* Between requests a thread keeps at least KEEP_ARENA_MIN of its decode arena's blocks (a
 * request of a few hundred spans then allocates nothing), as much as its last request used up
 * to KEEP_ARENA_MAX, and an inflate buffer of at most KEEP_INFLATE_BYTES: the per-thread part
 * of README's memory ceiling. Following the last request lets a steady stream of larger bodies
 * (a thousand spans: 2-3 MiB decoded and translated) reuse its blocks instead of mapping and
 * faulting them in anew each time (2.5x the CPU per span), while one small request after a
 * burst gives the extra back. */
#define KEEP_ARENA_MIN     (1024u * 1024)
#define KEEP_ARENA_MAX     (4096u * 1024)
#define KEEP_INFLATE_BYTES (256u * 1024)
/* The first guess at a gzip body's inflated size when its trailer says less than this. */
#define INFLATE_FIRST (64u * 1024)
/* A body larger than this share of the budget may decode into most of it: such requests are
 * decoded one at a time, so that several at once do not each take part of the budget and
 * all fail; small ones never wait. */
#define LARGE_SHARE 32
/* A JSON body this small needs no more of the reader's own buffer than the per-thread part
 * of the ceiling. */
#define JSON_UNCHARGED (256u * 1024)

/* The three signals, and a fourth index for refusals whose path named no signal. */
#define SIG_UNKNOWN 3
#define SIG_SLOTS   4

/* Every request decoded gets the next id (otlp_request.id): its identity to delivery. */
static atomic_uint_fast64_t next_request_id = 1;

/* Upper bounds of the request latency histogram, in ns: 0.5 ms (a small request on an idle
 * machine) to 5 s (a large gzip body on a loaded one); slower ones land in +Inf. */
static const int64_t latency_bounds_ns[] = {
    500000,    1000000,   2500000,   5000000,    10000000,   25000000,   50000000,
    100000000, 250000000, 500000000, 1000000000, 2500000000, 5000000000,
};
#define LATENCY_BOUNDS (sizeof(latency_bounds_ns) / sizeof(latency_bounds_ns[0]))

/*
 * A thread's state. While it serves a request, everything the request grows beyond its body
 * (the inflated body, the decode arena's blocks, translation's scratch arenas) is taken from
 * the receivers' budget through `budget`, and given back when the request is done.
 */
struct ingest_tls {
    struct o2d_arena arena;
    struct o2d_buf inflated;
    struct ingest *ing;
    struct o2d_arena_budget budget; /* ctx is this struct */
    size_t own;                     /* bytes the current request holds: body and what it took */
    size_t inflate_charged;         /* taken for the inflated body */
    size_t json_charged;            /* taken for the JSON reader's own buffer */
    int refused;                    /* the budget's refusal during this request, else O2D_OK */
};

/* What one tenant holds of the budget, and its counters (ingest.h, "Tenants and fairness"). */
struct tenant_slot {
    atomic_size_t held;
    atomic_uint_fast64_t accepted_items;
    atomic_uint_fast64_t refused_requests;
};
#define TENANT_SLOTS (INGEST_TENANT_NAMED + INGEST_TENANT_HASHED)
_Static_assert(INGEST_TENANT_NAMED == AUTH_MAX_TENANTS, "one named slot per token tenant");
_Static_assert(TENANT_SLOTS == OTLP_TENANT_SLOTS, "a request's tenant is one of these slots");

struct ingest {
    ingest_submit_fn submit;
    ingest_full_fn full; /* NULL: never asked */
    void *submit_ctx;    /* borrowed */
    size_t memory_limit;
    atomic_size_t inflight;
    pthread_key_t tls_key;
    pthread_mutex_t large_mu; /* held while a large request decodes and is handed on */
    atomic_int metrics_warned;
    atomic_uint_fast64_t requests[O2D_TRANSPORT_COUNT][3];
    atomic_uint_fast64_t items[O2D_TRANSPORT_COUNT][3];
    atomic_uint_fast64_t rejected_items[O2D_TRANSPORT_COUNT][3];
    atomic_uint_fast64_t refused[O2D_TRANSPORT_COUNT][SIG_SLOTS][INGEST_REFUSED_N];
    atomic_uint_fast64_t refused_items[O2D_TRANSPORT_COUNT][3][INGEST_REFUSED_N];
    atomic_uint_fast64_t metric_points_dropped;
    int metrics_forwarded; /* set before the receivers start */
    /* ingest_request durations; each bucket alone, made cumulative when written. */
    atomic_uint_fast64_t latency[O2D_TRANSPORT_COUNT][LATENCY_BOUNDS + 1];
    atomic_uint_fast64_t latency_sum_ns[O2D_TRANSPORT_COUNT];
    atomic_uint_fast64_t conn_closed[O2D_TRANSPORT_COUNT][INGEST_CONN_CLOSE_N];
    struct auth *auth; /* borrowed; NULL without authentication */
    int auth_required[O2D_TRANSPORT_COUNT];
    atomic_uint_fast64_t auth_failures[O2D_TRANSPORT_COUNT][AUTH_FAIL_N];
    size_t tenant_cap; /* what one tenant may hold; memory_limit when there is no rule */
    unsigned tenant_pct;
    struct tenant_slot tenants[TENANT_SLOTS];
};

static const char *const refusal_names[INGEST_REFUSED_N] = {
    [INGEST_REFUSED_INVALID] = "invalid",
    [INGEST_REFUSED_TOO_LARGE] = "too_large",
    [INGEST_REFUSED_UNSUPPORTED] = "unsupported",
    [INGEST_REFUSED_NOT_FOUND] = "not_found",
    [INGEST_REFUSED_METHOD] = "method_not_allowed",
    [INGEST_REFUSED_TIMEOUT] = "timeout",
    [INGEST_REFUSED_MEMORY] = "memory_limit",
    [INGEST_REFUSED_QUEUE_FULL] = "queue_full",
    [INGEST_REFUSED_SHUTDOWN] = "shutdown",
    [INGEST_REFUSED_NOMEM] = "out_of_memory",
    [INGEST_REFUSED_INTERNAL] = "internal",
    [INGEST_REFUSED_UNAUTHENTICATED] = "unauthenticated",
    [INGEST_REFUSED_TENANT_SHARE] = "tenant_share",
    [INGEST_REFUSED_TENANT_QUEUE] = "tenant_queue_share",
};

const char *ingest_refusal_name(enum ingest_refusal r)
{
    if ((int)r < 0 || r >= INGEST_REFUSED_N) {
        return refusal_names[INGEST_REFUSED_INTERNAL];
    }
    return refusal_names[r];
}

enum ingest_refusal ingest_refusal_of(int status)
{
    switch (status) {
    case O2D_ERR_INVALID:
        return INGEST_REFUSED_INVALID;
    case O2D_ERR_TOO_LARGE:
        return INGEST_REFUSED_TOO_LARGE;
    case O2D_ERR_UNSUPPORTED:
        return INGEST_REFUSED_UNSUPPORTED;
    case O2D_ERR_NOT_FOUND:
        return INGEST_REFUSED_NOT_FOUND;
    case O2D_ERR_TIMEOUT:
        return INGEST_REFUSED_TIMEOUT;
    case O2D_ERR_BUSY:
        return INGEST_REFUSED_MEMORY;
    case O2D_ERR_SHUTDOWN:
        return INGEST_REFUSED_SHUTDOWN;
    case O2D_ERR_NOMEM:
        return INGEST_REFUSED_NOMEM;
    case O2D_ERR_UNAUTHENTICATED:
        return INGEST_REFUSED_UNAUTHENTICATED;
    default:
        return INGEST_REFUSED_INTERNAL;
    }
}

void ingest_count_refusal(struct ingest *ing, enum o2d_transport tr, int sig,
                          enum ingest_refusal reason)
{
    if ((int)tr < 0 || tr >= O2D_TRANSPORT_COUNT) {
        return;
    }
    if (sig < 0 || sig >= SIG_UNKNOWN) {
        sig = SIG_UNKNOWN;
    }
    if ((int)reason < 0 || reason >= INGEST_REFUSED_N) {
        reason = INGEST_REFUSED_INTERNAL;
    }
    atomic_fetch_add_explicit(&ing->refused[tr][sig][reason], 1, memory_order_relaxed);
}

static void observe_latency(struct ingest *ing, enum o2d_transport tr, int64_t ns)
{
    if (ns < 0) {
        ns = 0;
    }
    size_t i = 0;
    while (i < LATENCY_BOUNDS && ns > latency_bounds_ns[i]) {
        i++;
    }
    atomic_fetch_add_explicit(&ing->latency[tr][i], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&ing->latency_sum_ns[tr], (uint64_t)ns, memory_order_relaxed);
}

const char *o2d_transport_name(enum o2d_transport tr)
{
    return tr == O2D_TRANSPORT_GRPC ? "grpc" : "http";
}

static void tls_free(void *p)
{
    struct ingest_tls *t = p;
    o2d_arena_cleanup(&t->arena);
    o2d_buf_cleanup(&t->inflated);
    o2d_free(t);
}

int ingest_new(struct ingest **out, ingest_submit_fn submit, void *submit_ctx, size_t memory_limit)
{
    struct ingest *ing = o2d_calloc(1, sizeof(*ing));
    if (ing == NULL) {
        return O2D_ERR_NOMEM;
    }
    if (pthread_key_create(&ing->tls_key, tls_free) != 0) {
        o2d_free(ing);
        return O2D_ERR_SYSTEM;
    }
    if (pthread_mutex_init(&ing->large_mu, NULL) != 0) {
        pthread_key_delete(ing->tls_key);
        o2d_free(ing);
        return O2D_ERR_SYSTEM;
    }
    ing->submit = submit;
    ing->submit_ctx = submit_ctx;
    ing->memory_limit = memory_limit;
    ing->tenant_cap = memory_limit;
    ing->tenant_pct = 100;
    *out = ing;
    return O2D_OK;
}

void ingest_free(struct ingest *ing)
{
    if (ing == NULL) {
        return;
    }
    /* Threads that used ingest have exited (their destructors ran); free the caller's. */
    struct ingest_tls *t = pthread_getspecific(ing->tls_key);
    if (t != NULL) {
        pthread_setspecific(ing->tls_key, NULL);
        tls_free(t);
    }
    pthread_key_delete(ing->tls_key);
    pthread_mutex_destroy(&ing->large_mu);
    o2d_free(ing);
}

/* Whether n more bytes fit in the budget when `cur` are held. */
static int budget_fits(const struct ingest *ing, size_t cur, size_t n)
{
    return n <= ing->memory_limit && cur <= ing->memory_limit - n;
}

int ingest_reserve(struct ingest *ing, size_t n)
{
    size_t cur = atomic_load_explicit(&ing->inflight, memory_order_relaxed);
    do {
        if (!budget_fits(ing, cur, n)) {
            return O2D_ERR_BUSY;
        }
    } while (!atomic_compare_exchange_weak(&ing->inflight, &cur, cur + n));
    return O2D_OK;
}

void ingest_release(struct ingest *ing, size_t n)
{
    atomic_fetch_sub(&ing->inflight, n);
}

static const char reason_budget[] = "memory limit reached: retry later";
static const char reason_share[] =
    "this connection holds its share of the memory limit: retry later";
static const char reason_tenant[] =
    "this tenant holds its share of the memory limit (receivers.otlp.fairness."
    "max_tenant_share_percent): retry later";
static const char reason_tenant_queue[] =
    "this tenant holds its share of an exporter's queue (receivers.otlp.fairness."
    "max_tenant_share_percent): retry later";
static const char reason_whole[] =
    "request body larger than the receivers' memory limit (memory_limit_mib)";
static const char reason_queue_full[] = "otel2dd is busy: its queues are full, retry later";

void ingest_set_full(struct ingest *ing, ingest_full_fn full)
{
    ing->full = full;
}

int ingest_queue_admit(struct ingest *ing, enum o2d_transport tr, int sig, const char **reason)
{
    if (ing->full == NULL || sig < 0 || sig >= SIG_UNKNOWN || !ing->full(ing->submit_ctx, sig)) {
        return O2D_OK;
    }
    ingest_count_refusal(ing, tr, sig, INGEST_REFUSED_QUEUE_FULL);
    *reason = reason_queue_full;
    return O2D_ERR_BUSY;
}

size_t ingest_share_cap(size_t memory_limit, size_t max_request)
{
    size_t cap = memory_limit / INGEST_SHARE_DIVISOR;
    if (cap < max_request) {
        cap = max_request;
    }
    return cap < memory_limit ? cap : memory_limit;
}

void ingest_share_init(const struct ingest *ing, struct ingest_share *sh, size_t max_request)
{
    sh->held = 0;
    sh->cap = ingest_share_cap(ing->memory_limit, max_request);
    sh->tenant = -1;
}

void ingest_share_set_tenant(struct ingest_share *sh, int tenant)
{
    if (sh->held == 0) {
        sh->tenant = tenant >= 0 && tenant < INGEST_TENANT_NAMED ? tenant : -1;
    }
}

/* Whether a tenant holding `held`, of which `mine` for the request asking, may take n more:
 * a request the tenant's others leave room for always may. */
static int tenant_fits(const struct ingest *ing, size_t held, size_t mine, size_t n)
{
    return held <= mine || (n <= ing->tenant_cap && held <= ing->tenant_cap - n);
}

/* Takes n bytes into slot `t` unless the rule refuses: O2D_OK or O2D_ERR_BUSY. */
static int tenant_take(struct ingest *ing, int t, size_t mine, size_t n)
{
    struct tenant_slot *sl = &ing->tenants[t];
    size_t cur = atomic_load_explicit(&sl->held, memory_order_relaxed);
    do {
        if (ing->tenant_pct < 100 && !tenant_fits(ing, cur, mine, n)) {
            atomic_fetch_add_explicit(&sl->refused_requests, 1, memory_order_relaxed);
            return O2D_ERR_BUSY;
        }
    } while (!atomic_compare_exchange_weak(&sl->held, &cur, cur + n));
    return O2D_OK;
}

static void tenant_give(struct ingest *ing, int t, size_t n)
{
    atomic_fetch_sub(&ing->tenants[t].held, n);
}

int ingest_tenant_admit(struct ingest *ing, int tenant, const char **reason)
{
    if (tenant < 0 || tenant >= TENANT_SLOTS || ing->tenant_pct >= 100) {
        return O2D_OK;
    }
    struct tenant_slot *sl = &ing->tenants[tenant];
    if (atomic_load_explicit(&sl->held, memory_order_relaxed) >= ing->tenant_cap) {
        atomic_fetch_add_explicit(&sl->refused_requests, 1, memory_order_relaxed);
        *reason = reason_tenant;
        return O2D_ERR_BUSY;
    }
    return O2D_OK;
}

/* What the share itself allows: n more bytes past the whole budget can never fit (retrying
 * cannot help), past the share's cap only not now. */
static int share_allows(const struct ingest *ing, const struct ingest_share *sh, size_t n,
                        const char **reason)
{
    if (n > ing->memory_limit - sh->held) {
        *reason = reason_whole;
        return O2D_ERR_TOO_LARGE;
    }
    if (n > sh->cap - sh->held) {
        *reason = reason_share;
        return O2D_ERR_BUSY;
    }
    if (sh->tenant >= 0 && ing->tenant_pct < 100 &&
        !tenant_fits(ing,
                     atomic_load_explicit(&ing->tenants[sh->tenant].held, memory_order_relaxed),
                     sh->held, n)) {
        *reason = reason_tenant;
        return O2D_ERR_BUSY;
    }
    return O2D_OK;
}

int ingest_share_admit(struct ingest *ing, const struct ingest_share *sh, size_t n,
                       const char **reason)
{
    int rv = share_allows(ing, sh, n, reason);
    if (rv != O2D_OK) {
        return rv;
    }
    if (!budget_fits(ing, atomic_load_explicit(&ing->inflight, memory_order_relaxed), n)) {
        *reason = reason_budget;
        return O2D_ERR_BUSY;
    }
    return O2D_OK;
}

int ingest_share_reserve(struct ingest *ing, struct ingest_share *sh, size_t n, const char **reason)
{
    int rv = share_allows(ing, sh, n, reason);
    if (rv != O2D_OK) {
        return rv;
    }
    if (sh->tenant >= 0 && tenant_take(ing, sh->tenant, sh->held, n) != O2D_OK) {
        *reason = reason_tenant;
        return O2D_ERR_BUSY;
    }
    if (ingest_reserve(ing, n) != O2D_OK) {
        if (sh->tenant >= 0) {
            tenant_give(ing, sh->tenant, n);
        }
        *reason = reason_budget;
        return O2D_ERR_BUSY;
    }
    sh->held += n;
    return O2D_OK;
}

void ingest_share_release(struct ingest *ing, struct ingest_share *sh, size_t n)
{
    sh->held -= n;
    if (sh->tenant >= 0) {
        tenant_give(ing, sh->tenant, n);
    }
    ingest_release(ing, n);
}

void ingest_set_auth(struct ingest *ing, struct auth *a)
{
    ing->auth = a;
}

void ingest_set_auth_required(struct ingest *ing, enum o2d_transport tr, int on)
{
    ing->auth_required[tr] = on && ing->auth != NULL;
}

int ingest_auth_required(const struct ingest *ing, enum o2d_transport tr)
{
    return ing->auth_required[tr];
}

void ingest_set_tenant_share(struct ingest *ing, unsigned pct)
{
    if (pct == 0 || pct > 100) {
        pct = 100;
    }
    ing->tenant_pct = pct;
    ing->tenant_cap = pct >= 100
                          ? ing->memory_limit
                          : ing->memory_limit / 100 * pct + ing->memory_limit % 100 * pct / 100;
}

int ingest_authenticate(struct ingest *ing, enum o2d_transport tr, const char *value, size_t len,
                        int *tenant, const char **reason)
{
    *tenant = -1;
    if (ing->auth == NULL) {
        return O2D_OK;
    }
    enum auth_failure why;
    int rv = auth_check(ing->auth, value, len, tenant, &why, reason);
    if (rv != O2D_OK) {
        atomic_fetch_add_explicit(&ing->auth_failures[tr][why], 1, memory_order_relaxed);
    }
    return rv;
}

/* FNV-1a of the service name, for its hashed slot. */
static int service_slot(struct ingest *ing, const char *name, size_t len)
{
    int named = auth_tenant_find(ing->auth, name, len);
    if (named >= 0) {
        return named;
    }
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < len; i++) {
        h = (h ^ (uint8_t)name[i]) * 16777619u;
    }
    return INGEST_TENANT_NAMED + (int)(h % INGEST_TENANT_HASHED);
}

/* The service.name of the request's first resource ("" when none). */
static void first_service(const struct otlp_request *req, const char **name, size_t *len)
{
    const OtlpResource *res = NULL;
    *name = "";
    *len = 0;
    switch (req->signal) {
    case OTLP_SIGNAL_TRACES:
        if (req->msg.traces != NULL && req->msg.traces->n_resource_spans > 0) {
            res = req->msg.traces->resource_spans[0]->resource;
        }
        break;
    case OTLP_SIGNAL_LOGS:
        if (req->msg.logs != NULL && req->msg.logs->n_resource_logs > 0) {
            res = req->msg.logs->resource_logs[0]->resource;
        }
        break;
    default:
        if (req->msg.metrics != NULL && req->msg.metrics->n_resource_metrics > 0) {
            res = req->msg.metrics->resource_metrics[0]->resource;
        }
        break;
    }
    if (res == NULL) {
        return;
    }
    for (size_t i = 0; i < res->n_attributes; i++) {
        const OtlpKeyValue *kv = res->attributes[i];
        if (kv->key != NULL && strcmp(kv->key, "service.name") == 0 && kv->value != NULL &&
            kv->value->value_case ==
                OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE &&
            kv->value->string_value != NULL) {
            *name = kv->value->string_value;
            *len = strlen(*name);
            return;
        }
    }
}

size_t ingest_grow_to(size_t reserved, size_t need, size_t limit)
{
    if (need <= reserved) {
        return reserved;
    }
    size_t want = reserved > SIZE_MAX / 2 ? SIZE_MAX : reserved * 2;
    if (want < need) {
        want = need;
    }
    return want < limit ? want : limit;
}

/* A request that alone needs more than the whole budget could never be served: too large.
 * Otherwise a spent budget only means "not now". */
static int budget_take(void *ctx, size_t n)
{
    struct ingest_tls *t = ctx;
    int rv = O2D_OK;
    if (!budget_fits(t->ing, t->own, n)) {
        rv = O2D_ERR_TOO_LARGE;
    } else if (ingest_reserve(t->ing, n) != O2D_OK) {
        rv = O2D_ERR_BUSY;
    }
    if (rv != O2D_OK) {
        if (t->refused == O2D_OK) {
            t->refused = rv;
        }
        return rv;
    }
    t->own += n;
    return O2D_OK;
}

static void budget_give(void *ctx, size_t n)
{
    struct ingest_tls *t = ctx;
    ingest_release(t->ing, n);
    t->own -= n;
}

static struct ingest_tls *thread_state(struct ingest *ing)
{
    struct ingest_tls *t = pthread_getspecific(ing->tls_key);
    if (t != NULL) {
        return t;
    }
    t = o2d_calloc(1, sizeof(*t));
    if (t == NULL) {
        return NULL;
    }
    o2d_arena_init(&t->arena, ing->memory_limit);
    t->arena.keep = KEEP_ARENA_MIN;
    t->arena.keep_max = KEEP_ARENA_MAX;
    o2d_buf_init(&t->inflated, 0);
    t->ing = ing;
    t->budget.take = budget_take;
    t->budget.give = budget_give;
    t->budget.ctx = t;
    if (pthread_setspecific(ing->tls_key, t) != 0) {
        o2d_free(t);
        return NULL;
    }
    return t;
}

void ingest_set_metrics_forwarded(struct ingest *ing, int on)
{
    ing->metrics_forwarded = on;
}

static void warn_metrics_once(struct ingest *ing)
{
    int expected = 0;
    if (atomic_compare_exchange_strong(&ing->metrics_warned, &expected, 1)) {
        struct o2d_logline l;
        o2d_log_begin(&l, O2D_LOG_WARN,
                      "metrics are accepted but not forwarded: no exporter sends them "
                      "(exporters.datadog.metrics.enabled false, or agent mode without an "
                      "API key); set OTEL_METRICS_EXPORTER=none in the application to stop "
                      "sending them");
        o2d_log_end(&l);
    }
}

static void set_error(struct ingest_result *res, int status, const char *reason)
{
    res->status = status;
    res->reason = reason ? reason : o2d_strerror(status);
}

/*
 * A refusal of the budget says more than the decoder's or translator's status it caused:
 * "retry later" when the budget is spent for now, "too large" when this request alone needs
 * more than all of it.
 */
static void set_budget_error(struct ingest_result *res, int refused, int rv, const char *reason)
{
    if (refused == O2D_ERR_BUSY) {
        set_error(res, O2D_ERR_BUSY, "receiver memory limit reached, retry later");
    } else if (refused == O2D_ERR_TOO_LARGE) {
        set_error(res, O2D_ERR_TOO_LARGE,
                  "request needs more memory than receivers.otlp.memory_limit_mib once decoded");
    } else {
        set_error(res, rv, reason);
    }
}

/* RFC 1952's ISIZE: the inflated size (mod 2^32) of the last member. The sender may lie, so
 * it only sizes the first try. */
static size_t gzip_size_hint(const uint8_t *body, size_t len)
{
    if (len < 18) {
        return 0;
    }
    const uint8_t *p = body + len - 4;
    return (size_t)p[0] | (size_t)p[1] << 8 | (size_t)p[2] << 16 | (size_t)p[3] << 24;
}

/*
 * Inflates into t->inflated, charged to the budget: first as much as the gzip trailer
 * announces, and when the body turns out larger (several members, or a trailer that lied),
 * the size limit, inflating again from the start. One allocation of the right size in the
 * usual case, and never more output than what was charged.
 */
static int inflate_body(struct ingest_tls *t, const uint8_t *body, size_t len, size_t max_decoded,
                        const char **reason)
{
    size_t want = gzip_size_hint(body, len);
    if (want < INFLATE_FIRST) {
        want = INFLATE_FIRST;
    }
    if (t->inflated.cap > max_decoded) {
        o2d_buf_cleanup(&t->inflated);
    }
    if (want < t->inflated.cap) {
        want = t->inflated.cap; /* the kept buffer is used whole: o2d_gunzip fills its cap */
    }
    if (want > max_decoded) {
        want = max_decoded;
    }
    for (;;) {
        int rv = budget_take(t, want - t->inflate_charged);
        if (rv != O2D_OK) {
            *reason = NULL;
            return rv == O2D_ERR_BUSY ? rv : O2D_ERR_TOO_LARGE;
        }
        t->inflate_charged = want;
        o2d_buf_reset(&t->inflated);
        t->inflated.max = want;
        if (o2d_buf_reserve(&t->inflated, want) != O2D_OK) {
            *reason = "out of memory while decompressing";
            return O2D_ERR_NOMEM;
        }
        rv = o2d_gunzip(body, len, &t->inflated, reason);
        if (rv != O2D_ERR_TOO_LARGE || want == max_decoded) {
            return rv;
        }
        want = max_decoded;
    }
}

int ingest_request(struct ingest *ing, enum o2d_transport tr, enum otlp_signal sig,
                   enum otlp_encoding enc, enum o2d_compression comp, const uint8_t *body,
                   size_t len, size_t max_decoded, struct ingest_result *res)
{
    return ingest_request_as(ing, -1, tr, sig, enc, comp, body, len, max_decoded, res);
}

int ingest_request_as(struct ingest *ing, int tenant, enum o2d_transport tr, enum otlp_signal sig,
                      enum otlp_encoding enc, enum o2d_compression comp, const uint8_t *body,
                      size_t len, size_t max_decoded, struct ingest_result *res)
{
    int64_t started_ns = o2d_now_ns();
    size_t body_len = len;
    int slot = -1;           /* the tenant slot charged, once known */
    size_t slot_charged = 0; /* what this request charged to it */
    if (tenant >= INGEST_TENANT_NAMED) {
        tenant = -1;
    }
    memset(res, 0, sizeof(*res));
    res->signal = sig;
    const char *reason = NULL;
    /* Why, when refused; the pipeline's BUSY is a full queue, not the memory budget. */
    enum ingest_refusal why = INGEST_REFUSED_INTERNAL;
    size_t decoded_items = 0; /* items of a request refused after decoding */
    const struct o2d_arena_budget *prev_budget = NULL;
    int large = 0;
    struct ingest_tls *t = thread_state(ing);
    if (t == NULL) {
        set_error(res, O2D_ERR_NOMEM, "out of memory");
        goto out;
    }

    /* The body is the receiver's (it reserved it); what the request takes adds to it. */
    t->own = len;
    t->refused = O2D_OK;
    prev_budget = o2d_arena_thread_budget(&t->budget);

    if (comp == O2D_COMP_GZIP) {
        int rv = inflate_body(t, body, len, max_decoded, &reason);
        if (rv != O2D_OK) {
            set_budget_error(res, t->refused, rv, reason);
            goto out;
        }
        body = t->inflated.data;
        len = t->inflated.len;
    } else if (len > max_decoded) {
        set_error(res, O2D_ERR_TOO_LARGE, "request body exceeds the size limit");
        goto out;
    }

    if (len > ing->memory_limit / LARGE_SHARE) {
        pthread_mutex_lock(&ing->large_mu);
        large = 1;
    }
    if (enc == OTLP_ENC_JSON && len > JSON_UNCHARGED) {
        /* The JSON reader decodes strings into the arena (charged there), but copies a real
         * number that ends the text into a buffer of its own, outside the arena, for strtod's
         * terminator (o2d_json_in_pull_number): at most the body's size, charged as such. */
        int jrv = budget_take(t, len);
        if (jrv != O2D_OK) {
            set_budget_error(res, t->refused, jrv, NULL);
            goto out;
        }
        t->json_charged = len;
    }
    struct otlp_request req;
    int rv = otlp_decode(&t->arena, sig, enc, body, len, &req, &reason);
    if (rv != O2D_OK) {
        set_budget_error(res, t->refused, rv, reason);
        goto out;
    }
    req.id = atomic_fetch_add_explicit(&next_request_id, 1, memory_order_relaxed);
    /* Fairness: the tenant now holds what the request holds beyond the bytes its share
     * already charged to it (a token's tenant: the body; a service's: nothing yet). */
    if (tenant >= 0) {
        slot = tenant;
        slot_charged = t->own - body_len;
    } else {
        const char *sn;
        size_t sl;
        first_service(&req, &sn, &sl);
        slot = service_slot(ing, sn, sl);
        slot_charged = t->own;
    }
    req.tenant = slot; /* the exporters' queue shares (exporter.h: admit) */
    if (tenant_take(ing, slot, tenant >= 0 ? body_len : 0, slot_charged) != O2D_OK) {
        slot_charged = 0;
        set_error(res, O2D_ERR_BUSY, reason_tenant);
        why = INGEST_REFUSED_TENANT_SHARE;
        decoded_items = req.accepted + req.rejected;
        goto out;
    }
    rv = ing->submit(ing->submit_ctx, tr, &req);
    if (rv != O2D_OK && t->refused != O2D_OK) {
        /* translation's scratch arenas found the budget spent */
        set_budget_error(res, t->refused, rv, NULL);
        decoded_items = req.accepted + req.rejected;
        goto out;
    }
    if (rv == O2D_ERR_TENANT_BUSY) {
        /* An exporter's queue holds this tenant's share: answered as busy (retry later). */
        set_error(res, O2D_ERR_BUSY, reason_tenant_queue);
        why = INGEST_REFUSED_TENANT_QUEUE;
        decoded_items = req.accepted + req.rejected;
        goto out;
    }
    if (rv != O2D_OK) {
        set_error(res, rv, rv == O2D_ERR_SHUTDOWN ? "otel2dd is shutting down" : reason_queue_full);
        why = rv == O2D_ERR_BUSY ? INGEST_REFUSED_QUEUE_FULL : ingest_refusal_of(rv);
        decoded_items = req.accepted + req.rejected;
        goto out;
    }
    if (sig == OTLP_SIGNAL_METRICS && !ing->metrics_forwarded) {
        /* Counted once taken: a refused request comes back, and would count twice. */
        warn_metrics_once(ing);
        atomic_fetch_add_explicit(&ing->metric_points_dropped, req.accepted, memory_order_relaxed);
    }
    res->status = O2D_OK;
    res->accepted = req.accepted;
    res->rejected = req.rejected;
    res->reject_reason = req.reject_reason;
    atomic_fetch_add_explicit(&ing->tenants[slot].accepted_items, req.accepted,
                              memory_order_relaxed);
    atomic_fetch_add_explicit(&ing->requests[tr][sig], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&ing->items[tr][sig], req.accepted, memory_order_relaxed);
    if (req.rejected) {
        atomic_fetch_add_explicit(&ing->rejected_items[tr][sig], req.rejected,
                                  memory_order_relaxed);
    }

out:
    if (slot >= 0 && slot_charged > 0) {
        tenant_give(ing, slot, slot_charged);
    }
    if (res->status != O2D_OK) {
        if (why == INGEST_REFUSED_INTERNAL) {
            why = ingest_refusal_of(res->status);
        }
        if (slot >= 0 && why != INGEST_REFUSED_TENANT_SHARE) {
            /* tenant_take counted its own refusal */
            atomic_fetch_add_explicit(&ing->tenants[slot].refused_requests, 1,
                                      memory_order_relaxed);
        }
        ingest_count_refusal(ing, tr, (int)sig, why);
        if (decoded_items > 0) {
            atomic_fetch_add_explicit(&ing->refused_items[tr][sig][why], decoded_items,
                                      memory_order_relaxed);
        }
    }
    if (t != NULL) {
        o2d_arena_reset(&t->arena);
        if (t->inflated.cap > KEEP_INFLATE_BYTES) {
            o2d_buf_cleanup(&t->inflated);
        }
        if (t->inflate_charged > 0) {
            budget_give(t, t->inflate_charged);
            t->inflate_charged = 0;
        }
        if (t->json_charged > 0) {
            budget_give(t, t->json_charged);
            t->json_charged = 0;
        }
        o2d_arena_thread_budget(prev_budget);
        t->own = 0;
    }
    if (large) {
        pthread_mutex_unlock(&ing->large_mu);
    }

    observe_latency(ing, tr, o2d_now_ns() - started_ns);
    return res->status;
}

void ingest_get_totals(struct ingest *ing, struct ingest_totals *tot)
{
    memset(tot, 0, sizeof(*tot));
    for (int tr = 0; tr < O2D_TRANSPORT_COUNT; tr++) {
        for (int s = 0; s < 3; s++) {
            tot->requests[tr][s] = atomic_load(&ing->requests[tr][s]);
            tot->items[tr][s] = atomic_load(&ing->items[tr][s]);
            tot->rejected_items += atomic_load(&ing->rejected_items[tr][s]);
        }
        for (int s = 0; s < SIG_SLOTS; s++) {
            for (int r = 0; r < INGEST_REFUSED_N; r++) {
                tot->refused[tr] += atomic_load(&ing->refused[tr][s][r]);
            }
        }
    }
    tot->metric_points_dropped = atomic_load(&ing->metric_points_dropped);
}

static const char *signal_label(int sig)
{
    return sig == SIG_UNKNOWN ? "unknown" : otlp_signal_name((enum otlp_signal)sig);
}

/* One sample per transport and signal of a [transport][signal] counter. */
static void write_per_signal(struct prom_writer *w, const char *name, atomic_uint_fast64_t (*c)[3])
{
    for (int tr = 0; tr < O2D_TRANSPORT_COUNT; tr++) {
        for (int s = 0; s < 3; s++) {
            struct prom_label l[] = {{"transport", o2d_transport_name(tr)},
                                     {"signal", signal_label(s)}};
            prom_sample_u64(w, name, l, 2, atomic_load(&c[tr][s]));
        }
    }
}

static const char *const conn_close_names[INGEST_CONN_CLOSE_N] = {
    [INGEST_CONN_HEADER_TIMEOUT] = "read_header_timeout",
    [INGEST_CONN_EVICTED] = "evicted",
    [INGEST_CONN_REFUSED_FULL] = "refused_max_connections",
    [INGEST_CONN_REFUSED_NO_FD] = "refused_fd_limit",
};

void ingest_count_conn_close(struct ingest *ing, enum o2d_transport tr, enum ingest_conn_close why)
{
    if ((int)tr >= 0 && tr < O2D_TRANSPORT_COUNT && (int)why >= 0 && why < INGEST_CONN_CLOSE_N) {
        atomic_fetch_add_explicit(&ing->conn_closed[tr][why], 1, memory_order_relaxed);
    }
}

/* Every series at once, zeros included: an operator alerts on their rate. */
static void write_conn_closed(struct ingest *ing, struct prom_writer *w)
{
    prom_family(w, "otel2dd_receiver_closed_connections_total", PROM_COUNTER,
                "Connections a receiver closed on its own, per transport and reason: "
                "read_header_timeout (preface, header block or request head too slow), evicted "
                "(idle, closed to make room at max_connections), refused_max_connections (a "
                "newcomer closed at once: max_connections reached and nothing idle), "
                "refused_fd_limit (a newcomer closed at once: out of file descriptors).");
    for (int tr = 0; tr < O2D_TRANSPORT_COUNT; tr++) {
        for (int r = 0; r < INGEST_CONN_CLOSE_N; r++) {
            struct prom_label l[] = {{"transport", o2d_transport_name(tr)},
                                     {"reason", conn_close_names[r]}};
            prom_sample_u64(w, "otel2dd_receiver_closed_connections_total", l, 2,
                            atomic_load(&ing->conn_closed[tr][r]));
        }
    }
}

/* Authentication failures (every series at once, zeros included, when a receiver checks
 * tokens) and the per-tenant counters: one series per registered tenant, plus `other`
 * for the service names that share the hashed slots. */
static void write_auth_and_tenants(struct ingest *ing, struct prom_writer *w)
{
    if (ing->auth != NULL) {
        prom_family(w, "otel2dd_receiver_auth_failures_total", PROM_COUNTER,
                    "Requests refused for their bearer token, per protocol and reason: missing "
                    "(no authorization header), bad_scheme (not 'Bearer <token>'), wrong_token.");
        for (int tr = 0; tr < O2D_TRANSPORT_COUNT; tr++) {
            if (!ing->auth_required[tr]) {
                continue;
            }
            for (int r = 0; r < AUTH_FAIL_N; r++) {
                struct prom_label l[] = {{"protocol", o2d_transport_name(tr)},
                                         {"reason", auth_failure_name((enum auth_failure)r)}};
                prom_sample_u64(w, "otel2dd_receiver_auth_failures_total", l, 2,
                                atomic_load(&ing->auth_failures[tr][r]));
            }
        }
    }
    uint64_t other_items = 0, other_refused = 0;
    for (int i = INGEST_TENANT_NAMED; i < TENANT_SLOTS; i++) {
        other_items += atomic_load(&ing->tenants[i].accepted_items);
        other_refused += atomic_load(&ing->tenants[i].refused_requests);
    }
    int named = auth_tenant_count(ing->auth);
    char name[AUTH_TENANT_MAX + 1];
    prom_family(w, "otel2dd_receiver_tenant_accepted_items_total", PROM_COUNTER,
                "Items accepted per tenant: the tenant its bearer token names, or `other` "
                "(requests attributed by service.name).");
    for (int i = 0; i < named; i++) {
        struct prom_label l[] = {{"tenant", auth_tenant_name(ing->auth, i, name)}};
        prom_sample_u64(w, "otel2dd_receiver_tenant_accepted_items_total", l, 1,
                        atomic_load(&ing->tenants[i].accepted_items));
    }
    struct prom_label lo[] = {{"tenant", "other"}};
    prom_sample_u64(w, "otel2dd_receiver_tenant_accepted_items_total", lo, 1, other_items);
    prom_family(w, "otel2dd_receiver_tenant_refused_requests_total", PROM_COUNTER,
                "Requests refused per tenant once it was known, for any reason (the tenant's "
                "share of the memory limit included: otel2dd_receiver_refused_requests_total "
                "reason tenant_share).");
    for (int i = 0; i < named; i++) {
        struct prom_label l[] = {{"tenant", auth_tenant_name(ing->auth, i, name)}};
        prom_sample_u64(w, "otel2dd_receiver_tenant_refused_requests_total", l, 1,
                        atomic_load(&ing->tenants[i].refused_requests));
    }
    prom_sample_u64(w, "otel2dd_receiver_tenant_refused_requests_total", lo, 1, other_refused);
}

void ingest_write_metrics(struct ingest *ing, struct prom_writer *w)
{
    prom_family(w, "otel2dd_receiver_accepted_requests_total", PROM_COUNTER,
                "OTLP export requests answered with success, per transport and signal.");
    write_per_signal(w, "otel2dd_receiver_accepted_requests_total", ing->requests);
    prom_family(w, "otel2dd_receiver_accepted_items_total", PROM_COUNTER,
                "Spans, log records or metric points in accepted requests and handed to the "
                "exporters, per transport and signal.");
    write_per_signal(w, "otel2dd_receiver_accepted_items_total", ing->items);
    prom_family(w, "otel2dd_receiver_rejected_items_total", PROM_COUNTER,
                "Items refused by validation inside accepted requests (OTLP partial "
                "success), per transport and signal.");
    write_per_signal(w, "otel2dd_receiver_rejected_items_total", ing->rejected_items);

    /* Refusals: only the combinations that happened, out of 2 x 4 x 11. */
    prom_family(w, "otel2dd_receiver_refused_requests_total", PROM_COUNTER,
                "Requests answered with an error, per transport, signal (unknown when the "
                "path or method named none) and reason.");
    for (int tr = 0; tr < O2D_TRANSPORT_COUNT; tr++) {
        for (int s = 0; s < SIG_SLOTS; s++) {
            for (int r = 0; r < INGEST_REFUSED_N; r++) {
                uint64_t v = atomic_load(&ing->refused[tr][s][r]);
                if (v == 0) {
                    continue;
                }
                struct prom_label l[] = {{"transport", o2d_transport_name(tr)},
                                         {"signal", signal_label(s)},
                                         {"reason", refusal_names[r]}};
                prom_sample_u64(w, "otel2dd_receiver_refused_requests_total", l, 3, v);
            }
        }
    }
    prom_family(w, "otel2dd_receiver_refused_items_total", PROM_COUNTER,
                "Items in requests refused after their body was decoded (queue full, "
                "shutting down), per transport, signal and reason.");
    for (int tr = 0; tr < O2D_TRANSPORT_COUNT; tr++) {
        for (int s = 0; s < 3; s++) {
            for (int r = 0; r < INGEST_REFUSED_N; r++) {
                uint64_t v = atomic_load(&ing->refused_items[tr][s][r]);
                if (v == 0) {
                    continue;
                }
                struct prom_label l[] = {{"transport", o2d_transport_name(tr)},
                                         {"signal", signal_label(s)},
                                         {"reason", refusal_names[r]}};
                prom_sample_u64(w, "otel2dd_receiver_refused_items_total", l, 3, v);
            }
        }
    }
    prom_family(w, "otel2dd_receiver_unforwarded_metric_points_total", PROM_COUNTER,
                "Metric data points accepted but not forwarded: no exporter sends metrics.");
    prom_sample_u64(w, "otel2dd_receiver_unforwarded_metric_points_total", NULL, 0,
                    atomic_load(&ing->metric_points_dropped));
    prom_family(w, "otel2dd_receiver_buffered_bytes", PROM_GAUGE,
                "Memory the requests in progress hold now (bodies, inflated bodies, decoded "
                "structures), out of memory_limit_mib.");
    prom_sample_u64(w, "otel2dd_receiver_buffered_bytes", NULL, 0, atomic_load(&ing->inflight));
    prom_family(w, "otel2dd_receiver_buffered_capacity_bytes", PROM_GAUGE,
                "The receivers' memory budget for requests in progress (memory_limit_mib).");
    prom_sample_u64(w, "otel2dd_receiver_buffered_capacity_bytes", NULL, 0, ing->memory_limit);

    prom_family(w, "otel2dd_receiver_request_duration_seconds", PROM_HISTOGRAM,
                "Time from a whole request body being available to its answer being ready "
                "(inflate, decode, translate, queue), per transport.");
    double bounds[LATENCY_BOUNDS];
    for (size_t i = 0; i < LATENCY_BOUNDS; i++) {
        bounds[i] = (double)latency_bounds_ns[i] / 1e9;
    }
    for (int tr = 0; tr < O2D_TRANSPORT_COUNT; tr++) {
        uint64_t counts[LATENCY_BOUNDS + 1];
        for (size_t i = 0; i <= LATENCY_BOUNDS; i++) {
            counts[i] = atomic_load(&ing->latency[tr][i]);
        }
        struct prom_label l[] = {{"transport", o2d_transport_name(tr)}};
        prom_histogram(w, "otel2dd_receiver_request_duration_seconds", l, 1, bounds, counts,
                       LATENCY_BOUNDS, (double)atomic_load(&ing->latency_sum_ns[tr]) / 1e9);
    }
    write_conn_closed(ing, w);
    write_auth_and_tenants(ing, w);
}

/* ---- answers ---- */

static int pack_into(const ProtobufCMessage *m, struct o2d_buf *out)
{
    size_t n = protobuf_c_message_get_packed_size(m);
    int rv = o2d_buf_reserve(out, n);
    if (rv != O2D_OK) {
        return rv;
    }
    out->len += protobuf_c_message_pack(m, out->data + out->len);
    return O2D_OK;
}

/* "3 spans rejected: span trace_id must be ..." */
static void partial_message(const struct ingest_result *res, char *buf, size_t n)
{
    snprintf(buf, n, "%zu %s rejected: %s", res->rejected, otlp_item_name(res->signal),
             res->reject_reason ? res->reject_reason : "invalid");
}

int ingest_encode_response(const struct ingest_result *res, enum otlp_encoding enc,
                           struct o2d_buf *out)
{
    char msg[256];
    int partial = res->rejected > 0;
    if (partial) {
        partial_message(res, msg, sizeof(msg));
    }
    if (enc == OTLP_ENC_JSON) {
        if (!partial) {
            return o2d_buf_append_str(out, "{}");
        }
        static const char *const count_name[] = {"rejectedSpans", "rejectedLogRecords",
                                                 "rejectedDataPoints"};
        int rv = o2d_buf_printf(out, "{\"partialSuccess\":{\"%s\":\"%zu\",\"errorMessage\":",
                                count_name[res->signal], res->rejected);
        if (rv == O2D_OK) {
            rv = o2d_json_append_string(out, msg, strlen(msg));
        }
        return rv == O2D_OK ? o2d_buf_append_str(out, "}}") : rv;
    }

    switch (res->signal) {
    case OTLP_SIGNAL_TRACES: {
        Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceResponse r =
            OPENTELEMETRY__PROTO__COLLECTOR__TRACE__V1__EXPORT_TRACE_SERVICE_RESPONSE__INIT;
        Opentelemetry__Proto__Collector__Trace__V1__ExportTracePartialSuccess ps =
            OPENTELEMETRY__PROTO__COLLECTOR__TRACE__V1__EXPORT_TRACE_PARTIAL_SUCCESS__INIT;
        if (partial) {
            ps.rejected_spans = (int64_t)res->rejected;
            ps.error_message = msg;
            r.partial_success = &ps;
        }
        return pack_into(&r.base, out);
    }
    case OTLP_SIGNAL_LOGS: {
        Opentelemetry__Proto__Collector__Logs__V1__ExportLogsServiceResponse r =
            OPENTELEMETRY__PROTO__COLLECTOR__LOGS__V1__EXPORT_LOGS_SERVICE_RESPONSE__INIT;
        Opentelemetry__Proto__Collector__Logs__V1__ExportLogsPartialSuccess ps =
            OPENTELEMETRY__PROTO__COLLECTOR__LOGS__V1__EXPORT_LOGS_PARTIAL_SUCCESS__INIT;
        if (partial) {
            ps.rejected_log_records = (int64_t)res->rejected;
            ps.error_message = msg;
            r.partial_success = &ps;
        }
        return pack_into(&r.base, out);
    }
    default: {
        Opentelemetry__Proto__Collector__Metrics__V1__ExportMetricsServiceResponse r =
            OPENTELEMETRY__PROTO__COLLECTOR__METRICS__V1__EXPORT_METRICS_SERVICE_RESPONSE__INIT;
        Opentelemetry__Proto__Collector__Metrics__V1__ExportMetricsPartialSuccess ps =
            OPENTELEMETRY__PROTO__COLLECTOR__METRICS__V1__EXPORT_METRICS_PARTIAL_SUCCESS__INIT;
        if (partial) {
            ps.rejected_data_points = (int64_t)res->rejected;
            ps.error_message = msg;
            r.partial_success = &ps;
        }
        return pack_into(&r.base, out);
    }
    }
}

int ingest_encode_status(int grpc_code, const char *message, int retry_after_s,
                         enum otlp_encoding enc, struct o2d_buf *out)
{
    if (message == NULL) {
        message = "";
    }
    if (enc == OTLP_ENC_JSON) {
        int rv = o2d_buf_printf(out, "{\"code\":%d,\"message\":", grpc_code);
        if (rv == O2D_OK) {
            rv = o2d_json_append_string(out, message, strlen(message));
        }
        if (rv == O2D_OK && retry_after_s > 0) {
            rv = o2d_buf_printf(out,
                                ",\"details\":[{\"@type\":\"type.googleapis.com/"
                                "google.rpc.RetryInfo\",\"retryDelay\":\"%ds\"}]",
                                retry_after_s);
        }
        return rv == O2D_OK ? o2d_buf_append_byte(out, '}') : rv;
    }

    Google__Rpc__Status st = GOOGLE__RPC__STATUS__INIT;
    Google__Protobuf__Any any = GOOGLE__PROTOBUF__ANY__INIT;
    Google__Protobuf__Any *details[1] = {&any};
    Google__Rpc__RetryInfo ri = GOOGLE__RPC__RETRY_INFO__INIT;
    Google__Protobuf__Duration delay = GOOGLE__PROTOBUF__DURATION__INIT;
    uint8_t ribuf[32];
    st.code = grpc_code;
    st.message = (char *)message;
    if (retry_after_s > 0) {
        delay.seconds = retry_after_s;
        ri.retry_delay = &delay;
        any.type_url = "type.googleapis.com/google.rpc.RetryInfo";
        any.value.data = ribuf;
        any.value.len = protobuf_c_message_pack(&ri.base, ribuf);
        st.details = details;
        st.n_details = 1;
    }
    return pack_into(&st.base, out);
}
