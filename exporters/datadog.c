/*
 * datadog.c: the Datadog exporter (datadog.h): APM traces and stats, agentlessly.
 *
 * submit() runs on the receiving thread: translate (apm.h) in the request's arena, pack each
 * TracerPayload into owned bytes, reserve room on the bounded queue (or answer BUSY), then
 * feed the stats concentrator, so that a request refused for lack of room, and retried by
 * its sender, is never counted twice. One sender thread takes batches off the queue every
 * flush interval (or when a batch is full), builds AgentPayload bodies by concatenating the
 * encoded TracerPayloads as field 5 (protobuf repeated fields concatenate), gzips them under
 * the intake's 3.2 MB limit and hands them to the shared HTTP client (http_client.h), which
 * retries. Every 10 s it flushes the closed stats buckets to /api/v0.2/stats.
 *
 * The queue's byte budget covers encoded payloads waiting and compressed bodies in flight
 * (retries included), so an intake that is down fills it and the receivers answer "retry
 * later" instead of memory growing. The pure half (body building, splitting) is declared in
 * datadog_int.h for its tests; what the spans become is apm.c's business.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <zlib.h>

#include "apm_msgpack.h"
#include "datadog.h"
#include "datadog/trace/agent_payload.pb-c.h"
#include "datadog_int.h"
#include "http_client.h"
#include "o2d.h"
#include "o2d_alloc.h"
#include "o2d_log.h"
#include "o2d_time.h"
#include "stats.h"

#define DD_AGENT_VERSION       "otel2dd/" O2D_VERSION
#define DD_AGENT_ENV           "none" /* the trace agent's default env */
#define DD_TPS                 10.0
#define DD_STATS_INTERVAL_MS   10000
#define DD_STATS_BUCKET_NS     10000000000LL
#define DD_STATS_MAX_GROUPS    20000
#define DD_MAX_INFLIGHT        4 /* trace bodies in flight (retries included) */
#define DD_ATTEMPT_TIMEOUT_MS  15000
#define DD_VALIDATE_TIMEOUT_MS 10000
#define DD_RAW_MAX             (256u * 1024 * 1024)
#define DD_STATS_BODY_MAX      (16u * 1024 * 1024)
#define DD_DEFAULT_QUEUE_BYTES (64u * 1024 * 1024)
#define DD_DEFAULT_FLUSH_MS    2000
#define DD_DEFAULT_ELAPSED_MS  300000
#define DD_LANGS_MAX           256
#define DD_AGENT_MIN_BODY      (16 * 1024) /* the least max_request_bytes taken from /info */

/* ---------------------------------------------------------------------------------------- */
/* The pure half: AgentPayload bodies from encoded TracerPayloads.                          */

static size_t varint_len(uint64_t v)
{
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

static size_t put_varint(uint8_t *p, uint64_t v)
{
    size_t n = 0;
    while (v >= 0x80) {
        p[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    p[n++] = (uint8_t)v;
    return n;
}

static int read_varint(const uint8_t *p, size_t len, size_t *pos, uint64_t *v)
{
    uint64_t r = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (*pos >= len) {
            return -1;
        }
        uint8_t b = p[(*pos)++];
        r |= (uint64_t)(b & 0x7f) << shift;
        if ((b & 0x80) == 0) {
            *v = r;
            return 0;
        }
    }
    return -1;
}

/* One field of a protobuf message at *pos: its number and, when length-delimited, its
 * value. -1 on anything malformed. */
static int next_field(const uint8_t *p, size_t len, size_t *pos, uint32_t *field,
                      const uint8_t **val, size_t *vlen)
{
    uint64_t tag;
    uint64_t x;
    *val = NULL;
    *vlen = 0;
    if (read_varint(p, len, pos, &tag) != 0 || (tag >> 3) == 0 || (tag >> 3) > 0x1fffffff) {
        return -1;
    }
    *field = (uint32_t)(tag >> 3);
    switch (tag & 7) {
    case 0:
        return read_varint(p, len, pos, &x);
    case 1:
        if (len - *pos < 8) {
            return -1;
        }
        *pos += 8;
        return 0;
    case 2:
        if (read_varint(p, len, pos, &x) != 0 || x > len - *pos) {
            return -1;
        }
        *val = p + *pos;
        *vlen = (size_t)x;
        *pos += (size_t)x;
        return 0;
    case 5:
        if (len - *pos < 4) {
            return -1;
        }
        *pos += 4;
        return 0;
    default:
        return -1;
    }
}

/* TraceChunk.spans (field 3) entries. */
static size_t count_spans(const uint8_t *chunk, size_t len)
{
    size_t pos = 0;
    size_t n = 0;
    uint32_t f;
    const uint8_t *v;
    size_t vl;
    while (pos < len && next_field(chunk, len, &pos, &f, &v, &vl) == 0) {
        n += f == 3 && v != NULL;
    }
    return n;
}

void datadog_item_free(struct datadog_item *it)
{
    if (it == NULL) {
        return;
    }
    o2d_free(it->bytes);
    o2d_free(it);
}

int datadog_split_item(const struct datadog_item *it, struct datadog_item **a,
                       struct datadog_item **b)
{
    /* TracerPayload.chunks is field 6; everything else is copied into both halves. */
    const uint32_t chunks_field = 6;
    size_t pos = 0;
    size_t n_chunks = 0;
    uint32_t f;
    const uint8_t *v;
    size_t vl;
    while (pos < it->len) {
        if (next_field(it->bytes, it->len, &pos, &f, &v, &vl) != 0) {
            return O2D_ERR_INVALID;
        }
        n_chunks += f == chunks_field && v != NULL;
    }
    if (n_chunks < 2) {
        return O2D_ERR_TOO_LARGE;
    }
    size_t half = n_chunks / 2;
    int rv = O2D_ERR_NOMEM;
    struct datadog_item *p[2] = {o2d_calloc(1, sizeof(**a)), o2d_calloc(1, sizeof(**a))};
    if (p[0] == NULL || p[1] == NULL) {
        goto out;
    }
    /* Each half is at most the whole: allocate that, it is freed after sending anyway. */
    for (int i = 0; i < 2; i++) {
        p[i]->bytes = o2d_malloc(it->len);
        if (p[i]->bytes == NULL) {
            goto out;
        }
        memcpy(p[i]->lang, it->lang, sizeof(p[i]->lang));
    }
    pos = 0;
    size_t k = 0;
    while (pos < it->len) {
        size_t start = pos;
        next_field(it->bytes, it->len, &pos, &f, &v, &vl);
        if (f == chunks_field && v != NULL) {
            struct datadog_item *dst = p[k++ < half ? 0 : 1];
            memcpy(dst->bytes + dst->len, it->bytes + start, pos - start);
            dst->len += pos - start;
            dst->spans += count_spans(v, vl);
        } else {
            for (int i = 0; i < 2; i++) {
                memcpy(p[i]->bytes + p[i]->len, it->bytes + start, pos - start);
                p[i]->len += pos - start;
            }
        }
    }
    *a = p[0];
    *b = p[1];
    p[0] = p[1] = NULL;
    rv = O2D_OK;
out:
    datadog_item_free(p[0]);
    datadog_item_free(p[1]);
    return rv;
}

int datadog_encode_agent_payload(struct o2d_buf *out, const struct datadog_header *h,
                                 struct datadog_item *const *items, size_t n)
{
    Datadog__Trace__AgentPayload ap = DATADOG__TRACE__AGENT_PAYLOAD__INIT;
    ap.hostname = (char *)(h->hostname != NULL ? h->hostname : "");
    ap.env = (char *)(h->env != NULL ? h->env : "");
    ap.agentversion = (char *)(h->agent_version != NULL ? h->agent_version : "");
    ap.targettps = h->target_tps;
    ap.errortps = h->error_tps;
    size_t head = datadog__trace__agent_payload__get_packed_size(&ap);
    size_t total = head;
    for (size_t i = 0; i < n; i++) {
        total += 1 + varint_len(items[i]->len) + items[i]->len;
    }
    int rv = o2d_buf_reserve(out, total);
    if (rv != O2D_OK) {
        return rv;
    }
    uint8_t *p = out->data + out->len;
    p += datadog__trace__agent_payload__pack(&ap, p);
    for (size_t i = 0; i < n; i++) {
        *p++ = (5 << 3) | 2; /* AgentPayload.tracerPayloads, length-delimited */
        p += put_varint(p, items[i]->len);
        memcpy(p, items[i]->bytes, items[i]->len);
        p += items[i]->len;
    }
    out->len += total;
    return O2D_OK;
}

int datadog_gzip(const uint8_t *in, size_t len, struct o2d_buf *out)
{
    if (len > 0x7fffffffu) {
        return O2D_ERR_TOO_LARGE;
    }
    z_stream zs;
    memset(&zs, 0, sizeof(zs));
    if (deflateInit2(&zs, 1, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
        return O2D_ERR_NOMEM;
    }
    size_t room = out->max - out->len;
    size_t want = deflateBound(&zs, (uLong)len);
    if (want > room) {
        want = room;
    }
    int rv = o2d_buf_reserve(out, want);
    if (rv != O2D_OK) {
        deflateEnd(&zs);
        return rv;
    }
    zs.next_in = (Bytef *)in;
    zs.avail_in = (uInt)len;
    zs.next_out = out->data + out->len;
    zs.avail_out = (uInt)want;
    int zrc = deflate(&zs, Z_FINISH);
    if (zrc == Z_STREAM_END) {
        out->len += want - zs.avail_out;
        rv = O2D_OK;
    } else {
        rv = O2D_ERR_TOO_LARGE; /* the output did not fit in what the limit leaves */
    }
    deflateEnd(&zs);
    return rv;
}

struct build {
    const struct datadog_header *h;
    size_t max_body;
    datadog_emit_fn emit;
    void *ctx;
    size_t *too_large;
    size_t *failed;
    struct o2d_buf raw;
};

static size_t sum_spans(struct datadog_item *const *items, size_t n)
{
    size_t s = 0;
    for (size_t i = 0; i < n; i++) {
        s += items[i]->spans;
    }
    return s;
}

/* "python|go": the distinct languages of the items, as X-Datadog-Reported-Languages wants. */
static void join_languages(struct datadog_item *const *items, size_t n, char *out, size_t cap)
{
    size_t len = 0;
    out[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        const char *l = items[i]->lang;
        size_t ll = strlen(l);
        if (ll == 0) {
            continue;
        }
        int seen = 0;
        for (size_t j = 0; j < i && !seen; j++) {
            seen = strcmp(items[j]->lang, l) == 0;
        }
        if (seen || len + ll + 2 > cap) {
            continue;
        }
        if (len > 0) {
            out[len++] = '|';
        }
        memcpy(out + len, l, ll + 1);
        len += ll;
    }
}

static int build_range(struct build *b, struct datadog_item *const *items, size_t n)
{
    o2d_buf_reset(&b->raw);
    int rv = datadog_encode_agent_payload(&b->raw, b->h, items, n);
    if (rv != O2D_OK) {
        *b->failed += sum_spans(items, n);
        return rv;
    }
    struct o2d_buf gz;
    o2d_buf_init(&gz, b->max_body);
    rv = datadog_gzip(b->raw.data, b->raw.len, &gz);
    if (rv == O2D_OK) {
        char langs[DD_LANGS_MAX];
        join_languages(items, n, langs, sizeof(langs));
        size_t glen;
        uint8_t *g = o2d_buf_take(&gz, &glen);
        b->emit(b->ctx, g, glen, sum_spans(items, n), n, langs);
        return O2D_OK;
    }
    o2d_buf_cleanup(&gz);
    if (rv != O2D_ERR_TOO_LARGE) {
        *b->failed += sum_spans(items, n);
        return rv;
    }
    if (n > 1) {
        size_t h = n / 2;
        int rv1 = build_range(b, items, h);
        int rv2 = build_range(b, items + h, n - h);
        return rv1 != O2D_OK ? rv1 : rv2;
    }
    struct datadog_item *a = NULL;
    struct datadog_item *c = NULL;
    rv = datadog_split_item(items[0], &a, &c);
    if (rv == O2D_ERR_TOO_LARGE || rv == O2D_ERR_INVALID) {
        *b->too_large += items[0]->spans; /* one trace chunk alone is over the limit */
        return O2D_OK;
    }
    if (rv != O2D_OK) {
        *b->failed += items[0]->spans;
        return rv;
    }
    int rv1 = build_range(b, &a, 1);
    int rv2 = build_range(b, &c, 1);
    datadog_item_free(a);
    datadog_item_free(c);
    return rv1 != O2D_OK ? rv1 : rv2;
}

int datadog_build_bodies(const struct datadog_header *h, struct datadog_item *const *items,
                         size_t n, size_t max_body, datadog_emit_fn emit, void *ctx,
                         size_t *too_large_spans, size_t *failed_spans)
{
    if (n == 0) {
        return O2D_OK;
    }
    struct build b = {
        .h = h,
        .max_body = max_body,
        .emit = emit,
        .ctx = ctx,
        .too_large = too_large_spans,
        .failed = failed_spans,
    };
    o2d_buf_init(&b.raw, DD_RAW_MAX);
    int rv = build_range(&b, items, n);
    o2d_buf_cleanup(&b.raw);
    return rv;
}

static int same_headers(const struct datadog_item *a, const struct datadog_item *b)
{
    return strcmp(a->lang, b->lang) == 0 && strcmp(a->lang_version, b->lang_version) == 0 &&
           strcmp(a->lang_interpreter, b->lang_interpreter) == 0 &&
           strcmp(a->tracer_version, b->tracer_version) == 0 &&
           strcmp(a->container_id, b->container_id) == 0;
}

int datadog_agent_build_bodies(struct datadog_item *const *items, size_t n, size_t max_body,
                               datadog_agent_emit_fn emit, void *ctx, size_t *too_large_spans,
                               size_t *failed_spans)
{
    if (n == 0) {
        return O2D_OK;
    }
    int rv = O2D_OK;
    /* done[i]: item i is in a body already (or dropped); pick[]: the items of the body being
     * built. */
    uint8_t *done = o2d_calloc(n, 1);
    size_t *pick = o2d_malloc(n * sizeof(*pick));
    if (done == NULL || pick == NULL) {
        *failed_spans += sum_spans(items, n);
        rv = O2D_ERR_NOMEM;
        goto out;
    }
    size_t room =
        max_body > APM_MSGPACK_ARRAY_HEADER_MAX ? max_body - APM_MSGPACK_ARRAY_HEADER_MAX : 0;
    for (size_t first = 0; first < n; first++) {
        if (done[first]) {
            continue;
        }
        /* First fit, in order, among the items with the first one's headers. */
        size_t k = 0;
        size_t len = 0;
        size_t spans = 0;
        for (size_t i = first; i < n; i++) {
            if (done[i] || !same_headers(items[first], items[i])) {
                continue;
            }
            if (items[i]->len > room) {
                *too_large_spans += items[i]->spans;
                done[i] = 1;
                continue;
            }
            if (len + items[i]->len > room || k >= UINT32_MAX) {
                continue;
            }
            pick[k++] = i;
            len += items[i]->len;
            spans += items[i]->spans;
            done[i] = 1;
        }
        if (k == 0) {
            continue;
        }
        uint8_t hdr[APM_MSGPACK_ARRAY_HEADER_MAX];
        size_t hl = apm_msgpack_array_header(hdr, (uint32_t)k);
        uint8_t *body = o2d_malloc(hl + len);
        if (body == NULL) {
            *failed_spans += spans;
            if (rv == O2D_OK) {
                rv = O2D_ERR_NOMEM;
            }
            continue;
        }
        memcpy(body, hdr, hl);
        size_t off = hl;
        for (size_t j = 0; j < k; j++) {
            memcpy(body + off, items[pick[j]]->bytes, items[pick[j]]->len);
            off += items[pick[j]]->len;
        }
        emit(ctx, body, off, spans, k, items[first]);
    }
out:
    o2d_free(done);
    o2d_free(pick);
    return rv;
}

/* ---------------------------------------------------------------------------------------- */
/* The exporter.                                                                            */

enum dd_req_kind {
    DD_REQ_TRACES,
    DD_REQ_STATS,
    DD_REQ_VALIDATE,
};

struct dd_exporter {
    struct exporter base;
    const struct datadog_config *cfg;
    char site[128];
    /* Agent mode (agent.endpoint set): v0.4 msgpack traces and v0.6 client stats to a local
     * Datadog Agent, no API key, no compression. */
    int agent_mode;
    char dest[DATADOG_URL_MAX]; /* what rejection logs name: the site, or the Agent's URL */
    char info_url[DATADOG_URL_MAX + 32];
    atomic_size_t agent_max_body; /* lowered by the Agent's /info max_request_bytes */
    /* Rejections are logged at most once a minute: a wrong key would otherwise log every
     * flush. Touched only by the HTTP client's thread (the completion callbacks). */
    struct http_rejection_log rejections;
    char hostname[256];
    char traces_url[DATADOG_URL_MAX + 32];
    char stats_url[DATADOG_URL_MAX + 32];
    char validate_url[DATADOG_URL_MAX + 32];
    char key_header[300]; /* "DD-Api-Key: <key>": never logged */
    size_t queue_max;
    int64_t flush_interval_ms;
    int64_t max_elapsed_ms;
    struct http_client *http;
    int own_http; /* http was made by dd_start, not shared by the caller */
    int started;

    pthread_mutex_t stats_mu; /* the concentrator is single-threaded */
    struct stats_concentrator *stats;
    struct stats_config stats_cfg;

    pthread_mutex_t mu;
    pthread_cond_t cond; /* CLOCK_MONOTONIC */
    struct datadog_item *head;
    struct datadog_item *tail;
    size_t queue_bytes;  /* reserved + waiting + compressed bodies in flight */
    size_t queued_raw;   /* bytes of the items on the list */
    size_t queued_spans; /* spans of the items on the list */
    int inflight;
    size_t inflight_spans;
    int inflight_stats;
    int traces_due;
    int64_t next_traces_ms;
    int64_t next_stats_ms;
    uint64_t flush_req;
    uint64_t flush_done;
    uint64_t stats_forced;
    int stop;
    pthread_t sender;
    int sender_started;
    atomic_int stopping;

    atomic_uint_fast64_t spans_queued;
    atomic_uint_fast64_t spans_sent;
    atomic_uint_fast64_t spans_retried;
    atomic_uint_fast64_t spans_dropped[DATADOG_DROP_N];
    atomic_uint_fast64_t payloads_sent;
    atomic_uint_fast64_t bytes_sent;
    atomic_uint_fast64_t stats_payloads_sent;
    atomic_uint_fast64_t stats_payloads_dropped;
};

/* What a completion needs to count and release. */
struct dd_sent {
    struct dd_exporter *d;
    enum dd_req_kind kind;
    size_t spans;
    size_t body_len;
};

static const char *const drop_reason_names[DATADOG_DROP_N] = {
    [DATADOG_DROP_QUEUE_FULL] = "queue_full",
    [DATADOG_DROP_REJECTED_4XX] = "rejected_4xx",
    [DATADOG_DROP_RETRIES_EXHAUSTED] = "retries_exhausted",
    [DATADOG_DROP_TOO_LARGE] = "too_large",
    [DATADOG_DROP_SHUTDOWN] = "shutdown",
};

const char *datadog_drop_reason_name(int reason)
{
    if (reason < 0 || reason >= DATADOG_DROP_N) {
        return "unknown";
    }
    return drop_reason_names[reason];
}

void datadog_base_url(const char *override, const char *prefix, const char *site, char *out,
                      size_t n)
{
    if (override != NULL && override[0] != '\0') {
        snprintf(out, n, "%s", override);
    } else {
        snprintf(out, n, "https://%s%s", prefix,
                 site != NULL && site[0] != '\0' ? site : "datadoghq.com");
    }
    size_t len = strlen(out);
    while (len > 0 && out[len - 1] == '/') {
        out[--len] = '\0';
    }
}

void datadog_traces_base(const struct datadog_config *cfg, char *out, size_t n)
{
    datadog_base_url(cfg->traces_endpoint, "trace.agent.", cfg->site, out, n);
}

static void drop(struct dd_exporter *d, int reason, size_t spans)
{
    atomic_fetch_add(&d->spans_dropped[reason], spans);
}

static void log_validation(struct dd_exporter *d, const struct http_result *r)
{
    char msg[400];
    int level = O2D_LOG_WARN;
    if (r->outcome == HTTP_DONE_OK) {
        snprintf(msg, sizeof(msg), "API key valid for site %s", d->site);
        level = O2D_LOG_INFO;
    } else if (r->status == O2D_OK && r->http_status == 403) {
        snprintf(msg, sizeof(msg),
                 "API key rejected (403): check exporters.datadog.api.key and api.site");
        level = O2D_LOG_ERROR;
    } else if (r->outcome == HTTP_DONE_SHUTDOWN) {
        return;
    } else if (r->status == O2D_OK) {
        snprintf(msg, sizeof(msg), "could not validate: HTTP %ld", r->http_status);
    } else {
        snprintf(msg, sizeof(msg), "could not validate: %s", r->error);
    }
    struct o2d_logline l;
    o2d_log_begin(&l, level, msg);
    o2d_log_cstr(&l, "site", d->site);
    o2d_log_cstr(&l, "endpoint", d->validate_url);
    o2d_log_end(&l);
}

/* Whether the Agent's /info "endpoints" list has `path` ("/v0.6/stats"), or with `prefix`
 * an entry that starts with it (the Agent lists the EVP proxy as "/evp_proxy/v2/"). */
static int info_offers(const json_t *endpoints, const char *path, int prefix)
{
    size_t i;
    json_t *v;
    size_t pl = strlen(path);
    json_array_foreach(endpoints, i, v)
    {
        const char *e = json_string_value(v);
        if (e != NULL && (prefix ? strncmp(e, path, pl) == 0 : strcmp(e, path) == 0)) {
            return 1;
        }
    }
    return 0;
}

static const char *yes_no(int v)
{
    return v ? "yes" : "no";
}

/* The answer to GET <agent>/info, asked once at start: what the Agent is and offers. Nothing
 * waits for it; an Agent that is not there yet only gets a warning, and what is sent to it
 * meanwhile is retried like any other failure. */
static void log_agent_info(struct dd_exporter *d, const struct http_result *r)
{
    if (r->outcome == HTTP_DONE_SHUTDOWN) {
        return;
    }
    struct o2d_logline l;
    if (r->outcome != HTTP_DONE_OK) {
        o2d_log_begin(&l, O2D_LOG_WARN,
                      "Datadog Agent did not answer GET /info at start: spans are queued and "
                      "retried until it answers");
        o2d_log_cstr(&l, "agent", d->dest);
        if (r->status == O2D_OK) {
            o2d_log_int(&l, "http_status", r->http_status);
        } else {
            o2d_log_cstr(&l, "error", r->error);
        }
        o2d_log_end(&l);
        return;
    }
    json_error_t je;
    json_t *root = json_loadb((const char *)r->body, r->body_len, 0, &je);
    if (!json_is_object(root)) {
        o2d_log_begin(&l, O2D_LOG_WARN, "Datadog Agent /info answer is not a JSON object");
        o2d_log_cstr(&l, "agent", d->dest);
        o2d_log_end(&l);
        json_decref(root);
        return;
    }
    const char *version = json_string_value(json_object_get(root, "version"));
    const json_t *eps = json_object_get(root, "endpoints");
    int traces = info_offers(eps, "/v0.4/traces", 0);
    int stats = info_offers(eps, "/v0.6/stats", 0);
    int evp = info_offers(eps, "/evp_proxy/v2", 1);
    /* Only a smaller limit is taken, and not an absurd one: an /info that says 1 byte would
     * otherwise make every trace "too large". */
    json_t *mrb = json_object_get(json_object_get(root, "config"), "max_request_bytes");
    if (json_is_integer(mrb) && json_integer_value(mrb) >= DD_AGENT_MIN_BODY &&
        (uint64_t)json_integer_value(mrb) < atomic_load(&d->agent_max_body)) {
        atomic_store(&d->agent_max_body, (size_t)json_integer_value(mrb));
    }
    o2d_log_begin(&l, O2D_LOG_INFO, "Datadog Agent found");
    o2d_log_cstr(&l, "agent", d->dest);
    o2d_log_cstr(&l, "agent_version", version != NULL ? version : "");
    o2d_log_cstr(&l, "v0.4_traces", yes_no(traces));
    o2d_log_cstr(&l, "v0.6_stats", yes_no(stats));
    o2d_log_cstr(&l, "evp_proxy_v2", yes_no(evp));
    o2d_log_uint(&l, "max_request_bytes", atomic_load(&d->agent_max_body));
    o2d_log_end(&l);
    if (!traces || !stats) {
        o2d_log_begin(&l, O2D_LOG_WARN,
                      !traces ? "the Datadog Agent does not list /v0.4/traces: APM traces may "
                                "be refused"
                              : "the Datadog Agent does not list /v0.6/stats: APM trace "
                                "metrics may be missing");
        o2d_log_cstr(&l, "agent", d->dest);
        o2d_log_end(&l);
    }
    if (!evp && d->cfg->llmobs.enabled) {
        o2d_log_begin(&l, O2D_LOG_WARN,
                      "the Datadog Agent does not list /evp_proxy/v2/: LLM Observability "
                      "spans cannot go through it (enable the Agent's EVP proxy)");
        o2d_log_cstr(&l, "agent", d->dest);
        o2d_log_end(&l);
    }
    json_decref(root);
}

static void on_done(void *ctx, const struct http_result *r)
{
    struct dd_sent *s = ctx;
    struct dd_exporter *d = s->d;
    switch (s->kind) {
    case DD_REQ_TRACES:
        if (r->attempts > 1) {
            atomic_fetch_add(&d->spans_retried, s->spans * (size_t)(r->attempts - 1));
        }
        switch (r->outcome) {
        case HTTP_DONE_OK:
            atomic_fetch_add(&d->spans_sent, s->spans);
            atomic_fetch_add(&d->payloads_sent, 1);
            atomic_fetch_add(&d->bytes_sent, s->body_len);
            break;
        case HTTP_DONE_REJECTED:
            drop(d, DATADOG_DROP_REJECTED_4XX, s->spans);
            http_log_rejection(&d->rejections, d->dest, "traces", "spans", s->spans, r);
            break;
        case HTTP_DONE_EXHAUSTED:
            drop(d, DATADOG_DROP_RETRIES_EXHAUSTED, s->spans);
            http_log_gave_up("traces", "spans", s->spans, r);
            break;
        case HTTP_DONE_SHUTDOWN:
            drop(d, DATADOG_DROP_SHUTDOWN, s->spans);
            break;
        }
        pthread_mutex_lock(&d->mu);
        d->queue_bytes -= s->body_len;
        d->inflight--;
        d->inflight_spans -= s->spans;
        pthread_cond_broadcast(&d->cond);
        pthread_mutex_unlock(&d->mu);
        break;
    case DD_REQ_STATS:
        if (r->outcome == HTTP_DONE_OK) {
            atomic_fetch_add(&d->stats_payloads_sent, 1);
        } else {
            atomic_fetch_add(&d->stats_payloads_dropped, 1);
            if (r->outcome == HTTP_DONE_REJECTED) {
                http_log_rejection(&d->rejections, d->dest, "stats", "spans", 0, r);
            } else if (r->outcome == HTTP_DONE_EXHAUSTED) {
                http_log_gave_up("stats", "spans", 0, r);
            }
        }
        pthread_mutex_lock(&d->mu);
        d->inflight_stats--;
        pthread_cond_broadcast(&d->cond);
        pthread_mutex_unlock(&d->mu);
        break;
    case DD_REQ_VALIDATE:
        if (d->agent_mode) {
            log_agent_info(d, r);
        } else {
            log_validation(d, r);
        }
        break;
    }
    o2d_free(s);
}

/* Hands one body to the HTTP client; its completion does the counting. */
static void post(struct dd_exporter *d, enum dd_req_kind kind, const char *url,
                 const char *const *headers, size_t n_headers, uint8_t *body, size_t len,
                 size_t spans)
{
    struct dd_sent *s = o2d_calloc(1, sizeof(*s));
    if (s == NULL) {
        o2d_free(body);
        o2d_logf(O2D_LOG_ERROR, "out of memory: a %s payload was not sent",
                 kind == DD_REQ_TRACES ? "traces" : "stats");
        if (kind == DD_REQ_TRACES) {
            drop(d, DATADOG_DROP_RETRIES_EXHAUSTED, spans);
        } else {
            atomic_fetch_add(&d->stats_payloads_dropped, 1);
        }
        return;
    }
    s->d = d;
    s->kind = kind;
    s->spans = spans;
    s->body_len = len;
    pthread_mutex_lock(&d->mu);
    if (kind == DD_REQ_TRACES) {
        d->queue_bytes += len;
        d->inflight++;
        d->inflight_spans += spans;
    } else {
        d->inflight_stats++;
    }
    pthread_mutex_unlock(&d->mu);
    struct http_request q = {
        .method = "POST",
        .url = url,
        .headers = headers,
        .n_headers = n_headers,
        .body = body,
        .body_len = len,
        .timeout_ms = DD_ATTEMPT_TIMEOUT_MS,
        .max_elapsed_ms = d->max_elapsed_ms,
        .name = kind == DD_REQ_TRACES ? "traces" : "stats",
        .done = on_done,
        .ctx = s,
    };
    int rv = http_client_submit(d->http, &q);
    if (rv != O2D_OK) {
        struct http_result r = {.outcome = HTTP_DONE_SHUTDOWN, .status = rv, .error = ""};
        on_done(s, &r);
    }
}

static void emit_traces(void *ctx, uint8_t *gz, size_t gz_len, size_t spans, size_t payloads,
                        const char *languages)
{
    struct dd_exporter *d = ctx;
    char langs[DD_LANGS_MAX + 40];
    /* "Name;" is how curl sends a header with an empty value (it drops "Name: "). */
    if (languages[0] == '\0') {
        snprintf(langs, sizeof(langs), "X-Datadog-Reported-Languages;");
    } else {
        snprintf(langs, sizeof(langs), "X-Datadog-Reported-Languages: %s", languages);
    }
    const char *headers[] = {
        d->key_header,
        "Content-Type: application/x-protobuf",
        "Content-Encoding: gzip",
        langs,
    };
    (void)payloads;
    post(d, DD_REQ_TRACES, d->traces_url, headers, sizeof(headers) / sizeof(headers[0]), gz, gz_len,
         spans);
}

static int emit_stats(void *ctx, const uint8_t *msgpack, size_t len)
{
    struct dd_exporter *d = ctx;
    struct o2d_buf gz;
    o2d_buf_init(&gz, DD_STATS_BODY_MAX);
    int rv = datadog_gzip(msgpack, len, &gz);
    if (rv != O2D_OK) {
        o2d_buf_cleanup(&gz);
        atomic_fetch_add(&d->stats_payloads_dropped, 1);
        o2d_logf(O2D_LOG_ERROR, "stats payload not sent: %s", o2d_strerror(rv));
        return O2D_OK;
    }
    const char *headers[] = {
        d->key_header,
        "Content-Type: application/msgpack",
        "Content-Encoding: gzip",
    };
    size_t glen;
    uint8_t *g = o2d_buf_take(&gz, &glen);
    post(d, DD_REQ_STATS, d->stats_url, headers, sizeof(headers) / sizeof(headers[0]), g, glen, 0);
    return O2D_OK;
}

/* "Name: value" into out, or "" when value is empty (a header tracers would not send).
 * Control characters are left out: values come from resource attributes, and a header line
 * must stay one line. */
static void agent_header(char *out, size_t cap, const char *name, const char *value)
{
    out[0] = '\0';
    if (value == NULL || value[0] == '\0') {
        return;
    }
    int n = snprintf(out, cap, "%s: ", name);
    if (n < 0 || (size_t)n >= cap) {
        out[0] = '\0';
        return;
    }
    size_t len = (size_t)n;
    for (const char *p = value; *p != '\0' && len + 1 < cap; p++) {
        if ((unsigned char)*p >= 0x20 && *p != 0x7f) {
            out[len++] = *p;
        }
    }
    out[len] = '\0';
    if (len == (size_t)n) {
        out[0] = '\0'; /* nothing was left of the value */
    }
}

/* Headers as Datadog's tracers send them to the Agent's /v0.4/traces
 * (pkg/trace/api/internal/header): the language and tracer of the traces' TracerPayload,
 * their count, and that stats and top-level marks were computed here, so the Agent neither
 * computes stats a second time nor re-marks top-level spans. With
 * Datadog-Send-Real-Http-Status the Agent answers 429 when it cannot take a payload
 * (otherwise it says 200 and drops it), so that it is retried. No API key: the Agent has
 * its own. */
static void emit_agent_traces(void *ctx, uint8_t *body, size_t len, size_t spans, size_t traces,
                              const struct datadog_item *meta)
{
    struct dd_exporter *d = ctx;
    char lang[DATADOG_LANG_MAX + 32];
    char lang_version[DATADOG_LANG_MAX + 32];
    char interpreter[DATADOG_LANG_MAX + 40];
    char tracer_version[DATADOG_AGENT_HDR_MAX + 32];
    char container_id[DATADOG_AGENT_HDR_MAX + 32];
    char count[64];
    agent_header(lang, sizeof(lang), "Datadog-Meta-Lang", meta->lang);
    agent_header(lang_version, sizeof(lang_version), "Datadog-Meta-Lang-Version",
                 meta->lang_version);
    agent_header(interpreter, sizeof(interpreter), "Datadog-Meta-Lang-Interpreter",
                 meta->lang_interpreter);
    agent_header(tracer_version, sizeof(tracer_version), "Datadog-Meta-Tracer-Version",
                 meta->tracer_version);
    agent_header(container_id, sizeof(container_id), "Datadog-Container-ID", meta->container_id);
    snprintf(count, sizeof(count), "X-Datadog-Trace-Count: %zu", traces);
    const char *all[] = {
        "Content-Type: application/msgpack",
        count,
        "Datadog-Client-Computed-Stats: yes",
        "Datadog-Client-Computed-Top-Level: yes",
        "Datadog-Send-Real-Http-Status: yes",
        lang,
        lang_version,
        interpreter,
        tracer_version,
        container_id,
    };
    const char *headers[sizeof(all) / sizeof(all[0])];
    size_t n = 0;
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
        if (all[i][0] != '\0') {
            headers[n++] = all[i];
        }
    }
    post(d, DD_REQ_TRACES, d->traces_url, headers, n, body, len, spans);
}

/* One ClientStatsPayload to the Agent's /v0.6/stats, plain msgpack as tracers send it (the
 * Agent's handler decodes the body as it comes, without Content-Encoding). */
static int emit_agent_stats(void *ctx, const uint8_t *msgpack, size_t len, const char *lang)
{
    struct dd_exporter *d = ctx;
    uint8_t *body = o2d_malloc(len > 0 ? len : 1);
    if (body == NULL) {
        atomic_fetch_add(&d->stats_payloads_dropped, 1);
        o2d_logf(O2D_LOG_ERROR, "stats payload not sent: %s", o2d_strerror(O2D_ERR_NOMEM));
        return O2D_OK;
    }
    memcpy(body, msgpack, len);
    char lang_h[96];
    agent_header(lang_h, sizeof(lang_h), "Datadog-Meta-Lang", lang);
    const char *all[] = {
        "Content-Type: application/msgpack",
        "Datadog-Meta-Tracer-Version: " O2D_VERSION,
        lang_h,
    };
    size_t n = lang_h[0] != '\0' ? 3 : 2;
    post(d, DD_REQ_STATS, d->stats_url, all, n, body, len, 0);
    return O2D_OK;
}

static void send_stats(struct dd_exporter *d, int force)
{
    int64_t now_ns = o2d_realtime_ns();
    pthread_mutex_lock(&d->stats_mu);
    if (d->agent_mode) {
        stats_flush_client(d->stats, now_ns, force, emit_agent_stats, d);
    } else {
        stats_flush(d->stats, now_ns, force, emit_stats, d);
    }
    pthread_mutex_unlock(&d->stats_mu);
}

/* Sends a batch taken off the queue (under no lock); frees its items. */
static void send_batch(struct dd_exporter *d, struct datadog_item *list, size_t n, size_t raw)
{
    struct datadog_item *stack[64];
    struct datadog_item **items = n <= 64 ? stack : o2d_malloc(n * sizeof(*items));
    size_t too_large = 0;
    size_t failed = 0;
    size_t limit = d->agent_mode ? atomic_load(&d->agent_max_body) : DATADOG_MAX_BODY_BYTES;
    if (items == NULL) {
        for (struct datadog_item *it = list; it != NULL; it = it->next) {
            failed += it->spans;
        }
    } else {
        size_t i = 0;
        for (struct datadog_item *it = list; it != NULL; it = it->next) {
            items[i++] = it;
        }
        struct datadog_header h = {
            .hostname = d->hostname,
            .env = DD_AGENT_ENV,
            .agent_version = DD_AGENT_VERSION,
            .target_tps = DD_TPS,
            .error_tps = DD_TPS,
        };
        if (d->agent_mode) {
            datadog_agent_build_bodies(items, n, limit, emit_agent_traces, d, &too_large, &failed);
        } else {
            datadog_build_bodies(&h, items, n, limit, emit_traces, d, &too_large, &failed);
        }
        if (items != stack) {
            o2d_free(items);
        }
    }
    if (too_large > 0) {
        drop(d, DATADOG_DROP_TOO_LARGE, too_large);
        struct o2d_logline l;
        o2d_log_begin(&l, O2D_LOG_ERROR, "trace chunk over the intake's size limit: dropped");
        o2d_log_uint(&l, "spans", too_large);
        o2d_log_uint(&l, "limit_bytes", limit);
        o2d_log_end(&l);
    }
    if (failed > 0) {
        drop(d, DATADOG_DROP_RETRIES_EXHAUSTED, failed);
        o2d_logf(O2D_LOG_ERROR, "out of memory building a traces payload: %zu spans lost", failed);
    }
    while (list != NULL) {
        struct datadog_item *nx = list->next;
        datadog_item_free(list);
        list = nx;
    }
    pthread_mutex_lock(&d->mu);
    d->queue_bytes -= raw;
    pthread_mutex_unlock(&d->mu);
}

static void *sender_main(void *arg)
{
    struct dd_exporter *d = arg;
    pthread_mutex_lock(&d->mu);
    while (!d->stop) {
        int64_t now = o2d_now_ms();
        int flushing = d->flush_done != d->flush_req;
        if (flushing && d->stats_forced != d->flush_req) {
            d->stats_forced = d->flush_req;
            pthread_mutex_unlock(&d->mu);
            send_stats(d, 1);
            pthread_mutex_lock(&d->mu);
            continue;
        }
        if (now >= d->next_stats_ms) {
            d->next_stats_ms = now + DD_STATS_INTERVAL_MS;
            pthread_mutex_unlock(&d->mu);
            send_stats(d, 0);
            pthread_mutex_lock(&d->mu);
            continue;
        }
        if (now >= d->next_traces_ms) {
            d->traces_due = 1;
            d->next_traces_ms = now + d->flush_interval_ms;
        }
        int want = d->head != NULL &&
                   (d->traces_due || flushing || d->queued_raw >= DATADOG_BATCH_RAW_BYTES);
        if (want && d->inflight < DD_MAX_INFLIGHT) {
            struct datadog_item *list = d->head;
            struct datadog_item *last = NULL;
            size_t n = 0;
            size_t raw = 0;
            size_t spans = 0;
            for (struct datadog_item *it = d->head; it != NULL; it = it->next) {
                if (n > 0 && raw + it->len > DATADOG_BATCH_RAW_BYTES) {
                    break;
                }
                n++;
                raw += it->len;
                spans += it->spans;
                last = it;
            }
            d->head = last->next;
            if (d->head == NULL) {
                d->tail = NULL;
                d->traces_due = 0;
            }
            last->next = NULL;
            d->queued_raw -= raw;
            d->queued_spans -= spans;
            pthread_mutex_unlock(&d->mu);
            send_batch(d, list, n, raw);
            pthread_mutex_lock(&d->mu);
            continue;
        }
        if (d->head == NULL) {
            d->traces_due = 0;
            if (flushing) {
                d->flush_done = d->flush_req;
                pthread_cond_broadcast(&d->cond);
                continue;
            }
        }
        int64_t wake = d->next_stats_ms < d->next_traces_ms ? d->next_stats_ms : d->next_traces_ms;
        struct timespec ts;
        ts = o2d_timespec_from_ms(wake);
        pthread_cond_timedwait(&d->cond, &d->mu, &ts);
    }
    pthread_mutex_unlock(&d->mu);
    return NULL;
}

static void validate_key(struct dd_exporter *d)
{
    struct dd_sent *s = o2d_calloc(1, sizeof(*s));
    if (s == NULL) {
        return;
    }
    s->d = d;
    s->kind = DD_REQ_VALIDATE;
    char key[300];
    snprintf(key, sizeof(key), "DD-API-KEY: %s", d->cfg->api_key);
    const char *headers[] = {key};
    struct http_request q = {
        .method = "GET",
        .url = d->validate_url,
        .headers = headers,
        .n_headers = 1,
        .timeout_ms = DD_VALIDATE_TIMEOUT_MS,
        .max_elapsed_ms = 0,
        .name = "validate",
        .done = on_done,
        .ctx = s,
    };
    if (http_client_submit(d->http, &q) != O2D_OK) {
        o2d_free(s);
    }
    memset(key, 0, sizeof(key));
}

/* GET <agent>/info once, as tracers do to discover what the Agent offers. */
static void probe_agent(struct dd_exporter *d)
{
    struct dd_sent *s = o2d_calloc(1, sizeof(*s));
    if (s == NULL) {
        return;
    }
    s->d = d;
    s->kind = DD_REQ_VALIDATE;
    struct http_request q = {
        .method = "GET",
        .url = d->info_url,
        .timeout_ms = DD_VALIDATE_TIMEOUT_MS,
        .max_elapsed_ms = 0,
        .name = "agent_info",
        .done = on_done,
        .ctx = s,
    };
    if (http_client_submit(d->http, &q) != O2D_OK) {
        o2d_free(s);
    }
}

static int dd_start(struct exporter *e)
{
    struct dd_exporter *d = e->ctx;
    if (d->http == NULL) {
        int rv = http_client_new(&d->http, NULL);
        if (rv != O2D_OK) {
            return rv;
        }
        d->own_http = 1;
    }
    d->started = 1;
    int64_t now = o2d_now_ms();
    d->next_traces_ms = now + d->flush_interval_ms;
    d->next_stats_ms = now + DD_STATS_INTERVAL_MS;
    if (pthread_create(&d->sender, NULL, sender_main, d) != 0) {
        return O2D_ERR_SYSTEM;
    }
    d->sender_started = 1;
    struct o2d_logline l;
    if (d->agent_mode) {
        probe_agent(d);
        o2d_log_begin(&l, O2D_LOG_INFO, "datadog destination: agent");
        o2d_log_cstr(&l, "mode", "agent");
        o2d_log_cstr(&l, "agent", d->dest);
        if (d->cfg->api_key[0] != '\0') {
            o2d_log_cstr(&l, "note", "an API key is set but unused: the Agent sends with its own");
        }
    } else {
        validate_key(d);
        o2d_log_begin(&l, O2D_LOG_INFO, "datadog destination: agentless");
        o2d_log_cstr(&l, "mode", "agentless");
        o2d_log_cstr(&l, "site", d->site);
    }
    o2d_log_end(&l);
    o2d_log_begin(&l, O2D_LOG_INFO, "datadog exporter started");
    o2d_log_cstr(&l, "mode", d->agent_mode ? "agent" : "agentless");
    if (!d->agent_mode) {
        o2d_log_cstr(&l, "site", d->site);
    }
    o2d_log_cstr(&l, "traces", d->traces_url);
    o2d_log_cstr(&l, "stats", d->stats_url);
    o2d_log_uint(&l, "queue_max_bytes", d->queue_max);
    o2d_log_int(&l, "flush_interval_ms", d->flush_interval_ms);
    o2d_log_end(&l);
    return O2D_OK;
}

static size_t payload_spans(const DdTracerPayload *tp)
{
    size_t n = 0;
    for (size_t i = 0; i < tp->n_chunks; i++) {
        n += tp->chunks[i]->n_spans;
    }
    return n;
}

static int dd_admit(struct exporter *e, const struct otlp_request *req)
{
    struct dd_exporter *d = e->ctx;
    if (req->signal != OTLP_SIGNAL_TRACES || req->msg.traces == NULL) {
        return O2D_OK;
    }
    if (atomic_load_explicit(&d->stopping, memory_order_relaxed)) {
        return O2D_ERR_SHUTDOWN;
    }
    pthread_mutex_lock(&d->mu);
    int full = d->queue_bytes >= d->queue_max;
    pthread_mutex_unlock(&d->mu);
    if (full) {
        drop(d, DATADOG_DROP_QUEUE_FULL, req->accepted);
        return O2D_ERR_BUSY;
    }
    return O2D_OK;
}

/* A string attribute of the resource that payload i came from ("" if none): apm_translate
 * makes one TracerPayload per ResourceSpans, in order. The tracers' Datadog-Meta-Lang-Version
 * and -Interpreter have no TracerPayload field; OpenTelemetry names them process.runtime.*. */
static const char *resource_str(const OtlpTraceReq *req, size_t n_payloads, size_t i,
                                const char *key)
{
    if (n_payloads != req->n_resource_spans || req->resource_spans[i]->resource == NULL) {
        return "";
    }
    const OtlpResource *r = req->resource_spans[i]->resource;
    for (size_t k = 0; k < r->n_attributes; k++) {
        const OtlpAnyValue *v = r->attributes[k]->value;
        if (strcmp(r->attributes[k]->key, key) == 0 && v != NULL &&
            v->value_case == OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE) {
            return v->string_value;
        }
    }
    return "";
}

static int dd_submit(struct exporter *e, const char *transport, const struct otlp_request *req)
{
    struct dd_exporter *d = e->ctx;
    (void)transport;
    if (req->signal != OTLP_SIGNAL_TRACES || req->msg.traces == NULL) {
        return O2D_OK;
    }
    if (atomic_load_explicit(&d->stopping, memory_order_relaxed)) {
        return O2D_ERR_SHUTDOWN;
    }
    struct apm_result res;
    memset(&res, 0, sizeof(res));
    const char *reason = NULL;
    int rv =
        apm_translate(req->arena, req->msg.traces, &d->cfg->apm, o2d_realtime_ns(), &res, &reason);
    if (rv != O2D_OK) {
        struct o2d_logline l;
        o2d_log_begin(&l, O2D_LOG_WARN, "translation failed");
        o2d_log_cstr(&l, "reason", reason != NULL ? reason : o2d_strerror(rv));
        o2d_log_end(&l);
        return rv;
    }
    if (res.n_payloads == 0) {
        return O2D_OK;
    }
    /* Pack first (the arena goes away when we return), then reserve room, then count stats:
     * a request refused here is retried by its sender and must not be counted twice. */
    struct datadog_item *list = NULL;
    struct datadog_item **tailp = &list;
    struct datadog_item *last = NULL;
    size_t bytes = 0;
    size_t spans = 0;
    size_t too_large = 0;
    struct o2d_buf enc;
    o2d_buf_init(&enc, DATADOG_AGENT_MAX_BODY_BYTES);
    rv = O2D_ERR_NOMEM;
    for (size_t i = 0; i < res.n_payloads; i++) {
        const DdTracerPayload *tp = res.payloads[i];
        if (d->agent_mode) {
            /* One item per trace: v0.4 bodies are split on trace boundaries. */
            for (size_t c = 0; c < tp->n_chunks; c++) {
                o2d_buf_reset(&enc);
                int erv = apm_msgpack_trace(&enc, tp, tp->chunks[c]);
                if (erv == O2D_ERR_TOO_LARGE) {
                    too_large += tp->chunks[c]->n_spans;
                    continue;
                }
                if (erv != O2D_OK) {
                    goto out;
                }
                struct datadog_item *it = o2d_calloc(1, sizeof(*it));
                if (it == NULL) {
                    goto out;
                }
                *tailp = it;
                tailp = &it->next;
                last = it;
                it->bytes = o2d_malloc(enc.len);
                if (it->bytes == NULL) {
                    goto out;
                }
                memcpy(it->bytes, enc.data, enc.len);
                it->len = enc.len;
                it->spans = tp->chunks[c]->n_spans;
                snprintf(it->lang, sizeof(it->lang), "%s",
                         tp->languagename ? tp->languagename : "");
                const char *lv = tp->languageversion != NULL ? tp->languageversion : "";
                if (lv[0] == '\0') {
                    lv =
                        resource_str(req->msg.traces, res.n_payloads, i, "process.runtime.version");
                }
                snprintf(it->lang_version, sizeof(it->lang_version), "%s", lv);
                snprintf(it->lang_interpreter, sizeof(it->lang_interpreter), "%s",
                         resource_str(req->msg.traces, res.n_payloads, i, "process.runtime.name"));
                snprintf(it->tracer_version, sizeof(it->tracer_version), "%s",
                         tp->tracerversion ? tp->tracerversion : "");
                snprintf(it->container_id, sizeof(it->container_id), "%s",
                         tp->containerid ? tp->containerid : "");
                bytes += it->len;
                spans += it->spans;
            }
            continue;
        }
        struct datadog_item *it = o2d_calloc(1, sizeof(*it));
        if (it == NULL) {
            goto out;
        }
        *tailp = it;
        tailp = &it->next;
        last = it;
        it->len = datadog__trace__tracer_payload__get_packed_size(tp);
        it->bytes = o2d_malloc(it->len > 0 ? it->len : 1);
        if (it->bytes == NULL) {
            goto out;
        }
        datadog__trace__tracer_payload__pack(tp, it->bytes);
        it->spans = payload_spans(tp);
        if (tp->languagename != NULL) {
            snprintf(it->lang, sizeof(it->lang), "%s", tp->languagename);
        }
        bytes += it->len;
        spans += it->spans;
    }
    /* dd_admit checked the room; past it, the request is taken even if other threads
     * filled the queue meanwhile (see exporter.h: admit). */
    pthread_mutex_lock(&d->mu);
    d->queue_bytes += bytes;
    pthread_mutex_unlock(&d->mu);

    pthread_mutex_lock(&d->stats_mu);
    for (size_t i = 0; i < res.n_payloads; i++) {
        stats_add_payload(d->stats, res.payloads[i]);
    }
    pthread_mutex_unlock(&d->stats_mu);

    pthread_mutex_lock(&d->mu);
    if (list != NULL) { /* empty when every trace was over the Agent's limit */
        if (d->tail != NULL) {
            d->tail->next = list;
        } else {
            d->head = list;
        }
        d->tail = last;
    }
    d->queued_raw += bytes;
    d->queued_spans += spans;
    if (d->queued_raw >= DATADOG_BATCH_RAW_BYTES) {
        pthread_cond_broadcast(&d->cond);
    }
    pthread_mutex_unlock(&d->mu);
    list = NULL;
    atomic_fetch_add(&d->spans_queued, spans);
    if (too_large > 0) {
        drop(d, DATADOG_DROP_TOO_LARGE, too_large);
        struct o2d_logline l;
        o2d_log_begin(&l, O2D_LOG_ERROR, "trace over the Datadog Agent's size limit: dropped");
        o2d_log_uint(&l, "spans", too_large);
        o2d_log_uint(&l, "limit_bytes", DATADOG_AGENT_MAX_BODY_BYTES);
        o2d_log_end(&l);
    }
    rv = O2D_OK;
out:
    o2d_buf_cleanup(&enc);
    while (list != NULL) {
        struct datadog_item *nx = list->next;
        datadog_item_free(list);
        list = nx;
    }
    return rv;
}

static int dd_flush(struct exporter *e, int64_t deadline_ms)
{
    struct dd_exporter *d = e->ctx;
    if (!d->sender_started) {
        return O2D_OK;
    }
    struct timespec ts;
    ts = o2d_timespec_from_ms(deadline_ms);
    pthread_mutex_lock(&d->mu);
    uint64_t gen = ++d->flush_req;
    pthread_cond_broadcast(&d->cond);
    int done;
    for (;;) {
        done = d->flush_done >= gen && d->inflight == 0 && d->inflight_stats == 0;
        if (done || o2d_now_ms() >= deadline_ms) {
            break;
        }
        pthread_cond_timedwait(&d->cond, &d->mu, &ts);
    }
    size_t queued = d->queued_spans;
    size_t inflight_spans = d->inflight_spans;
    int inflight = d->inflight;
    int inflight_stats = d->inflight_stats;
    pthread_mutex_unlock(&d->mu);
    if (!done) {
        struct o2d_logline l;
        o2d_log_begin(&l, O2D_LOG_WARN, "flush deadline passed before everything was delivered");
        o2d_log_uint(&l, "spans_queued", queued);
        o2d_log_uint(&l, "spans_in_flight", inflight_spans);
        o2d_log_int(&l, "requests_in_flight", inflight);
        o2d_log_int(&l, "stats_in_flight", inflight_stats);
        o2d_log_end(&l);
        return O2D_ERR_TIMEOUT;
    }
    return O2D_OK;
}

void datadog_exporter_counters(const struct exporter *e, struct datadog_counters *out)
{
    struct dd_exporter *d = e->ctx;
    memset(out, 0, sizeof(*out));
    out->spans_queued = atomic_load(&d->spans_queued);
    out->spans_sent = atomic_load(&d->spans_sent);
    out->spans_retried = atomic_load(&d->spans_retried);
    for (int i = 0; i < DATADOG_DROP_N; i++) {
        out->spans_dropped[i] = atomic_load(&d->spans_dropped[i]);
    }
    out->payloads_sent = atomic_load(&d->payloads_sent);
    out->bytes_sent = atomic_load(&d->bytes_sent);
    out->stats_payloads_sent = atomic_load(&d->stats_payloads_sent);
    out->stats_payloads_dropped = atomic_load(&d->stats_payloads_dropped);
}

static void log_totals(const struct exporter *e)
{
    struct datadog_counters c;
    datadog_exporter_counters(e, &c);
    struct o2d_logline l;
    o2d_log_begin(&l, O2D_LOG_INFO, "datadog exporter totals");
    o2d_log_uint(&l, "spans_queued", c.spans_queued);
    o2d_log_uint(&l, "spans_sent", c.spans_sent);
    o2d_log_uint(&l, "spans_retried", c.spans_retried);
    for (int i = 0; i < DATADOG_DROP_N; i++) {
        char key[64];
        snprintf(key, sizeof(key), "spans_dropped_%s", drop_reason_names[i]);
        o2d_log_uint(&l, key, c.spans_dropped[i]);
    }
    o2d_log_uint(&l, "payloads_sent", c.payloads_sent);
    o2d_log_uint(&l, "bytes_sent", c.bytes_sent);
    o2d_log_uint(&l, "stats_payloads_sent", c.stats_payloads_sent);
    o2d_log_uint(&l, "stats_payloads_dropped", c.stats_payloads_dropped);
    o2d_log_end(&l);
}

void datadog_exporter_stop(struct exporter *e)
{
    struct dd_exporter *d = e->ctx;
    atomic_store(&d->stopping, 1);
    if (d->sender_started) {
        pthread_mutex_lock(&d->mu);
        d->stop = 1;
        pthread_cond_broadcast(&d->cond);
        pthread_mutex_unlock(&d->mu);
        pthread_join(d->sender, NULL);
        d->sender_started = 0;
    }
    /* Nothing takes from the queue any more: what it still holds is lost, and counted now
     * so that the owner can report it before destroying the exporter. */
    pthread_mutex_lock(&d->mu);
    struct datadog_item *list = d->head;
    d->head = d->tail = NULL;
    d->queue_bytes -= d->queued_raw;
    d->queued_raw = 0;
    d->queued_spans = 0;
    pthread_mutex_unlock(&d->mu);
    size_t left = 0;
    while (list != NULL) {
        struct datadog_item *it = list;
        list = it->next;
        left += it->spans;
        datadog_item_free(it);
    }
    if (left > 0) {
        drop(d, DATADOG_DROP_SHUTDOWN, left);
    }
}

static void dd_destroy(struct exporter *e)
{
    struct dd_exporter *d = e->ctx;
    datadog_exporter_stop(e);
    /* Bodies still retrying are completed as "shutdown" and counted: by our own client
     * here, or by the shared one, which its owner frees before destroying us. */
    int ran = d->started;
    if (d->own_http) {
        http_client_free(d->http);
    }
    d->http = NULL;
    if (ran) {
        log_totals(e);
    }
    stats_concentrator_free(d->stats);
    pthread_mutex_destroy(&d->stats_mu);
    pthread_mutex_destroy(&d->mu);
    pthread_cond_destroy(&d->cond);
    o2d_free(d);
}

/* The metrics endpoint's view (exporter.h): traces and stats as two outputs. The queue is
 * read under its lock, the counters are atomics. */
static void dd_metrics(const struct exporter *e, struct exporter_metrics *m)
{
    struct dd_exporter *d = e->ctx;
    struct datadog_counters c;
    datadog_exporter_counters(e, &c);
    m->translated_kind = "apm";
    m->translated_spans = c.spans_queued;

    struct exporter_output_metrics *t = &m->outputs[m->n_outputs++];
    t->name = "datadog_traces";
    t->sent_items = c.spans_sent;
    t->sent_payloads = c.payloads_sent;
    t->sent_bytes = c.bytes_sent;
    t->retried_items = c.spans_retried;
    for (int i = 0; i < DATADOG_DROP_N && t->n_drops < EXPORTER_DROP_REASONS_MAX; i++) {
        t->drops[t->n_drops].reason = drop_reason_names[i];
        t->drops[t->n_drops++].items = c.spans_dropped[i];
    }
    t->has_queue = 1;
    pthread_mutex_lock(&d->mu);
    t->queue_items = d->queued_spans + d->inflight_spans;
    t->queue_bytes = d->queue_bytes;
    pthread_mutex_unlock(&d->mu);
    t->queue_capacity_bytes = d->queue_max;

    /* Stats payloads are their own items; their failures are not told apart by reason. */
    struct exporter_output_metrics *s = &m->outputs[m->n_outputs++];
    s->name = "datadog_stats";
    s->sent_items = c.stats_payloads_sent;
    s->sent_payloads = c.stats_payloads_sent;
    s->n_drops = 1;
    s->drops[0].reason = "failed";
    s->drops[0].items = c.stats_payloads_dropped;
}

static const struct exporter_type datadog_exporter_type = {
    .name = "datadog",
    .start = dd_start,
    .admit = dd_admit,
    .submit = dd_submit,
    .flush = dd_flush,
    .destroy = dd_destroy,
    .metrics = dd_metrics,
};

int datadog_exporter_new(struct exporter **out, const struct datadog_config *cfg,
                         struct http_client *http)
{
    struct dd_exporter *d = o2d_calloc(1, sizeof(*d));
    if (d == NULL) {
        return O2D_ERR_NOMEM;
    }
    d->base.type = &datadog_exporter_type;
    d->base.ctx = d;
    d->cfg = cfg;
    d->http = http;
    snprintf(d->site, sizeof(d->site), "%s", cfg->site[0] != '\0' ? cfg->site : "datadoghq.com");
    if (cfg->hostname[0] != '\0') {
        snprintf(d->hostname, sizeof(d->hostname), "%s", cfg->hostname);
    } else if (gethostname(d->hostname, sizeof(d->hostname) - 1) != 0) {
        d->hostname[0] = '\0';
    }
    char base[DATADOG_URL_MAX];
    d->agent_mode = cfg->agent_endpoint[0] != '\0';
    atomic_init(&d->agent_max_body, DATADOG_AGENT_MAX_BODY_BYTES);
    if (d->agent_mode) {
        /* The tracers' endpoints on the Agent's trace port (pkg/trace/api/endpoints.go). */
        datadog_base_url(cfg->agent_endpoint, "", "", base, sizeof(base));
        snprintf(d->dest, sizeof(d->dest), "%s", base);
        snprintf(d->traces_url, sizeof(d->traces_url), "%s/v0.4/traces", base);
        snprintf(d->stats_url, sizeof(d->stats_url), "%s/v0.6/stats", base);
        snprintf(d->info_url, sizeof(d->info_url), "%s/info", base);
    } else {
        snprintf(d->dest, sizeof(d->dest), "%s", d->site);
        datadog_traces_base(cfg, base, sizeof(base));
        snprintf(d->traces_url, sizeof(d->traces_url), "%s/api/v0.2/traces", base);
        snprintf(d->stats_url, sizeof(d->stats_url), "%s/api/v0.2/stats", base);
    }
    datadog_base_url(cfg->api_endpoint, "api.", cfg->site, base, sizeof(base));
    snprintf(d->validate_url, sizeof(d->validate_url), "%s/api/v1/validate", base);
    snprintf(d->key_header, sizeof(d->key_header), "DD-Api-Key: %s", cfg->api_key);
    d->queue_max = cfg->queue_max_bytes > 0 ? cfg->queue_max_bytes : DD_DEFAULT_QUEUE_BYTES;
    d->flush_interval_ms =
        cfg->flush_interval_ms > 0 ? cfg->flush_interval_ms : DD_DEFAULT_FLUSH_MS;
    d->max_elapsed_ms = cfg->max_elapsed_ms > 0 ? cfg->max_elapsed_ms : DD_DEFAULT_ELAPSED_MS;
    pthread_mutex_init(&d->mu, NULL);
    pthread_mutex_init(&d->stats_mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&d->cond, &ca);
    pthread_condattr_destroy(&ca);
    d->stats_cfg = (struct stats_config){
        .bucket_ns = DD_STATS_BUCKET_NS,
        .max_groups_per_bucket = DD_STATS_MAX_GROUPS,
        .compute_stats_by_span_kind = cfg->compute_stats_by_span_kind,
        .peer_tags_aggregation = cfg->peer_tags_aggregation,
        .agent_env = DD_AGENT_ENV,
        .agent_hostname = d->hostname,
        .agent_version = DD_AGENT_VERSION,
        .agent_fills_defaults = d->agent_mode,
        .now_ns = o2d_realtime_ns(),
    };
    int rv = stats_concentrator_new(&d->stats, &d->stats_cfg);
    if (rv != O2D_OK) {
        dd_destroy(&d->base);
        return rv;
    }
    *out = &d->base;
    return O2D_OK;
}
