/*
 * mtr.c: OTLP metrics -> Datadog series and sketches, rule for rule as Datadog's translator
 * (datadog-agent pkg/opentelemetry-mapping-go/otlp/metrics):
 *   - metrics_translator.go MapMetrics / mapToDDFormat: per metric type and temporality;
 *     mapNumberMonotonicMetrics (cumulative monotonic sums, rateAsGaugeMetrics,
 *     shouldConsumeInitialValue), isSkippable (NaN, infinities), formatFloat;
 *   - default_mapper.go MapNumberMetrics, MapHistogramMetrics (getSketchBuckets,
 *     getLegacyBuckets), MapSummaryMetrics, MapExponentialHistogramMetrics;
 *   - dimensions.go: a series' identity is its name, sorted tags and host; point attributes
 *     become "key:AsString(value)" tags (utils.FormatKeyValueTag: "key:n/a" when empty);
 *   - instrumentationscope/metadata.go: instrumentation_scope and _version tags ("n/a" when
 *     empty), then the scope's attributes as tags (TagsFromInstrumentationScopeMetadata);
 *   - quantile ddsketch.go ConvertDDSketchIntoSketch and sketches-go ChangeMapping for
 *     exponential histograms.
 * The Collector exporter's renames and copies (WithRemapping, runtime metric mappings) are
 * mtr_remap.c's; MapMetrics maps a scope's own metrics (renamed) first, then the copies made
 * of them. Deliberate differences: a
 * point Datadog would fail the whole request for (bounds out of order, counts and bounds that
 * do not match) is dropped alone and counted; the delta cache is bounded (mtr_cache.c).
 */
#include "mtr.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent_sketch.h"
#include "mtr_fmt.h"
#include "mtr_int.h"
#include "o2d.h"
#include "o2d_alloc.h"
#include "o2d_buf.h"

#define CASE(c) OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_##c
#define TEMP_DELTA                                                                                 \
    OPENTELEMETRY__PROTO__METRICS__V1__AGGREGATION_TEMPORALITY__AGGREGATION_TEMPORALITY_DELTA
#define TEMP_CUMULATIVE                                                                            \
    OPENTELEMETRY__PROTO__METRICS__V1__AGGREGATION_TEMPORALITY__AGGREGATION_TEMPORALITY_CUMULATIVE
#define FLAG_NO_RECORDED_VALUE                                                                     \
    OPENTELEMETRY__PROTO__METRICS__V1__DATA_POINT_FLAGS__DATA_POINT_FLAGS_NO_RECORDED_VALUE_MASK
/* Scope attributes made tags at most (the rest are left out; a scope has a handful). */
#define MTR_SCOPE_ATTRS_MAX 64

struct mtr_translator {
    struct mtr_config cfg;
    uint64_t start_ns;
    struct mtr_cache *cache;
};

void mtr_config_default(struct mtr_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->hist_mode = MTR_HIST_DISTRIBUTIONS;
    cfg->cumul_mode = MTR_CUMUL_TO_DELTA;
    cfg->initial_mode = MTR_INITIAL_AUTO;
    cfg->summary_mode = MTR_SUMMARY_GAUGES;
    cfg->delta_ttl_s = 3600;
    cfg->scope_metadata_as_tags = 1;
    cfg->max_cache_entries = 500000;
    cfg->remapping = 1;
    cfg->runtime_remapping = 1;
}

const char *mtr_drop_name(enum mtr_drop why)
{
    static const char *const names[MTR_DROP_N] = {
        [MTR_DROP_NAN_INF] = "nan_or_inf",
        [MTR_DROP_NO_VALUE] = "no_recorded_value",
        [MTR_DROP_OUT_OF_ORDER] = "out_of_order",
        [MTR_DROP_TEMPORALITY] = "unsupported_temporality",
        [MTR_DROP_MALFORMED] = "malformed",
        [MTR_DROP_TOO_MANY] = "too_many_observations",
    };
    return (unsigned)why < MTR_DROP_N ? names[why] : "unknown";
}

struct mtr_translator *mtr_new(const struct mtr_config *cfg, uint64_t start_ns, const char **reason)
{
    if (cfg->hist_mode == MTR_HIST_NOBUCKETS && !cfg->send_aggregation_metrics) {
        *reason = "no buckets mode and no send count sum are incompatible";
        return NULL;
    }
    struct mtr_translator *t = o2d_calloc(1, sizeof(*t));
    if (t == NULL) {
        *reason = "out of memory";
        return NULL;
    }
    t->cfg = *cfg;
    t->start_ns = start_ns;
    t->cache = mtr_cache_new(cfg->max_cache_entries, cfg->delta_ttl_s);
    if (t->cache == NULL) {
        o2d_free(t);
        *reason = "cannot allocate the delta cache (max_cache_entries 0 or too large)";
        return NULL;
    }
    return t;
}

void mtr_free(struct mtr_translator *t)
{
    if (t == NULL) {
        return;
    }
    mtr_cache_free(t->cache);
    o2d_free(t);
}

void mtr_get_stats(struct mtr_translator *t, struct mtr_stats *out)
{
    mtr_cache_stats(t->cache, &out->cache_entries, &out->evicted_ttl, &out->evicted_capacity);
}

/* ---- one request's state ---- */

struct ctx {
    struct mtr_translator *t;
    struct o2d_arena *a;
    uint64_t now_ns;
    struct mtr_result *res;
    struct ddm_series *series;
    size_t nseries, cap_series;
    struct ddm_sketch *sketches;
    size_t nsketches, cap_sketches;
    int derived; /* mapping the remapping's copies: their points are not counted again */
};

/* A series' name, tags and host, as dimensions.go's Dimensions. */
struct dims {
    const char *name;
    const char **tags;
    size_t ntags;
    const char *host;
};

#define TRY(x)                                                                                     \
    do {                                                                                           \
        int rv_ = (x);                                                                             \
        if (rv_ != O2D_OK) {                                                                       \
            return rv_;                                                                            \
        }                                                                                          \
    } while (0)

static char *arena_printf(struct o2d_arena *a, const char *fmt, const char *x, const char *y)
{
    int n = snprintf(NULL, 0, fmt, x, y);
    char *s = n >= 0 ? o2d_arena_alloc(a, (size_t)n + 1) : NULL;
    if (s != NULL) {
        snprintf(s, (size_t)n + 1, fmt, x, y);
    }
    return s;
}

static int dims_suffix(struct ctx *c, const struct dims *d, const char *suffix, struct dims *out)
{
    *out = *d;
    out->name = arena_printf(c->a, "%s.%s", d->name, suffix);
    return out->name != NULL ? O2D_OK : O2D_ERR_TOO_LARGE;
}

/* AddTags: a copy of d with n more tags. */
static int dims_add(struct ctx *c, const struct dims *d, const char *const *extra, size_t n,
                    struct dims *out)
{
    *out = *d;
    out->tags = o2d_arena_alloc(c->a, (d->ntags + n) * sizeof(char *) + 1);
    if (out->tags == NULL) {
        return O2D_ERR_TOO_LARGE;
    }
    if (d->ntags > 0) {
        memcpy(out->tags, d->tags, d->ntags * sizeof(char *));
    }
    for (size_t i = 0; i < n; i++) {
        out->tags[d->ntags + i] = extra[i];
    }
    out->ntags = d->ntags + n;
    return O2D_OK;
}

static int str_cmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static void mix(uint64_t *h1, uint64_t *h2, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        uint8_t b = (uint8_t)s[i];
        *h1 = (*h1 ^ b) * 0x100000001b3ull;
        *h2 = (*h2 + b + 1) * 0x9e3779b97f4a7c15ull;
        *h2 ^= *h2 >> 29;
    }
}

/* Dimensions.String(): name, sorted tags and host; `what` keeps apart the entries one series
 * has (its value, its min, its max). */
static int dims_key(struct ctx *c, const struct dims *d, char what, struct mtr_key *k)
{
    const char **sorted = NULL;
    if (d->ntags > 0) {
        sorted = o2d_arena_alloc(c->a, d->ntags * sizeof(char *));
        if (sorted == NULL) {
            return O2D_ERR_TOO_LARGE;
        }
        memcpy(sorted, d->tags, d->ntags * sizeof(char *));
        qsort(sorted, d->ntags, sizeof(char *), str_cmp);
    }
    uint64_t h1 = 0xcbf29ce484222325ull, h2 = 0x84222325cbf29ce4ull;
    mix(&h1, &h2, &what, 1);
    mix(&h1, &h2, d->name, strlen(d->name) + 1);
    for (size_t i = 0; i < d->ntags; i++) {
        mix(&h1, &h2, sorted[i], strlen(sorted[i]) + 1);
    }
    const char *host = d->host != NULL ? d->host : "";
    mix(&h1, &h2, host, strlen(host) + 1);
    k->h1 = h1;
    k->h2 = h2;
    return O2D_OK;
}

/* The cache key of one bucket of a cumulative histogram point, from its point's key ('b') and
 * the bucket's bounds. Datadog keys it by the point's dimensions plus lower_bound and
 * upper_bound tags; the bounds' bits name the same bucket without formatting them (-0 is 0, as
 * formatFloat prints it). */
static void bucket_key(const struct mtr_key *point, double lo, double hi, struct mtr_key *k)
{
    uint64_t h1 = point->h1, h2 = point->h2;
    lo = lo == 0 ? 0.0 : lo;
    hi = hi == 0 ? 0.0 : hi;
    mix(&h1, &h2, (const char *)&lo, sizeof(lo));
    mix(&h1, &h2, (const char *)&hi, sizeof(hi));
    k->h1 = h1;
    k->h2 = h2;
}

static int push_series(struct ctx *c, const struct dims *d, enum ddm_type type, uint64_t ts_ns,
                       double v)
{
    if (c->nseries == c->cap_series) {
        size_t cap = c->cap_series ? c->cap_series * 2 : 16;
        struct ddm_series *n = o2d_arena_alloc(c->a, cap * sizeof(*n));
        if (n == NULL) {
            return O2D_ERR_TOO_LARGE;
        }
        if (c->nseries > 0) {
            memcpy(n, c->series, c->nseries * sizeof(*n));
        }
        c->series = n;
        c->cap_series = cap;
    }
    c->series[c->nseries++] = (struct ddm_series){
        .name = d->name,
        .type = type,
        .tags = d->tags,
        .ntags = d->ntags,
        .host = d->host,
        .ts_s = (int64_t)(ts_ns / 1000000000u),
        .value = v,
    };
    return O2D_OK;
}

static int push_sketch(struct ctx *c, const struct dims *d, uint64_t ts_ns,
                       const struct agent_sketch *s)
{
    if (c->nsketches == c->cap_sketches) {
        size_t cap = c->cap_sketches ? c->cap_sketches * 2 : 8;
        struct ddm_sketch *n = o2d_arena_alloc(c->a, cap * sizeof(*n));
        if (n == NULL) {
            return O2D_ERR_TOO_LARGE;
        }
        if (c->nsketches > 0) {
            memcpy(n, c->sketches, c->nsketches * sizeof(*n));
        }
        c->sketches = n;
        c->cap_sketches = cap;
    }
    int32_t *k = NULL;
    uint32_t *n = NULL;
    if (s->nbins > 0) {
        k = o2d_arena_alloc(c->a, s->nbins * sizeof(*k));
        n = o2d_arena_alloc(c->a, s->nbins * sizeof(*n));
        if (k == NULL || n == NULL) {
            return O2D_ERR_TOO_LARGE;
        }
        memcpy(k, s->k, s->nbins * sizeof(*k));
        memcpy(n, s->n, s->nbins * sizeof(*n));
    }
    c->sketches[c->nsketches++] = (struct ddm_sketch){
        .name = d->name,
        .tags = d->tags,
        .ntags = d->ntags,
        .host = d->host,
        .ts_s = (int64_t)(ts_ns / 1000000000u),
        .cnt = s->cnt,
        .min = s->min,
        .max = s->max,
        .avg = s->avg,
        .sum = s->sum,
        .k = k,
        .n = n,
        .nbins = s->nbins,
    };
    return O2D_OK;
}

static void drop(struct ctx *c, enum mtr_drop why)
{
    if (!c->derived) {
        c->res->dropped[why]++;
    }
}

/* isSkippable */
static int skippable(double v)
{
    return isnan(v) || isinf(v);
}

/* ---- attribute values as tags ---- */

static int json_value(struct o2d_buf *b, const OtlpAnyValue *v, int depth);

static int json_string(struct o2d_buf *b, const char *s)
{
    TRY(o2d_buf_append_byte(b, '"'));
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\') {
            TRY(o2d_buf_append_byte(b, '\\'));
            TRY(o2d_buf_append_byte(b, ch));
        } else if (ch < 0x20) {
            TRY(o2d_buf_printf(b, "\\u%04x", ch));
        } else {
            TRY(o2d_buf_append_byte(b, ch));
        }
    }
    return o2d_buf_append_byte(b, '"');
}

static int base64(struct o2d_buf *b, const uint8_t *p, size_t n)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for (size_t i = 0; i < n; i += 3) {
        uint32_t x = (uint32_t)p[i] << 16;
        if (i + 1 < n) {
            x |= (uint32_t)p[i + 1] << 8;
        }
        if (i + 2 < n) {
            x |= p[i + 2];
        }
        char q[4] = {tab[(x >> 18) & 63], tab[(x >> 12) & 63], i + 1 < n ? tab[(x >> 6) & 63] : '=',
                     i + 2 < n ? tab[x & 63] : '='};
        TRY(o2d_buf_append(b, q, 4));
    }
    return O2D_OK;
}

/* AsString: scalars as text; `json` when inside an array or map (strings quoted). */
static int value_text(struct o2d_buf *b, const OtlpAnyValue *v, int depth, int json)
{
    char f[MTR_FLOAT_CAP];
    if (v == NULL) {
        return json ? o2d_buf_append_str(b, "null") : O2D_OK;
    }
    switch (v->value_case) {
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE:
        return json ? json_string(b, v->string_value) : o2d_buf_append_str(b, v->string_value);
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BOOL_VALUE:
        return o2d_buf_append_str(b, v->bool_value ? "true" : "false");
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE:
        return o2d_buf_printf(b, "%lld", (long long)v->int_value);
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE:
        mtr_format_es6(v->double_value, f, sizeof(f));
        return o2d_buf_append_str(b, f);
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BYTES_VALUE:
        if (json) {
            TRY(o2d_buf_append_byte(b, '"'));
        }
        TRY(base64(b, v->bytes_value.data, v->bytes_value.len));
        return json ? o2d_buf_append_byte(b, '"') : O2D_OK;
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_ARRAY_VALUE:
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_KVLIST_VALUE:
        return json_value(b, v, depth);
    default:
        return json ? o2d_buf_append_str(b, "null") : O2D_OK;
    }
}

static int kv_cmp(const void *a, const void *b)
{
    return strcmp((*(OtlpKeyValue *const *)a)->key, (*(OtlpKeyValue *const *)b)->key);
}

/* encoding/json of AsRaw(): maps with sorted keys. */
static int json_value(struct o2d_buf *b, const OtlpAnyValue *v, int depth)
{
    if (depth > OTLP_MAX_ANYVALUE_DEPTH) {
        return O2D_ERR_INVALID;
    }
    if (v->value_case == OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_ARRAY_VALUE) {
        TRY(o2d_buf_append_byte(b, '['));
        for (size_t i = 0; v->array_value != NULL && i < v->array_value->n_values; i++) {
            if (i > 0) {
                TRY(o2d_buf_append_byte(b, ','));
            }
            TRY(value_text(b, v->array_value->values[i], depth + 1, 1));
        }
        return o2d_buf_append_byte(b, ']');
    }
    if (v->value_case == OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_KVLIST_VALUE) {
        size_t n = v->kvlist_value != NULL ? v->kvlist_value->n_values : 0;
        OtlpKeyValue **kv = n ? o2d_malloc(n * sizeof(*kv)) : NULL;
        if (n && kv == NULL) {
            return O2D_ERR_NOMEM;
        }
        if (n) {
            memcpy(kv, v->kvlist_value->values, n * sizeof(*kv));
            qsort(kv, n, sizeof(*kv), kv_cmp);
        }
        int rv = o2d_buf_append_byte(b, '{');
        for (size_t i = 0; i < n && rv == O2D_OK; i++) {
            if (i > 0) {
                rv = o2d_buf_append_byte(b, ',');
            }
            rv = rv == O2D_OK ? json_string(b, kv[i]->key) : rv;
            rv = rv == O2D_OK ? o2d_buf_append_byte(b, ':') : rv;
            rv = rv == O2D_OK ? value_text(b, kv[i]->value, depth + 1, 1) : rv;
        }
        o2d_free(kv);
        return rv == O2D_OK ? o2d_buf_append_byte(b, '}') : rv;
    }
    return value_text(b, v, depth, 1);
}

/* utils.FormatKeyValueTag(k, AsString(v)) */
static int attr_tag(struct ctx *c, const OtlpKeyValue *kv, const char **out)
{
    struct o2d_buf b;
    o2d_buf_init(&b, 64 * 1024);
    int rv = o2d_buf_append_str(&b, kv->key);
    rv = rv == O2D_OK ? o2d_buf_append_byte(&b, ':') : rv;
    size_t klen = b.len;
    rv = rv == O2D_OK ? value_text(&b, kv->value, 1, 0) : rv;
    if (rv == O2D_OK && b.len == klen) {
        rv = o2d_buf_append_str(&b, "n/a");
    }
    if (rv == O2D_OK) {
        *out = o2d_arena_strndup(c->a, (const char *)b.data, b.len);
        rv = *out != NULL ? O2D_OK : O2D_ERR_TOO_LARGE;
    } else if (rv != O2D_ERR_NOMEM) {
        /* Too long or too deep for a tag: tagged as Datadog would, cut. */
        *out = o2d_arena_strndup(c->a, (const char *)b.data, b.len < klen ? b.len : klen);
        rv = *out != NULL ? O2D_OK : O2D_ERR_TOO_LARGE;
    }
    o2d_buf_cleanup(&b);
    return rv;
}

int mtr_value_is(const OtlpAnyValue *v, const char *s)
{
    if (v != NULL &&
        v->value_case == OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE) {
        return strcmp(v->string_value, s) == 0;
    }
    struct o2d_buf b;
    o2d_buf_init(&b, 64 * 1024);
    int same = value_text(&b, v, 1, 0) == O2D_OK && b.len == strlen(s) &&
               (b.len == 0 || memcmp(b.data, s, b.len) == 0);
    o2d_buf_cleanup(&b);
    return same;
}

/* WithAttributeMap */
static int dims_point(struct ctx *c, const struct dims *base, const struct mtr_point *p,
                      struct dims *out)
{
    *out = *base;
    if (p->nattrs == 0) {
        return O2D_OK;
    }
    const char **tags = o2d_arena_alloc(c->a, p->nattrs * sizeof(char *));
    if (tags == NULL) {
        return O2D_ERR_TOO_LARGE;
    }
    size_t n = 0;
    for (size_t i = 0; i < p->nattrs; i++) {
        if (p->attrs[i] == NULL || p->attrs[i]->key == NULL) {
            continue;
        }
        TRY(attr_tag(c, p->attrs[i], &tags[n]));
        n++;
    }
    return dims_add(c, base, tags, n, out);
}

/* ---- numbers ---- */

static const char *const rate_as_gauge[] = {
    "kafka.net.bytes_out.rate",
    "kafka.net.bytes_in.rate",
    "kafka.replication.isr_shrinks.rate",
    "kafka.replication.isr_expands.rate",
    "kafka.replication.leader_elections.rate",
    "jvm.gc.minor_collection_count",
    "jvm.gc.major_collection_count",
    "jvm.gc.minor_collection_time",
    "jvm.gc.major_collection_time",
    "kafka.messages_in.rate",
    "kafka.request.produce.failed.rate",
    "kafka.request.fetch.failed.rate",
    "kafka.replication.unclean_leader_elections.rate",
    "kafka.log.flush_rate.rate",
};

static int is_rate_as_gauge(const char *name)
{
    for (size_t i = 0; i < sizeof(rate_as_gauge) / sizeof(rate_as_gauge[0]); i++) {
        if (strcmp(name, rate_as_gauge[i]) == 0) {
            return 1;
        }
    }
    return 0;
}

/* shouldConsumeInitialValue */
static int consume_initial(const struct ctx *c, uint64_t start, uint64_t ts)
{
    switch (c->t->cfg.initial_mode) {
    case MTR_INITIAL_AUTO:
        return c->t->start_ns < start && start != ts;
    case MTR_INITIAL_KEEP:
        return 1;
    default:
        return 0;
    }
}

/* Counts the point; 1 when it carries no value (FLAG_NO_RECORDED_VALUE) and is skipped. */
static int no_value(struct ctx *c, const struct mtr_point *p)
{
    c->res->points += c->derived ? 0 : 1;
    if (p->flags & FLAG_NO_RECORDED_VALUE) {
        drop(c, MTR_DROP_NO_VALUE);
        return 1;
    }
    return 0;
}

/* mapNumberMetrics: each point as it is, as a gauge or a count. */
static int map_numbers(struct ctx *c, const struct dims *d, enum ddm_type type,
                       OtlpNumberPoint *const *pts, size_t npts)
{
    for (size_t i = 0; i < npts; i++) {
        struct mtr_point p;
        mtr_point_number(pts[i], &p);
        if (no_value(c, &p)) {
            continue;
        }
        if (skippable(p.value)) {
            drop(c, MTR_DROP_NAN_INF);
            continue;
        }
        struct dims pd;
        TRY(dims_point(c, d, &p, &pd));
        TRY(push_series(c, &pd, type, p.time_ns, p.value));
    }
    return O2D_OK;
}

/* mapNumberMonotonicMetrics */
static int map_monotonic(struct ctx *c, const struct dims *d, OtlpNumberPoint *const *pts,
                         size_t npts)
{
    for (size_t i = 0; i < npts; i++) {
        struct mtr_point p;
        mtr_point_number(pts[i], &p);
        if (no_value(c, &p)) {
            continue;
        }
        if (skippable(p.value)) {
            drop(c, MTR_DROP_NAN_INF);
            continue;
        }
        struct dims pd;
        struct mtr_key k;
        TRY(dims_point(c, d, &p, &pd));
        TRY(dims_key(c, &pd, 'v', &k));
        double dx;
        int first, dropped;
        int rate = is_rate_as_gauge(pd.name);
        mtr_cache_monotonic(c->t->cache, k, c->now_ns, p.start_ns, p.time_ns, p.value, rate, &dx,
                            &first, &dropped);
        if (dropped) {
            drop(c, MTR_DROP_OUT_OF_ORDER);
        } else if (rate) {
            if (!first) {
                TRY(push_series(c, &pd, DDM_GAUGE, p.time_ns, dx));
            }
        } else if (!first) {
            TRY(push_series(c, &pd, DDM_COUNT, p.time_ns, dx));
        } else if (i == 0 && consume_initial(c, p.start_ns, p.time_ns)) {
            TRY(push_series(c, &pd, DDM_COUNT, p.time_ns, p.value));
        }
    }
    return O2D_OK;
}

/* ---- histograms ---- */

struct hist_info {
    double sum;
    uint64_t count;
    int min_from_last, max_from_last;
    int ok;
};

/* getBounds: bucket j's (lower, upper]; -inf and +inf at the ends. */
static void bounds_of(const struct mtr_point *p, size_t j, double *lo, double *hi)
{
    *lo = j == 0 ? -INFINITY : p->bounds[j - 1];
    *hi = j == p->nbounds ? INFINITY : p->bounds[j];
}

static int bucket_tags(struct ctx *c, const struct dims *d, double lo, double hi, struct dims *out)
{
    char a[MTR_FLOAT_CAP], b[MTR_FLOAT_CAP];
    mtr_format_float(lo, a, sizeof(a));
    mtr_format_float(hi, b, sizeof(b));
    const char *tags[2] = {arena_printf(c->a, "lower_bound:%s%s", a, ""),
                           arena_printf(c->a, "upper_bound:%s%s", b, "")};
    if (tags[0] == NULL || tags[1] == NULL) {
        return O2D_ERR_TOO_LARGE;
    }
    return dims_add(c, d, tags, 2, out);
}

/* getLegacyBuckets */
static int legacy_buckets(struct ctx *c, const struct dims *pd, const struct mtr_point *p,
                          int delta)
{
    struct dims base;
    TRY(dims_suffix(c, pd, "bucket", &base));
    for (size_t j = 0; j < p->nbucket_counts; j++) {
        double lo, hi;
        bounds_of(p, j, &lo, &hi);
        struct dims bd;
        TRY(bucket_tags(c, &base, lo, hi, &bd));
        double count = (double)p->bucket_counts[j], dx;
        if (delta) {
            TRY(push_series(c, &bd, DDM_COUNT, p->time_ns, count));
        } else {
            struct mtr_key k;
            TRY(dims_key(c, &bd, 'v', &k));
            if (mtr_cache_diff(c->t->cache, k, c->now_ns, p->start_ns, p->time_ns, count, &dx)) {
                TRY(push_series(c, &bd, DDM_COUNT, p->time_ns, dx));
            }
        }
    }
    return O2D_OK;
}

/* getSketchBuckets */
static int sketch_buckets(struct ctx *c, const struct dims *pd, const struct mtr_point *p,
                          const struct hist_info *hi, int delta)
{
    /* A histogram without buckets is one (-inf, +inf) bucket, with empty buckets at the exact
     * min and max when they are from the last window. */
    uint64_t counts3[3];
    double bounds3[2];
    struct mtr_point q = *p;
    if (p->nbucket_counts == 0 && hi->ok) {
        size_t nc = 0, nb = 0;
        if (hi->min_from_last) {
            counts3[nc++] = 0;
            bounds3[nb++] = p->min;
        }
        counts3[nc++] = hi->count;
        if (hi->max_from_last) {
            counts3[nc++] = 0;
            bounds3[nb++] = p->max;
        }
        q.bucket_counts = counts3;
        q.nbucket_counts = nc;
        q.bounds = bounds3;
        q.nbounds = nb;
    }
    struct mtr_key point_key = {0, 0};
    if (!delta) {
        TRY(dims_key(c, pd, 'b', &point_key));
    }
    struct agent_sketch s;
    agent_sketch_init(&s);
    double min_bound = 0, max_bound = 0, inserted = 0;
    int min_set = 0, too_many = 0, rv = O2D_OK;
    for (size_t j = 0; j < q.nbucket_counts && rv == O2D_OK; j++) {
        double lo, up;
        bounds_of(&q, j, &lo, &up);
        double olo = lo, oup = up;
        double count = (double)q.bucket_counts[j];
        if (!delta) {
            /* a cumulative bucket is a series of its own in the delta cache (a delta one needs
             * no key: no tags are formatted for it) */
            struct mtr_key k;
            bucket_key(&point_key, lo, up, &k);
            if (!mtr_cache_diff(c->t->cache, k, c->now_ns, q.start_ns, q.time_ns, count, &count) ||
                count < 0) {
                continue;
            }
        }
        if (isinf(up) && up > 0) {
            up = lo;
        } else if (isinf(lo) && lo < 0) {
            lo = up;
        } else if (lo == 0 && up > 0) {
            lo = up;
        }
        if (!too_many) {
            inserted += count;
            if (inserted > (double)AGENT_SKETCH_MAX_COUNT) {
                too_many = 1;
            } else {
                const char *why;
                rv = agent_sketch_insert_interpolate(&s, lo, up, (uint64_t)count, &why);
                if (rv == O2D_ERR_INVALID) {
                    drop(c, MTR_DROP_MALFORMED);
                    agent_sketch_cleanup(&s);
                    return O2D_OK;
                }
                if (rv != O2D_OK) {
                    break;
                }
            }
        }
        if (count > 0) {
            if (!min_set) {
                min_bound = olo;
                min_set = 1;
            }
            max_bound = oup;
        }
    }
    if (rv == O2D_ERR_NOMEM) {
        rv = O2D_ERR_TOO_LARGE;
    }
    if (rv != O2D_OK || too_many || (s.cnt == 0 && s.nbins == 0)) {
        if (rv == O2D_OK && too_many) {
            drop(c, MTR_DROP_TOO_MANY);
        }
        agent_sketch_cleanup(&s);
        return rv;
    }
    if (hi->ok) {
        s.cnt = (int64_t)hi->count;
        s.sum = hi->sum;
        s.avg = s.sum / (double)s.cnt;
    }
    if (min_set) {
        if (!isinf(min_bound)) {
            s.min = min_bound;
        }
        if (!isinf(max_bound)) {
            s.max = max_bound;
        }
    }
    if (hi->min_from_last) {
        s.min = p->min;
    } else if (p->has_min) {
        s.min = fmax(p->min, s.min);
    }
    if (hi->max_from_last) {
        s.max = p->max;
    } else if (p->has_max) {
        s.max = fmin(p->max, s.max);
    }
    rv = push_sketch(c, pd, p->time_ns, &s);
    agent_sketch_cleanup(&s);
    return rv;
}

/* The count and sum of a histogram point (and exp histogram), exact or as deltas. */
static int hist_info(struct ctx *c, const struct dims *pd, const struct mtr_point *p, int delta,
                     int with_extrema, struct hist_info *hi, struct dims *count_d,
                     struct dims *sum_d)
{
    memset(hi, 0, sizeof(*hi));
    hi->ok = 1;
    struct mtr_key k;
    double dx;
    TRY(dims_suffix(c, pd, "count", count_d));
    TRY(dims_suffix(c, pd, "sum", sum_d));
    if (delta) {
        hi->count = p->count;
    } else {
        TRY(dims_key(c, count_d, 'v', &k));
        if (mtr_cache_diff(c->t->cache, k, c->now_ns, p->start_ns, p->time_ns, (double)p->count,
                           &dx) &&
            dx >= 0 && dx < 0x1p64) { /* a count as a double: 2^64 and up has no uint64 */
            hi->count = (uint64_t)dx;
        } else {
            hi->ok = 0;
        }
    }
    if (!skippable(p->sum)) {
        if (delta) {
            hi->sum = p->sum;
        } else {
            TRY(dims_key(c, sum_d, 'v', &k));
            if (mtr_cache_diff(c->t->cache, k, c->now_ns, p->start_ns, p->time_ns, p->sum, &dx)) {
                hi->sum = dx;
            } else {
                hi->ok = 0;
            }
        }
    } else {
        hi->ok = 0;
    }
    if (!with_extrema) {
        return O2D_OK;
    }
    if (p->has_min) {
        hi->min_from_last = delta;
        if (!delta) {
            struct dims md;
            TRY(dims_suffix(c, pd, "min", &md));
            TRY(dims_key(c, &md, 'n', &k));
            hi->min_from_last =
                mtr_cache_extrema(c->t->cache, k, c->now_ns, p->start_ns, p->time_ns, p->min, 1);
        }
    }
    if (p->has_max) {
        hi->max_from_last = delta;
        if (!delta) {
            struct dims md;
            TRY(dims_suffix(c, pd, "max", &md));
            TRY(dims_key(c, &md, 'x', &k));
            hi->max_from_last =
                mtr_cache_extrema(c->t->cache, k, c->now_ns, p->start_ns, p->time_ns, p->max, 0);
        }
    }
    return O2D_OK;
}

static int aggregations(struct ctx *c, const struct dims *pd, const struct mtr_point *p,
                        const struct hist_info *hi, const struct dims *count_d,
                        const struct dims *sum_d, int delta)
{
    if (!c->t->cfg.send_aggregation_metrics || !hi->ok) {
        return O2D_OK;
    }
    TRY(push_series(c, count_d, DDM_COUNT, p->time_ns, (double)hi->count));
    TRY(push_series(c, sum_d, DDM_COUNT, p->time_ns, hi->sum));
    if (delta) {
        struct dims md;
        if (p->has_min) {
            TRY(dims_suffix(c, pd, "min", &md));
            TRY(push_series(c, &md, DDM_GAUGE, p->time_ns, p->min));
        }
        if (p->has_max) {
            TRY(dims_suffix(c, pd, "max", &md));
            TRY(push_series(c, &md, DDM_GAUGE, p->time_ns, p->max));
        }
    }
    return O2D_OK;
}

/* MapHistogramMetrics */
static int map_histograms(struct ctx *c, const struct dims *d, OtlpHistogramPoint *const *pts,
                          size_t npts, int delta)
{
    for (size_t i = 0; i < npts; i++) {
        struct mtr_point p;
        mtr_point_histogram(pts[i], &p);
        if (no_value(c, &p)) {
            continue;
        }
        if (p.has_sum == 0) {
            p.sum = 0;
        }
        if (p.nbucket_counts > 0 && p.nbucket_counts != p.nbounds + 1) {
            drop(c, MTR_DROP_MALFORMED);
            continue;
        }
        struct dims pd, count_d, sum_d;
        struct hist_info hi;
        TRY(dims_point(c, d, &p, &pd));
        TRY(hist_info(c, &pd, &p, delta, 1, &hi, &count_d, &sum_d));
        TRY(aggregations(c, &pd, &p, &hi, &count_d, &sum_d, delta));
        if (c->t->cfg.hist_mode == MTR_HIST_COUNTERS) {
            TRY(legacy_buckets(c, &pd, &p, delta));
        } else if (c->t->cfg.hist_mode == MTR_HIST_DISTRIBUTIONS) {
            TRY(sketch_buckets(c, &pd, &p, &hi, delta));
        }
    }
    return O2D_OK;
}

/* ---- exponential histograms: sketches-go ChangeMapping into the agent's keys ---- */

struct fkc {
    int32_t k;
    double c;
};

static int fkc_cmp(const void *a, const void *b)
{
    int32_t x = ((const struct fkc *)a)->k, y = ((const struct fkc *)b)->k;
    return (x > y) - (x < y);
}

/* The agent-compatible DDSketch: offset bias + 0.5, gamma of the agent sketch. */
static double new_lower(int32_t idx, double ln_g, double offset)
{
    return exp(((double)idx - offset) * ln_g);
}

/* Moves one OTLP bucket store into float counts on agent keys (sign: +1 or -1). Returns
 * O2D_ERR_INVALID when a bound leaves the double range or a key the agent's key space. */
static int remap_store(const struct mtr_buckets *b, double ln_in, int sign, double *zeroes,
                       struct fkc **out, size_t *n, size_t *cap, int32_t *lo_idx, int32_t *hi_idx,
                       int *any)
{
    double g = agent_sketch_gamma(), ln_g = log(g);
    double offset = agent_sketch_key(1.0) + 0.5; /* bias + 0.5: key(1) is the bias */
    for (size_t j = 0; j < b->n; j++) {
        if (b->counts[j] == 0) {
            continue;
        }
        double count = (double)b->counts[j];
        double idx = (double)b->offset + (double)j;
        double in_lo = exp(idx * ln_in), in_hi = exp((idx + 1) * ln_in);
        if (!isfinite(in_lo) || !isfinite(in_hi) || in_hi <= in_lo) {
            return O2D_ERR_INVALID;
        }
        double in_size = in_hi - in_lo;
        double first = floor(log(in_lo) / ln_g + offset);
        if (first > 40000 || first < -40000) {
            return O2D_ERR_INVALID;
        }
        for (int32_t o = (int32_t)first; new_lower(o, ln_g, offset) < in_hi; o++) {
            if (o >= 32767) {
                return O2D_ERR_INVALID;
            }
            double olo = new_lower(o, ln_g, offset), ohi = new_lower(o + 1, ln_g, offset);
            double part = (fmin(ohi, in_hi) - fmax(olo, in_lo)) / in_size * count;
            if (!*any || o < *lo_idx) {
                *lo_idx = o;
            }
            if (!*any || o > *hi_idx) {
                *hi_idx = o;
            }
            *any = 1;
            if (o <= 0) {
                *zeroes += part;
                continue;
            }
            if (*n == *cap) {
                size_t nc = *cap ? *cap * 2 : 64;
                if (nc > 1u << 20) {
                    return O2D_ERR_INVALID;
                }
                struct fkc *p = o2d_realloc(*out, nc * sizeof(*p));
                if (p == NULL) {
                    return O2D_ERR_NOMEM;
                }
                *out = p;
                *cap = nc;
            }
            (*out)[(*n)++] = (struct fkc){sign * o, part};
        }
    }
    return O2D_OK;
}

/* ConvertDDSketchIntoSketch of the exponential histogram's DDSketch. */
static int exp_to_sketch(const struct mtr_point *p, struct agent_sketch *s)
{
    double g = agent_sketch_gamma(), ln_g = log(g);
    double offset = agent_sketch_key(1.0) + 0.5;
    double ra = (g - 1) / (g + 1);
    struct fkc *f = NULL;
    size_t n = 0, cap = 0;
    double zeroes = 0;
    int32_t plo = 0, phi = 0, nlo = 0, nhi = 0;
    int pany = 0, nany = 0;
    /* ln(2^(2^-scale)); a scale far outside the data model's -10..20 gives inf or
     * a width too small for any bucket (both refused below), never -INT32_MIN. */
    int neg_scale = p->scale < -4096 ? 4096 : (p->scale > 4096 ? -4096 : -p->scale);
    double ln_in = ldexp(log(2.0), neg_scale);
    int rv = O2D_OK;
    uint64_t total = p->zero_count;
    for (size_t j = 0; j < p->pos.n; j++) {
        total += p->pos.counts[j];
    }
    for (size_t j = 0; j < p->neg.n; j++) {
        total += p->neg.counts[j];
    }
    if (total == 1) {
        /* One value: it is the sum; added alone, without remapping artefacts. */
        int32_t k = agent_sketch_key(p->sum);
        struct agent_sketch_kc kc = {k, 1};
        rv = agent_sketch_insert_counts(s, &kc, 1);
        double v = k == 0 ? 0 : (k > 0 ? 1 : -1) * new_lower(abs(k), ln_g, offset) * (1 + ra);
        s->cnt = 1;
        s->min = s->max = s->sum = s->avg = v;
        return rv;
    }
    if (!isfinite(ln_in) || ln_in <= 0) {
        return O2D_ERR_INVALID;
    }
    rv = remap_store(&p->pos, ln_in, 1, &zeroes, &f, &n, &cap, &plo, &phi, &pany);
    if (rv == O2D_OK) {
        rv = remap_store(&p->neg, ln_in, -1, &zeroes, &f, &n, &cap, &nlo, &nhi, &nany);
    }
    zeroes += (double)p->zero_count;
    if (rv == O2D_OK && zeroes != 0) {
        if (n == cap) {
            struct fkc *q = o2d_realloc(f, (cap + 1) * sizeof(*q));
            rv = q != NULL ? O2D_OK : O2D_ERR_NOMEM;
            f = q != NULL ? q : f;
        }
        if (rv == O2D_OK) {
            f[n++] = (struct fkc){0, zeroes};
        }
    }
    if (rv != O2D_OK) {
        o2d_free(f);
        return rv;
    }
    qsort(f, n, sizeof(*f), fkc_cmp);
    /* convertFloatCountsToIntCounts: running rounding keeps the total. */
    struct agent_sketch_kc *kc = n ? o2d_malloc(n * sizeof(*kc)) : NULL;
    if (n && kc == NULL) {
        o2d_free(f);
        return O2D_ERR_NOMEM;
    }
    double ftotal = 0, sum = 0;
    uint64_t itotal = 0;
    size_t nk = 0;
    for (size_t i = 0; i < n; i++) {
        if (nk > 0 && kc[nk - 1].k == f[i].k) {
            /* The same key from two buckets' shares: one entry, as the DDSketch store has. */
        }
        ftotal += f[i].c;
        uint64_t r = (uint64_t)llround(ftotal) - itotal;
        itotal += r;
        if (r > 0) {
            if (nk > 0 && kc[nk - 1].k == f[i].k) {
                kc[nk - 1].n += r;
            } else {
                kc[nk++] = (struct agent_sketch_kc){f[i].k, r};
            }
        }
        if (f[i].k != 0) {
            int32_t a = abs(f[i].k);
            sum += (f[i].k > 0 ? 1 : -1) * f[i].c * new_lower(a, ln_g, offset) * (1 + ra);
        }
    }
    o2d_free(f);
    rv = agent_sketch_insert_counts(s, kc, nk);
    o2d_free(kc);
    if (rv != O2D_OK) {
        return rv;
    }
    /* DDSketch GetMinValue/GetMaxValue: Value(index) = LowerBound(index) * (1 + accuracy). */
    s->cnt = (int64_t)itotal;
    s->sum = sum;
    s->avg = sum / (double)itotal;
    if (nany) {
        s->min = -new_lower(nhi, ln_g, offset) * (1 + ra);
    } else if (p->zero_count > 0) {
        s->min = 0;
    } else {
        s->min = new_lower(plo, ln_g, offset) * (1 + ra);
    }
    if (pany) {
        s->max = new_lower(phi, ln_g, offset) * (1 + ra);
    } else if (p->zero_count > 0) {
        s->max = 0;
    } else {
        s->max = -new_lower(nlo, ln_g, offset) * (1 + ra);
    }
    return O2D_OK;
}

/* MapExponentialHistogramMetrics (delta only: the caller drops cumulative ones) */
static int map_exp_histograms(struct ctx *c, const struct dims *d,
                              OtlpExpHistogramPoint *const *pts, size_t npts)
{
    for (size_t i = 0; i < npts; i++) {
        struct mtr_point p;
        mtr_point_exp(pts[i], &p);
        if (no_value(c, &p)) {
            continue;
        }
        uint64_t obs = p.zero_count;
        int over = 0;
        for (size_t j = 0; j < p.pos.n; j++) {
            over |= __builtin_add_overflow(obs, p.pos.counts[j], &obs);
        }
        for (size_t j = 0; j < p.neg.n; j++) {
            over |= __builtin_add_overflow(obs, p.neg.counts[j], &obs);
        }
        if (p.count == 0 || obs == 0) {
            continue; /* nothing observed: no sketch, as Datadog's validation drops it */
        }
        if (over || obs > AGENT_SKETCH_MAX_COUNT || p.count > AGENT_SKETCH_MAX_COUNT) {
            drop(c, MTR_DROP_TOO_MANY);
            continue;
        }
        if (!p.has_sum) {
            p.sum = 0;
        }
        struct dims pd, count_d, sum_d;
        struct hist_info hi;
        TRY(dims_point(c, d, &p, &pd));
        TRY(hist_info(c, &pd, &p, 1, 0, &hi, &count_d, &sum_d));
        TRY(aggregations(c, &pd, &p, &hi, &count_d, &sum_d, 1));
        struct agent_sketch s;
        agent_sketch_init(&s);
        int rv = exp_to_sketch(&p, &s);
        if (rv == O2D_ERR_INVALID) {
            drop(c, MTR_DROP_MALFORMED);
            agent_sketch_cleanup(&s);
            continue;
        }
        if (rv == O2D_OK) {
            if (hi.ok) {
                s.cnt = (int64_t)hi.count;
                s.sum = hi.sum;
                s.avg = s.sum / (double)s.cnt;
                if (hi.count == 1) {
                    s.min = s.max = hi.sum;
                }
            }
            if (p.has_min) {
                s.min = p.min;
            }
            if (p.has_max) {
                s.max = p.max;
            }
            rv = push_sketch(c, &pd, p.time_ns, &s);
        }
        agent_sketch_cleanup(&s);
        TRY(rv == O2D_ERR_NOMEM ? O2D_ERR_TOO_LARGE : rv);
    }
    return O2D_OK;
}

/* ---- summaries ---- */

/* MapSummaryMetrics */
static int map_summaries(struct ctx *c, const struct dims *d, OtlpSummaryPoint *const *pts,
                         size_t npts)
{
    for (size_t i = 0; i < npts; i++) {
        struct mtr_point p;
        mtr_point_summary(pts[i], &p);
        if (no_value(c, &p)) {
            continue;
        }
        struct dims pd, cd, sd;
        struct mtr_key k;
        TRY(dims_point(c, d, &p, &pd));
        TRY(dims_suffix(c, &pd, "count", &cd));
        TRY(dims_key(c, &cd, 'v', &k));
        double val = (double)p.count, dx;
        int first, dropped;
        mtr_cache_monotonic(c->t->cache, k, c->now_ns, p.start_ns, p.time_ns, val, 0, &dx, &first,
                            &dropped);
        if (dropped) {
            drop(c, MTR_DROP_OUT_OF_ORDER);
        } else if (!skippable(dx)) {
            if (!first) {
                TRY(push_series(c, &cd, DDM_COUNT, p.time_ns, dx));
            } else if (i == 0 && consume_initial(c, p.start_ns, p.time_ns)) {
                TRY(push_series(c, &cd, DDM_COUNT, p.time_ns, val));
            }
        }
        TRY(dims_suffix(c, &pd, "sum", &sd));
        if (!skippable(p.sum)) {
            TRY(dims_key(c, &sd, 'v', &k));
            if (mtr_cache_diff(c->t->cache, k, c->now_ns, p.start_ns, p.time_ns, p.sum, &dx)) {
                TRY(push_series(c, &sd, DDM_COUNT, p.time_ns, dx));
            }
        }
        if (c->t->cfg.summary_mode == MTR_SUMMARY_GAUGES) {
            struct dims qd;
            TRY(dims_suffix(c, &pd, "quantile", &qd));
            for (size_t j = 0; j < p.nquantiles; j++) {
                const OtlpQuantile *q = p.quantiles[j];
                if (skippable(q->value)) {
                    continue;
                }
                char f[MTR_FLOAT_CAP];
                mtr_format_float(q->quantile, f, sizeof(f));
                const char *tag = arena_printf(c->a, "quantile:%s%s", f, "");
                struct dims td;
                if (tag == NULL) {
                    return O2D_ERR_TOO_LARGE;
                }
                TRY(dims_add(c, &qd, &tag, 1, &td));
                TRY(push_series(c, &td, DDM_GAUGE, p.time_ns, q->value));
            }
        }
    }
    return O2D_OK;
}

/* ---- the request ---- */

/* Points of a metric whose temporality Datadog does not map: counted and dropped. */
static int drop_temporality(struct ctx *c, size_t npts)
{
    if (!c->derived) {
        c->res->points += npts;
        c->res->dropped[MTR_DROP_TEMPORALITY] += npts;
    }
    return O2D_OK;
}

/* mapToDDFormat: m under `name` (its own, or what renameMetrics made of it). */
static int map_metric(struct ctx *c, const OtlpMetric *m, const char *name, const struct dims *base)
{
    struct dims d = *base;
    d.name = name;
    switch (m->data_case) {
    case CASE(GAUGE):
        if (m->gauge == NULL) {
            return O2D_OK;
        }
        return map_numbers(c, &d, DDM_GAUGE, m->gauge->data_points, m->gauge->n_data_points);
    case CASE(SUM): {
        const Opentelemetry__Proto__Metrics__V1__Sum *s = m->sum;
        if (s == NULL) {
            return O2D_OK;
        }
        if (s->aggregation_temporality == TEMP_CUMULATIVE) {
            if (s->is_monotonic && c->t->cfg.cumul_mode == MTR_CUMUL_TO_DELTA) {
                return map_monotonic(c, &d, s->data_points, s->n_data_points);
            }
            return map_numbers(c, &d, DDM_GAUGE, s->data_points, s->n_data_points);
        }
        if (s->aggregation_temporality == TEMP_DELTA) {
            return map_numbers(c, &d, DDM_COUNT, s->data_points, s->n_data_points);
        }
        return drop_temporality(c, s->n_data_points);
    }
    case CASE(HISTOGRAM): {
        const Opentelemetry__Proto__Metrics__V1__Histogram *h = m->histogram;
        if (h == NULL) {
            return O2D_OK;
        }
        if (h->aggregation_temporality == TEMP_CUMULATIVE ||
            h->aggregation_temporality == TEMP_DELTA) {
            return map_histograms(c, &d, h->data_points, h->n_data_points,
                                  h->aggregation_temporality == TEMP_DELTA);
        }
        return drop_temporality(c, h->n_data_points);
    }
    case CASE(EXPONENTIAL_HISTOGRAM): {
        const Opentelemetry__Proto__Metrics__V1__ExponentialHistogram *e = m->exponential_histogram;
        if (e == NULL) {
            return O2D_OK;
        }
        if (e->aggregation_temporality == TEMP_DELTA) {
            return map_exp_histograms(c, &d, e->data_points, e->n_data_points);
        }
        return drop_temporality(c, e->n_data_points);
    }
    case CASE(SUMMARY):
        if (m->summary == NULL) {
            return O2D_OK;
        }
        return map_summaries(c, &d, m->summary->data_points, m->summary->n_data_points);
    default:
        return O2D_OK;
    }
}

/* TagsFromInstrumentationScopeMetadata */
static int scope_tags(struct ctx *c, const OtlpScopeMetrics *sm, const char *const *rtags,
                      size_t nrtags, struct dims *d)
{
    d->tags = NULL;
    d->ntags = 0;
    struct dims r = {.tags = (const char **)rtags, .ntags = nrtags, .host = d->host};
    if (!c->t->cfg.scope_metadata_as_tags) {
        *d = r;
        return O2D_OK;
    }
    const char *name = sm->scope != NULL && sm->scope->name != NULL ? sm->scope->name : "";
    const char *version = sm->scope != NULL && sm->scope->version != NULL ? sm->scope->version : "";
    size_t nattrs = sm->scope != NULL ? sm->scope->n_attributes : 0;
    if (nattrs > MTR_SCOPE_ATTRS_MAX) {
        nattrs = MTR_SCOPE_ATTRS_MAX;
    }
    /* FormatKeyValueTag: an empty name or version is "n/a"; then the scope's attributes */
    const char **tags = o2d_arena_alloc(c->a, (2 + nattrs) * sizeof(*tags));
    if (tags == NULL) {
        return O2D_ERR_TOO_LARGE;
    }
    tags[0] = arena_printf(c->a, "instrumentation_scope:%s%s", name[0] != '\0' ? name : "n/a", "");
    tags[1] = arena_printf(c->a, "instrumentation_scope_version:%s%s",
                           version[0] != '\0' ? version : "n/a", "");
    if (tags[0] == NULL || tags[1] == NULL) {
        return O2D_ERR_TOO_LARGE;
    }
    size_t n = 2;
    for (size_t i = 0; i < nattrs; i++) {
        const OtlpKeyValue *kv = sm->scope->attributes[i];
        if (kv == NULL || kv->key == NULL) {
            continue;
        }
        int rv = attr_tag(c, kv, &tags[n]);
        if (rv != O2D_OK) {
            return rv;
        }
        n++;
    }
    return dims_add(c, &r, tags, n, d);
}

/* MapMetrics over one scope: runtime copies and remapMetrics' copies made of each metric
 * before renameMetrics renames it, the metric mapped, then every copy. */
static int map_scope(struct ctx *c, const OtlpScopeMetrics *sm, const struct dims *base)
{
    struct mtr_added added = {0};
    const struct mtr_config *cfg = &c->t->cfg;
    for (size_t k = 0; k < sm->n_metrics; k++) {
        const OtlpMetric *m = sm->metrics[k];
        const char *name = m->name != NULL ? m->name : "";
        if (cfg->runtime_remapping) {
            TRY(mtr_remap_runtime(c->a, m, &added));
        }
        if (cfg->remapping) {
            TRY(mtr_remap_copies(c->a, m, &added));
            name = mtr_remap_name(c->a, name);
            if (name == NULL) {
                return O2D_ERR_TOO_LARGE;
            }
        }
        TRY(map_metric(c, m, name, base));
    }
    c->derived = 1;
    int rv = O2D_OK;
    for (size_t k = 0; k < added.n && rv == O2D_OK; k++) {
        rv = map_metric(c, added.m[k], added.m[k]->name, base);
    }
    c->derived = 0;
    return rv;
}

int mtr_translate(struct mtr_translator *t, const OtlpMetricsReq *req, uint64_t now_ns,
                  mtr_resource_fn resource_fn, void *rctx, struct o2d_arena *a,
                  struct mtr_result *out)
{
    memset(out, 0, sizeof(*out));
    struct ctx c = {.t = t, .a = a, .now_ns = now_ns, .res = out};
    int rv = O2D_OK;
    for (size_t i = 0; req != NULL && i < req->n_resource_metrics && rv == O2D_OK; i++) {
        const OtlpResourceMetrics *rm = req->resource_metrics[i];
        const char *const *rtags = NULL;
        size_t nrtags = 0;
        const char *host = NULL;
        rv = resource_fn(rctx, rm->resource, a, &rtags, &nrtags, &host);
        for (size_t j = 0; j < rm->n_scope_metrics && rv == O2D_OK; j++) {
            const OtlpScopeMetrics *sm = rm->scope_metrics[j];
            struct dims base = {.host = host};
            rv = scope_tags(&c, sm, rtags, nrtags, &base);
            base.host = host;
            rv = rv == O2D_OK ? map_scope(&c, sm, &base) : rv;
        }
    }
    if (rv == O2D_OK) {
        out->batch.series = c.series;
        out->batch.nseries = c.nseries;
        out->batch.sketches = c.sketches;
        out->batch.nsketches = c.nsketches;
    }
    return rv;
}
