/*
 * res_json.c: JSON text the way the Go side of Datadog's OTLP ingest writes it, so that values
 * built from arrays, maps and doubles read the same in APM meta, log attributes and tags:
 * pcommon Value.AsString() (encoding/json of AsRaw(): map keys sorted, HTML-safe escapes,
 * float64 in the ES6 shortest form).
 *
 * Unlike Go, invalid UTF-8 never reaches the output: it becomes \ufffd (Go's encoder does the
 * same for strings).
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "o2d.h"
#include "o2d_json_out.h"
#include "resource.h"

static size_t seq_len(const unsigned char *s, size_t avail)
{
    size_t v = o2d_utf8_valid_prefix((const char *)s, avail < 4 ? avail : 4);
    if (v == 0) {
        return 0;
    }
    /* The first character's length. */
    unsigned char c = s[0];
    size_t n = c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
    return n <= v ? n : 0;
}

int res_json_string(struct o2d_buf *b, const char *str, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *s = (const unsigned char *)str;
    int rv = o2d_buf_append_byte(b, '"');
    size_t i = 0;
    while (i < n && rv == O2D_OK) {
        size_t start = i;
        while (i < n && s[i] >= 0x20 && s[i] < 0x80 && s[i] != '"' && s[i] != '\\' && s[i] != '<' &&
               s[i] != '>' && s[i] != '&') {
            i++;
        }
        if (i > start) {
            rv = o2d_buf_append(b, s + start, i - start);
            continue;
        }
        unsigned char c = s[i];
        if (c >= 0x80) {
            size_t w = seq_len(s + i, n - i);
            if (w == 0) {
                rv = o2d_buf_append_str(b, "\\ufffd");
                i++;
            } else if (w == 3 && c == 0xE2 && s[i + 1] == 0x80 &&
                       (s[i + 2] == 0xA8 || s[i + 2] == 0xA9)) {
                rv = o2d_buf_append_str(b, s[i + 2] == 0xA8 ? "\\u2028" : "\\u2029");
                i += 3;
            } else {
                rv = o2d_buf_append(b, s + i, w);
                i += w;
            }
            continue;
        }
        switch (c) {
        case '"':
            rv = o2d_buf_append_str(b, "\\\"");
            break;
        case '\\':
            rv = o2d_buf_append_str(b, "\\\\");
            break;
        case '\n':
            rv = o2d_buf_append_str(b, "\\n");
            break;
        case '\r':
            rv = o2d_buf_append_str(b, "\\r");
            break;
        case '\t':
            rv = o2d_buf_append_str(b, "\\t");
            break;
        default: {
            char esc[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 0xF]};
            rv = o2d_buf_append(b, esc, 6);
        }
        }
        i++;
    }
    if (rv == O2D_OK) {
        rv = o2d_buf_append_byte(b, '"');
    }
    return rv;
}

int res_json_float(struct o2d_buf *b, double f)
{
    if (isnan(f) || isinf(f)) {
        /* encoding/json refuses these; pcommon's AsString prints a marker string. */
        return o2d_buf_printf(b, "json: unsupported value: %s",
                              isnan(f) ? "NaN" : (f > 0 ? "+Inf" : "-Inf"));
    }
    if (f == 0) {
        return o2d_buf_append_str(b, signbit(f) ? "-0" : "0");
    }
    /* Shortest round-trip digits, then laid out as Go's 'f' or 'e' (ES6 cut-offs). */
    char tmp[40];
    int prec;
    for (prec = 1; prec <= 17; prec++) {
        snprintf(tmp, sizeof(tmp), "%.*e", prec - 1, f);
        if (strtod(tmp, NULL) == f) {
            break;
        }
    }
    char digits[24];
    size_t nd = 0;
    const char *p = tmp;
    int neg = 0;
    if (*p == '-') {
        neg = 1;
        p++;
    }
    for (; *p != 'e'; p++) {
        if (*p >= '0' && *p <= '9') {
            digits[nd++] = *p;
        }
    }
    int exp10 = atoi(p + 1);
    while (nd > 1 && digits[nd - 1] == '0') {
        nd--;
    }
    double af = fabs(f);
    char out[64];
    size_t o = 0;
    if (neg) {
        out[o++] = '-';
    }
    if (af < 1e-6 || af >= 1e21) {
        out[o++] = digits[0];
        if (nd > 1) {
            out[o++] = '.';
            memcpy(out + o, digits + 1, nd - 1);
            o += nd - 1;
        }
        o += (size_t)snprintf(out + o, sizeof(out) - o, "e%c%d", exp10 < 0 ? '-' : '+',
                              exp10 < 0 ? -exp10 : exp10);
    } else if (exp10 < 0) {
        out[o++] = '0';
        out[o++] = '.';
        for (int z = -1; z > exp10; z--) {
            out[o++] = '0';
        }
        memcpy(out + o, digits, nd);
        o += nd;
    } else {
        for (int k = 0; k <= exp10 || (size_t)k < nd; k++) {
            if (k == exp10 + 1) {
                out[o++] = '.';
            }
            out[o++] = (size_t)k < nd ? digits[k] : '0';
        }
    }
    return o2d_buf_append(b, out, o);
}

static int base64_append(struct o2d_buf *b, const uint8_t *p, size_t n)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    int rv = O2D_OK;
    for (size_t i = 0; i < n && rv == O2D_OK; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16;
        if (i + 1 < n) {
            v |= (uint32_t)p[i + 1] << 8;
        }
        if (i + 2 < n) {
            v |= p[i + 2];
        }
        char q[4] = {tab[(v >> 18) & 63], tab[(v >> 12) & 63], i + 1 < n ? tab[(v >> 6) & 63] : '=',
                     i + 2 < n ? tab[v & 63] : '='};
        rv = o2d_buf_append(b, q, 4);
    }
    return rv;
}

static int cmp_kv_key(const void *x, const void *y)
{
    const OtlpKeyValue *a = *(OtlpKeyValue *const *)x;
    const OtlpKeyValue *b = *(OtlpKeyValue *const *)y;
    return strcmp(a->key, b->key);
}

int res_json_value(struct o2d_buf *b, struct o2d_arena *a, const OtlpAnyValue *v, int depth)
{
    if (v == NULL || depth > OTLP_MAX_ANYVALUE_DEPTH) {
        return o2d_buf_append_str(b, "null");
    }
    switch (v->value_case) {
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE:
        return res_json_string(b, v->string_value, strlen(v->string_value));
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BOOL_VALUE:
        return o2d_buf_append_str(b, v->bool_value ? "true" : "false");
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE:
        return o2d_buf_printf(b, "%" PRId64, v->int_value);
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE:
        if (isnan(v->double_value) || isinf(v->double_value)) {
            return o2d_buf_append_str(b, "null");
        }
        return res_json_float(b, v->double_value);
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BYTES_VALUE: {
        int rv = o2d_buf_append_byte(b, '"');
        if (rv == O2D_OK) {
            rv = base64_append(b, v->bytes_value.data, v->bytes_value.len);
        }
        return rv == O2D_OK ? o2d_buf_append_byte(b, '"') : rv;
    }
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_ARRAY_VALUE: {
        int rv = o2d_buf_append_byte(b, '[');
        const Opentelemetry__Proto__Common__V1__ArrayValue *arr = v->array_value;
        for (size_t i = 0; arr != NULL && i < arr->n_values && rv == O2D_OK; i++) {
            if (i > 0) {
                rv = o2d_buf_append_byte(b, ',');
            }
            if (rv == O2D_OK) {
                rv = res_json_value(b, a, arr->values[i], depth + 1);
            }
        }
        return rv == O2D_OK ? o2d_buf_append_byte(b, ']') : rv;
    }
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_KVLIST_VALUE: {
        const Opentelemetry__Proto__Common__V1__KeyValueList *kl = v->kvlist_value;
        size_t n = kl != NULL ? kl->n_values : 0;
        int rv = o2d_buf_append_byte(b, '{');
        if (n > 0) {
            /* encoding/json sorts map keys: sort a copy of the pointers. */
            OtlpKeyValue **sorted = o2d_arena_alloc(a, n * sizeof(*sorted));
            if (sorted == NULL) {
                return O2D_ERR_TOO_LARGE;
            }
            memcpy(sorted, kl->values, n * sizeof(*sorted));
            qsort(sorted, n, sizeof(*sorted), cmp_kv_key);
            for (size_t i = 0; i < n && rv == O2D_OK; i++) {
                if (i > 0 && strcmp(sorted[i]->key, sorted[i - 1]->key) == 0) {
                    continue;
                }
                if (i > 0) {
                    rv = o2d_buf_append_byte(b, ',');
                }
                if (rv == O2D_OK) {
                    rv = res_json_string(b, sorted[i]->key, strlen(sorted[i]->key));
                }
                if (rv == O2D_OK) {
                    rv = o2d_buf_append_byte(b, ':');
                }
                if (rv == O2D_OK) {
                    rv = res_json_value(b, a, sorted[i]->value, depth + 1);
                }
            }
        }
        return rv == O2D_OK ? o2d_buf_append_byte(b, '}') : rv;
    }
    default:
        return o2d_buf_append_str(b, "null");
    }
}

int res_value_as_string(struct o2d_arena *a, const OtlpAnyValue *v, struct res_str *out)
{
    char tmp[64];
    int n;
    *out = (struct res_str){"", 0};
    if (v == NULL) {
        return O2D_OK;
    }
    switch (v->value_case) {
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE:
        out->p = v->string_value;
        out->n = strlen(v->string_value);
        return O2D_OK;
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BOOL_VALUE:
        *out = v->bool_value ? (struct res_str){"true", 4} : (struct res_str){"false", 5};
        return O2D_OK;
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE:
        n = snprintf(tmp, sizeof(tmp), "%" PRId64, v->int_value);
        break;
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE__NOT_SET:
        return O2D_OK;
    default: {
        /* Doubles, bytes, arrays and maps: their JSON text (a JSON string for bytes, without
         * its quotes), as pcommon writes them. */
        struct o2d_buf b;
        o2d_buf_init(&b, 64 * 1024 * 1024);
        int rv;
        if (v->value_case == OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE) {
            rv = res_json_float(&b, v->double_value);
        } else {
            rv = res_json_value(&b, a, v, 0);
        }
        if (rv == O2D_OK) {
            const char *p = (const char *)b.data;
            size_t len = b.len;
            if (v->value_case == OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BYTES_VALUE &&
                len >= 2) {
                p++;
                len -= 2;
            }
            char *s = o2d_arena_strndup(a, p != NULL ? p : "", len);
            if (s == NULL) {
                rv = O2D_ERR_TOO_LARGE;
            } else {
                out->p = s;
                out->n = len;
            }
        }
        o2d_buf_cleanup(&b);
        return rv;
    }
    }
    char *s = o2d_arena_strndup(a, tmp, (size_t)n);
    if (s == NULL) {
        return O2D_ERR_TOO_LARGE;
    }
    out->p = s;
    out->n = (size_t)n;
    return O2D_OK;
}
