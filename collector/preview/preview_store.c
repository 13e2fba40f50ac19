/*
 * preview_store.c: the preview's store of recent traces, and the export states the delivery
 * layer reports.
 *
 * A trace is the list of pieces its requests brought: each piece is that request's spans of
 * the trace, packed again as an ExportTraceServiceRequest with their resource and scope, so
 * that translating a piece later gives what the exporter made of the same spans (the APM
 * translator builds one chunk per trace id and resource). Traces are kept in a hash by trace
 * id and a list by last update; past the byte bound the least recently updated trace goes.
 * Pieces are built before the lock is taken. A receiver never waits for a page being served:
 * while a page reads the store a capture only tries the lock, and a request that still finds
 * it busy is skipped and counted; captures wait for each other (short holds).
 *
 * Export states: a fixed table per destination, slot = request id modulo its size, written
 * with atomics by observers on the delivery threads, read without a lock by pages. A slot
 * reused by a later request answers "unknown" for the earlier one. LLM Obs events are queued
 * by the trace buffer's tick, not by a request: the llmobs exporter tells, for each event it
 * queues, its item id and span (preview_llmobs_queued), and the delivery layer's events on the
 * llmobs destination update that item's slot (item id modulo PV_LLM_SLOTS: the oldest are
 * forgotten). A page finds a span's event by scanning those slots.
 */
#include <stdlib.h>
#include <string.h>

#include "llmobs.h"
#include "o2d.h"
#include "o2d_alloc.h"
#include "o2d_json_out.h"
#include "o2d_log.h"
#include "o2d_time.h"
#include "o2d_varint.h"
#include "preview_int.h"

/* Tries before a capture gives up: the lock is held only for list and hash updates and for
 * copying one trace out, so a few hundred spins cover the usual case without ever waiting
 * for long. */
#define PV_LOCK_TRIES 200

static uint32_t hash_tid(const uint8_t *tid)
{
    uint32_t h = 2166136261u;
    for (int i = 0; i < 16; i++) {
        h = (h ^ tid[i]) * 16777619u;
    }
    return h % PV_HASH_BUCKETS;
}

int preview_new(struct preview **out, const struct o2d_config *cfg)
{
    struct preview *pv = o2d_calloc(1, sizeof(*pv));
    if (pv == NULL) {
        return O2D_ERR_NOMEM;
    }
    pv->cfg = cfg;
    pv->max_bytes = cfg->preview_max_bytes > 0 ? cfg->preview_max_bytes : 32u << 20;
    pthread_mutex_init(&pv->mu, NULL);
    pv->started_ms = o2d_now_ms();
    *out = pv;
    return O2D_OK;
}

static void trace_free(struct pv_trace *t)
{
    struct pv_piece *p = t->pieces;
    while (p != NULL) {
        struct pv_piece *nx = p->next;
        o2d_free(p);
        p = nx;
    }
    o2d_free(t);
}

void preview_store_free(struct preview *pv)
{
    struct pv_trace *t = pv->oldest;
    while (t != NULL) {
        struct pv_trace *nx = t->newer;
        trace_free(t);
        t = nx;
    }
    pthread_mutex_destroy(&pv->mu);
    o2d_free(pv);
}

/* ---- under the lock ---- */

static struct pv_trace *find_trace(struct preview *pv, const uint8_t *tid)
{
    for (struct pv_trace *t = pv->buckets[hash_tid(tid)]; t != NULL; t = t->hnext) {
        if (memcmp(t->trace_id, tid, 16) == 0) {
            return t;
        }
    }
    return NULL;
}

static void unlink_list(struct preview *pv, struct pv_trace *t)
{
    if (t->older != NULL) {
        t->older->newer = t->newer;
    } else {
        pv->oldest = t->newer;
    }
    if (t->newer != NULL) {
        t->newer->older = t->older;
    } else {
        pv->newest = t->older;
    }
    t->older = t->newer = NULL;
}

static void push_newest(struct preview *pv, struct pv_trace *t)
{
    t->older = pv->newest;
    t->newer = NULL;
    if (pv->newest != NULL) {
        pv->newest->newer = t;
    } else {
        pv->oldest = t;
    }
    pv->newest = t;
}

static void evict_oldest(struct preview *pv)
{
    struct pv_trace *t = pv->oldest;
    unlink_list(pv, t);
    struct pv_trace **pp = &pv->buckets[hash_tid(t->trace_id)];
    while (*pp != t) {
        pp = &(*pp)->hnext;
    }
    *pp = t->hnext;
    pv->bytes -= t->bytes;
    pv->n_traces--;
    atomic_fetch_add_explicit(&pv->evicted, 1, memory_order_relaxed);
    trace_free(t);
}

/* ---- capture: spans ---- */

struct span_ref {
    const uint8_t *tid;
    uint32_t rs, ss, sp;
    size_t len; /* the span packed */
};

static int cmp_ref(const void *a, const void *b)
{
    const struct span_ref *x = a, *y = b;
    int c = memcmp(x->tid, y->tid, 16);
    if (c != 0) {
        return c;
    }
    if (x->rs != y->rs) {
        return x->rs < y->rs ? -1 : 1;
    }
    if (x->ss != y->ss) {
        return x->ss < y->ss ? -1 : 1;
    }
    return x->sp < y->sp ? -1 : x->sp > y->sp;
}

/* The summary a trace's list row shows, from what one piece brings. */
struct piece_summary {
    uint64_t start_ns, end_ns;
    uint32_t spans;
    int error, llm, has_root;
    const char *service, *env, *root;
    size_t service_n, env_n, root_n;
};

static const char *res_str(const OtlpResource *res, const char *key, size_t *n)
{
    if (res == NULL) {
        return NULL;
    }
    for (size_t i = 0; i < res->n_attributes; i++) {
        const OtlpKeyValue *kv = res->attributes[i];
        if (strcmp(kv->key, key) == 0 && kv->value != NULL &&
            kv->value->value_case ==
                OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE) {
            *n = strlen(kv->value->string_value);
            return kv->value->string_value;
        }
    }
    return NULL;
}

static void summarize_span(struct piece_summary *s, const OtlpResourceSpans *rs, const OtlpSpan *sp)
{
    if (s->spans == 0 || sp->start_time_unix_nano < s->start_ns) {
        s->start_ns = sp->start_time_unix_nano;
    }
    if (sp->end_time_unix_nano > s->end_ns) {
        s->end_ns = sp->end_time_unix_nano;
    }
    s->spans++;
    s->error |= sp->status != NULL && sp->status->code == 2;
    s->llm |= llmobs_classify(sp) != LLMOBS_NONE;
    int root = sp->parent_span_id.len == 0;
    if (s->service == NULL || root) {
        const char *v = res_str(rs->resource, "service.name", &s->service_n);
        s->service = v != NULL ? v : s->service;
        v = res_str(rs->resource, "deployment.environment.name", &s->env_n);
        if (v == NULL) {
            v = res_str(rs->resource, "deployment.environment", &s->env_n);
        }
        s->env = v != NULL ? v : s->env;
    }
    if (s->root == NULL || (root && !s->has_root)) {
        s->root = sp->name;
        s->root_n = strlen(sp->name);
    }
    s->has_root |= root;
}

static void set_summary_str(char *dst, const char *s, size_t n)
{
    if (s == NULL) {
        return;
    }
    n = n < PV_SUMMARY_STR - 1 ? n : PV_SUMMARY_STR - 1;
    n = o2d_utf8_valid_prefix(s, n);
    memcpy(dst, s, n);
    dst[n] = '\0';
}

/* The resources and scopes of one request, packed once: every trace piece that has spans
 * under them repeats their bytes. */
struct packed_parts {
    uint8_t **res; /* per ResourceSpans: the packed Resource, NULL when absent */
    size_t *res_len;
    uint8_t **scope; /* per ScopeSpans (flat index: scope_base[rs] + ss) */
    size_t *scope_len;
    size_t *scope_base;
};

static void parts_free(struct packed_parts *pp, const OtlpTraceReq *tr)
{
    for (size_t i = 0; pp->res != NULL && i < tr->n_resource_spans; i++) {
        o2d_free(pp->res[i]);
    }
    size_t n_ss = pp->scope_base != NULL ? pp->scope_base[tr->n_resource_spans] : 0;
    for (size_t i = 0; pp->scope != NULL && i < n_ss; i++) {
        o2d_free(pp->scope[i]);
    }
    o2d_free(pp->res);
    o2d_free(pp->res_len);
    o2d_free(pp->scope);
    o2d_free(pp->scope_len);
    o2d_free(pp->scope_base);
}

static uint8_t *pack_msg(const ProtobufCMessage *m, size_t *len)
{
    *len = protobuf_c_message_get_packed_size(m);
    uint8_t *p = o2d_malloc(*len > 0 ? *len : 1);
    if (p != NULL) {
        protobuf_c_message_pack(m, p);
    }
    return p;
}

static int parts_pack(struct packed_parts *pp, const OtlpTraceReq *tr)
{
    size_t nrs = tr->n_resource_spans;
    memset(pp, 0, sizeof(*pp));
    pp->res = o2d_calloc(nrs + 1, sizeof(*pp->res));
    pp->res_len = o2d_calloc(nrs + 1, sizeof(*pp->res_len));
    pp->scope_base = o2d_calloc(nrs + 1, sizeof(*pp->scope_base));
    if (pp->res == NULL || pp->res_len == NULL || pp->scope_base == NULL) {
        return O2D_ERR_NOMEM;
    }
    for (size_t i = 0; i < nrs; i++) {
        pp->scope_base[i + 1] = pp->scope_base[i] + tr->resource_spans[i]->n_scope_spans;
    }
    size_t nss = pp->scope_base[nrs];
    pp->scope = o2d_calloc(nss + 1, sizeof(*pp->scope));
    pp->scope_len = o2d_calloc(nss + 1, sizeof(*pp->scope_len));
    if (pp->scope == NULL || pp->scope_len == NULL) {
        return O2D_ERR_NOMEM;
    }
    for (size_t i = 0; i < nrs; i++) {
        const OtlpResourceSpans *rs = tr->resource_spans[i];
        if (rs->resource != NULL &&
            (pp->res[i] = pack_msg(&rs->resource->base, &pp->res_len[i])) == NULL) {
            return O2D_ERR_NOMEM;
        }
        for (size_t j = 0; j < rs->n_scope_spans; j++) {
            const OtlpScopeSpans *ss = rs->scope_spans[j];
            size_t k = pp->scope_base[i] + j;
            if (ss->scope != NULL &&
                (pp->scope[k] = pack_msg(&ss->scope->base, &pp->scope_len[k])) == NULL) {
                return O2D_ERR_NOMEM;
            }
        }
    }
    return O2D_OK;
}

/* Bytes of a length-delimited field of `len` bytes: tag, length, data. */
static size_t field_len(size_t len)
{
    return 1 + o2d_varint_len(len) + len;
}

static size_t str_field_len(const char *s)
{
    size_t n = s != NULL ? strlen(s) : 0;
    return n > 0 ? field_len(n) : 0;
}

static uint8_t *put_field(uint8_t *p, uint8_t tag, const void *data, size_t len)
{
    *p++ = tag;
    p += o2d_put_varint(p, len);
    if (data != NULL && len > 0) {
        memcpy(p, data, len);
    }
    return p + (data != NULL ? len : 0);
}

static uint8_t *put_str(uint8_t *p, uint8_t tag, const char *s)
{
    size_t n = s != NULL ? strlen(s) : 0;
    return n > 0 ? put_field(p, tag, s, n) : p;
}

/* The ScopeSpans of refs[i..) sharing refs[i]'s scope: its body length; *end the next index. */
static size_t ss_body_len(const OtlpTraceReq *tr, const struct packed_parts *pp,
                          const struct span_ref *refs, size_t i, size_t n, size_t *end)
{
    const OtlpScopeSpans *ss = tr->resource_spans[refs[i].rs]->scope_spans[refs[i].ss];
    size_t k = pp->scope_base[refs[i].rs] + refs[i].ss;
    size_t len =
        (ss->scope != NULL ? field_len(pp->scope_len[k]) : 0) + str_field_len(ss->schema_url);
    size_t e = i;
    while (e < n && refs[e].rs == refs[i].rs && refs[e].ss == refs[i].ss) {
        len += field_len(refs[e].len);
        e++;
    }
    *end = e;
    return len;
}

static size_t rs_body_len(const OtlpTraceReq *tr, const struct packed_parts *pp,
                          const struct span_ref *refs, size_t i, size_t n, size_t *end)
{
    const OtlpResourceSpans *rs = tr->resource_spans[refs[i].rs];
    size_t len = (rs->resource != NULL ? field_len(pp->res_len[refs[i].rs]) : 0) +
                 str_field_len(rs->schema_url);
    size_t e = i;
    while (e < n && refs[e].rs == refs[i].rs) {
        size_t next;
        len += field_len(ss_body_len(tr, pp, refs, e, n, &next));
        e = next;
    }
    *end = e;
    return len;
}

/*
 * Packs the spans refs[0..n) (one trace, sorted) of req as an ExportTraceServiceRequest of
 * their own, framed by hand (trace_service.proto: resource_spans = 1; trace.proto:
 * ResourceSpans resource = 1, scope_spans = 2, schema_url = 3; ScopeSpans scope = 1,
 * spans = 2, schema_url = 3), with the resource and scope bytes packed once per request.
 */
static struct pv_piece *pack_piece(const OtlpTraceReq *tr, const struct packed_parts *pp,
                                   const struct span_ref *refs, size_t n, struct piece_summary *sum)
{
    size_t total = 0;
    for (size_t i = 0; i < n;) {
        size_t e;
        total += field_len(rs_body_len(tr, pp, refs, i, n, &e));
        i = e;
    }
    struct pv_piece *p = o2d_malloc(sizeof(*p) + total);
    if (p == NULL) {
        return NULL;
    }
    memset(p, 0, sizeof(*p));
    p->len = total;
    p->spans = (uint32_t)n;
    uint8_t *w = p->data;
    for (size_t i = 0; i < n;) {
        const OtlpResourceSpans *rs = tr->resource_spans[refs[i].rs];
        size_t e;
        w = put_field(w, 0x0a, NULL, rs_body_len(tr, pp, refs, i, n, &e));
        if (rs->resource != NULL) {
            w = put_field(w, 0x0a, pp->res[refs[i].rs], pp->res_len[refs[i].rs]);
        }
        for (size_t j = i; j < e;) {
            const OtlpScopeSpans *ss = rs->scope_spans[refs[j].ss];
            size_t k = pp->scope_base[refs[j].rs] + refs[j].ss;
            size_t se;
            w = put_field(w, 0x12, NULL, ss_body_len(tr, pp, refs, j, n, &se));
            if (ss->scope != NULL) {
                w = put_field(w, 0x0a, pp->scope[k], pp->scope_len[k]);
            }
            for (size_t m = j; m < se; m++) {
                const OtlpSpan *sp = ss->spans[refs[m].sp];
                w = put_field(w, 0x12, NULL, refs[m].len);
                w += protobuf_c_message_pack(&sp->base, w);
                summarize_span(sum, rs, sp);
            }
            w = put_str(w, 0x1a, ss->schema_url);
            j = se;
        }
        w = put_str(w, 0x1a, rs->schema_url);
        i = e;
    }
    return p;
}

struct pending {
    uint8_t tid[16];
    struct pv_piece *piece;
    struct piece_summary sum;
};

/* Captures wait for each other (their holds are short: links and evictions), never for a
 * page: while a reader is in (pv->readers), a capture tries PV_LOCK_TRIES times and gives up. */
static int lock_try(struct preview *pv)
{
    for (int i = 0; i < PV_LOCK_TRIES; i++) {
        if (pthread_mutex_trylock(&pv->mu) == 0) {
            return 1;
        }
        if (atomic_load_explicit(&pv->readers, memory_order_relaxed) == 0) {
            pthread_mutex_lock(&pv->mu);
            return 1;
        }
#if defined(__x86_64__) || defined(__i386__)
        __builtin_ia32_pause();
#endif
    }
    return 0;
}

/* Adds piece p to its trace (made when new); frees p when it cannot fit. Under the lock. */
static void add_piece(struct preview *pv, struct pending *pd, int64_t now_ms)
{
    struct pv_piece *p = pd->piece;
    size_t cost = sizeof(*p) + p->len;
    struct pv_trace *t = find_trace(pv, pd->tid);
    if (cost + (t == NULL ? sizeof(*t) : 0) > pv->max_bytes) {
        atomic_fetch_add_explicit(&pv->skipped_large, 1, memory_order_relaxed);
        o2d_free(p);
        return;
    }
    if (t != NULL) {
        unlink_list(pv, t); /* not evicted to make room for itself */
    }
    while (pv->oldest != NULL && pv->bytes + cost + (t == NULL ? sizeof(*t) : 0) > pv->max_bytes) {
        evict_oldest(pv);
    }
    if (t == NULL) {
        t = o2d_calloc(1, sizeof(*t));
        if (t == NULL) {
            o2d_free(p);
            return;
        }
        memcpy(t->trace_id, pd->tid, 16);
        t->tailp = &t->pieces;
        t->bytes = sizeof(*t);
        t->first_ms = now_ms;
        uint32_t h = hash_tid(pd->tid);
        t->hnext = pv->buckets[h];
        pv->buckets[h] = t;
        pv->bytes += sizeof(*t);
        pv->n_traces++;
    }
    push_newest(pv, t);
    *t->tailp = p;
    t->tailp = &p->next;
    t->bytes += cost;
    pv->bytes += cost;
    t->seq = ++pv->seq;
    t->last_ms = now_ms;
    if (p->is_logs) {
        return;
    }
    const struct piece_summary *s = &pd->sum;
    t->last_origin = p->origin;
    if (t->spans == 0 || s->start_ns < t->start_ns) {
        t->start_ns = s->start_ns;
    }
    if (s->end_ns > t->end_ns) {
        t->end_ns = s->end_ns;
    }
    t->spans += s->spans;
    t->error |= s->error;
    t->llm |= s->llm;
    if (t->service[0] == '\0' || (s->has_root && !t->has_root)) {
        set_summary_str(t->service, s->service, s->service_n);
        set_summary_str(t->env, s->env, s->env_n);
    }
    if (t->root[0] == '\0' || (s->has_root && !t->has_root)) {
        set_summary_str(t->root, s->root, s->root_n);
    }
    t->has_root |= s->has_root;
}

static void capture_traces(struct preview *pv, const struct otlp_request *req)
{
    const OtlpTraceReq *tr = req->msg.traces;
    size_t n = 0;
    for (size_t i = 0; i < tr->n_resource_spans; i++) {
        for (size_t j = 0; j < tr->resource_spans[i]->n_scope_spans; j++) {
            n += tr->resource_spans[i]->scope_spans[j]->n_spans;
        }
    }
    if (n == 0) {
        return;
    }
    struct span_ref *refs = o2d_malloc(n * sizeof(*refs));
    struct pending *pend = o2d_calloc(n, sizeof(*pend));
    size_t n_pend = 0;
    struct packed_parts pp;
    int have_parts = parts_pack(&pp, tr) == O2D_OK;
    if (refs == NULL || pend == NULL || !have_parts) {
        goto out;
    }
    size_t k = 0;
    for (size_t i = 0; i < tr->n_resource_spans; i++) {
        const OtlpResourceSpans *rs = tr->resource_spans[i];
        for (size_t j = 0; j < rs->n_scope_spans; j++) {
            const OtlpScopeSpans *ss = rs->scope_spans[j];
            for (size_t m = 0; m < ss->n_spans; m++) {
                /* otlp_decode validated ids: 16 bytes */
                refs[k++] = (struct span_ref){
                    ss->spans[m]->trace_id.data, (uint32_t)i, (uint32_t)j, (uint32_t)m,
                    protobuf_c_message_get_packed_size(&ss->spans[m]->base)};
            }
        }
    }
    qsort(refs, n, sizeof(*refs), cmp_ref);
    int64_t now_ms = o2d_now_ms();
    for (size_t i = 0; i < n;) {
        size_t e = i + 1;
        while (e < n && memcmp(refs[e].tid, refs[i].tid, 16) == 0) {
            e++;
        }
        struct pending *pd = &pend[n_pend];
        memcpy(pd->tid, refs[i].tid, 16);
        pd->piece = pack_piece(tr, &pp, refs + i, e - i, &pd->sum);
        if (pd->piece != NULL) {
            pd->piece->origin = req->id;
            pd->piece->received_ms = now_ms;
            n_pend++;
        }
        i = e;
    }
    if (!lock_try(pv)) {
        atomic_fetch_add_explicit(&pv->skipped_busy, 1, memory_order_relaxed);
        goto out;
    }
    for (size_t i = 0; i < n_pend; i++) {
        add_piece(pv, &pend[i], now_ms);
        pend[i].piece = NULL;
    }
    pthread_mutex_unlock(&pv->mu);
    atomic_fetch_add_explicit(&pv->spans_captured, n, memory_order_relaxed);
out:
    parts_free(&pp, tr);
    for (size_t i = 0; pend != NULL && i < n_pend; i++) {
        o2d_free(pend[i].piece);
    }
    o2d_free(pend);
    o2d_free(refs);
}

/* ---- capture: gen_ai log records of held traces ---- */

static void capture_logs(struct preview *pv, const struct otlp_request *req)
{
    const OtlpLogsReq *lr = req->msg.logs;
    for (size_t i = 0; i < lr->n_resource_logs; i++) {
        Opentelemetry__Proto__Logs__V1__ResourceLogs *rl = lr->resource_logs[i];
        for (size_t j = 0; j < rl->n_scope_logs; j++) {
            Opentelemetry__Proto__Logs__V1__ScopeLogs *sl = rl->scope_logs[j];
            for (size_t m = 0; m < sl->n_log_records; m++) {
                OtlpLogRecord *r = sl->log_records[m];
                if (r->trace_id.len != 16 || !llmobs_log_is_genai(r)) {
                    continue;
                }
                /* One record a piece: a request's records may belong to many traces, and
                 * gen_ai records are few. */
                Opentelemetry__Proto__Logs__V1__ScopeLogs one_sl = *sl;
                one_sl.n_log_records = 1;
                one_sl.log_records = &r;
                Opentelemetry__Proto__Logs__V1__ScopeLogs *slp = &one_sl;
                Opentelemetry__Proto__Logs__V1__ResourceLogs one_rl = *rl;
                one_rl.n_scope_logs = 1;
                one_rl.scope_logs = &slp;
                Opentelemetry__Proto__Logs__V1__ResourceLogs *rlp = &one_rl;
                OtlpLogsReq one = *lr;
                one.n_resource_logs = 1;
                one.resource_logs = &rlp;
                size_t len =
                    opentelemetry__proto__collector__logs__v1__export_logs_service_request__get_packed_size(
                        &one);
                struct pending pd;
                memset(&pd, 0, sizeof(pd));
                memcpy(pd.tid, r->trace_id.data, 16);
                pd.piece = o2d_malloc(sizeof(struct pv_piece) + len);
                if (pd.piece == NULL) {
                    continue;
                }
                memset(pd.piece, 0, sizeof(struct pv_piece));
                pd.piece->len = len;
                pd.piece->is_logs = 1;
                pd.piece->origin = req->id;
                pd.piece->received_ms = o2d_now_ms();
                opentelemetry__proto__collector__logs__v1__export_logs_service_request__pack(
                    &one, pd.piece->data);
                if (!lock_try(pv)) {
                    atomic_fetch_add_explicit(&pv->skipped_busy, 1, memory_order_relaxed);
                    o2d_free(pd.piece);
                    continue;
                }
                if (find_trace(pv, pd.tid) != NULL) {
                    add_piece(pv, &pd, pd.piece->received_ms);
                    atomic_fetch_add_explicit(&pv->logs_joined, 1, memory_order_relaxed);
                } else {
                    o2d_free(pd.piece);
                }
                pthread_mutex_unlock(&pv->mu);
            }
        }
    }
}

void preview_capture(struct preview *pv, const struct otlp_request *req)
{
    if (req->signal == OTLP_SIGNAL_TRACES && req->msg.traces != NULL) {
        capture_traces(pv, req);
    } else if (req->signal == OTLP_SIGNAL_LOGS && req->msg.logs != NULL) {
        capture_logs(pv, req);
    }
}

/* ---- reading ---- */

static void reader_lock(struct preview *pv)
{
    atomic_fetch_add(&pv->readers, 1);
    pthread_mutex_lock(&pv->mu);
}

static void reader_unlock(struct preview *pv)
{
    pthread_mutex_unlock(&pv->mu);
    atomic_fetch_sub(&pv->readers, 1);
}

int pv_copy_trace(struct preview *pv, const uint8_t trace_id[16], struct pv_copy *out)
{
    memset(out, 0, sizeof(*out));
    int rv = O2D_ERR_NOT_FOUND;
    reader_lock(pv);
    struct pv_trace *t = find_trace(pv, trace_id);
    if (t == NULL) {
        goto out;
    }
    out->summary = *t;
    out->summary.pieces = NULL;
    out->summary.tailp = NULL;
    out->summary.hnext = out->summary.older = out->summary.newer = NULL;
    size_t n = 0;
    for (struct pv_piece *p = t->pieces; p != NULL; p = p->next) {
        n++;
    }
    rv = O2D_ERR_NOMEM;
    out->pieces = o2d_calloc(n > 0 ? n : 1, sizeof(*out->pieces));
    if (out->pieces == NULL) {
        goto out;
    }
    for (struct pv_piece *p = t->pieces; p != NULL; p = p->next) {
        struct pv_piece *c = o2d_malloc(sizeof(*p) + p->len);
        if (c == NULL) {
            goto out;
        }
        memcpy(c, p, sizeof(*p) + p->len);
        c->next = NULL;
        out->pieces[out->n++] = c;
    }
    rv = O2D_OK;
out:
    reader_unlock(pv);
    if (rv != O2D_OK) {
        pv_copy_free(out);
    }
    return rv;
}

void pv_copy_free(struct pv_copy *c)
{
    for (size_t i = 0; i < c->n; i++) {
        o2d_free(c->pieces[i]);
    }
    o2d_free(c->pieces);
    c->pieces = NULL;
    c->n = 0;
}

int pv_list(struct preview *pv, struct pv_trace **out, size_t *n)
{
    reader_lock(pv);
    size_t cnt = pv->n_traces;
    struct pv_trace *arr = o2d_malloc((cnt > 0 ? cnt : 1) * sizeof(*arr));
    if (arr == NULL) {
        reader_unlock(pv);
        return O2D_ERR_NOMEM;
    }
    size_t i = 0;
    for (struct pv_trace *t = pv->newest; t != NULL && i < cnt; t = t->older) {
        arr[i] = *t;
        arr[i].pieces = NULL;
        arr[i].tailp = NULL;
        arr[i].hnext = NULL;
        arr[i].older = arr[i].newer = NULL;
        i++;
    }
    reader_unlock(pv);
    *out = arr;
    *n = i;
    return O2D_OK;
}

void preview_stats(struct preview *pv, struct preview_stats *st)
{
    memset(st, 0, sizeof(*st));
    reader_lock(pv);
    st->traces = pv->n_traces;
    st->bytes = pv->bytes;
    reader_unlock(pv);
    st->max_bytes = pv->max_bytes;
    st->spans_captured = atomic_load(&pv->spans_captured);
    st->skipped_busy = atomic_load(&pv->skipped_busy);
    st->skipped_large = atomic_load(&pv->skipped_large);
    st->evicted_traces = atomic_load(&pv->evicted);
    st->logs_joined = atomic_load(&pv->logs_joined);
}

/* ---- export states ---- */

static uint64_t be64_at(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) {
        v = (v << 8) | p[i];
    }
    return v;
}

void preview_llmobs_queued(void *ctx, uint64_t item_id, const uint8_t trace_id[16],
                           uint64_t span_id)
{
    struct preview *pv = ctx;
    if (item_id == 0) {
        return;
    }
    struct pv_llm_state *s = &pv->llm[item_id % PV_LLM_SLOTS];
    if (atomic_exchange(&s->item_id, 0) != 0) {
        atomic_fetch_add_explicit(&pv->llm_forgotten, 1, memory_order_relaxed);
    }
    atomic_store(&s->tid_hi, be64_at(trace_id));
    atomic_store(&s->tid_lo, be64_at(trace_id + 8));
    atomic_store(&s->span_id, span_id);
    atomic_store(&s->state, DLV_QUEUED);
    atomic_store(&s->attempts, 0);
    atomic_store(&s->reason, -1);
    atomic_store(&s->item_id, item_id);
}

/* An event of the llmobs destination: its item's slot, if it is still that item's. */
static void observe_llm_item(struct preview *pv, const struct dlv_event *ev)
{
    if (ev->state == DLV_QUEUED || ev->item_id == 0) {
        return; /* preview_llmobs_queued did it, with the span */
    }
    struct pv_llm_state *s = &pv->llm[ev->item_id % PV_LLM_SLOTS];
    if (atomic_load(&s->item_id) != ev->item_id) {
        return;
    }
    /* retrying: the attempt to come counts already, so that retries = attempts - 1 */
    atomic_store(&s->attempts, ev->state == DLV_RETRYING ? ev->attempts + 1 : ev->attempts);
    atomic_store(&s->reason, ev->state == DLV_DROPPED ? ev->reason : -1);
    atomic_store(&s->state, (int32_t)ev->state);
}

void preview_observe(void *ctx, const struct dlv_event *ev)
{
    struct preview *pv = ctx;
    if (ev->origin == 0) {
        if (strcmp(ev->dest, "llmobs") == 0) {
            observe_llm_item(pv, ev);
        }
        return; /* made by the destination itself (stats, LLM Obs events): no request */
    }
    enum pv_dest d;
    if (strcmp(ev->dest, "datadog_traces") == 0) {
        d = PV_DEST_TRACES;
    } else if (strcmp(ev->dest, "llmobs") == 0) {
        d = PV_DEST_LLMOBS;
    } else {
        return;
    }
    struct pv_state *s = &pv->states[d][ev->origin % PV_STATE_SLOTS];
    if (ev->state == DLV_QUEUED) {
        if (atomic_load_explicit(&s->origin, memory_order_relaxed) != ev->origin) {
            atomic_store(&s->queued, 0);
            atomic_store(&s->sent, 0);
            atomic_store(&s->dropped, 0);
            atomic_store(&s->attempts, 0);
            atomic_store(&s->reason, -1);
            atomic_store(&s->origin, ev->origin);
        }
        atomic_fetch_add(&s->queued, 1);
        return;
    }
    if (atomic_load_explicit(&s->origin, memory_order_relaxed) != ev->origin) {
        return;
    }
    /* retrying: the attempt to come counts already (the request reads "retrying") */
    int32_t want = ev->state == DLV_RETRYING ? ev->attempts + 1 : ev->attempts;
    int32_t a = atomic_load(&s->attempts);
    while (want > a && !atomic_compare_exchange_weak(&s->attempts, &a, want)) {
    }
    if (ev->state == DLV_RETRYING) {
        return;
    }
    if (ev->state == DLV_SENT) {
        atomic_fetch_add(&s->sent, 1);
    } else {
        atomic_store(&s->reason, ev->reason);
        atomic_fetch_add(&s->dropped, 1);
    }
}

static int dest_on(struct preview *pv, enum pv_dest d)
{
    const struct o2d_config *c = pv->cfg;
    if (!c->datadog.enabled) {
        return 0;
    }
    return d == PV_DEST_TRACES ? c->datadog.traces_enabled : c->datadog.llmobs.enabled;
}

const char *pv_state_word(struct preview *pv, enum pv_dest d, uint64_t origin)
{
    if (!dest_on(pv, d)) {
        return pv->cfg->datadog.enabled ? "off" : "dry run";
    }
    if (d == PV_DEST_LLMOBS) {
        /* LLM Obs events are queued by the trace buffer's tick, not by a request: see
         * pv_llm_state_word, by span. */
        return "through the trace buffer (see Status)";
    }
    struct pv_state *s = &pv->states[d][origin % PV_STATE_SLOTS];
    if (origin == 0 || atomic_load(&s->origin) != origin) {
        return "unknown";
    }
    uint32_t q = atomic_load(&s->queued), sent = atomic_load(&s->sent),
             dr = atomic_load(&s->dropped);
    if (dr > 0) {
        return "dropped";
    }
    if (sent >= q) {
        return atomic_load(&s->attempts) > 1 ? "sent after retries" : "sent";
    }
    return atomic_load(&s->attempts) > 1 ? "retrying" : "queued";
}

int pv_state_json(struct preview *pv, enum pv_dest d, uint64_t origin, struct o2d_buf *b)
{
    const char *w = pv_state_word(pv, d, origin);
    int rv = o2d_buf_append_str(b, "{\"state\":");
    rv = rv ? rv : o2d_json_append_string(b, w, strlen(w));
    struct pv_state *s = &pv->states[d][origin % PV_STATE_SLOTS];
    if (rv == O2D_OK && dest_on(pv, d) && origin != 0 && atomic_load(&s->origin) == origin) {
        int32_t a = atomic_load(&s->attempts);
        int32_t r = atomic_load(&s->reason);
        rv = o2d_buf_printf(b,
                            ",\"items_queued\":%u,\"items_sent\":%u,\"items_dropped\":%u,"
                            "\"retries\":%d",
                            (unsigned)atomic_load(&s->queued), (unsigned)atomic_load(&s->sent),
                            (unsigned)atomic_load(&s->dropped), a > 1 ? a - 1 : 0);
        if (rv == O2D_OK && atomic_load(&s->dropped) > 0 && r >= 0) {
            rv = o2d_buf_append_str(b, ",\"drop_reason\":");
            const char *rn = dlv_drop_reason_name(r);
            rv = rv ? rv : o2d_json_append_string(b, rn, strlen(rn));
        }
    }
    return rv ? rv : o2d_buf_append_str(b, "}");
}

int pv_parse_hex(const char *s, size_t n, uint8_t *out)
{
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        int v = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
        if (v < 0) {
            return 0;
        }
        if (i % 2 == 0) {
            out[i / 2] = (uint8_t)(v << 4);
        } else {
            out[i / 2] |= (uint8_t)v;
        }
    }
    return n % 2 == 0;
}

/* The newest slot holding span (trace_id, span_id), read consistently; 0 when none. */
static uint64_t find_llm(struct preview *pv, const uint8_t trace_id[16], uint64_t span_id,
                         int32_t *state, int32_t *attempts, int32_t *reason)
{
    uint64_t hi = be64_at(trace_id), lo = be64_at(trace_id + 8);
    uint64_t best = 0;
    for (size_t i = 0; i < PV_LLM_SLOTS; i++) {
        struct pv_llm_state *s = &pv->llm[i];
        uint64_t id = atomic_load(&s->item_id);
        if (id == 0 || id < best || atomic_load(&s->span_id) != span_id ||
            atomic_load(&s->tid_lo) != lo || atomic_load(&s->tid_hi) != hi) {
            continue;
        }
        int32_t st = atomic_load(&s->state), a = atomic_load(&s->attempts),
                r = atomic_load(&s->reason);
        if (atomic_load(&s->item_id) != id) {
            continue; /* taken by a newer item meanwhile */
        }
        best = id;
        *state = st;
        *attempts = a;
        *reason = r;
    }
    return best;
}

const char *pv_llm_state_word(struct preview *pv, const uint8_t trace_id[16], uint64_t span_id)
{
    if (!dest_on(pv, PV_DEST_LLMOBS)) {
        return pv->cfg->datadog.enabled ? "off" : "dry run: not sent";
    }
    int32_t st = 0, a = 0, r = -1;
    if (find_llm(pv, trace_id, span_id, &st, &a, &r) == 0) {
        return "not queued yet (in the trace buffer) or forgotten";
    }
    if (st == DLV_SENT) {
        return a > 1 ? "sent after retries" : "sent";
    }
    return st == DLV_DROPPED ? "dropped" : st == DLV_RETRYING ? "retrying" : "queued";
}

int pv_llm_state_json(struct preview *pv, const uint8_t trace_id[16], uint64_t span_id,
                      struct o2d_buf *b)
{
    const char *w = pv_llm_state_word(pv, trace_id, span_id);
    int rv = o2d_buf_append_str(b, "{\"state\":");
    rv = rv ? rv : o2d_json_append_string(b, w, strlen(w));
    int32_t st = 0, a = 0, r = -1;
    uint64_t id = dest_on(pv, PV_DEST_LLMOBS) ? find_llm(pv, trace_id, span_id, &st, &a, &r) : 0;
    if (rv == O2D_OK && id != 0) {
        rv = o2d_buf_printf(b, ",\"item_id\":%llu,\"retries\":%d", (unsigned long long)id,
                            a > 1 ? a - 1 : 0);
        if (rv == O2D_OK && st == DLV_DROPPED && r >= 0) {
            rv = o2d_buf_append_str(b, ",\"drop_reason\":");
            const char *rn = dlv_drop_reason_name(r);
            rv = rv ? rv : o2d_json_append_string(b, rn, strlen(rn));
        }
    }
    return rv ? rv : o2d_buf_append_str(b, "}");
}

const char *pv_llm_trace_word(struct preview *pv, const uint8_t trace_id[16])
{
    if (!dest_on(pv, PV_DEST_LLMOBS)) {
        return pv->cfg->datadog.enabled ? "off" : "dry run: not sent";
    }
    uint64_t hi = be64_at(trace_id), lo = be64_at(trace_id + 8);
    size_t queued = 0, sent = 0, retried = 0, dropped = 0;
    for (size_t i = 0; i < PV_LLM_SLOTS; i++) {
        struct pv_llm_state *s = &pv->llm[i];
        uint64_t id = atomic_load(&s->item_id);
        if (id == 0 || atomic_load(&s->tid_lo) != lo || atomic_load(&s->tid_hi) != hi) {
            continue;
        }
        int32_t st = atomic_load(&s->state), a = atomic_load(&s->attempts);
        if (atomic_load(&s->item_id) != id) {
            continue;
        }
        queued += st == DLV_QUEUED || st == DLV_RETRYING;
        sent += st == DLV_SENT;
        retried += st == DLV_SENT && a > 1;
        dropped += st == DLV_DROPPED;
    }
    if (dropped > 0) {
        return "dropped";
    }
    if (queued > 0) {
        return "queued";
    }
    if (sent > 0) {
        return retried > 0 ? "sent after retries" : "sent";
    }
    return "not queued yet";
}
