/*
 * apm.c: apm_translate(), OTLP spans -> Datadog APM TracerPayloads, following what Datadog's
 * own OTLP ingest does with them, in its order:
 *   1. DataDog/datadog-agent pkg/trace/transform/transform.go@021dec7 OtelSpanToDDSpan (V2
 *      operation and resource names unless span_name_as_resource_name or remappings are set);
 *   2. pkg/trace/api/otlp.go receiveResourceSpansV2 / createChunks: one TracerPayload per
 *      ResourceSpans, one chunk per trace id, priority and _dd.p.dm, hostname, env,
 *      container id and tags;
 *   3. what the agent's Process does before writing: normalizer.go (service, name, resource,
 *      duration, type, env, peer.service, http.status_code), SQL obfuscation and redis
 *      quantization by span type (agent/obfuscate.go), truncator.go limits, ComputeTopLevel,
 *      the ignore_resources filter on each chunk's root, setChunkAttributes and
 *      setPayloadAttributes.
 * Deliberate differences, each marked where it is made: _dd.p.tid on the first span of each
 * chunk, error.type/error.stack from exception events, DD_SERVICE/DD_ENV/DD_VERSION defaults,
 * invalid UTF-8 repaired (unless apm_config.input_utf8_valid vouches there is none), and
 * deterministic chunk and tag order. No clock is read here: the caller passes the time that
 * replaces a start before 2000 (as the agent's normalizer does).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "apm.h"
#include "apm_int.h"
#include "o2d.h"
#include "sql_cache.h"
#include "sql_obfuscate.h"

/* 2000-01-01T00:00:00Z in ns since the epoch: the agent's Year2000NanosecTS. */
#define YEAR_2000_NS INT64_C(946684800000000000)

#define TRY(x)                                                                                     \
    do {                                                                                           \
        int rv_ = (x);                                                                             \
        if (rv_ != O2D_OK) {                                                                       \
            return rv_;                                                                            \
        }                                                                                          \
    } while (0)

/* ---- a small string-keyed table (span meta or metrics), reused from span to span ---- */

struct tab_entry {
    const char *k; /* NULL once deleted */
    size_t kn;
    const char *v;
    size_t vn;
    double d;
};

struct tab {
    struct tab_entry *e;
    uint32_t *slots; /* index + 1 into e, 0 = free */
    size_t n, cap, nslots;
    size_t dead; /* entries of e[0..n) deleted (k NULL) */
};

/* A cheap hash of a key: its length and its first and last 8 bytes (keys differ in their
 * ends); keys that share both only cost a longer probe. */
static inline uint32_t hash_bytes(const char *s, size_t n)
{
    uint64_t a = 0, b = 0;
    if (n >= 8) {
        memcpy(&a, s, 8);
        memcpy(&b, s + n - 8, 8);
    } else {
        memcpy(&a, s, n);
    }
    uint64_t h = (a ^ (b * 0x9E3779B97F4A7C15ull) ^ n) * 0xC2B2AE3D27D4EB4Full;
    return (uint32_t)(h >> 32);
}

static int tab_reset(struct o2d_arena *a, struct tab *t, size_t need)
{
    if (need > t->cap) {
        size_t cap = t->cap ? t->cap : 64;
        while (cap < need) {
            cap *= 2;
        }
        t->e = o2d_arena_alloc(a, cap * sizeof(*t->e));
        t->slots = o2d_arena_alloc(a, cap * 2 * sizeof(*t->slots));
        if (t->e == NULL || t->slots == NULL) {
            return O2D_ERR_TOO_LARGE;
        }
        t->cap = cap;
        t->nslots = cap * 2;
    }
    memset(t->slots, 0, t->nslots * sizeof(*t->slots));
    t->n = 0;
    t->dead = 0;
    return O2D_OK;
}

/* k's entry, else NULL and *free_slot the slot tab_insert would give k (the probe stops at
 * the first free slot; deleting an entry keeps its slot taken). h is hash_bytes(k, kn).
 * Inlined: a span makes some fifty lookups, most of them misses answered by the first slot. */
static inline struct tab_entry *tab_lookup_h(const struct tab *t, const char *k, size_t kn,
                                             uint32_t h, size_t *free_slot)
{
    size_t mask = t->nslots - 1;
    for (size_t i = h & mask;; i = (i + 1) & mask) {
        uint32_t s = t->slots[i];
        if (s == 0) {
            *free_slot = i;
            return NULL;
        }
        struct tab_entry *e = &t->e[s - 1];
        if (e->kn == kn && e->k != NULL && memcmp(e->k, k, kn) == 0) {
            return e;
        }
    }
}

static inline struct tab_entry *tab_lookup(const struct tab *t, const char *k, size_t kn,
                                           size_t *free_slot)
{
    return tab_lookup_h(t, k, kn, hash_bytes(k, kn), free_slot);
}

static inline struct tab_entry *tab_find(const struct tab *t, const char *k, size_t kn)
{
    size_t unused;
    return tab_lookup(t, k, kn, &unused);
}

/* Inserts k (absent) and returns its entry; the caller fills v/d. Grows by rehashing into the
 * arena when full (rare: the table is sized for the attribute counts). */
static struct tab_entry *tab_insert(struct o2d_arena *a, struct tab *t, const char *k, size_t kn)
{
    if (t->n + 1 > t->cap) {
        struct tab old = *t;
        t->cap = 0;
        t->e = NULL;
        if (tab_reset(a, t, old.cap * 2) != O2D_OK) {
            return NULL;
        }
        for (size_t i = 0; i < old.n; i++) {
            if (old.e[i].k != NULL) {
                struct tab_entry *e = tab_insert(a, t, old.e[i].k, old.e[i].kn);
                *e = old.e[i];
            }
        }
    }
    size_t mask = t->nslots - 1;
    size_t i = hash_bytes(k, kn) & mask;
    while (t->slots[i] != 0) {
        i = (i + 1) & mask;
    }
    struct tab_entry *e = &t->e[t->n];
    memset(e, 0, sizeof(*e));
    e->k = k;
    e->kn = kn;
    t->slots[i] = (uint32_t)++t->n;
    return e;
}

/* tab_insert for a k that tab_lookup just did not find (*slot its answer): no second probe
 * unless the table must grow. */
static struct tab_entry *tab_insert_at(struct o2d_arena *a, struct tab *t, const char *k, size_t kn,
                                       size_t slot)
{
    if (t->n + 1 > t->cap) {
        return tab_insert(a, t, k, kn);
    }
    struct tab_entry *e = &t->e[t->n];
    memset(e, 0, sizeof(*e));
    e->k = k;
    e->kn = kn;
    t->slots[slot] = (uint32_t)++t->n;
    return e;
}

/* ---- the translation context ---- */

struct res_attr {
    struct apm_str key; /* mapped (GetDDKeyForOTLPAttribute); empty = skipped */
    struct apm_str val; /* AsString */
    uint32_t h;         /* hash_bytes of key: hashed once per resource, looked up per span */
};

struct ctx {
    struct o2d_arena *a;
    const struct apm_config *cfg;
    int64_t now_ns; /* replaces a start before 2000 */
    int v2;
    int utf8_ok; /* apm_config.input_utf8_valid: the request's strings need no repair */
    struct o2d_buf scratch;
    struct tab meta;
    struct tab metrics;
    /* per ResourceSpans */
    struct apm_attrs res_ix;
    struct res_attr *res_attrs;
    size_t n_res_attrs;
    /* the span's attribute keys' classes (apm_names_classify), reused from span to span */
    struct apm_key_class *cls;
    size_t cls_cap;
    const OtlpResource *res;
    uint64_t span_id; /* the span being translated, for the recorder */
    /* the last values NormalizeTagValue'd for a span's version and env, and what they
     * became: the spans of a resource mostly share them (strings of the request or the
     * arena, which live as long as the translation) */
    struct apm_str tag_in[2], tag_out[2];
    unsigned tag_next;
};

/* ---- the preview's recorder (apm_config.recorder; NULL on the export path) ---- */

static void note(struct ctx *c, enum apm_rec_source src, const char *attr, enum apm_rec_what what,
                 struct apm_str target, const char *detail)
{
    const struct apm_recorder *r = c->cfg->recorder;
    char t[256];
    size_t n = target.n < sizeof(t) - 1 ? target.n : sizeof(t) - 1;
    memcpy(t, target.p != NULL ? target.p : "", n);
    t[n] = '\0';
    r->note(r->ctx, c->span_id, src, attr, what, t, detail);
}

/* What copying attribute `attr` (mapped to key) into meta or metrics will do, told before the
 * copy (metric_if_empty / meta_if_empty decide the same way). */
static void note_copy(struct ctx *c, enum apm_rec_source src, const char *attr, struct apm_str key,
                      int numeric_value);

static void note_copy(struct ctx *c, enum apm_rec_source src, const char *attr, struct apm_str key,
                      int numeric_value)
{
    if (key.n == 0) {
        note(c, src, attr, APM_REC_RESERVED, key,
             "a Datadog convention key: read for the span's service, operation, resource or "
             "type, not copied");
        return;
    }
    if (numeric_value) {
        if (key.n == 17 && memcmp(key.p, "sampling.priority", 17) == 0) {
            key = APM_STR_LIT("_sampling_priority_v1");
        }
        const struct tab_entry *e = tab_find(&c->metrics, key.p, key.n);
        note(c, src, attr, e != NULL ? APM_REC_SHADOWED : APM_REC_METRIC, key,
             e != NULL ? "the metric was already set" : NULL);
        return;
    }
    const struct tab_entry *e = tab_find(&c->meta, key.p, key.n);
    if (e != NULL && e->vn > 0) {
        note(c, src, attr, APM_REC_SHADOWED, key,
             src == APM_REC_RESOURCE ? "the span (or the mapping) already set this tag: span "
                                       "attributes win over resource attributes"
                                     : "the mapping already set this tag");
        return;
    }
    if (key.n == 15 && memcmp(key.p, "analytics.event", 15) == 0) {
        note(c, src, attr, APM_REC_METRIC, APM_STR_LIT("_dd1.sr.eausr"),
             "analytics.event as a sample rate (when it parses as a boolean)");
        return;
    }
    note(c, src, attr, APM_REC_TAG, key, NULL);
}

static int set_meta(struct ctx *c, struct apm_str k, struct apm_str v)
{
    size_t slot;
    struct tab_entry *e = tab_lookup(&c->meta, k.p, k.n, &slot);
    if (e == NULL && (e = tab_insert_at(c->a, &c->meta, k.p, k.n, slot)) == NULL) {
        return O2D_ERR_TOO_LARGE;
    }
    e->v = v.p;
    e->vn = v.n;
    return O2D_OK;
}

static int set_metric(struct ctx *c, struct apm_str k, double d)
{
    size_t slot;
    struct tab_entry *e = tab_lookup(&c->metrics, k.p, k.n, &slot);
    if (e == NULL && (e = tab_insert_at(c->a, &c->metrics, k.p, k.n, slot)) == NULL) {
        return O2D_ERR_TOO_LARGE;
    }
    e->d = d;
    return O2D_OK;
}

static struct tab_entry *get_meta_n(struct ctx *c, const char *k, size_t n)
{
    return tab_find(&c->meta, k, n);
}

static struct tab_entry *get_meta(struct ctx *c, const char *k)
{
    return get_meta_n(c, k, strlen(k));
}

/* get_meta of a string literal */
#define GET_META(c, lit) get_meta_n((c), (lit), sizeof(lit) - 1)

static struct apm_str cstr(const char *s)
{
    return (struct apm_str){s, strlen(s)};
}

static int copy_scratch(struct ctx *c, struct apm_str *out)
{
    char *s = o2d_arena_strndup(c->a, c->scratch.data ? (const char *)c->scratch.data : "",
                                c->scratch.len);
    if (s == NULL) {
        return O2D_ERR_TOO_LARGE;
    }
    out->p = s;
    out->n = c->scratch.len;
    return O2D_OK;
}

/* attributes.HTTPMappings plus GetDDKeyForOTLPAttribute's other two rules, from the key's
 * class (apm_names_classify: the mappings are in its table); an empty result means the key is
 * a Datadog APM convention handled elsewhere and is not copied. */
static int dd_key(struct ctx *c, const char *k, const struct apm_key_class *kc, struct apm_str *out)
{
    if (kc->dd.p != NULL) {
        *out = kc->dd;
        return O2D_OK;
    }
    if (kc->flags & APM_KEYF_HTTP_HEADER) {
        static const char hdr[] = "http.request.header.", hdrs[] = "http.request.headers.";
        size_t rest = kc->n - (sizeof(hdr) - 1);
        char *d = o2d_arena_alloc(c->a, sizeof(hdrs) + rest);
        if (d == NULL) {
            return O2D_ERR_TOO_LARGE;
        }
        memcpy(d, hdrs, sizeof(hdrs) - 1);
        memcpy(d + sizeof(hdrs) - 1, k + sizeof(hdr) - 1, rest + 1);
        out->p = d;
        out->n = sizeof(hdrs) - 1 + rest;
        return O2D_OK;
    }
    out->p = k;
    out->n = kc->n;
    return O2D_OK;
}

/* Go strconv.ParseBool. -1 when it is not a boolean. */
static int parse_bool(struct apm_str v)
{
    static const char *const t[] = {"1", "t", "T", "TRUE", "true", "True"};
    static const char *const f[] = {"0", "f", "F", "FALSE", "false", "False"};
    for (int i = 0; i < 6; i++) {
        if (v.n == strlen(t[i]) && memcmp(v.p, t[i], v.n) == 0) {
            return 1;
        }
        if (v.n == strlen(f[i]) && memcmp(v.p, f[i], v.n) == 0) {
            return 0;
        }
    }
    return -1;
}

/* conditionallyMapOTLPAttributeToMeta + SetMetaOTLPIfEmpty, key already mapped (and not
 * empty), h its hash_bytes. */
static int meta_if_empty_h(struct ctx *c, struct apm_str k, uint32_t h, struct apm_str v)
{
    size_t slot;
    struct tab_entry *e = tab_lookup_h(&c->meta, k.p, k.n, h, &slot);
    if (e != NULL && e->vn > 0) {
        return O2D_OK;
    }
    if (k.n == 15 && memcmp(k.p, "analytics.event", 15) == 0) {
        int b = parse_bool(v);
        if (b >= 0 && tab_find(&c->metrics, "_dd1.sr.eausr", 13) == NULL) {
            return set_metric(c, APM_STR_LIT("_dd1.sr.eausr"), b);
        }
        return O2D_OK;
    }
    if (e == NULL && (e = tab_insert_at(c->a, &c->meta, k.p, k.n, slot)) == NULL) {
        return O2D_ERR_TOO_LARGE;
    }
    e->v = v.p;
    e->vn = v.n;
    return O2D_OK;
}

static int meta_if_empty(struct ctx *c, struct apm_str k, struct apm_str v)
{
    return k.n == 0 ? O2D_OK : meta_if_empty_h(c, k, hash_bytes(k.p, k.n), v);
}

static int metric_if_empty(struct ctx *c, struct apm_str k, double d)
{
    size_t slot;
    if (k.n == 0 || tab_lookup(&c->metrics, k.p, k.n, &slot) != NULL) {
        return O2D_OK;
    }
    if (k.n == 17 && memcmp(k.p, "sampling.priority", 17) == 0) {
        k = APM_STR_LIT("_sampling_priority_v1");
        if (tab_lookup(&c->metrics, k.p, k.n, &slot) != NULL) {
            return O2D_OK;
        }
    }
    /* absent: found above, slot from the last lookup */
    struct tab_entry *e = tab_insert_at(c->a, &c->metrics, k.p, k.n, slot);
    if (e == NULL) {
        return O2D_ERR_TOO_LARGE;
    }
    e->d = d;
    return O2D_OK;
}

static int is_numeric(const OtlpAnyValue *v)
{
    return v != NULL &&
           (v->value_case == OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE ||
            v->value_case == OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE);
}

static double numeric(const OtlpAnyValue *v)
{
    return v->value_case == OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE
               ? (double)v->int_value
               : v->double_value;
}

/* d as an int64 when it is one's range (C leaves the conversion of NaN or of a value outside
 * it undefined; Go's result is the platform's): 0 otherwise. */
static int f64_to_i64(double d, int64_t *out)
{
    if (!(d >= -9223372036854775808.0 && d < 9223372036854775808.0)) {
        return 0;
    }
    *out = (int64_t)d;
    return 1;
}

/* Go strconv.ParseInt(s, 10, 64), then ParseFloat for an integral value (LookupInt64). */
static int parse_int64(struct apm_str s, int64_t *out)
{
    char buf[64];
    if (s.n == 0 || s.n >= sizeof(buf)) {
        return 0;
    }
    memcpy(buf, s.p, s.n);
    buf[s.n] = '\0';
    char *end;
    const char *p = buf;
    if (*p == '+' || *p == '-') {
        p++;
    }
    if (*p >= '0' && *p <= '9') {
        long long v = strtoll(buf, &end, 10);
        if (*end == '\0') {
            *out = v;
            return 1;
        }
    }
    if (buf[0] == ' ' || buf[0] == '\t' || buf[0] == '\n') {
        return 0;
    }
    double d = strtod(buf, &end);
    int64_t v;
    if (*end == '\0' && f64_to_i64(d, &v) && d == (double)v) {
        *out = v;
        return 1;
    }
    return 0;
}

/* semantics.LookupInt64 over span then resource for the typed fallbacks of a concept whose
 * keys are each listed once as int64 and once as string. */
static int lookup_int64(struct ctx *c, const struct apm_lookup *lk, const enum apm_key *keys,
                        size_t nkeys, int64_t *out)
{
    for (size_t i = 0; i < nkeys; i++) {
        const OtlpAnyValue *sv = lk->span->v[keys[i]], *rv = lk->res->v[keys[i]];
        if (is_numeric(sv) && f64_to_i64(numeric(sv), out)) {
            return 1;
        }
        if (is_numeric(rv) && f64_to_i64(numeric(rv), out)) {
            return 1;
        }
        struct apm_str s;
        if (apm_lookup_str(lk, &keys[i], 1, &s) == O2D_OK && parse_int64(s, out)) {
            return 1;
        }
    }
    (void)c;
    return 0;
}

static const char *go_status_text(int code)
{
    switch (code) {
    case 100:
        return "Continue";
    case 101:
        return "Switching Protocols";
    case 102:
        return "Processing";
    case 103:
        return "Early Hints";
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 202:
        return "Accepted";
    case 203:
        return "Non-Authoritative Information";
    case 204:
        return "No Content";
    case 205:
        return "Reset Content";
    case 206:
        return "Partial Content";
    case 207:
        return "Multi-Status";
    case 208:
        return "Already Reported";
    case 226:
        return "IM Used";
    case 300:
        return "Multiple Choices";
    case 301:
        return "Moved Permanently";
    case 302:
        return "Found";
    case 303:
        return "See Other";
    case 304:
        return "Not Modified";
    case 305:
        return "Use Proxy";
    case 307:
        return "Temporary Redirect";
    case 308:
        return "Permanent Redirect";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 402:
        return "Payment Required";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 406:
        return "Not Acceptable";
    case 407:
        return "Proxy Authentication Required";
    case 408:
        return "Request Timeout";
    case 409:
        return "Conflict";
    case 410:
        return "Gone";
    case 411:
        return "Length Required";
    case 412:
        return "Precondition Failed";
    case 413:
        return "Request Entity Too Large";
    case 414:
        return "Request URI Too Long";
    case 415:
        return "Unsupported Media Type";
    case 416:
        return "Requested Range Not Satisfiable";
    case 417:
        return "Expectation Failed";
    case 418:
        return "I'm a teapot";
    case 421:
        return "Misdirected Request";
    case 422:
        return "Unprocessable Entity";
    case 423:
        return "Locked";
    case 424:
        return "Failed Dependency";
    case 425:
        return "Too Early";
    case 426:
        return "Upgrade Required";
    case 428:
        return "Precondition Required";
    case 429:
        return "Too Many Requests";
    case 431:
        return "Request Header Fields Too Large";
    case 451:
        return "Unavailable For Legal Reasons";
    case 500:
        return "Internal Server Error";
    case 501:
        return "Not Implemented";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Gateway Timeout";
    case 505:
        return "HTTP Version Not Supported";
    case 506:
        return "Variant Also Negotiates";
    case 507:
        return "Insufficient Storage";
    case 508:
        return "Loop Detected";
    case 510:
        return "Not Extended";
    case 511:
        return "Network Authentication Required";
    default:
        return "";
    }
}

/* Written out so that the compiler makes it one load and a byte swap (the loop it left as
 * eight steps, four times a span). */
static uint64_t be64(const uint8_t *p)
{
    return (uint64_t)p[0] << 56 | (uint64_t)p[1] << 48 | (uint64_t)p[2] << 40 |
           (uint64_t)p[3] << 32 | (uint64_t)p[4] << 24 | (uint64_t)p[5] << 16 |
           (uint64_t)p[6] << 8 | (uint64_t)p[7];
}

static uint64_t span_id_u64(const ProtobufCBinaryData *id)
{
    return id->len == 8 ? be64(id->data) : 0;
}

static int hex_str(struct ctx *c, const uint8_t *p, size_t n, struct apm_str *out)
{
    static const char hexd[] = "0123456789abcdef";
    char *d = o2d_arena_alloc(c->a, n * 2 + 1);
    if (d == NULL) {
        return O2D_ERR_TOO_LARGE;
    }
    for (size_t i = 0; i < n; i++) {
        d[2 * i] = hexd[p[i] >> 4];
        d[2 * i + 1] = hexd[p[i] & 15];
    }
    d[2 * n] = '\0';
    out->p = d;
    out->n = 2 * n;
    return O2D_OK;
}

/* Error tags. error.msg follows transform.go@021dec7 Status2Error: the status message, else
 * "<code> <Go http.StatusText>" from a string http.status_code in meta. The newest code writes
 * no error.type or error.stack; we take them (and error.msg when still unset) from the last
 * `exception` event as transform.go@67b17e8 did, because Error Tracking reads them. */
static int set_error_tags(struct ctx *c, const OtlpSpan *span)
{
    const Opentelemetry__Proto__Trace__V1__Status *st = span->status;
    if (GET_META(c, "error.msg") == NULL) {
        if (st != NULL && st->message[0] != '\0') {
            TRY(set_meta(c, APM_STR_LIT("error.msg"), cstr(st->message)));
        } else {
            struct tab_entry *e = GET_META(c, "http.status_code");
            if (e == NULL || e->vn == 0) {
                e = GET_META(c, "http.response.status_code");
            }
            if (e != NULL && e->vn > 0) {
                int code = 0;
                int64_t v;
                if (parse_int64((struct apm_str){e->v, e->vn}, &v) && v > 0 && v < 1000) {
                    code = (int)v;
                }
                const char *text = go_status_text(code);
                if (text[0] != '\0') {
                    o2d_buf_reset(&c->scratch);
                    TRY(o2d_buf_append(&c->scratch, e->v, e->vn));
                    TRY(o2d_buf_append_byte(&c->scratch, ' '));
                    TRY(o2d_buf_append_str(&c->scratch, text));
                    struct apm_str m;
                    TRY(copy_scratch(c, &m));
                    TRY(set_meta(c, APM_STR_LIT("error.msg"), m));
                } else {
                    TRY(set_meta(c, APM_STR_LIT("error.msg"), (struct apm_str){e->v, e->vn}));
                }
            }
        }
    }
    for (size_t i = span->n_events; i-- > 0;) {
        const Opentelemetry__Proto__Trace__V1__Span__Event *ev = span->events[i];
        if (strcasecmp(ev->name, "exception") != 0) {
            continue;
        }
        static const char *const from[3] = {"exception.message", "exception.type",
                                            "exception.stacktrace"};
        static const char *const to[3] = {"error.msg", "error.type", "error.stack"};
        for (int f = 0; f < 3; f++) {
            if (get_meta(c, to[f]) != NULL) {
                continue;
            }
            for (size_t j = 0; j < ev->n_attributes; j++) {
                if (strcmp(ev->attributes[j]->key, from[f]) == 0) {
                    struct apm_str v;
                    TRY(apm_value_as_string(c->a, ev->attributes[j]->value, &v));
                    TRY(set_meta(c, cstr(to[f]), v));
                    break;
                }
            }
        }
        break;
    }
    return O2D_OK;
}

/* QuantizeRedisString (pkg/obfuscate/redis.go): the command names of at most 3 commands. */
static int quantize_redis(struct ctx *c, struct apm_str q, struct apm_str *out)
{
    static const char *const compound[] = {"CLIENT", "CLUSTER", "COMMAND",
                                           "CONFIG", "DEBUG",   "SCRIPT"};
    struct o2d_buf *b = &c->scratch;
    o2d_buf_reset(b);
    size_t pos = 0;
    int ncmds = 0, truncated = 0;
    while (pos < q.n && ncmds < 3) {
        const char *nl = memchr(q.p + pos, '\n', q.n - pos);
        size_t end = nl ? (size_t)(nl - q.p) : q.n;
        const char *line = q.p + pos;
        size_t ln = end - pos;
        pos = nl ? end + 1 : q.n;
        while (ln > 0 && (line[0] == ' ' || line[0] == '\t')) {
            line++;
            ln--;
        }
        while (ln > 0 && (line[ln - 1] == ' ' || line[ln - 1] == '\t' || line[ln - 1] == '\r')) {
            ln--;
        }
        if (ln == 0) {
            continue;
        }
        size_t a0 = 0;
        while (a0 < ln && line[a0] != ' ' && line[a0] != '\t') {
            a0++;
        }
        if (a0 >= 3 && memcmp(line + a0 - 3, "...", 3) == 0) {
            truncated = 1;
            continue;
        }
        size_t start = b->len;
        TRY(o2d_buf_append_byte(b, ' '));
        for (size_t i = 0; i < a0; i++) {
            char ch = line[i];
            TRY(o2d_buf_append_byte(b, (uint8_t)(ch >= 'a' && ch <= 'z' ? ch - 32 : ch)));
        }
        const char *cmd = (const char *)b->data + start + 1;
        int is_compound = 0;
        for (int k = 0; k < 6; k++) {
            if (strlen(compound[k]) == a0 && memcmp(cmd, compound[k], a0) == 0) {
                is_compound = 1;
            }
        }
        if (is_compound) {
            size_t s1 = a0;
            while (s1 < ln && (line[s1] == ' ' || line[s1] == '\t')) {
                s1++;
            }
            size_t e1 = s1;
            while (e1 < ln && line[e1] != ' ' && line[e1] != '\t') {
                e1++;
            }
            if (e1 > s1) {
                if (e1 - s1 >= 3 && memcmp(line + e1 - 3, "...", 3) == 0) {
                    b->len = start;
                    truncated = 1;
                    continue;
                }
                TRY(o2d_buf_append_byte(b, ' '));
                for (size_t i = s1; i < e1; i++) {
                    char ch = line[i];
                    TRY(o2d_buf_append_byte(b, (uint8_t)(ch >= 'a' && ch <= 'z' ? ch - 32 : ch)));
                }
            }
        }
        ncmds++;
        truncated = 0;
    }
    if (ncmds == 3 || truncated) {
        TRY(o2d_buf_append_str(b, " ..."));
    }
    struct apm_str r;
    TRY(copy_scratch(c, &r));
    if (r.n > 0 && r.p[0] == ' ') {
        r.p++;
        r.n--;
    }
    *out = r;
    return O2D_OK;
}

static int obfuscate_sql(struct ctx *c, struct apm_str in, struct apm_str *out)
{
    o2d_buf_reset(&c->scratch);
    int rv = sql_cache_obfuscate(c->cfg->sql_cache, in.p, in.n, &c->scratch);
    if (rv == O2D_ERR_INVALID) {
        *out = APM_STR_LIT(SQL_NON_PARSABLE);
        return O2D_OK;
    }
    if (rv == O2D_ERR_NOMEM) {
        return O2D_ERR_NOMEM;
    }
    if (rv != O2D_OK) {
        return O2D_ERR_TOO_LARGE;
    }
    /* Valid UTF-8 whatever the input was (sql_obfuscate.h), so not checked again. */
    return copy_scratch(c, out);
}

/* The per-span result before the chunk pass. */
struct xspan {
    DdSpan *dd;
    uint64_t trace_hi;
    int kind;
    /* where emit_maps put the entries the chunk pass reads, so that it finds them without
     * comparing keys: indexes into dd->meta / dd->metrics, -1 when absent */
    int dm_idx;   /* meta _dd.p.dm */
    int tid_idx;  /* meta _dd.p.tid */
    int prio_idx; /* metrics _sampling_priority_v1 */
    int top_idx;  /* metrics _top_level */
};

static int is_structured_key(struct apm_str k)
{
    if (k.n < 4 || memcmp(k.p, "_dd.", 4) != 0) {
        return 0;
    }
    static const char *const suf[] = {".json", ".msgpack", ".protobuf"};
    for (int i = 0; i < 3; i++) {
        size_t sl = strlen(suf[i]);
        if (k.n >= sl && memcmp(k.p + k.n - sl, suf[i], sl) == 0) {
            return 1;
        }
    }
    return 0;
}

/* apm_normalize_utf8 unless the caller vouched for the request's strings (every string this
 * file builds from valid input is valid: ASCII, JSON text, whole characters). */
static int repair_utf8(struct ctx *c, struct apm_str *s)
{
    return c->utf8_ok ? O2D_OK : apm_normalize_utf8(c->a, s);
}

/* Repairs UTF-8 and applies truncator.go to a meta/metric key or value. */
static int finish_str(struct ctx *c, struct apm_str *s, size_t limit, int dots)
{
    TRY(repair_utf8(c, s));
    if (limit == 0 || s->n <= limit) {
        return O2D_OK;
    }
    size_t n = apm_normalize_truncate_utf8(s->p, s->n, limit);
    char *d = o2d_arena_alloc(c->a, n + 4);
    if (d == NULL) {
        return O2D_ERR_TOO_LARGE;
    }
    memcpy(d, s->p, n);
    if (dots) {
        memcpy(d + n, "...", 3);
        n += 3;
    }
    d[n] = '\0';
    s->p = d;
    s->n = n;
    return O2D_OK;
}

static inline int arena_cstr(struct ctx *c, struct apm_str s, char **out)
{
    if (s.p[s.n] == '\0') {
        *out = (char *)s.p;
        return O2D_OK;
    }
    *out = o2d_arena_strndup(c->a, s.p, s.n);
    return *out == NULL ? O2D_ERR_TOO_LARGE : O2D_OK;
}

/* A repaired, NUL-terminated copy of s (truncated to limit bytes if limit > 0); *noted, when
 * not NULL, is what it became (for apm_span). */
static int out_str(struct ctx *c, struct apm_str s, size_t limit, char **out, struct apm_str *noted)
{
    TRY(finish_str(c, &s, limit, 0));
    TRY(arena_cstr(c, s, out));
    if (noted != NULL) {
        *noted = (struct apm_str){*out, s.n};
    }
    return O2D_OK;
}

/* Writes the meta and metrics tables into w's span (and their strings' lengths into w), noting
 * in x where the chunk pass's keys went. */
static int emit_maps(struct ctx *c, struct apm_span *w, struct xspan *x)
{
    DdSpan *dd = &w->dd;
    x->dm_idx = x->tid_idx = x->prio_idx = x->top_idx = -1;
    size_t n = c->meta.n - c->meta.dead;
    /* two more entries for the chunk pass's _dd.p.dm and _dd.p.tid (add_meta); the entries
     * aligned to 64 bytes, their size (apm_int.h) */
    uintptr_t raw = (uintptr_t)o2d_arena_alloc(c->a, (n + 2) * sizeof(struct apm_meta) + 48);
    struct apm_meta *me = (struct apm_meta *)((raw + 63) & ~(uintptr_t)63);
    Datadog__Trace__Span__MetaEntry **mp = o2d_arena_alloc(c->a, (n + 2) * sizeof(*mp));
    if (raw == 0 || mp == NULL) {
        return O2D_ERR_TOO_LARGE;
    }
    const ProtobufCMessageDescriptor *desc = &datadog__trace__span__meta_entry__descriptor;
    size_t j = 0;
    for (size_t i = 0; i < c->meta.n; i++) {
        const struct tab_entry *e = &c->meta.e[i];
        if (e->k == NULL) {
            continue;
        }
        struct apm_str k = {e->k, e->kn}, v = {e->v, e->vn};
        /* valid UTF-8 within the limits needs neither repair nor truncation */
        if (!c->utf8_ok || k.n > APM_MAX_META_KEY_LEN || v.n > APM_MAX_META_VAL_LEN) {
            int structured = is_structured_key(k);
            TRY(finish_str(c, &k, structured ? 0 : APM_MAX_META_KEY_LEN, 1));
            TRY(finish_str(c, &v, structured ? 0 : APM_MAX_META_VAL_LEN, 1));
        }
        struct apm_meta *m = &me[j];
        char *ks, *vs;
        TRY(arena_cstr(c, k, &ks));
        TRY(arena_cstr(c, v, &vs));
        /* what DATADOG__TRACE__SPAN__META_ENTRY__INIT sets, field by field */
        m->e.base.descriptor = desc;
        m->e.base.n_unknown_fields = 0;
        m->e.base.unknown_fields = NULL;
        m->e.key = ks;
        m->e.value = vs;
        m->k = ks;
        m->v = vs;
        m->kn = (uint32_t)k.n;
        m->vn = (uint32_t)v.n;
        mp[j] = &m->e;
        if (e->kn == 8 && memcmp(e->k, "_dd.p.dm", 8) == 0) {
            x->dm_idx = (int)j;
        } else if (e->kn == 9 && memcmp(e->k, "_dd.p.tid", 9) == 0) {
            x->tid_idx = (int)j;
        }
        j++;
    }
    dd->n_meta = j;
    dd->meta = mp;
    w->me = me;
    w->n_me = j;
    w->cap_me = n + 2;

    n = c->metrics.n - c->metrics.dead;
    Datadog__Trace__Span__MetricsEntry *xe = o2d_arena_alloc(c->a, (n ? n : 1) * sizeof(*xe));
    Datadog__Trace__Span__MetricsEntry **xp = o2d_arena_alloc(c->a, (n ? n : 1) * sizeof(*xp));
    if (xe == NULL || xp == NULL) {
        return O2D_ERR_TOO_LARGE;
    }
    static const Datadog__Trace__Span__MetricsEntry xe_init =
        DATADOG__TRACE__SPAN__METRICS_ENTRY__INIT;
    j = 0;
    for (size_t i = 0; i < c->metrics.n; i++) {
        const struct tab_entry *e = &c->metrics.e[i];
        if (e->k == NULL) {
            continue;
        }
        struct apm_str k = {e->k, e->kn};
        if (!c->utf8_ok || k.n > APM_MAX_META_KEY_LEN) {
            TRY(finish_str(c, &k, APM_MAX_META_KEY_LEN, 1));
        }
        xe[j] = xe_init;
        TRY(arena_cstr(c, k, &xe[j].key));
        xe[j].value = e->d;
        xp[j] = &xe[j];
        if (e->kn == 21 && memcmp(e->k, "_sampling_priority_v1", 21) == 0) {
            x->prio_idx = (int)j;
        } else if (e->kn == 10 && memcmp(e->k, "_top_level", 10) == 0) {
            x->top_idx = (int)j;
        }
        j++;
    }
    dd->n_metrics = j;
    dd->metrics = xp;
    return O2D_OK;
}

/* The grpc status code concept (mappings.json rpc.grpc.status_code). */
static int grpc_code(struct ctx *c, const struct apm_lookup *lk, struct apm_str *out)
{
    static const enum apm_key keys[] = {AK_RPC_GRPC_STATUS_CODE, AK_GRPC_CODE,
                                        AK_RPC_GRPC_STATUS_CODE_DOT, AK_GRPC_STATUS_CODE};
    TRY(apm_lookup_str(lk, keys, 4, out));
    if (out->n > 0) {
        return O2D_OK;
    }
    struct apm_str sysname, sys;
    enum apm_key k = AK_RPC_SYSTEM_NAME;
    TRY(apm_lookup_str(lk, &k, 1, &sysname));
    k = AK_RPC_SYSTEM;
    TRY(apm_lookup_str(lk, &k, 1, &sys));
    int grpc = (sysname.n == 4 && memcmp(sysname.p, "grpc", 4) == 0) ||
               (sysname.n == 0 && sys.n == 4 && memcmp(sys.p, "grpc", 4) == 0);
    if (grpc) {
        k = AK_RPC_RESPONSE_STATUS_CODE;
        TRY(apm_lookup_str(lk, &k, 1, out));
    }
    (void)c;
    return O2D_OK;
}

/*
 * The span's own links field (Span.spanLinks, DataDog/datadog-agent pkg/proto/datadog/trace/
 * span.proto SpanLink, taken by the trace intake since the Agent forwards tracers' links
 * there, 7.52 and later, PR #21715), besides the `_dd.span_links` meta JSON the agent's OTLP
 * path writes: trace id in two 64-bit halves, span id, attribute values as strings
 * (AsString, as MarshalLinks writes them), tracestate, and W3C flags with bit 31 set to say
 * they are known (the proto's rule), from OTLP's flags when it carries them (non-zero).
 */
static int span_links(struct ctx *c, const OtlpSpan *span, DdSpan *dd)
{
    size_t n = span->n_links;
    Datadog__Trace__SpanLink *ls = o2d_arena_alloc(c->a, n * sizeof(*ls));
    Datadog__Trace__SpanLink **lp = o2d_arena_alloc(c->a, n * sizeof(*lp));
    if (ls == NULL || lp == NULL) {
        return O2D_ERR_TOO_LARGE;
    }
    for (size_t i = 0; i < n; i++) {
        const Opentelemetry__Proto__Trace__V1__Span__Link *l = span->links[i];
        Datadog__Trace__SpanLink *d = &ls[i];
        datadog__trace__span_link__init(d);
        if (l->trace_id.len == 16) {
            d->traceid_high = be64(l->trace_id.data);
            d->traceid = be64(l->trace_id.data + 8);
        }
        d->spanid = span_id_u64(&l->span_id);
        if (l->trace_state[0] != '\0') {
            d->tracestate = l->trace_state; /* in the request, as the span */
        }
        if (l->flags != 0) {
            d->flags = (l->flags & 0xffu) | 0x80000000u;
        }
        size_t na = l->n_attributes;
        if (na > 0) {
            Datadog__Trace__SpanLink__AttributesEntry *ae = o2d_arena_alloc(c->a, na * sizeof(*ae));
            Datadog__Trace__SpanLink__AttributesEntry **ap =
                o2d_arena_alloc(c->a, na * sizeof(*ap));
            if (ae == NULL || ap == NULL) {
                return O2D_ERR_TOO_LARGE;
            }
            for (size_t j = 0; j < na; j++) {
                struct apm_str v;
                datadog__trace__span_link__attributes_entry__init(&ae[j]);
                ae[j].key = l->attributes[j]->key;
                TRY(apm_value_as_string(c->a, l->attributes[j]->value, &v));
                TRY(arena_cstr(c, v, &ae[j].value));
                ap[j] = &ae[j];
            }
            d->attributes = ap;
            d->n_attributes = na;
        }
        lp[i] = d;
    }
    dd->spanlinks = lp;
    dd->n_spanlinks = n;
    return O2D_OK;
}

/* apm_normalize_tag(value) of s, remembered for the next spans (struct ctx tag_in). */
static int normalize_tag_value(struct ctx *c, struct apm_str *s)
{
    for (int i = 0; i < 2; i++) {
        if (c->tag_in[i].p == s->p && c->tag_in[i].n == s->n) {
            *s = c->tag_out[i];
            return O2D_OK;
        }
    }
    struct apm_str out;
    TRY(apm_normalize_tag(c->a, *s, 1, &out));
    unsigned i = c->tag_next++ & 1;
    c->tag_in[i] = *s;
    c->tag_out[i] = out;
    *s = out;
    return O2D_OK;
}

static int translate_span(struct ctx *c, const OtlpScopeSpans *ss, const OtlpSpan *span,
                          struct xspan *x)
{
    struct apm_attrs six;
    if (span->n_attributes > c->cls_cap) {
        size_t cap = c->cls_cap ? c->cls_cap * 2 : 64;
        while (cap < span->n_attributes) {
            cap *= 2;
        }
        c->cls = o2d_arena_alloc(c->a, cap * sizeof(*c->cls));
        if (c->cls == NULL) {
            return O2D_ERR_TOO_LARGE;
        }
        c->cls_cap = cap;
    }
    apm_names_index(&six, span->attributes, span->n_attributes, c->cls);
    struct apm_lookup lk = {c->a, &six, &c->res_ix};
    const Opentelemetry__Proto__Trace__V1__Status *st = span->status;
    int kind = (int)span->kind;
    int status = st != NULL ? (int)st->code : 0;
    size_t nscope = ss->scope != NULL ? ss->scope->n_attributes : 0;

    TRY(tab_reset(c->a, &c->meta, span->n_attributes + c->n_res_attrs + nscope + 24));
    TRY(tab_reset(c->a, &c->metrics, span->n_attributes + 8));

    struct apm_span *w = o2d_arena_alloc(c->a, sizeof(*w));
    if (w == NULL) {
        return O2D_ERR_TOO_LARGE;
    }
    /* the span's fields once, by its INIT (not zeroed first as well), then the notes */
    DdSpan *dd = &w->dd;
    datadog__trace__span__init(dd);
    w->me = NULL;
    w->n_me = w->cap_me = 0;
    w->service = w->name = w->resource = w->type = (struct apm_str){NULL, 0};
    x->dd = dd;
    x->kind = kind;

    /* ---- otelSpanToDDSpanMinimal ---- */
    struct apm_str svc, name, resource, type, s;
    enum apm_key k = AK_SERVICE_NAME;
    TRY(apm_lookup_str(&lk, &k, 1, &svc));
    c->span_id = span_id_u64(&span->span_id);
    int rec = c->cfg->recorder != NULL;
    if (svc.n == 0) {
        /* DD_SERVICE fills the gap before the agent's default (our addition). */
        int dd_service = c->cfg->default_service != NULL && c->cfg->default_service[0] != '\0';
        svc = dd_service ? cstr(c->cfg->default_service) : APM_STR_LIT("otlpresourcenoservicename");
        if (rec) {
            note(c, APM_REC_CONFIG, NULL, APM_REC_DEFAULT, APM_STR_LIT("service"),
                 dd_service ? "no service.name: DD_SERVICE"
                            : "no service.name and no DD_SERVICE: the agent's default");
        }
    } else if (rec) {
        note(c, APM_REC_RESOURCE, "service.name", APM_REC_FIELD, APM_STR_LIT("service"),
             "normalized as the agent does (lowercase, allowed characters, 100 bytes)");
    }
    TRY(apm_normalize_service(c->a, svc, &svc));

    dd->traceid = span->trace_id.len == 16 ? be64(span->trace_id.data + 8) : 0;
    x->trace_hi = span->trace_id.len == 16 ? be64(span->trace_id.data) : 0;
    dd->spanid = span_id_u64(&span->span_id);
    dd->parentid = span_id_u64(&span->parent_span_id);
    dd->start = (int64_t)span->start_time_unix_nano;
    dd->duration = (int64_t)(span->end_time_unix_nano - span->start_time_unix_nano);
    dd->error = status == 2;

    if (c->v2) {
        TRY(apm_names_operation_v2(&lk, kind, &name));
        TRY(apm_names_resource_v2(&lk, span, kind, &resource));
    } else {
        TRY(apm_names_operation_v1(&lk, span, ss, c->cfg, &name));
        TRY(apm_names_resource_v1(&lk, span, &resource));
    }
    TRY(apm_names_type(&lk, kind, &type));

    TRY(set_meta(c, APM_STR_LIT("span.kind"), apm_names_kind(kind)));
    static const enum apm_key status_keys[] = {AK_HTTP_STATUS_CODE, AK_HTTP_RESPONSE_STATUS_CODE};
    int64_t code;
    if (lookup_int64(c, &lk, status_keys, 2, &code) && code >= 0) {
        if (rec) {
            static const char *const names[] = {"http.status_code", "http.response.status_code"};
            for (int i = 0; i < 2; i++) {
                note(c, APM_REC_SPAN, names[i], APM_REC_METRIC, APM_STR_LIT("http.status_code"),
                     "the status code (http.status_code first, then "
                     "http.response.status_code; span, then resource)");
            }
        }
        TRY(set_metric(c, APM_STR_LIT("http.status_code"), (double)code));
    }
    TRY(grpc_code(c, &lk, &s));
    if (s.n > 0) {
        TRY(set_meta(c, APM_STR_LIT("rpc.grpc.status_code"), s));
    }
    int by_kind = c->cfg->compute_top_level_by_span_kind;
    if (by_kind && (dd->parentid == 0 || span->parent_span_id.len == 0 || kind == APM_KIND_SERVER ||
                    kind == APM_KIND_CONSUMER)) {
        TRY(set_metric(c, APM_STR_LIT("_top_level"), 1));
    }
    static const enum apm_key measured_key[] = {AK_DD_MEASURED};
    int64_t measured;
    if (lookup_int64(c, &lk, measured_key, 1, &measured) && measured == 1) {
        TRY(set_metric(c, APM_STR_LIT("_dd.measured"), 1));
    } else if (by_kind && (kind == APM_KIND_CLIENT || kind == APM_KIND_PRODUCER)) {
        TRY(set_metric(c, APM_STR_LIT("_dd.measured"), 1));
    }
    if (span->trace_state[0] != '\0') {
        TRY(set_meta(c, APM_STR_LIT("w3c.tracestate"), cstr(span->trace_state)));
    }
    /* sampling.go: a numeric `_sample_rate` span attribute (SetSampleRateFromAttribute), else
     * the probability the tracestate carries (SetSampleRateFromTracestate). */
    const OtlpAnyValue *sr = lk.span->v[AK_SAMPLE_RATE];
    double rate;
    if (is_numeric(sr)) {
        TRY(set_metric(c, APM_STR_LIT("_sample_rate"), numeric(sr)));
    } else if (span->trace_state[0] != '\0' &&
               apm_sample_rate_from_tracestate(span->trace_state, strlen(span->trace_state),
                                               &rate)) {
        TRY(set_metric(c, APM_STR_LIT("_sample_rate"), rate));
    }

    /* ---- OtelSpanToDDSpan: span attributes (they win on collisions) ---- */
    for (size_t i = 0; i < span->n_attributes; i++) {
        const OtlpKeyValue *kv = span->attributes[i];
        struct apm_str key;
        TRY(dd_key(c, kv->key, &c->cls[i], &key));
        if (rec) {
            note_copy(c, APM_REC_SPAN, kv->key, key, is_numeric(kv->value));
        }
        if (is_numeric(kv->value)) {
            TRY(metric_if_empty(c, key, numeric(kv->value)));
        } else if (key.n > 0) {
            struct apm_str v;
            TRY(apm_value_as_string(c->a, kv->value, &v));
            TRY(meta_if_empty(c, key, v));
        }
    }
    TRY(hex_str(c, span->trace_id.data, span->trace_id.len == 16 ? 16 : 0, &s));
    TRY(set_meta(c, APM_STR_LIT("otel.trace_id"), s));
    if (GET_META(c, "version") == NULL) {
        k = AK_SERVICE_VERSION;
        TRY(apm_lookup_str(&lk, &k, 1, &s));
        if (rec && s.n > 0) {
            note(c, APM_REC_RESOURCE, "service.version", APM_REC_FIELD, APM_STR_LIT("version"),
                 NULL);
        }
        if (s.n == 0 && c->cfg->default_version != NULL) {
            s = cstr(c->cfg->default_version); /* DD_VERSION (our addition) */
            if (rec && s.n > 0) {
                note(c, APM_REC_CONFIG, NULL, APM_REC_DEFAULT, APM_STR_LIT("version"),
                     "no service.version: DD_VERSION");
            }
        }
        if (s.n > 0) {
            TRY(normalize_tag_value(c, &s));
            TRY(set_meta(c, APM_STR_LIT("version"), s));
        }
    }
    if (span->n_events > 0) {
        o2d_buf_reset(&c->scratch);
        TRY(apm_json_events(&c->scratch, c->a, span));
        TRY(copy_scratch(c, &s));
        TRY(set_meta(c, APM_STR_LIT("events"), s));
        for (size_t i = 0; i < span->n_events; i++) {
            if (strcmp(span->events[i]->name, "exception") == 0) {
                TRY(set_meta(c, APM_STR_LIT("_dd.span_events.has_exception"), APM_STR_LIT("true")));
                break;
            }
        }
    }
    if (span->n_links > 0) {
        o2d_buf_reset(&c->scratch);
        TRY(apm_json_links(&c->scratch, c->a, span));
        TRY(copy_scratch(c, &s));
        TRY(set_meta(c, APM_STR_LIT("_dd.span_links"), s));
        TRY(span_links(c, span, dd));
    }
    if (ss->scope != NULL && ss->scope->name[0] != '\0') {
        struct apm_str sn = cstr(ss->scope->name);
        TRY(set_meta(c, APM_STR_LIT("otel.scope.name"), sn));
        TRY(set_meta(c, APM_STR_LIT("otel.library.name"), sn));
    }
    if (ss->scope != NULL && ss->scope->version[0] != '\0') {
        struct apm_str sv = cstr(ss->scope->version);
        TRY(set_meta(c, APM_STR_LIT("otel.scope.version"), sv));
        TRY(set_meta(c, APM_STR_LIT("otel.library.version"), sv));
    }
    static const char *const status_names[] = {"Unset", "Ok", "Error"};
    TRY(set_meta(c, APM_STR_LIT("otel.status_code"),
                 cstr(status >= 0 && status <= 2 ? status_names[status] : "")));
    if (st != NULL && st->message[0] != '\0') {
        TRY(set_meta(c, APM_STR_LIT("otel.status_description"), cstr(st->message)));
    }
    if (status == 2) {
        TRY(set_error_tags(c, span));
    }
    if (GET_META(c, "env") == NULL) {
        static const enum apm_key env_keys[] = {AK_DEPLOYMENT_ENVIRONMENT_NAME,
                                                AK_DEPLOYMENT_ENVIRONMENT};
        TRY(apm_lookup_str(&lk, env_keys, 2, &s));
        if (rec && s.n > 0) {
            note(c, APM_REC_RESOURCE, "deployment.environment.name", APM_REC_FIELD,
                 APM_STR_LIT("env"), "or deployment.environment; normalized as a tag value");
            note(c, APM_REC_RESOURCE, "deployment.environment", APM_REC_FIELD, APM_STR_LIT("env"),
                 "used when deployment.environment.name is absent");
        }
        if (s.n == 0 && c->cfg->default_env != NULL) {
            s = cstr(c->cfg->default_env); /* DD_ENV (our addition) */
            if (rec && s.n > 0) {
                note(c, APM_REC_CONFIG, NULL, APM_REC_DEFAULT, APM_STR_LIT("env"),
                     "no deployment.environment(.name): DD_ENV");
            }
        }
        if (s.n > 0) {
            TRY(normalize_tag_value(c, &s));
            TRY(set_meta(c, APM_STR_LIT("env"), s));
        }
    }
    for (size_t i = 0; i < c->n_res_attrs; i++) {
        if (rec) {
            note_copy(c, APM_REC_RESOURCE, c->res->attributes[i]->key, c->res_attrs[i].key, 0);
        }
        const struct res_attr *ra = &c->res_attrs[i];
        if (ra->key.n > 0) {
            TRY(meta_if_empty_h(c, ra->key, ra->h, ra->val));
        }
    }
    for (size_t i = 0; i < nscope; i++) {
        const OtlpKeyValue *kv = ss->scope->attributes[i];
        if (rec) {
            note(c, APM_REC_SCOPE, kv->key, APM_REC_TAG, cstr(kv->key), NULL);
        }
        TRY(apm_value_as_string(c->a, kv->value, &s));
        TRY(set_meta(c, cstr(kv->key), s));
    }
    /* DD_TAGS: as ddtrace's global tags, below whatever the span says. */
    for (size_t i = 0; i < c->cfg->n_tags; i++) {
        if (get_meta(c, c->cfg->tags[i].key) == NULL) {
            if (rec) {
                note(c, APM_REC_CONFIG, NULL, APM_REC_DEFAULT, cstr(c->cfg->tags[i].key),
                     "exporters.datadog.tags (DD_TAGS)");
            }
            TRY(set_meta(c, cstr(c->cfg->tags[i].key), cstr(c->cfg->tags[i].value)));
        }
    }
    if (GET_META(c, "db.name") == NULL) {
        /* Resource first here, unlike the other lookups: the agent reads db.namespace with
         * GetOTelAttrValInResAndSpanAttrs (transform_test.go TestOtelSpanToDDSpanDBNameMapping,
         * "db.namespace in both, resource takes precedence"). */
        struct apm_lookup res_first = {c->a, &c->res_ix, &six};
        k = AK_DB_NAMESPACE;
        TRY(apm_lookup_str(&res_first, &k, 1, &s));
        if (s.n > 0) {
            TRY(set_meta(c, APM_STR_LIT("db.name"), s));
        }
    }

    /* ---- agent normalizer (normalizer.go normalize) ---- */
    struct tab_entry *e;
    static const struct apm_str svc_like[] = {APM_STR_LIT("peer.service"),
                                              APM_STR_LIT("_dd.base_service")};
    for (int i = 0; i < 2; i++) {
        if ((e = get_meta_n(c, svc_like[i].p, svc_like[i].n)) != NULL && e->vn > 0) {
            struct apm_str v = {e->v, e->vn};
            TRY(repair_utf8(c, &v));
            TRY(apm_normalize_peer_service(c->a, v, &v));
            e->v = v.p;
            e->vn = v.n;
        }
    }
    TRY(repair_utf8(c, &name));
    TRY(apm_normalize_name(c->a, name, &name));
    if (resource.n == 0) {
        resource = name;
    }
    if (dd->parentid == dd->traceid && dd->parentid == dd->spanid) {
        dd->parentid = 0;
    }
    if (dd->duration < 0 || (dd->start > 0 && dd->duration > INT64_MAX - dd->start)) {
        dd->duration = 0;
    }
    /* A start before 2000 is garbage: it becomes now - duration, or now when that is negative
     * (DataDog/datadog-agent pkg/trace/traceutil/normalize/duration.go FixStartTime, applied
     * after FixDuration by pkg/trace/agent/normalizer.go normalize()). The duration stays. */
    if (dd->start < YEAR_2000_NS) {
        int64_t start;
        if (__builtin_sub_overflow(c->now_ns, dd->duration, &start) || start < 0) {
            start = c->now_ns;
        }
        dd->start = start;
    }
    if ((e = GET_META(c, "env")) != NULL && e->vn > 0) {
        struct apm_str v = {e->v, e->vn};
        TRY(normalize_tag_value(c, &v));
        e->v = v.p;
        e->vn = v.n;
    }
    if ((e = GET_META(c, "http.status_code")) != NULL) {
        int64_t sc;
        if (!parse_int64((struct apm_str){e->v, e->vn}, &sc) || sc < 100 || sc >= 600) {
            e->k = NULL;
            c->meta.dead++;
        }
    }

    /* ---- obfuscation by span type (agent/obfuscate.go; exporter defaults) ---- */
    int is_sql = (type.n == 3 && memcmp(type.p, "sql", 3) == 0) ||
                 (type.n == 9 && memcmp(type.p, "cassandra", 9) == 0);
    if (is_sql && resource.n > 0) {
        struct apm_str orig = resource;
        TRY(obfuscate_sql(c, orig, &resource));
        TRY(set_meta(c, APM_STR_LIT("sql.query"), resource));
        if (rec) {
            note(c, APM_REC_CONFIG, NULL, APM_REC_OBFUSCATED, APM_STR_LIT("resource"),
                 "SQL obfuscated (literals replaced by ?), also written to sql.query");
        }
        static const char *const stmt_keys[] = {"db.statement", "db.query.text"};
        for (int i = 0; i < 2; i++) {
            if ((e = get_meta(c, stmt_keys[i])) == NULL || e->vn == 0) {
                continue;
            }
            struct apm_str v = {e->v, e->vn};
            if (rec) {
                note(c, APM_REC_SPAN, stmt_keys[i], APM_REC_OBFUSCATED, cstr(stmt_keys[i]),
                     "SQL obfuscated (literals replaced by ?)");
            }
            if (v.n == orig.n && memcmp(v.p, orig.p, v.n) == 0) {
                v = resource;
            } else {
                TRY(obfuscate_sql(c, v, &v));
            }
            e->v = v.p;
            e->vn = v.n;
        }
    } else if ((type.n == 5 && memcmp(type.p, "redis", 5) == 0) ||
               (type.n == 6 && memcmp(type.p, "valkey", 6) == 0)) {
        TRY(quantize_redis(c, resource, &resource));
        if (rec) {
            note(c, APM_REC_CONFIG, NULL, APM_REC_OBFUSCATED, APM_STR_LIT("resource"),
                 "Redis command quantized (arguments dropped)");
        }
    }

    TRY(out_str(c, svc, 0, &dd->service, &w->service));
    TRY(out_str(c, name, 0, &dd->name, &w->name));
    TRY(out_str(c, resource, APM_MAX_RESOURCE_LEN, &dd->resource, &w->resource));
    TRY(out_str(c, type, APM_MAX_TYPE_LEN, &dd->type, &w->type));
    return emit_maps(c, w, x);
}

/* ---- chunks ---- */

static Datadog__Trace__Span__MetaEntry *find_meta(const DdSpan *s, const char *k)
{
    for (size_t i = 0; i < s->n_meta; i++) {
        if (strcmp(s->meta[i]->key, k) == 0) {
            return s->meta[i];
        }
    }
    return NULL;
}

/* Sets meta k of s, whose index emit_maps noted in *idx (-1: absent, then appended into the
 * room emit_maps left after its entries: until translation returns, s->meta is still its
 * array, and n_meta its n_me). */
static int add_meta(struct o2d_arena *a, DdSpan *s, int *idx, struct apm_str k, struct apm_str v)
{
    struct apm_span *w = (struct apm_span *)(void *)s;
    Datadog__Trace__Span__MetaEntry *e;
    if (*idx >= 0) {
        e = s->meta[*idx];
    } else if (w->n_me < w->cap_me) {
        e = &w->me[w->n_me++].e;
        datadog__trace__span__meta_entry__init(e);
        e->key = (char *)k.p;
        *idx = (int)s->n_meta;
        s->meta[s->n_meta++] = e;
    } else {
        Datadog__Trace__Span__MetaEntry **np = o2d_arena_alloc(a, (s->n_meta + 1) * sizeof(*np));
        e = o2d_arena_alloc(a, sizeof(*e));
        if (np == NULL || e == NULL) {
            return O2D_ERR_TOO_LARGE;
        }
        datadog__trace__span__meta_entry__init(e);
        e->key = (char *)k.p;
        memcpy(np, s->meta, s->n_meta * sizeof(*np));
        *idx = (int)s->n_meta;
        np[s->n_meta++] = e;
        s->meta = np;
    }
    e->value = (char *)v.p;
    uintptr_t off = (uintptr_t)e - (uintptr_t)w->me;
    if (off < w->n_me * sizeof(*w->me)) {
        struct apm_meta *m = (struct apm_meta *)(void *)e;
        m->k = e->key;
        m->v = e->value;
        m->kn = (uint32_t)k.n;
        m->vn = (uint32_t)v.n;
    }
    return O2D_OK;
}

/* Sets or removes metric _top_level of x's span (its index in x->top_idx). */
static int set_top_level(struct o2d_arena *a, struct xspan *x, int on)
{
    DdSpan *s = x->dd;
    if (!on) {
        if (x->top_idx >= 0) {
            size_t t = (size_t)x->top_idx;
            memmove(&s->metrics[t], &s->metrics[t + 1],
                    (s->n_metrics - t - 1) * sizeof(*s->metrics));
            s->n_metrics--;
            if (x->prio_idx > x->top_idx) {
                x->prio_idx--;
            }
            x->top_idx = -1;
        }
        return O2D_OK;
    }
    if (x->top_idx >= 0) {
        s->metrics[x->top_idx]->value = 1;
        return O2D_OK;
    }
    Datadog__Trace__Span__MetricsEntry **np = o2d_arena_alloc(a, (s->n_metrics + 1) * sizeof(*np));
    Datadog__Trace__Span__MetricsEntry *e = o2d_arena_alloc(a, sizeof(*e));
    if (np == NULL || e == NULL) {
        return O2D_ERR_TOO_LARGE;
    }
    datadog__trace__span__metrics_entry__init(e);
    e->key = "_top_level";
    e->value = 1;
    memcpy(np, s->metrics, s->n_metrics * sizeof(*np));
    x->top_idx = (int)s->n_metrics;
    np[s->n_metrics++] = e;
    s->metrics = np;
    return O2D_OK;
}

/* Open-addressing set of span ids of one chunk -> index. */
struct idmap {
    uint64_t *ids;
    uint32_t *idx;
    size_t mask;
};

static int idmap_build(struct o2d_arena *a, struct idmap *m, DdSpan **spans, size_t n)
{
    size_t cap = 16;
    while (cap < n * 2) {
        cap *= 2;
    }
    m->ids = o2d_arena_alloc(a, cap * sizeof(*m->ids));
    m->idx = o2d_arena_alloc(a, cap * sizeof(*m->idx));
    if (m->ids == NULL || m->idx == NULL) {
        return O2D_ERR_TOO_LARGE;
    }
    memset(m->idx, 0, cap * sizeof(*m->idx));
    m->mask = cap - 1;
    for (size_t i = 0; i < n; i++) {
        uint64_t id = spans[i]->spanid;
        size_t h = (size_t)((id * 0x9E3779B97F4A7C15ull) >> 32) & m->mask;
        while (m->idx[h] != 0 && m->ids[h] != id) {
            h = (h + 1) & m->mask;
        }
        m->ids[h] = id;
        m->idx[h] = (uint32_t)(i + 1); /* the last span with an id wins */
    }
    return O2D_OK;
}

static DdSpan *idmap_get(const struct idmap *m, DdSpan **spans, uint64_t id)
{
    size_t h = (size_t)((id * 0x9E3779B97F4A7C15ull) >> 32) & m->mask;
    while (m->idx[h] != 0) {
        if (m->ids[h] == id) {
            return spans[m->idx[h] - 1];
        }
        h = (h + 1) & m->mask;
    }
    return NULL;
}

/* traceutil.GetRoot: the last span with no parent, else a span whose parent is not in the
 * chunk, else the last span. */
static DdSpan *chunk_root(const struct idmap *m, DdSpan **spans, size_t n)
{
    for (size_t i = n; i-- > 0;) {
        if (spans[i]->parentid == 0) {
            return spans[i];
        }
    }
    for (size_t i = n; i-- > 0;) {
        if (idmap_get(m, spans, spans[i]->parentid) == NULL) {
            return spans[i];
        }
    }
    return spans[n - 1];
}

static int resource_ignored(const struct apm_config *cfg, const char *resource)
{
    for (size_t i = 0; i < cfg->n_ignore_resources; i++) {
        if (regexec(&cfg->ignore_resources[i], resource, 0, NULL, 0) == 0) {
            return 1;
        }
    }
    return 0;
}

static const char *meta_or_empty(const DdSpan *s, const char *k)
{
    Datadog__Trace__Span__MetaEntry *e = find_meta(s, k);
    return e != NULL ? e->value : "";
}

/* traceutil.GetEnv / GetAppVersion: the root's tag, else the first span's that has one. */
static const char *chunk_tag(const DdSpan *root, DdTraceChunk *ch, const char *k)
{
    const char *v = meta_or_empty(root, k);
    for (size_t i = 0; v[0] == '\0' && i < ch->n_spans; i++) {
        v = meta_or_empty(ch->spans[i], k);
    }
    return v;
}

static int chunk_tags(struct o2d_arena *a, DdTraceChunk *ch, const char *dm)
{
    size_t n = dm != NULL ? 2 : 1;
    Datadog__Trace__TraceChunk__TagsEntry *te = o2d_arena_alloc(a, n * sizeof(*te));
    Datadog__Trace__TraceChunk__TagsEntry **tp = o2d_arena_alloc(a, n * sizeof(*tp));
    if (te == NULL || tp == NULL) {
        return O2D_ERR_TOO_LARGE;
    }
    for (size_t i = 0; i < n; i++) {
        datadog__trace__trace_chunk__tags_entry__init(&te[i]);
        tp[i] = &te[i];
    }
    /* The OTLP receiver's sampling rate: the exporter keeps 100%. */
    te[0].key = "_dd.otlp_sr";
    te[0].value = "1.00";
    if (dm != NULL) {
        te[1].key = "_dd.p.dm";
        te[1].value = (char *)dm;
    }
    ch->tags = tp;
    ch->n_tags = n;
    return O2D_OK;
}

/* xs: the chunk's spans' per-span results, in the chunk's order. */
static int finish_chunk(struct ctx *c, DdTraceChunk *ch, struct xspan **xs, DdTracerPayload *tp,
                        size_t *ignored)
{
    DdSpan **spans = ch->spans;
    size_t n = ch->n_spans;
    struct idmap m;
    TRY(idmap_build(c->a, &m, spans, n));
    DdSpan *root = chunk_root(&m, spans, n);
    if (resource_ignored(c->cfg, root->resource)) {
        *ignored += n;
        ch->n_spans = 0;
        return O2D_OK;
    }
    /* createChunks: a user priority from _sampling_priority_v1 (the last span's) is a manual
     * decision (-4); otherwise the 100% probabilistic sampler keeps the trace (-9). */
    int prio = 1;
    const char *dm = "-9";
    for (size_t i = 0; i < n; i++) {
        if (xs[i]->prio_idx >= 0) {
            /* int32 in the proto; NaN and values outside it saturate (our choice: C leaves
             * the conversion undefined) */
            double v = spans[i]->metrics[xs[i]->prio_idx]->value;
            prio = v != v ? 0 : v <= INT32_MIN ? INT32_MIN : v >= INT32_MAX ? INT32_MAX : (int)v;
            dm = "-4";
        }
    }
    ch->priority = prio;
    if (prio > 0) {
        TRY(add_meta(c->a, spans[0], &xs[0]->dm_idx, APM_STR_LIT("_dd.p.dm"), cstr(dm)));
    }
    /* setChunkAttributes promotes the first span's decision maker to a chunk tag. */
    const char *chunk_dm = NULL;
    for (size_t i = 0; i < n && chunk_dm == NULL; i++) {
        chunk_dm = xs[i]->dm_idx >= 0 ? spans[i]->meta[xs[i]->dm_idx]->value : NULL;
    }
    TRY(chunk_tags(c->a, ch, chunk_dm));
    /* The high 64 bits of a 128-bit trace id, as tracers tag the first span of a chunk (our
     * addition: the OTLP path keeps them only in otel.trace_id). */
    if (xs[0]->trace_hi != 0 && xs[0]->tid_idx < 0) {
        uint8_t hi[8];
        for (int i = 0; i < 8; i++) {
            hi[i] = (uint8_t)(xs[0]->trace_hi >> (56 - 8 * i));
        }
        struct apm_str tid; /* 16 lowercase hex digits, as "%016" PRIx64 writes them */
        TRY(hex_str(c, hi, 8, &tid));
        TRY(add_meta(c->a, spans[0], &xs[0]->tid_idx, APM_STR_LIT("_dd.p.tid"), tid));
    }
    if (!c->cfg->compute_top_level_by_span_kind) {
        for (size_t i = 0; i < n; i++) {
            DdSpan *s = spans[i];
            DdSpan *parent = s->parentid != 0 ? idmap_get(&m, spans, s->parentid) : NULL;
            int top =
                s->parentid == 0 || parent == NULL || strcmp(parent->service, s->service) != 0;
            TRY(set_top_level(c->a, xs[i], top));
        }
    }
    if (tp->hostname[0] == '\0') {
        tp->hostname = (char *)meta_or_empty(root, "_dd.hostname");
    }
    if (tp->env[0] == '\0') {
        tp->env = (char *)chunk_tag(root, ch, "env");
    }
    if (tp->appversion[0] == '\0') {
        tp->appversion = (char *)chunk_tag(root, ch, "version");
    }
    return O2D_OK;
}

/* GetOTelAttrVal(resource, true, keys...): the first key present, NormalizeTagValue'd. */
static int res_attr_norm(struct ctx *c, const OtlpResource *res, const char *const *keys,
                         size_t nkeys, char **out)
{
    *out = "";
    if (res == NULL) {
        return O2D_OK;
    }
    for (size_t k = 0; k < nkeys; k++) {
        for (size_t i = 0; i < res->n_attributes; i++) {
            const char *ak = res->attributes[i]->key;
            if (ak[0] == keys[k][0] && strcmp(ak, keys[k]) == 0) {
                struct apm_str v;
                TRY(apm_value_as_string(c->a, res->attributes[i]->value, &v));
                TRY(repair_utf8(c, &v));
                TRY(apm_normalize_tag(c->a, v, 1, &v));
                return arena_cstr(c, v, out);
            }
        }
    }
    return O2D_OK;
}

static int payload_tags(struct ctx *c, DdTracerPayload *tp, struct apm_str tags)
{
    if (tags.n == 0) {
        return O2D_OK;
    }
    Datadog__Trace__TracerPayload__TagsEntry *te = o2d_arena_alloc(c->a, sizeof(*te));
    Datadog__Trace__TracerPayload__TagsEntry **pp = o2d_arena_alloc(c->a, sizeof(*pp));
    if (te == NULL || pp == NULL) {
        return O2D_ERR_TOO_LARGE;
    }
    datadog__trace__tracer_payload__tags_entry__init(te);
    te->key = "_dd.tags.container";
    TRY(out_str(c, tags, 0, &te->value, NULL));
    pp[0] = te;
    tp->tags = pp;
    tp->n_tags = 1;
    return O2D_OK;
}

/* tags + the ECS task's tags whose keys tags does not have yet, comma-separated, in the arena
 * (tags may point into the scratch buffer). */
static int join_ecs_tags(struct ctx *c, struct apm_str tags, const char *const *et, size_t en,
                         struct apm_str *out)
{
    size_t cap = tags.n + 1;
    for (size_t i = 0; i < en; i++) {
        cap += strlen(et[i]) + 1;
    }
    char *d = o2d_arena_alloc(c->a, cap);
    if (d == NULL) {
        return O2D_ERR_TOO_LARGE;
    }
    memcpy(d, tags.p, tags.n);
    size_t n = tags.n;
    for (size_t i = 0; i < en; i++) {
        const char *colon = strchr(et[i], ':');
        size_t kn = colon != NULL ? (size_t)(colon - et[i]) + 1 : strlen(et[i]);
        int dup = 0;
        for (size_t at = 0; at < tags.n && !dup; at++) {
            if ((at == 0 || tags.p[at - 1] == ',') && tags.n - at >= kn &&
                memcmp(tags.p + at, et[i], kn) == 0) {
                dup = 1;
            }
        }
        if (dup) {
            continue;
        }
        if (n > 0) {
            d[n++] = ',';
        }
        size_t tn = strlen(et[i]);
        memcpy(d + n, et[i], tn);
        n += tn;
    }
    d[n] = '\0';
    out->p = d;
    out->n = n;
    return O2D_OK;
}

static int translate_resource_spans(struct ctx *c, const OtlpResourceSpans *rs,
                                    struct apm_result *out)
{
    const OtlpResource *res = rs->resource;
    size_t nres = res != NULL ? res->n_attributes : 0;
    struct apm_key_class *rcls = o2d_arena_alloc(c->a, (nres ? nres : 1) * sizeof(*rcls));
    if (rcls == NULL) {
        return O2D_ERR_TOO_LARGE;
    }
    apm_names_index(&c->res_ix, nres ? res->attributes : NULL, nres, rcls);
    /* Resource attributes are copied into every span's meta: map their keys and format their
     * values once. */
    c->res_attrs = o2d_arena_alloc(c->a, (nres ? nres : 1) * sizeof(*c->res_attrs));
    if (c->res_attrs == NULL) {
        return O2D_ERR_TOO_LARGE;
    }
    c->n_res_attrs = nres;
    c->res = res;
    for (size_t i = 0; i < nres; i++) {
        TRY(dd_key(c, res->attributes[i]->key, &rcls[i], &c->res_attrs[i].key));
        c->res_attrs[i].h = hash_bytes(c->res_attrs[i].key.p, c->res_attrs[i].key.n);
        TRY(apm_value_as_string(c->a, res->attributes[i]->value, &c->res_attrs[i].val));
    }

    size_t total = 0;
    for (size_t i = 0; i < rs->n_scope_spans; i++) {
        total += rs->scope_spans[i]->n_spans;
    }
    DdTracerPayload *tp = o2d_arena_alloc(c->a, sizeof(*tp));
    if (tp == NULL) {
        return O2D_ERR_TOO_LARGE;
    }
    datadog__trace__tracer_payload__init(tp);
    static const char *const k_stats[] = {"_dd.stats_computed"};
    char *sc;
    TRY(res_attr_norm(c, res, k_stats, 1, &sc));
    out->client_computed_stats[out->n_payloads] = sc[0] != '\0';
    out->payloads[out->n_payloads++] = tp;
    if (total == 0) {
        return O2D_OK;
    }
    struct xspan *xs = o2d_arena_alloc(c->a, total * sizeof(*xs));
    if (xs == NULL) {
        return O2D_ERR_TOO_LARGE;
    }
    size_t nx = 0;
    for (size_t i = 0; i < rs->n_scope_spans; i++) {
        const OtlpScopeSpans *ss = rs->scope_spans[i];
        for (size_t j = 0; j < ss->n_spans; j++) {
            TRY(translate_span(c, ss, ss->spans[j], &xs[nx++]));
        }
    }

    /* Group by the low 64 bits of the trace id, chunks in order of first appearance. */
    size_t cap = 16;
    while (cap < total * 2) {
        cap *= 2;
    }
    uint64_t *keys = o2d_arena_alloc(c->a, cap * sizeof(*keys));
    uint32_t *slot = o2d_arena_alloc(c->a, cap * sizeof(*slot));
    uint32_t *chunk_of = o2d_arena_alloc(c->a, total * sizeof(*chunk_of));
    size_t *count = o2d_arena_alloc(c->a, total * sizeof(*count));
    if (keys == NULL || slot == NULL || chunk_of == NULL || count == NULL) {
        return O2D_ERR_TOO_LARGE;
    }
    memset(slot, 0, cap * sizeof(*slot));
    size_t nchunks = 0;
    for (size_t i = 0; i < nx; i++) {
        uint64_t id = xs[i].dd->traceid;
        size_t h = (size_t)((id * 0x9E3779B97F4A7C15ull) >> 32) & (cap - 1);
        while (slot[h] != 0 && keys[h] != id) {
            h = (h + 1) & (cap - 1);
        }
        if (slot[h] == 0) {
            keys[h] = id;
            slot[h] = (uint32_t)++nchunks;
            count[nchunks - 1] = 0;
        }
        chunk_of[i] = slot[h] - 1;
        count[slot[h] - 1]++;
    }
    DdTraceChunk *chunks = o2d_arena_alloc(c->a, nchunks * sizeof(*chunks));
    DdTraceChunk **cp = o2d_arena_alloc(c->a, nchunks * sizeof(*cp));
    DdSpan **all = o2d_arena_alloc(c->a, nx * sizeof(*all));
    struct xspan **xall = o2d_arena_alloc(c->a, nx * sizeof(*xall));
    if (chunks == NULL || cp == NULL || all == NULL || xall == NULL) {
        return O2D_ERR_TOO_LARGE;
    }
    size_t off = 0;
    for (size_t k = 0; k < nchunks; k++) {
        datadog__trace__trace_chunk__init(&chunks[k]);
        chunks[k].spans = all + off;
        off += count[k];
    }
    /* xall: each chunk's xspans, in the same places as its spans in `all` */
    for (size_t i = 0; i < nx; i++) {
        DdTraceChunk *ch = &chunks[chunk_of[i]];
        xall[ch->spans - all + ch->n_spans] = &xs[i];
        ch->spans[ch->n_spans++] = xs[i].dd;
    }

    /* Payload fields (receiveResourceSpansV2). */
    struct apm_source src;
    TRY(apm_host_source(c->a, res, &src));
    struct apm_str host =
        src.found ? src.hostname : cstr(c->cfg->fallback_hostname ? c->cfg->fallback_hostname : "");
    TRY(out_str(c, host, 0, &tp->hostname, NULL));
    static const char *const k_host[] = {"datadog.host"};
    static const char *const k_cid1[] = {"datadog.container_id"};
    static const char *const k_cid2[] = {"container.id", "k8s.pod.uid"};
    static const char *const k_env1[] = {"datadog.env"};
    static const char *const k_env2[] = {"deployment.environment.name", "deployment.environment"};
    static const char *const k_lang[] = {"telemetry.sdk.language"};
    static const char *const k_sdkv[] = {"telemetry.sdk.version"};
    static const char *const k_ctags[] = {"datadog.container_tags"};
    char *v;
    TRY(res_attr_norm(c, res, k_host, 1, &v));
    if (v[0] != '\0') {
        tp->hostname = v;
    }
    TRY(res_attr_norm(c, res, k_cid1, 1, &tp->containerid));
    if (tp->containerid[0] == '\0') {
        TRY(res_attr_norm(c, res, k_cid2, 2, &tp->containerid));
    }
    TRY(res_attr_norm(c, res, k_env1, 1, &tp->env));
    if (tp->env[0] == '\0') {
        TRY(res_attr_norm(c, res, k_env2, 2, &tp->env));
    }
    TRY(res_attr_norm(c, res, k_lang, 1, &tp->languagename));
    TRY(res_attr_norm(c, res, k_sdkv, 1, &v));
    char *tv = o2d_arena_alloc(c->a, strlen(v) + 6);
    if (tv == NULL) {
        return O2D_ERR_TOO_LARGE;
    }
    sprintf(tv, "otlp-%s", v);
    tp->tracerversion = tv;
    TRY(res_attr_norm(c, res, k_ctags, 1, &v));
    struct apm_str ctags = cstr(v);
    if (ctags.n == 0) {
        o2d_buf_reset(&c->scratch);
        TRY(apm_host_container_tags(c->a, res, &src, &c->scratch, &ctags));
    }
    const char *const *et;
    size_t en;
    if (res_ecs_tags_for(c->cfg->ecs, res, &et, &en)) {
        TRY(join_ecs_tags(c, ctags, et, en, &ctags));
    }
    TRY(payload_tags(c, tp, ctags));

    size_t kept = 0;
    for (size_t k = 0; k < nchunks; k++) {
        TRY(finish_chunk(c, &chunks[k], xall + (chunks[k].spans - all), tp, &out->ignored));
        if (chunks[k].n_spans > 0) {
            cp[kept++] = &chunks[k];
            out->spans += chunks[k].n_spans;
        }
    }
    tp->chunks = cp;
    tp->n_chunks = kept;
    return O2D_OK;
}

int apm_translate(struct o2d_arena *a, const OtlpTraceReq *req, const struct apm_config *cfg,
                  int64_t now_ns, struct apm_result *out, const char **reason)
{
    struct ctx c;
    int rv = O2D_ERR_TOO_LARGE;
    memset(out, 0, sizeof(*out));
    memset(&c, 0, sizeof(c));
    c.a = a;
    c.cfg = cfg;
    c.now_ns = now_ns;
    c.v2 = !cfg->span_name_as_resource_name && cfg->n_remappings == 0;
    c.utf8_ok = cfg->input_utf8_valid;
    /* Scratch for JSON text and SQL: bounded by the arena's own limit. */
    o2d_buf_init(&c.scratch, a->limit > 0 ? a->limit : 64 * 1024 * 1024);
    size_t n = req != NULL ? req->n_resource_spans : 0;
    out->payloads = o2d_arena_alloc(a, (n ? n : 1) * sizeof(*out->payloads));
    out->client_computed_stats = o2d_arena_alloc(a, n ? n : 1);
    if (out->payloads == NULL || out->client_computed_stats == NULL) {
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        rv = translate_resource_spans(&c, req->resource_spans[i], out);
        if (rv != O2D_OK) {
            goto out;
        }
    }
    rv = O2D_OK;
out:
    o2d_buf_cleanup(&c.scratch);
    if (rv != O2D_OK) {
        if (reason != NULL) {
            *reason = rv == O2D_ERR_NOMEM ? "out of memory translating spans"
                                          : "translated spans exceed the request's memory limit";
        }
        if (rv != O2D_ERR_NOMEM) {
            rv = O2D_ERR_TOO_LARGE;
        }
    }
    return rv;
}
