/*
 * datadog_wire.c: the pure half of the Datadog exporter (datadog_int.h): its items, how they
 * become bodies (AgentPayload protobuf for the intake, v0.4 msgpack for a local Agent, stats
 * payloads as they are) and the headers Datadog's tracers and trace agent send with them.
 * Batching, compression, splitting and sending are the delivery layer's (delivery.h).
 */
#include <stdio.h>
#include <string.h>

#include "apm_msgpack.h"
#include "datadog/trace/agent_payload.pb-c.h"
#include "datadog_int.h"
#include "o2d.h"
#include "o2d_varint.h"
#include "o2d_alloc.h"

#define DD_LANGS_MAX 256
/* The AgentPayload fields besides the TracerPayloads: hostname (255), env, version and the
 * two rates, with their tags; a generous bound. */
#define DD_AGENT_PAYLOAD_HEAD_MAX 512

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

/* The item header's bytes: the language, cut to DATADOG_LANG_MAX - 1. */
static size_t lang_len(const char *lang)
{
    return lang != NULL ? strnlen(lang, DATADOG_LANG_MAX - 1) : 0;
}

/* An item of count units and room for len bytes after its header, the language. */
static struct dlv_item *lang_item(size_t len, uint32_t count, const char *lang)
{
    size_t ll = lang_len(lang);
    struct dlv_item *it = dlv_item_new(ll + len, ll, count);
    if (it != NULL && ll > 0) {
        memcpy(it->data, lang, ll); /* lang may be NULL: memcpy must not see it */
    }
    return it;
}

struct dlv_item *datadog_trace_item(const uint8_t *tp, size_t len, size_t spans, const char *lang)
{
    struct dlv_item *it = lang_item(len, (uint32_t)spans, lang);
    if (it != NULL) {
        memcpy(it->data + it->head_len, tp, len);
    }
    return it;
}

int datadog_trace_item_begin(struct o2d_buf *b, const char *lang, size_t hint)
{
    size_t ll = lang_len(lang);
    if (b->len != 0) {
        return O2D_ERR_INVALID;
    }
    int rv = o2d_buf_reserve(b, DLV_ITEM_PREFIX + ll + hint);
    if (rv != O2D_OK) {
        return rv;
    }
    b->len = DLV_ITEM_PREFIX;
    if (ll > 0) {
        memcpy(b->data + b->len, lang, ll);
        b->len += ll;
    }
    return O2D_OK;
}

struct dlv_item *datadog_trace_item_finish(struct o2d_buf *b, size_t spans, const char *lang)
{
    size_t total;
    uint8_t *p = o2d_buf_take(b, &total);
    return p != NULL ? dlv_item_adopt(p, total, lang_len(lang), (uint32_t)spans) : NULL;
}

int datadog_split_item(const struct dlv_item *it, struct dlv_item **a, struct dlv_item **b)
{
    /* TracerPayload.chunks is field 6; everything else is copied into both halves. */
    const uint32_t chunks_field = 6;
    const uint8_t *p = dlv_item_body(it);
    size_t len = dlv_item_body_len(it);
    size_t pos = 0;
    size_t n_chunks = 0;
    uint32_t f;
    const uint8_t *v;
    size_t vl;
    while (pos < len) {
        if (next_field(p, len, &pos, &f, &v, &vl) != 0) {
            return O2D_ERR_INVALID;
        }
        n_chunks += f == chunks_field && v != NULL;
    }
    if (n_chunks < 2) {
        return O2D_ERR_TOO_LARGE;
    }
    size_t half = n_chunks / 2;
    /* Each half is at most the whole: allocate that, it is freed after sending anyway. */
    struct dlv_item *h[2] = {dlv_item_new(it->len, it->head_len, 0),
                             dlv_item_new(it->len, it->head_len, 0)};
    if (h[0] == NULL || h[1] == NULL) {
        dlv_item_free(h[0]);
        dlv_item_free(h[1]);
        return O2D_ERR_NOMEM;
    }
    for (int i = 0; i < 2; i++) {
        memcpy(h[i]->data, it->data, it->head_len);
        h[i]->len = it->head_len;
    }
    pos = 0;
    size_t k = 0;
    while (pos < len) {
        size_t start = pos;
        next_field(p, len, &pos, &f, &v, &vl);
        if (f == chunks_field && v != NULL) {
            struct dlv_item *dst = h[k++ < half ? 0 : 1];
            memcpy(dst->data + dst->len, p + start, pos - start);
            dst->len += pos - start;
            dst->count += (uint32_t)count_spans(v, vl);
        } else {
            for (int i = 0; i < 2; i++) {
                memcpy(h[i]->data + h[i]->len, p + start, pos - start);
                h[i]->len += pos - start;
            }
        }
    }
    *a = h[0];
    *b = h[1];
    return O2D_OK;
}

static size_t agent_payload_head(const struct datadog_header *h, Datadog__Trace__AgentPayload *ap)
{
    ap->hostname = (char *)(h->hostname != NULL ? h->hostname : "");
    ap->env = (char *)(h->env != NULL ? h->env : "");
    ap->agentversion = (char *)(h->agent_version != NULL ? h->agent_version : "");
    ap->targettps = h->target_tps;
    ap->errortps = h->error_tps;
    return datadog__trace__agent_payload__get_packed_size(ap);
}

int datadog_encode_agent_payload(struct o2d_buf *out, const struct datadog_header *h,
                                 struct dlv_item *const *items, size_t n)
{
    Datadog__Trace__AgentPayload ap = DATADOG__TRACE__AGENT_PAYLOAD__INIT;
    size_t head = agent_payload_head(h, &ap);
    size_t total = head;
    for (size_t i = 0; i < n; i++) {
        size_t bl = dlv_item_body_len(items[i]);
        total += 1 + o2d_varint_len(bl) + bl;
    }
    int rv = o2d_buf_reserve(out, total);
    if (rv != O2D_OK) {
        return rv;
    }
    uint8_t *p = out->data + out->len;
    p += datadog__trace__agent_payload__pack(&ap, p);
    for (size_t i = 0; i < n; i++) {
        size_t bl = dlv_item_body_len(items[i]);
        *p++ = (5 << 3) | 2; /* AgentPayload.tracerPayloads, length-delimited */
        p += o2d_put_varint(p, bl);
        memcpy(p, dlv_item_body(items[i]), bl);
        p += bl;
    }
    out->len += total;
    return O2D_OK;
}

/* ---- agentless traces ---- */

static size_t trace_cost(void *ctx, const struct dlv_item *it)
{
    (void)ctx;
    size_t bl = dlv_item_body_len(it);
    return 1 + o2d_varint_len(bl) + bl;
}

static int traces_encode(void *ctx, struct dlv_item *const *items, size_t n, struct o2d_buf *out)
{
    const struct datadog_wire *w = ctx;
    return datadog_encode_agent_payload(out, &w->h, items, n);
}

/* "python|go": the distinct languages of the items, as X-Datadog-Reported-Languages wants. */
static void join_languages(struct dlv_item *const *items, size_t n, char *out, size_t cap)
{
    size_t len = 0;
    out[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        const char *l = (const char *)items[i]->data;
        size_t ll = items[i]->head_len;
        if (ll == 0) {
            continue;
        }
        int seen = 0;
        for (size_t j = 0; j < i && !seen; j++) {
            seen = items[j]->head_len == ll && memcmp(items[j]->data, l, ll) == 0;
        }
        if (seen || len + ll + 2 > cap) {
            continue;
        }
        if (len > 0) {
            out[len++] = '|';
        }
        memcpy(out + len, l, ll);
        len += ll;
        out[len] = '\0';
    }
}

static void traces_headers(void *ctx, struct dlv_item *const *items, size_t n,
                           struct dlv_headers *h)
{
    const struct datadog_wire *w = ctx;
    char langs[DD_LANGS_MAX];
    join_languages(items, n, langs, sizeof(langs));
    dlv_headers_add(h, w->key_header, 0);
    dlv_headers_add(h, "Content-Type: application/x-protobuf", 0);
    /* "Name;" is how curl sends a header with an empty value (it drops "Name: "). */
    if (langs[0] == '\0') {
        dlv_headers_add(h, "X-Datadog-Reported-Languages;", 0);
    } else {
        dlv_headers_addf(h, "X-Datadog-Reported-Languages: %s", langs);
    }
}

const struct dlv_dest_type datadog_traces_dest = {
    .name = "datadog_traces",
    .request = "traces",
    .unit = "spans",
    .body_overhead = DD_AGENT_PAYLOAD_HEAD_MAX,
    .item_cost = trace_cost,
    .encode = traces_encode,
    .split = datadog_split_item,
    .headers = traces_headers,
};

/* ---- stats: one payload a body ---- */

struct dlv_item *datadog_stats_item(const uint8_t *msgpack, size_t len, const char *lang)
{
    struct dlv_item *it = lang_item(len, 1, lang);
    if (it != NULL) {
        memcpy(it->data + it->head_len, msgpack, len);
    }
    return it;
}

static int copy_encode(void *ctx, struct dlv_item *const *items, size_t n, struct o2d_buf *out)
{
    (void)ctx;
    int rv = O2D_OK;
    for (size_t i = 0; i < n && rv == O2D_OK; i++) {
        rv = o2d_buf_append(out, dlv_item_body(items[i]), dlv_item_body_len(items[i]));
    }
    return rv;
}

static void stats_headers(void *ctx, struct dlv_item *const *items, size_t n, struct dlv_headers *h)
{
    const struct datadog_wire *w = ctx;
    (void)items;
    (void)n;
    dlv_headers_add(h, w->key_header, 0);
    dlv_headers_add(h, "Content-Type: application/msgpack", 0);
}

const struct dlv_dest_type datadog_stats_dest = {
    .name = "datadog_stats",
    .request = "stats",
    .unit = "payloads",
    .max_items = 1,
    .encode = copy_encode,
    .headers = stats_headers,
};

/* ---- a local Agent ---- */

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

static const char *const meta_names[5] = {
    "Datadog-Meta-Lang",           "Datadog-Meta-Lang-Version", "Datadog-Meta-Lang-Interpreter",
    "Datadog-Meta-Tracer-Version", "Datadog-Container-ID",
};
static const size_t meta_max[5] = {DATADOG_LANG_MAX, DATADOG_LANG_MAX, DATADOG_LANG_MAX,
                                   DATADOG_AGENT_HDR_MAX, DATADOG_AGENT_HDR_MAX};

struct dlv_item *datadog_agent_trace_item(const uint8_t *trace, size_t len, size_t spans,
                                          const struct datadog_agent_meta *m)
{
    const char *f[5] = {m->lang, m->lang_version, m->lang_interpreter, m->tracer_version,
                        m->container_id};
    size_t fl[5];
    size_t head = 0;
    for (int i = 0; i < 5; i++) {
        fl[i] = f[i] != NULL ? strnlen(f[i], meta_max[i] - 1) : 0;
        head += fl[i] + 1;
    }
    struct dlv_item *it = dlv_item_new(head + len, head, (uint32_t)spans);
    if (it == NULL) {
        return NULL;
    }
    uint8_t *p = it->data;
    for (int i = 0; i < 5; i++) {
        if (fl[i] > 0) {
            memcpy(p, f[i], fl[i]); /* a field may be NULL: memcpy must not see it */
        }
        p[fl[i]] = '\0';
        p += fl[i] + 1;
    }
    memcpy(p, trace, len);
    return it;
}

void datadog_agent_item_meta(const struct dlv_item *it, struct datadog_agent_meta *m)
{
    const char *f[5];
    const char *p = (const char *)it->data;
    const char *end = p + it->head_len;
    for (int i = 0; i < 5; i++) {
        f[i] = p < end ? p : "";
        p += p < end ? strlen(p) + 1 : 0;
    }
    m->lang = f[0];
    m->lang_version = f[1];
    m->lang_interpreter = f[2];
    m->tracer_version = f[3];
    m->container_id = f[4];
}

static int agent_traces_encode(void *ctx, struct dlv_item *const *items, size_t n,
                               struct o2d_buf *out)
{
    (void)ctx;
    if (n > UINT32_MAX) {
        return O2D_ERR_TOO_LARGE;
    }
    uint8_t hdr[APM_MSGPACK_ARRAY_HEADER_MAX];
    size_t hl = apm_msgpack_array_header(hdr, (uint32_t)n);
    int rv = o2d_buf_append(out, hdr, hl);
    return rv == O2D_OK ? copy_encode(ctx, items, n, out) : rv;
}

/* Headers as Datadog's tracers send them to the Agent's /v0.4/traces
 * (pkg/trace/api/internal/header): the language and tracer of the traces' TracerPayload,
 * their count, and that stats and top-level marks were computed here, so the Agent neither
 * computes stats a second time nor re-marks top-level spans. With
 * Datadog-Send-Real-Http-Status the Agent answers 429 when it cannot take a payload
 * (otherwise it says 200 and drops it), so that it is retried. No API key: the Agent has
 * its own. Every item of a body has the same meta fields. */
static void agent_traces_headers(void *ctx, struct dlv_item *const *items, size_t n,
                                 struct dlv_headers *h)
{
    (void)ctx;
    struct datadog_agent_meta m;
    datadog_agent_item_meta(items[0], &m);
    const char *f[5] = {m.lang, m.lang_version, m.lang_interpreter, m.tracer_version,
                        m.container_id};
    dlv_headers_add(h, "Content-Type: application/msgpack", 0);
    dlv_headers_addf(h, "X-Datadog-Trace-Count: %zu", n);
    dlv_headers_add(h, "Datadog-Client-Computed-Stats: yes", 0);
    dlv_headers_add(h, "Datadog-Client-Computed-Top-Level: yes", 0);
    dlv_headers_add(h, "Datadog-Send-Real-Http-Status: yes", 0);
    for (int i = 0; i < 5; i++) {
        char line[DATADOG_AGENT_HDR_MAX + 40];
        agent_header(line, sizeof(line), meta_names[i], f[i]);
        dlv_headers_add(h, line, 1);
    }
}

const struct dlv_dest_type datadog_agent_traces_dest = {
    .name = "datadog_traces",
    .request = "traces",
    .unit = "spans",
    .body_overhead = APM_MSGPACK_ARRAY_HEADER_MAX,
    .group_by_head = 1,
    .encode = agent_traces_encode,
    .headers = agent_traces_headers,
};

/* One ClientStatsPayload to the Agent's /v0.6/stats, plain msgpack as tracers send it (the
 * Agent's handler decodes the body as it comes, without Content-Encoding). */
static void agent_stats_headers(void *ctx, struct dlv_item *const *items, size_t n,
                                struct dlv_headers *h)
{
    (void)ctx;
    (void)n;
    char lang[DATADOG_LANG_MAX];
    size_t ll = items[0]->head_len < sizeof(lang) ? items[0]->head_len : sizeof(lang) - 1;
    memcpy(lang, items[0]->data, ll);
    lang[ll] = '\0';
    char line[96];
    agent_header(line, sizeof(line), "Datadog-Meta-Lang", lang);
    dlv_headers_add(h, "Content-Type: application/msgpack", 0);
    dlv_headers_add(h, "Datadog-Meta-Tracer-Version: " O2D_VERSION, 0);
    dlv_headers_add(h, line, 1);
}

const struct dlv_dest_type datadog_agent_stats_dest = {
    .name = "datadog_stats",
    .request = "stats",
    .unit = "payloads",
    .max_items = 1,
    .group_by_head = 1,
    .encode = copy_encode,
    .headers = agent_stats_headers,
};
