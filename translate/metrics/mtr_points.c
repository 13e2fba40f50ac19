/*
 * mtr_points.c: one OTLP data point from its protobuf bytes. translate/otlp decodes metrics
 * shallowly (each point stays opaque bytes, metrics_service.proto), so the fields the mapping
 * needs are read here, from the upstream opentelemetry/proto/metrics/v1/metrics.proto field
 * numbers: NumberDataPoint, HistogramDataPoint, ExponentialHistogramDataPoint (with Buckets)
 * and SummaryDataPoint (with ValueAtQuantile). Repeated numbers are accepted packed or not, as
 * protobuf requires of a parser. Exemplars are skipped. Attributes are unpacked by protobuf-c
 * after the same depth check as the request (otlp_pb_check).
 */
#include <string.h>

#include "mtr_int.h"
#include "o2d.h"

struct rd {
    const uint8_t *p, *end;
};

static int rd_varint(struct rd *r, uint64_t *v)
{
    uint64_t x = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (r->p >= r->end) {
            return 0;
        }
        uint8_t b = *r->p++;
        x |= (uint64_t)(b & 0x7f) << shift;
        if ((b & 0x80) == 0) {
            *v = x;
            return 1;
        }
    }
    return 0;
}

static int rd_fixed64(struct rd *r, uint64_t *v)
{
    if (r->end - r->p < 8) {
        return 0;
    }
    uint64_t x = 0;
    for (int i = 7; i >= 0; i--) {
        x = (x << 8) | r->p[i];
    }
    r->p += 8;
    *v = x;
    return 1;
}

static double as_double(uint64_t bits)
{
    double d;
    memcpy(&d, &bits, sizeof(d));
    return d;
}

/* A field's tag and, for length-delimited ones, its bytes. */
struct field {
    uint32_t num;
    int wt;
    uint64_t v;          /* varint or fixed64 */
    const uint8_t *data; /* wire type 2 */
    size_t len;
};

static int rd_field(struct rd *r, struct field *f)
{
    uint64_t tag;
    if (!rd_varint(r, &tag) || (tag >> 3) == 0 || (tag >> 3) > UINT32_MAX) {
        return 0;
    }
    f->num = (uint32_t)(tag >> 3);
    f->wt = (int)(tag & 7);
    switch (f->wt) {
    case 0:
        return rd_varint(r, &f->v);
    case 1:
        return rd_fixed64(r, &f->v);
    case 2: {
        uint64_t n;
        if (!rd_varint(r, &n) || n > (uint64_t)(r->end - r->p)) {
            return 0;
        }
        f->data = r->p;
        f->len = (size_t)n;
        r->p += n;
        return 1;
    }
    case 5:
        if (r->end - r->p < 4) {
            return 0;
        }
        r->p += 4;
        return 1;
    default:
        return 0; /* groups and unknown wire types */
    }
}

/* A repeated 64-bit number field: counts it (out == NULL) or stores it at out[*n]. fixed: fixed64
 * or double (wire type 1, packed as 8-byte items); otherwise varints. */
static int rep_u64(const struct field *f, int fixed, uint64_t *out, size_t *n)
{
    if (f->wt == (fixed ? 1 : 0)) {
        if (out != NULL) {
            out[*n] = f->v;
        }
        (*n)++;
        return 1;
    }
    if (f->wt != 2) {
        return 0;
    }
    struct rd r = {f->data, f->data + f->len};
    while (r.p < r.end) {
        uint64_t v;
        if (!(fixed ? rd_fixed64(&r, &v) : rd_varint(&r, &v))) {
            return 0;
        }
        if (out != NULL) {
            out[*n] = v;
        }
        (*n)++;
    }
    return 1;
}

static int32_t zigzag32(uint64_t v)
{
    uint32_t u = (uint32_t)v;
    return (int32_t)((u >> 1) ^ (~(u & 1) + 1));
}

static int read_kv(const struct field *f, struct o2d_arena *a, OtlpKeyValue **out,
                   const char **reason)
{
    if (otlp_pb_check(&opentelemetry__proto__common__v1__key_value__descriptor, f->data, f->len,
                      2 * OTLP_MAX_ANYVALUE_DEPTH + 2, reason) != O2D_OK) {
        return O2D_ERR_INVALID;
    }
    *out = opentelemetry__proto__common__v1__key_value__unpack(&a->pb, f->len, f->data);
    if (*out == NULL) {
        *reason = "metric data point attribute cannot be decoded";
        return O2D_ERR_INVALID;
    }
    return O2D_OK;
}

/* Field numbers per kind; 0 where the kind has no such field. */
struct layout {
    uint32_t attrs, count, sum, min, max, flags;
};
static const struct layout layouts[] = {
    [MTR_NUMBER] = {7, 0, 0, 0, 0, 8},
    [MTR_HISTOGRAM] = {9, 4, 5, 11, 12, 10},
    [MTR_EXPHIST] = {1, 4, 5, 12, 13, 10},
    [MTR_SUMMARY] = {7, 4, 5, 0, 0, 8},
};

static const char BAD[] = "metric data point cannot be decoded";

static int read_buckets(const struct field *f, struct o2d_arena *a, struct mtr_buckets *b)
{
    size_t n = 0;
    for (int pass = 0; pass < 2; pass++) {
        uint64_t *counts = NULL;
        if (pass == 1 && n > 0) {
            if (n > SIZE_MAX / 8 || (counts = o2d_arena_alloc(a, n * 8)) == NULL) {
                return O2D_ERR_TOO_LARGE;
            }
            b->counts = counts;
            b->n = n;
            n = 0;
        } else if (pass == 1) {
            return O2D_OK;
        }
        struct rd r = {f->data, f->data + f->len};
        while (r.p < r.end) {
            struct field g;
            if (!rd_field(&r, &g)) {
                return O2D_ERR_INVALID;
            }
            if (g.num == 1 && g.wt == 0) {
                b->offset = zigzag32(g.v);
            } else if (g.num == 2 && !rep_u64(&g, 0, counts, &n)) {
                return O2D_ERR_INVALID;
            }
        }
    }
    return O2D_OK;
}

int mtr_point_read(enum mtr_kind kind, const uint8_t *buf, size_t len, struct o2d_arena *a,
                   struct mtr_point *p, const char **reason)
{
    const struct layout *L = &layouts[kind];
    memset(p, 0, sizeof(*p));
    size_t nattrs = 0, nbc = 0, nbd = 0, nq = 0;
    /* Pass 0 counts the repeated fields, pass 1 fills them. */
    for (int pass = 0; pass < 2; pass++) {
        uint64_t *bc = NULL, *bd = NULL;
        double *qq = NULL, *qv = NULL;
        if (pass == 1) {
            if (nattrs > SIZE_MAX / 8 || nbc > SIZE_MAX / 8 || nbd > SIZE_MAX / 8 ||
                nq > SIZE_MAX / 8) {
                return O2D_ERR_TOO_LARGE;
            }
            if ((nattrs && (p->attrs = o2d_arena_alloc(a, nattrs * sizeof(*p->attrs))) == NULL) ||
                (nbc && (bc = o2d_arena_alloc(a, nbc * 8)) == NULL) ||
                (nbd && (bd = o2d_arena_alloc(a, nbd * 8)) == NULL) ||
                (nq && ((qq = o2d_arena_alloc(a, nq * 8)) == NULL ||
                        (qv = o2d_arena_alloc(a, nq * 8)) == NULL))) {
                return O2D_ERR_TOO_LARGE;
            }
            p->bucket_counts = bc;
            p->bounds = (const double *)bd;
            p->quantiles = qq;
            p->qvalues = qv;
            nattrs = nbc = nbd = nq = 0;
        }
        struct rd r = {buf, buf + len};
        while (r.p < r.end) {
            struct field f;
            if (!rd_field(&r, &f)) {
                *reason = BAD;
                return O2D_ERR_INVALID;
            }
            int ok = 1;
            if (f.num == L->attrs && f.wt == 2) {
                if (pass == 1) {
                    int rv = read_kv(&f, a, &p->attrs[nattrs], reason);
                    if (rv != O2D_OK) {
                        return rv;
                    }
                }
                nattrs++;
            } else if (f.num == 2 && f.wt == 1) {
                p->start_ns = f.v;
            } else if (f.num == 3 && f.wt == 1) {
                p->time_ns = f.v;
            } else if (f.num == L->flags && f.wt == 0) {
                p->flags = (uint32_t)f.v;
            } else if (f.num == L->count && f.wt == 1) {
                p->count = f.v;
            } else if (f.num == L->sum && f.wt == 1) {
                p->has_sum = 1;
                p->sum = as_double(f.v);
            } else if (f.num == L->min && f.wt == 1) {
                p->has_min = 1;
                p->min = as_double(f.v);
            } else if (f.num == L->max && f.wt == 1) {
                p->has_max = 1;
                p->max = as_double(f.v);
            } else if (kind == MTR_NUMBER && f.num == 4 && f.wt == 1) {
                p->value = as_double(f.v);
            } else if (kind == MTR_NUMBER && f.num == 6 && f.wt == 1) {
                p->value = (double)(int64_t)f.v;
            } else if (kind == MTR_HISTOGRAM && f.num == 6) {
                ok = rep_u64(&f, 1, bc, &nbc);
            } else if (kind == MTR_HISTOGRAM && f.num == 7) {
                ok = rep_u64(&f, 1, bd, &nbd);
            } else if (kind == MTR_EXPHIST && f.num == 6 && f.wt == 0) {
                p->scale = zigzag32(f.v);
            } else if (kind == MTR_EXPHIST && f.num == 7 && f.wt == 1) {
                p->zero_count = f.v;
            } else if (kind == MTR_EXPHIST && (f.num == 8 || f.num == 9) && f.wt == 2 &&
                       pass == 1) {
                struct mtr_buckets *b = f.num == 8 ? &p->pos : &p->neg;
                memset(b, 0, sizeof(*b));
                int rv = read_buckets(&f, a, b);
                if (rv != O2D_OK) {
                    *reason = BAD;
                    return rv;
                }
            } else if (kind == MTR_SUMMARY && f.num == 6 && f.wt == 2) {
                if (pass == 1) {
                    struct rd q = {f.data, f.data + f.len};
                    qq[nq] = qv[nq] = 0;
                    while (q.p < q.end) {
                        struct field g;
                        if (!rd_field(&q, &g)) {
                            *reason = BAD;
                            return O2D_ERR_INVALID;
                        }
                        if (g.num == 1 && g.wt == 1) {
                            qq[nq] = as_double(g.v);
                        } else if (g.num == 2 && g.wt == 1) {
                            qv[nq] = as_double(g.v);
                        }
                    }
                }
                nq++;
            }
            if (!ok) {
                *reason = BAD;
                return O2D_ERR_INVALID;
            }
        }
    }
    p->nattrs = nattrs;
    p->nbucket_counts = nbc;
    p->nbounds = nbd;
    p->nquantiles = nq;
    return O2D_OK;
}

void mtr_points_metric_info(const ProtobufCMessage *dp, int *temporality, int *monotonic)
{
    *temporality = 0;
    *monotonic = 0;
    for (unsigned i = 0; i < dp->n_unknown_fields; i++) {
        const ProtobufCMessageUnknownField *u = &dp->unknown_fields[i];
        if (u->wire_type != PROTOBUF_C_WIRE_TYPE_VARINT) {
            continue;
        }
        struct rd r = {u->data, u->data + u->len};
        uint64_t v;
        if (!rd_varint(&r, &v)) {
            continue;
        }
        if (u->tag == 2) {
            *temporality = (int)(v & 0x7fffffff);
        } else if (u->tag == 3) {
            *monotonic = v != 0;
        }
    }
}
