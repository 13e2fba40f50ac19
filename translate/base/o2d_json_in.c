/*
 * o2d_json_in.c: JSON text -> jansson value (o2d_json_in.h), RFC 8259 with jansson 2.14's
 * choices where the RFC leaves room (src/load.c): integers must fit json_int_t, reals must not
 * overflow a double (underflow is fine), "\u0000" is allowed in strings but not in keys,
 * a repeated key keeps its first place and takes its last value (json_object_setn_new_nocheck,
 * as jansson's parser does), nesting deeper than JSON_PARSER_MAX_DEPTH values is refused,
 * any value may be the top level, and only whitespace may follow it. Where jansson's lexer
 * decides the reason (a misplaced token is read whole first, so an out-of-range number there
 * is "out of range") or quietly accepts ("5\0": one NUL after a number or literal vanishes),
 * this reader does the same, so that OTLP/JSON bodies get jansson's answers
 * (tests/unit/test_otlp_json_diff.c).
 *
 * Strings without escapes become jansson strings straight from the text; escaped ones are
 * decoded into one reused buffer first. Error positions are not kept: callers only need to
 * know that the text is not JSON.
 */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "o2d.h"
#include "o2d_alloc.h"
#include "o2d_buf.h"
#include "o2d_json_in.h"
#include "o2d_json_out.h"

const char o2d_json_in_bad_utf8[] = "not valid UTF-8";
static const char r_syntax[] = "not JSON";
static const char r_depth[] = "JSON nested too deeply";
const char o2d_json_in_range[] = "JSON number out of range";
static const char r_nul_key[] = "NUL in a JSON object key";

/* A number ending the text and longer than this is copied into the reader's buffer. */
#define NUM_STACK 64

static void fail(struct o2d_json_in_pull *r, const char *reason)
{
    if (r->reason == NULL && !r->nomem) {
        r->reason = reason;
    }
}

static void skip_ws(struct o2d_json_in_pull *r)
{
    const unsigned char *p = r->p;
    while (p < r->end && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t')) {
        p++;
    }
    r->p = p;
}

static int hex4(const unsigned char *p, const unsigned char *end, uint32_t *v)
{
    if (end - p < 4) {
        return 0;
    }
    uint32_t x = 0;
    for (int i = 0; i < 4; i++) {
        unsigned char c = p[i];
        x <<= 4;
        if (c >= '0' && c <= '9') {
            x |= (uint32_t)(c - '0');
        } else if (c >= 'a' && c <= 'f') {
            x |= (uint32_t)(c - 'a' + 10);
        } else if (c >= 'A' && c <= 'F') {
            x |= (uint32_t)(c - 'A' + 10);
        } else {
            return 0;
        }
    }
    *v = x;
    return 1;
}

static size_t utf8_put(uint32_t cp, uint8_t out[4])
{
    if (cp < 0x80) {
        out[0] = (uint8_t)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (uint8_t)(0xC0 | (cp >> 6));
        out[1] = (uint8_t)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (uint8_t)(0xE0 | (cp >> 12));
        out[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (uint8_t)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (uint8_t)(0xF0 | (cp >> 18));
    out[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (uint8_t)(0x80 | (cp & 0x3F));
    return 4;
}

/* The plain part of a string from p: printable ASCII other than '"' and '\', and valid UTF-8
 * sequences. Returns where it stops (end, '"', '\', a control character or bad UTF-8, then
 * with *bad set). */
static const unsigned char *plain_run(const unsigned char *p, const unsigned char *end, int *bad)
{
    for (;;) {
        p += o2d_json_plain_len((const char *)p, (size_t)(end - p));
        if (p == end || *p < 0x80) {
            return p;
        }
        uint32_t cp;
        size_t l = o2d_utf8_decode(p, (size_t)(end - p), &cp);
        if (l == 0) {
            *bad = 1;
            return p;
        }
        p += l;
    }
}

/* One escape at p (the backslash) decoded into out[0..*n); returns what follows or NULL. */
static const unsigned char *decode_escape(const unsigned char *p, const unsigned char *end,
                                          uint8_t out[4], size_t *n_out)
{
    size_t n = 1;
    if (end - p < 2) {
        return NULL;
    }
    switch (p[1]) {
    case '"':
    case '\\':
    case '/':
        out[0] = p[1];
        break;
    case 'b':
        out[0] = '\b';
        break;
    case 'f':
        out[0] = '\f';
        break;
    case 'n':
        out[0] = '\n';
        break;
    case 'r':
        out[0] = '\r';
        break;
    case 't':
        out[0] = '\t';
        break;
    case 'u': {
        uint32_t cp, lo;
        if (!hex4(p + 2, end, &cp)) {
            return NULL;
        }
        p += 4;
        if (cp >= 0xDC00 && cp <= 0xDFFF) {
            return NULL; /* a low surrogate alone */
        }
        if (cp >= 0xD800 && cp <= 0xDBFF) {
            if (end - p < 8 || p[2] != '\\' || p[3] != 'u' || !hex4(p + 4, end, &lo) ||
                lo < 0xDC00 || lo > 0xDFFF) {
                return NULL;
            }
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            p += 6;
        }
        n = utf8_put(cp, out);
        break;
    }
    default:
        return NULL;
    }
    *n_out = n;
    return p + 2;
}

/* One escape at p (the backslash) decoded into r->tmp; returns what follows or NULL. */
static const unsigned char *unescape(struct o2d_json_in_pull *r, const unsigned char *p)
{
    uint8_t out[4];
    size_t n;
    p = decode_escape(p, r->end, out, &n);
    if (p != NULL && o2d_buf_append(&r->tmp, out, n) != O2D_OK) {
        r->nomem = 1;
        return NULL;
    }
    return p;
}

/*
 * The string whose opening quote is at r->p, checked like read_string but decoded into
 * dst[0..cap) with no buffer of r's: *len is its whole decoded length (bytes past cap are
 * dropped; dst may be NULL to only check), *nul whether it holds "\u0000".
 */
static int read_string_into(struct o2d_json_in_pull *r, uint8_t *dst, size_t cap, size_t *len,
                            int *nul)
{
    const unsigned char *p = r->p + 1, *end = r->end;
    size_t n = 0;
    *nul = 0;
    for (;;) {
        int bad = 0;
        const unsigned char *run = p;
        p = plain_run(p, end, &bad);
        size_t rl = (size_t)(p - run);
        if (dst != NULL && n < cap) {
            memcpy(dst + n, run, rl < cap - n ? rl : cap - n);
        }
        n += rl;
        if (bad) {
            fail(r, o2d_json_in_bad_utf8);
            return 0;
        }
        if (p == end || *p < 0x20) {
            fail(r, r_syntax); /* unterminated, or a control character */
            return 0;
        }
        if (*p == '"') {
            break;
        }
        uint8_t out[4];
        size_t ol;
        p = decode_escape(p, end, out, &ol);
        if (p == NULL) {
            fail(r, r_syntax);
            return 0;
        }
        *nul |= ol == 1 && out[0] == 0;
        for (size_t i = 0; i < ol; i++, n++) {
            if (dst != NULL && n < cap) {
                dst[n] = out[i];
            }
        }
    }
    *len = n;
    r->p = p + 1;
    return 1;
}

/* The string whose opening quote is at r->p: *s points into the text when it has no escape,
 * else into r->tmp (valid until the next string or number). */
static int read_string(struct o2d_json_in_pull *r, const char **s, size_t *len)
{
    const unsigned char *start = r->p + 1, *end = r->end;
    int bad = 0;
    const unsigned char *p = plain_run(start, end, &bad);
    if (p < end && *p == '"') {
        *s = (const char *)start;
        *len = (size_t)(p - start);
        r->p = p + 1;
        return 1;
    }
    o2d_buf_reset(&r->tmp);
    for (;;) {
        if (bad) {
            fail(r, o2d_json_in_bad_utf8);
            return 0;
        }
        if (p == end || *p < 0x20) {
            fail(r, r_syntax); /* unterminated, or a control character */
            return 0;
        }
        if (o2d_buf_append(&r->tmp, start, (size_t)(p - start)) != O2D_OK) {
            r->nomem = 1;
            return 0;
        }
        if (*p == '"') {
            break;
        }
        p = unescape(r, p);
        if (p == NULL) {
            fail(r, r_syntax);
            return 0;
        }
        start = p;
        p = plain_run(p, end, &bad);
    }
    *s = r->tmp.data != NULL ? (const char *)r->tmp.data : "";
    *len = r->tmp.len;
    r->p = p + 1;
    return 1;
}

static int is_digit(const unsigned char *p, const unsigned char *end)
{
    return p < end && *p >= '0' && *p <= '9';
}

/* jansson 2.14 reads the byte after a number or a literal and puts it back; when that byte is
 * NUL its stream takes the slot for empty and reads on, so one NUL there vanishes ("5\0" is
 * the number 5). Accepting the same texts means skipping it too. */
static void skip_lost_nul(struct o2d_json_in_pull *r)
{
    if (r->p < r->end && *r->p == '\0') {
        r->p++;
    }
}

/* jansson checks a number's range after it has read the byte that follows, whole and as
 * UTF-8: when that is not valid UTF-8, the text is refused for it first. */
static void fail_range(struct o2d_json_in_pull *r, const unsigned char *next)
{
    uint32_t cp;
    if (next < r->end && *next >= 0x80 &&
        o2d_utf8_decode(next, (size_t)(r->end - next), &cp) == 0) {
        fail(r, o2d_json_in_bad_utf8);
        return;
    }
    fail(r, o2d_json_in_range);
}

/* The number at r->p, as jansson holds it: an integer (no fraction, no exponent) must fit
 * int64, a real must not overflow a double. 0 with r's reason set otherwise. */
static int lex_number(struct o2d_json_in_pull *r, struct o2d_json_in_num *out)
{
    const unsigned char *start = r->p, *p = r->p, *end = r->end;
    int neg = p < end && *p == '-', real = 0;
    p += neg;
    if (is_digit(p, end) && *p == '0') {
        p++;
        if (is_digit(p, end)) {
            fail(r, r_syntax); /* jansson's lexer: "01" is one bad token, not 0 then 1 */
            return 0;
        }
    } else if (is_digit(p, end)) {
        while (is_digit(p, end)) {
            p++;
        }
    } else {
        fail(r, r_syntax);
        return 0;
    }
    const unsigned char *int_end = p;
    if (p < end && *p == '.') {
        p++;
        if (!is_digit(p, end)) {
            fail(r, r_syntax);
            return 0;
        }
        while (is_digit(p, end)) {
            p++;
        }
        real = 1;
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < end && (*p == '+' || *p == '-')) {
            p++;
        }
        if (!is_digit(p, end)) {
            fail(r, r_syntax);
            return 0;
        }
        while (is_digit(p, end)) {
            p++;
        }
        real = 1;
    }
    r->p = p;
    skip_lost_nul(r);
    out->real = real;
    if (!real) {
        /* strtoll's range: up to 2^63 - 1, or 2^63 when negative. */
        uint64_t limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
        uint64_t x = 0;
        for (const unsigned char *d = start + neg; d < int_end; d++) {
            uint64_t digit = (uint64_t)(*d - '0');
            if (x > (limit - digit) / 10) {
                fail_range(r, p);
                return 0;
            }
            x = x * 10 + digit;
        }
        out->i = neg ? (x == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)x) : (int64_t)x;
        out->d = (double)out->i;
        return 1;
    }
    /* strtod reads the text in place: the token is a whole JSON number and the byte after it
     * (inside the text) cannot continue one, so strtod stops there. Only a number that ends
     * the text is copied, as strtod needs a terminator. The process never changes
     * LC_NUMERIC, so '.' is the decimal point (jansson converts to the locale's for the same
     * reason). */
    size_t n = (size_t)(p - start);
    char stack[NUM_STACK];
    const char *text = (const char *)start;
    if (p == end && n >= sizeof(stack)) {
        o2d_buf_reset(&r->tmp);
        if (o2d_buf_append(&r->tmp, start, n) != O2D_OK ||
            o2d_buf_append_byte(&r->tmp, '\0') != O2D_OK) {
            r->nomem = 1;
            return 0;
        }
        text = (const char *)r->tmp.data;
    } else if (p == end) {
        memcpy(stack, start, n);
        stack[n] = '\0';
        text = stack;
    }
    errno = 0;
    char *stop;
    double d = strtod(text, &stop);
    if ((size_t)(stop - text) != n) {
        fail(r, r_syntax); /* not expected: the token is a JSON number */
        return 0;
    }
    if ((d == HUGE_VAL || d == -HUGE_VAL) && errno == ERANGE) {
        fail_range(r, p);
        return 0;
    }
    out->d = d;
    out->i = 0;
    return 1;
}

/* Something else came where a structural byte was expected. jansson's lexer reads that
 * token whole before its parser refuses it, so a number too large for jansson is refused as
 * out of range rather than as misplaced. */
static void unexpected(struct o2d_json_in_pull *r)
{
    const unsigned char *at = r->p;
    if (at < r->end && (*at == '-' || (*at >= '0' && *at <= '9'))) {
        struct o2d_json_in_num num;
        lex_number(r, &num);
        r->p = at;
    }
    fail(r, r_syntax);
}

static json_t *read_number(struct o2d_json_in_pull *r)
{
    struct o2d_json_in_num num;
    if (!lex_number(r, &num)) {
        return NULL;
    }
    json_t *v = num.real ? json_real(num.d) : json_integer((json_int_t)num.i);
    if (v == NULL) {
        r->nomem = 1;
    }
    return v;
}

/* The run of letters at r->p: 't', 'f' or 'n' for true, false, null; 0 (a syntax failure)
 * for anything else. jansson reads the whole run, so "truex" is no "true". */
static int lex_literal(struct o2d_json_in_pull *r)
{
    const unsigned char *p = r->p;
    size_t n = 0;
    while (p + n < r->end && ((p[n] | 0x20) >= 'a' && (p[n] | 0x20) <= 'z')) {
        n++;
    }
    r->p = p + n;
    skip_lost_nul(r);
    if (n == 4 && memcmp(p, "true", 4) == 0) {
        return 't';
    }
    if (n == 5 && memcmp(p, "false", 5) == 0) {
        return 'f';
    }
    if (n == 4 && memcmp(p, "null", 4) == 0) {
        return 'n';
    }
    fail(r, r_syntax);
    return 0;
}

static json_t *read_literal(struct o2d_json_in_pull *r)
{
    switch (lex_literal(r)) {
    case 't':
        return json_true();
    case 'f':
        return json_false();
    case 'n':
        return json_null();
    default:
        return NULL;
    }
}

static json_t *read_value(struct o2d_json_in_pull *r, size_t depth);

/* After an element of an object or array: ',' -> 1 (another follows), `close` -> 0 (the
 * container ends), anything else is a syntax error -> -1. */
static int after_element(struct o2d_json_in_pull *r, char close)
{
    skip_ws(r);
    if (r->p < r->end && *r->p == ',') {
        r->p++;
        return 1;
    }
    if (r->p < r->end && *r->p == close) {
        r->p++;
        return 0;
    }
    unexpected(r);
    return -1;
}

static json_t *read_object(struct o2d_json_in_pull *r, size_t depth)
{
    json_t *o = json_object();
    if (o == NULL) {
        r->nomem = 1;
        return NULL;
    }
    r->p++;
    skip_ws(r);
    if (r->p < r->end && *r->p == '}') {
        r->p++;
        return o;
    }
    for (;;) {
        skip_ws(r);
        const char *k;
        size_t kl;
        char *kcopy = NULL;
        if (r->p == r->end || *r->p != '"') {
            fail(r, r_syntax);
            break;
        }
        if (!read_string(r, &k, &kl)) {
            break;
        }
        if (memchr(k, '\0', kl) != NULL) {
            fail(r, r_nul_key);
            break;
        }
        if (k == (const char *)r->tmp.data) {
            /* the value may reuse r->tmp */
            kcopy = o2d_strndup(k, kl);
            if (kcopy == NULL) {
                r->nomem = 1;
                break;
            }
            k = kcopy;
        }
        skip_ws(r);
        json_t *v = NULL;
        if (r->p < r->end && *r->p == ':') {
            r->p++;
            v = read_value(r, depth + 1);
        } else {
            fail(r, r_syntax);
        }
        int rv = v != NULL ? json_object_setn_new_nocheck(o, k, kl, v) : -1;
        o2d_free(kcopy);
        if (rv != 0) {
            if (v != NULL) {
                r->nomem = 1;
            }
            break;
        }
        int more = after_element(r, '}');
        if (more > 0) {
            continue;
        }
        if (more == 0) {
            return o;
        }
        break;
    }
    json_decref(o);
    return NULL;
}

static json_t *read_array(struct o2d_json_in_pull *r, size_t depth)
{
    json_t *a = json_array();
    if (a == NULL) {
        r->nomem = 1;
        return NULL;
    }
    r->p++;
    skip_ws(r);
    if (r->p < r->end && *r->p == ']') {
        r->p++;
        return a;
    }
    for (;;) {
        json_t *v = read_value(r, depth + 1);
        if (v == NULL) {
            break;
        }
        if (json_array_append_new(a, v) != 0) {
            r->nomem = 1;
            break;
        }
        int more = after_element(r, ']');
        if (more > 0) {
            continue;
        }
        if (more == 0) {
            return a;
        }
        break;
    }
    json_decref(a);
    return NULL;
}

static json_t *read_value(struct o2d_json_in_pull *r, size_t depth)
{
    if (depth > JSON_PARSER_MAX_DEPTH) {
        fail(r, r_depth);
        return NULL;
    }
    skip_ws(r);
    if (r->p == r->end) {
        fail(r, r_syntax);
        return NULL;
    }
    unsigned char c = *r->p;
    switch (c) {
    case '{':
        return read_object(r, depth);
    case '[':
        return read_array(r, depth);
    case '"': {
        const char *s;
        size_t n;
        if (!read_string(r, &s, &n)) {
            return NULL;
        }
        json_t *v = json_stringn_nocheck(s, n);
        if (v == NULL) {
            r->nomem = 1;
        }
        return v;
    }
    case '-':
        return read_number(r);
    default:
        if (c >= '0' && c <= '9') {
            return read_number(r);
        }
        if ((c | 0x20) >= 'a' && (c | 0x20) <= 'z') {
            return read_literal(r);
        }
        fail(r, r_syntax);
        return NULL;
    }
}

int o2d_json_in_load(const char *s, size_t n, json_t **out, const char **reason)
{
    struct o2d_json_in_pull r = {.p = (const unsigned char *)s,
                                 .end = (const unsigned char *)s + n};
    o2d_buf_init(&r.tmp, SIZE_MAX / 2);
    *out = NULL;
    *reason = NULL;
    json_t *v = read_value(&r, 1);
    if (v != NULL) {
        skip_ws(&r);
        if (r.p != r.end) {
            fail(&r, r_syntax);
            json_decref(v);
            v = NULL;
        }
    }
    o2d_buf_cleanup(&r.tmp);
    if (v != NULL) {
        *out = v;
        return O2D_OK;
    }
    if (r.nomem) {
        return O2D_ERR_NOMEM;
    }
    *reason = r.reason != NULL ? r.reason : r_syntax;
    return O2D_ERR_INVALID;
}

/* ---- jansson's allocator ---- */

static _Thread_local struct o2d_arena *scratch;

void *o2d_json_in_malloc(size_t n)
{
    return scratch != NULL ? o2d_arena_alloc(scratch, n) : o2d_malloc(n);
}

void o2d_json_in_free(void *p)
{
    if (scratch != NULL && o2d_arena_owns(scratch, p)) {
        return;
    }
    o2d_free(p);
}

void o2d_json_in_scratch_init(struct o2d_json_in_scratch *s)
{
    /* no byte limit beyond the heap's, as when jansson allocated from the heap */
    o2d_arena_init(&s->arena, SIZE_MAX);
    s->prev = NULL;
}

void o2d_json_in_scratch_cleanup(struct o2d_json_in_scratch *s)
{
    o2d_arena_cleanup(&s->arena);
}

void o2d_json_in_scratch_open(struct o2d_json_in_scratch *s)
{
    s->prev = scratch;
    scratch = &s->arena;
}

void o2d_json_in_scratch_close(struct o2d_json_in_scratch *s)
{
    scratch = s->prev;
    o2d_arena_reset(&s->arena);
}

/* ---- pull reading ---- */

void o2d_json_in_pull_init(struct o2d_json_in_pull *r, const char *s, size_t n)
{
    memset(r, 0, sizeof(*r));
    r->p = (const unsigned char *)s;
    r->end = (const unsigned char *)s + n;
    o2d_buf_init(&r->tmp, SIZE_MAX / 2);
}

void o2d_json_in_pull_cleanup(struct o2d_json_in_pull *r)
{
    o2d_buf_cleanup(&r->tmp);
}

int o2d_json_in_pull_peek(struct o2d_json_in_pull *r)
{
    skip_ws(r);
    return r->p < r->end ? *r->p : -1;
}

int o2d_json_in_pull_take(struct o2d_json_in_pull *r, int c)
{
    if (o2d_json_in_pull_peek(r) != c) {
        return 0;
    }
    r->p++;
    return 1;
}

int o2d_json_in_pull_string(struct o2d_json_in_pull *r, const char **s, size_t *n)
{
    if (o2d_json_in_pull_peek(r) != '"') {
        return 0;
    }
    return read_string(r, s, n);
}

int o2d_json_in_pull_number(struct o2d_json_in_pull *r, struct o2d_json_in_num *out)
{
    int c = o2d_json_in_pull_peek(r);
    if (c != '-' && (c < '0' || c > '9')) {
        fail(r, r_syntax);
        return 0;
    }
    return lex_number(r, out);
}

int o2d_json_in_pull_literal(struct o2d_json_in_pull *r)
{
    o2d_json_in_pull_peek(r);
    return lex_literal(r);
}

int o2d_json_in_pull_key(struct o2d_json_in_pull *r, const char **s, size_t *n)
{
    if (o2d_json_in_pull_peek(r) != '"') {
        unexpected(r);
        return 0;
    }
    int bad = 0, nul = 0;
    const unsigned char *start = r->p + 1;
    const unsigned char *q = plain_run(start, r->end, &bad);
    if (q < r->end && *q == '"') {
        *s = (const char *)start;
        *n = (size_t)(q - start);
        r->p = q + 1;
    } else {
        if (!read_string_into(r, r->key, sizeof(r->key), n, &nul)) {
            return 0;
        }
        *s = *n <= sizeof(r->key) ? (const char *)r->key : NULL;
    }
    if (nul) {
        fail(r, r_nul_key);
        return 0;
    }
    if (!o2d_json_in_pull_take(r, ':')) {
        unexpected(r);
        return 0;
    }
    return 1;
}

int o2d_json_in_pull_string_arena(struct o2d_json_in_pull *r, struct o2d_arena *a, const char **s,
                                  size_t *n, int *copied)
{
    if (o2d_json_in_pull_peek(r) != '"') {
        unexpected(r);
        return 0;
    }
    int bad = 0, nul;
    const unsigned char *at = r->p, *start = r->p + 1;
    const unsigned char *q = plain_run(start, r->end, &bad);
    *copied = 0;
    if (q < r->end && *q == '"') {
        *s = (const char *)start;
        *n = (size_t)(q - start);
        r->p = q + 1;
        return 1;
    }
    /* once to check it and learn its length, once to decode it where it stays */
    size_t len;
    if (!read_string_into(r, NULL, 0, &len, &nul)) {
        return 0;
    }
    char *dst = o2d_arena_alloc(a, len + 1);
    if (dst == NULL) {
        return -1;
    }
    r->p = at;
    read_string_into(r, (uint8_t *)dst, len, &len, &nul);
    dst[len] = '\0';
    *s = dst;
    *n = len;
    *copied = 1;
    return 1;
}

int o2d_json_in_pull_next(struct o2d_json_in_pull *r, int close)
{
    return after_element(r, (char)close);
}

/*
 * Iterative, so that a hostile nesting costs no stack: one bit a level says whether that
 * level is an object (its elements are "key": value) or an array.
 */
int o2d_json_in_pull_skip(struct o2d_json_in_pull *r, size_t depth)
{
    unsigned char is_obj[(JSON_PARSER_MAX_DEPTH + 8) / 8];
    size_t top = 0; /* open containers inside the skipped value */
    for (;;) {
        if (depth + top > JSON_PARSER_MAX_DEPTH) {
            fail(r, r_depth);
            return 0;
        }
        int c = o2d_json_in_pull_peek(r);
        if (c == '{' || c == '[') {
            r->p++;
            int close = c == '{' ? '}' : ']';
            if (o2d_json_in_pull_take(r, close)) {
                goto after;
            }
            if (c == '{') {
                is_obj[top / 8] |= (unsigned char)(1u << (top % 8));
            } else {
                is_obj[top / 8] &= (unsigned char)~(1u << (top % 8));
            }
            top++;
            if (c == '{') {
                const char *k;
                size_t kn;
                if (!o2d_json_in_pull_key(r, &k, &kn)) {
                    return 0;
                }
            }
            continue;
        } else if (c == '"') {
            size_t n;
            int nul;
            if (!read_string_into(r, NULL, 0, &n, &nul)) {
                return 0;
            }
        } else if (c == '-' || (c >= '0' && c <= '9')) {
            struct o2d_json_in_num num;
            if (!lex_number(r, &num)) {
                return 0;
            }
        } else if (c >= 0 && ((c | 0x20) >= 'a' && (c | 0x20) <= 'z')) {
            if (lex_literal(r) == 0) {
                return 0;
            }
        } else {
            fail(r, r_syntax);
            return 0;
        }
    after:
        for (;;) {
            if (top == 0) {
                return 1;
            }
            int obj = (is_obj[(top - 1) / 8] >> ((top - 1) % 8)) & 1;
            int more = after_element(r, obj ? '}' : ']');
            if (more < 0) {
                return 0;
            }
            if (more > 0) {
                if (obj) {
                    const char *k;
                    size_t kn;
                    if (!o2d_json_in_pull_key(r, &k, &kn)) {
                        return 0;
                    }
                }
                break;
            }
            top--;
        }
    }
}

int o2d_json_in_pull_end(struct o2d_json_in_pull *r)
{
    if (o2d_json_in_pull_peek(r) == -1) {
        return 1;
    }
    unexpected(r);
    return 0;
}

int o2d_json_in_pull_failure(const struct o2d_json_in_pull *r, const char **reason)
{
    if (r->nomem) {
        *reason = NULL;
        return O2D_ERR_NOMEM;
    }
    *reason = r->reason != NULL ? r->reason : r_syntax;
    return O2D_ERR_INVALID;
}
