/*
 * ingest.h: the one ingest path. Both receivers call ingest_request() with a request body
 * as it came off the wire; it inflates it within the size limit, decodes it into a
 * per-thread arena, validates and counts it, and hands it to the pipeline. The receiver
 * answers only after this returns, so an acknowledged request has been handed on.
 *
 * The gRPC and HTTP receivers only frame and unframe, and map the returned status with
 * status_map.h; they never decode or count themselves.
 */
#ifndef O2D_INGEST_H
#define O2D_INGEST_H

#include <stddef.h>
#include <stdint.h>

#include "o2d_buf.h"
#include "otlp.h"
#include "prom.h"

struct ingest;
struct auth;

enum o2d_transport {
    O2D_TRANSPORT_GRPC = 0,
    O2D_TRANSPORT_HTTP = 1,
};
#define O2D_TRANSPORT_COUNT 2

enum o2d_compression {
    O2D_COMP_NONE = 0,
    O2D_COMP_GZIP = 1,
};

struct ingest_result {
    int status;         /* O2D_OK or a negative o2d_status */
    const char *reason; /* static; why, when status != O2D_OK */
    enum otlp_signal signal;
    size_t accepted;           /* items handed to the pipeline */
    size_t rejected;           /* items refused by validation (partial success) */
    const char *reject_reason; /* static; set when rejected > 0 */
};

/*
 * Where a decoded request is handed on: the pipeline, which sits above the receivers
 * (collector/pipeline.c), so ingest reaches it through this pointer and never names it.
 * Returns O2D_OK once the request is taken, or why it was refused.
 */
typedef int (*ingest_submit_fn)(void *ctx, enum o2d_transport tr, const struct otlp_request *req);

/* Borrows submit_ctx (the pipeline); memory_limit is the budget of ingest_reserve(). */
int ingest_new(struct ingest **out, ingest_submit_fn submit, void *submit_ctx, size_t memory_limit);
/*
 * Asked before a request's body is read: whether the exporters would refuse any request of
 * signal `sig` now (a full queue). Same ctx as submit. Set before the receivers start.
 */
typedef int (*ingest_full_fn)(void *ctx, int sig);
void ingest_set_full(struct ingest *ing, ingest_full_fn full);
/*
 * Receivers call it once a request's headers name its signal, before they read its body:
 * O2D_ERR_BUSY (with *reason) when an exporter's queue is full, counted as a queue_full
 * refusal whose items are not known (the body is not read: the sender retries it later);
 * O2D_OK otherwise. A request that passes may still be refused once decoded. Thread-safe.
 */
int ingest_queue_admit(struct ingest *ing, enum o2d_transport tr, int sig, const char **reason);
/* Whether metrics go anywhere (an exporter sends them): when not, taken metrics requests are
 * counted as not forwarded and a warning says so once. Set before the receivers start. */
void ingest_set_metrics_forwarded(struct ingest *ing, int on);
void ingest_free(struct ingest *ing);

/*
 * Receivers reserve the bytes they buffer for a request body before they buffer them, and
 * release them when the request is done. O2D_ERR_BUSY when the budget is spent: answer
 * "retry later" (503 + Retry-After / UNAVAILABLE) without reading more.
 */
int ingest_reserve(struct ingest *ing, size_t n);
void ingest_release(struct ingest *ing, size_t n);

/*
 * A receiver reserves as bytes arrive, never for what a Content-Length or a gRPC length
 * prefix only declares: a declaration is checked (ingest_share_admit) but holds nothing, so
 * headers alone cannot squat the budget. The reservation of a body grows in steps
 * (ingest_grow_to) and its buffer never grows past what is reserved.
 *
 * One connection (all its streams together, for gRPC) reserves through its ingest_share, and
 * holds at most share->cap bytes of the budget, so that a few connections can never take all
 * of it. The rule (ingest_share_cap): the larger of one maximum request of its receiver and
 * 1/INGEST_SHARE_DIVISOR of the budget, never more than the budget. One maximum request always
 * fits; a gRPC connection gets room for several streams at once; filling the budget takes
 * INGEST_SHARE_DIVISOR connections (or budget / max_request) that really send at least half
 * of it. A share is used from its connection's thread only; the budget behind it is atomic.
 */
#define INGEST_SHARE_DIVISOR 16

struct ingest_share {
    size_t held; /* bytes this connection holds with ingest_reserve() */
    size_t cap;  /* it holds at most this much */
    int tenant;  /* whose bytes they are (ingest_share_set_tenant), -1 for nobody's */
};

/* The share rule above, for a budget of memory_limit and requests of at most max_request. */
size_t ingest_share_cap(size_t memory_limit, size_t max_request);
/* An empty share of ing's budget for a connection whose requests are at most max_request. */
void ingest_share_init(const struct ingest *ing, struct ingest_share *sh, size_t max_request);
/*
 * Whether n more bytes would fit now, in the share and in the budget, without reserving
 * them: O2D_OK, O2D_ERR_BUSY with *reason (static) saying which is spent, or
 * O2D_ERR_TOO_LARGE when the whole budget could never hold them (answer "too large", not
 * "retry later").
 */
int ingest_share_admit(struct ingest *ing, const struct ingest_share *sh, size_t n,
                       const char **reason);
/* Reserves n bytes of the budget through the share: O2D_OK, or as ingest_share_admit()
 * refuses, with *reason. */
int ingest_share_reserve(struct ingest *ing, struct ingest_share *sh, size_t n,
                         const char **reason);
/* Gives back n bytes that ingest_share_reserve() took through sh. */
void ingest_share_release(struct ingest *ing, struct ingest_share *sh, size_t n);

/*
 * Tenants and fairness. A tenant is the tenant named by the request's bearer token
 * (auth.h), or else the service.name of the request's first resource. With
 * ingest_set_tenant_share(ing, pct) below 100, a tenant may hold at most pct % of the memory
 * budget: the bytes its requests hold while they arrive (when the token names it, through the
 * share, from the first byte) and while they are decoded and handed on (ingest_request_as).
 * Past it, that tenant is answered "retry later" while the others go on. A tenant's first
 * request always fits (the rule refuses only a tenant that already holds something), so one
 * large request is never refused for fairness alone.
 *
 * The same share bounds what a tenant holds of each exporter's queue: ingest_request_as
 * names the request's slot in otlp_request.tenant, the exporters' admit asks their
 * destinations (delivery.h: dlv_dest_admit_tenant), and a tenant past its share there is
 * answered "retry later" too, counted with the reason tenant_queue_share.
 *
 * Tenants are counted in bounded slots: one per tenant name registered by the token store
 * (AUTH_MAX_TENANTS at most; a service.name equal to one of them uses its slot), and
 * INGEST_TENANT_HASHED slots that other service names share by hash (two services may then
 * share one allowance: they are held back together, never more than the rule says).
 */
#define INGEST_TENANT_NAMED  16 /* = AUTH_MAX_TENANTS */
#define INGEST_TENANT_HASHED 64

/* Borrows a (NULL: no authentication). Set before the receivers start. */
void ingest_set_auth(struct ingest *ing, struct auth *a);
/* The share of the memory budget one tenant may hold, in percent (100: no fairness rule). */
void ingest_set_tenant_share(struct ingest *ing, unsigned pct);
/* Whether the receiver of tr checks tokens; set before the receivers start. */
void ingest_set_auth_required(struct ingest *ing, enum o2d_transport tr, int on);
int ingest_auth_required(const struct ingest *ing, enum o2d_transport tr);
/*
 * Checks a request's authorization header value[0..len) (NULL when absent) with the token
 * store, and counts a failure for tr. O2D_OK with *tenant (-1 when the token names none), or
 * O2D_ERR_UNAUTHENTICATED with *reason (static; never holds the token). Thread-safe.
 */
int ingest_authenticate(struct ingest *ing, enum o2d_transport tr, const char *value, size_t len,
                        int *tenant, const char **reason);
/* Sets whose bytes the share holds: only while it holds none (a gRPC connection keeps the
 * tenant of its first authenticated stream while bytes are held). */
void ingest_share_set_tenant(struct ingest_share *sh, int tenant);
/* Whether `tenant` (a token's, -1: none) may start a request now: O2D_OK, or O2D_ERR_BUSY
 * with *reason when it already holds its share. Holds nothing. */
int ingest_tenant_admit(struct ingest *ing, int tenant, const char **reason);
/*
 * What a body holding `reserved` bytes should hold to take `need` bytes: `reserved` when they
 * fit, else the larger of need and twice reserved, never past `limit` (the declared size, or
 * the size limit when none was declared); need <= limit. So a body holds at most twice what
 * arrived (a sender cannot hold much for little), in a number of steps that grows only with
 * the logarithm of its size.
 */
size_t ingest_grow_to(size_t reserved, size_t need, size_t limit);

/*
 * Ingests one request. body is borrowed (the receiver reserved its bytes). max_decoded
 * bounds the body after decompression (a gzip bomb fails with O2D_ERR_TOO_LARGE before
 * allocating past it). What the request grows into while it is served (inflated body, the
 * arena blocks of its decoded structures and translation) is taken from the same budget and
 * given back before this returns: O2D_ERR_BUSY when the budget is spent, O2D_ERR_TOO_LARGE
 * when the request alone needs more than all of it. Always fills *res; returns res->status.
 * Thread-safe: each calling thread gets its own arena.
 */
int ingest_request(struct ingest *ing, enum o2d_transport tr, enum otlp_signal sig,
                   enum otlp_encoding enc, enum o2d_compression comp, const uint8_t *body,
                   size_t len, size_t max_decoded, struct ingest_result *res);
/* The same for a request of `tenant` (a token's tenant, whose body its share already charged
 * to it; -1: the tenant is the first resource's service.name). */
int ingest_request_as(struct ingest *ing, int tenant, enum o2d_transport tr, enum otlp_signal sig,
                      enum otlp_encoding enc, enum o2d_compression comp, const uint8_t *body,
                      size_t len, size_t max_decoded, struct ingest_result *res);

/*
 * The body of a successful answer: the Export{Trace,Logs,Metrics}ServiceResponse for
 * res->signal in `enc` (protobuf or JSON), with partial_success set only when items were
 * rejected. Appends to out.
 */
int ingest_encode_response(const struct ingest_result *res, enum otlp_encoding enc,
                           struct o2d_buf *out);

/*
 * A google.rpc.Status {code, message} in `enc`, for HTTP error bodies; when
 * retry_after_s > 0 it carries a google.rpc.RetryInfo detail (the gRPC receiver puts the
 * protobuf form in grpc-status-details-bin). Appends to out.
 */
int ingest_encode_status(int grpc_code, const char *message, int retry_after_s,
                         enum otlp_encoding enc, struct o2d_buf *out);

/*
 * Why a request was refused: a closed set, so that it is safe as a metric label; the client's
 * path, headers and data never become one. (ingest_refusal_name gives the label value.)
 */
enum ingest_refusal {
    INGEST_REFUSED_INVALID = 0,          /* malformed body, framing or header value */
    INGEST_REFUSED_TOO_LARGE = 1,        /* over the size limit, before or after decompression */
    INGEST_REFUSED_UNSUPPORTED = 2,      /* content type or compression we do not speak */
    INGEST_REFUSED_NOT_FOUND = 3,        /* unknown path or gRPC method */
    INGEST_REFUSED_METHOD = 4,           /* an HTTP method other than POST */
    INGEST_REFUSED_TIMEOUT = 5,          /* the body did not arrive within the deadline */
    INGEST_REFUSED_MEMORY = 6,           /* the receivers' memory budget was spent */
    INGEST_REFUSED_QUEUE_FULL = 7,       /* an exporter's queue was full */
    INGEST_REFUSED_SHUTDOWN = 8,         /* otel2dd was draining */
    INGEST_REFUSED_NOMEM = 9,            /* an allocation failed */
    INGEST_REFUSED_INTERNAL = 10,        /* anything else */
    INGEST_REFUSED_UNAUTHENTICATED = 11, /* no valid bearer token */
    INGEST_REFUSED_TENANT_SHARE = 12,    /* the tenant held its share of the memory budget */
    INGEST_REFUSED_TENANT_QUEUE = 13,    /* it held its share of an exporter's queue */
    INGEST_REFUSED_N
};
const char *ingest_refusal_name(enum ingest_refusal r);
/* The reason for a status a receiver answers with. O2D_ERR_BUSY is the memory budget there:
 * a full queue is only known inside ingest_request, which counts it itself. */
enum ingest_refusal ingest_refusal_of(int status);

/*
 * Counts a request a receiver refused on its own (headers, framing, budget, deadline), that
 * is without ingest_request, which counts its own refusals. `sig` is an enum otlp_signal, or
 * -1 when the path named none. Thread-safe.
 */
void ingest_count_refusal(struct ingest *ing, enum o2d_transport tr, int sig,
                          enum ingest_refusal reason);

/* Why a receiver closed a connection on its own: a closed set, safe as a metric label. */
enum ingest_conn_close {
    INGEST_CONN_HEADER_TIMEOUT = 0, /* read_header_timeout passed (preface, header block, head) */
    INGEST_CONN_EVICTED = 1,        /* idle, closed to make room at max_connections */
    INGEST_CONN_REFUSED_FULL = 2,   /* a newcomer at max_connections with nothing idle */
    INGEST_CONN_REFUSED_NO_FD = 3,  /* a newcomer when out of file descriptors */
    INGEST_CONN_CLOSE_N
};
/* Counts a connection a receiver closed for `why`. Thread-safe. */
void ingest_count_conn_close(struct ingest *ing, enum o2d_transport tr, enum ingest_conn_close why);

/* Counters since start (read with relaxed atomics; for logs and tests). */
struct ingest_totals {
    uint64_t requests[O2D_TRANSPORT_COUNT][3]; /* [transport][signal] answered OK */
    uint64_t items[O2D_TRANSPORT_COUNT][3];    /* accepted items */
    uint64_t rejected_items;                   /* partial-success rejections */
    uint64_t refused[O2D_TRANSPORT_COUNT];     /* requests answered with an error */
    uint64_t metric_points_dropped;            /* metrics are accepted but not forwarded */
};
void ingest_get_totals(struct ingest *ing, struct ingest_totals *t);

/* Writes the otel2dd_receiver_* families (README.md, "Health and metrics"). */
void ingest_write_metrics(struct ingest *ing, struct prom_writer *w);

const char *o2d_transport_name(enum o2d_transport tr);

#endif
