/*
 * o2d_json_out.c: JSON string escaping with UTF-8 repair (RFC 8259 section 7; RFC 3629 for
 * what is valid UTF-8: no overlongs, no surrogates, nothing past U+10FFFF).
 */
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include "o2d.h"
#include "o2d_json_out.h"

size_t o2d_utf8_decode(const unsigned char *s, size_t avail, uint32_t *cp)
{
    unsigned char c = s[0];
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    size_t n;
    uint32_t v;
    unsigned char lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) {
        n = 2;
        v = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        v = c & 0x0F;
        if (c == 0xE0) {
            lo = 0xA0; /* overlong */
        } else if (c == 0xED) {
            hi = 0x9F; /* surrogates */
        }
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        v = c & 0x07;
        if (c == 0xF0) {
            lo = 0x90;
        } else if (c == 0xF4) {
            hi = 0x8F; /* past U+10FFFF */
        }
    } else {
        return 0;
    }
    if (avail < n || s[1] < lo || s[1] > hi) {
        return 0;
    }
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80) {
            return 0;
        }
        v = (v << 6) | (s[i] & 0x3F);
    }
    *cp = v;
    return n;
}

static size_t utf8_seq_len(const unsigned char *s, size_t avail)
{
    uint32_t cp;
    return o2d_utf8_decode(s, avail, &cp);
}

size_t o2d_utf8_valid_prefix(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < len) {
        if (p[i] < 0x80) {
            i++;
            continue;
        }
        size_t n = utf8_seq_len(p + i, len - i);
        if (n == 0) {
            return i;
        }
        i += n;
    }
    return len;
}

/* 1 for the bytes a JSON string holds as they are: printable ASCII other than '"' and '\\'. */
static const uint8_t plain[256] = {
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    1, 1, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
};

/* Whether any of 8 bytes is not plain: each test is exact for "any byte" (a borrow only
 * starts at a byte that is flagged itself). */
static int special8(uint64_t x)
{
    const uint64_t ones = 0x0101010101010101ull, high = 0x8080808080808080ull;
    uint64_t q = x ^ (ones * '"'), bs = x ^ (ones * '\\');
    return ((((x - ones * 0x20) & ~x) | ((q - ones) & ~q) | ((bs - ones) & ~bs) | x) & high) != 0;
}

#ifdef __SSE2__
/* A bit for each of 16 bytes that is not plain: a signed compare with 0x20 flags controls and
 * every byte >= 0x80. */
static inline unsigned special16(__m128i x)
{
    const __m128i space = _mm_set1_epi8(0x20), quote = _mm_set1_epi8('"'),
                  bslash = _mm_set1_epi8('\\');
    __m128i bad = _mm_or_si128(_mm_cmplt_epi8(x, space),
                               _mm_or_si128(_mm_cmpeq_epi8(x, quote), _mm_cmpeq_epi8(x, bslash)));
    return (unsigned)_mm_movemask_epi8(bad);
}
#endif

size_t o2d_json_plain_len(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
#ifdef __SSE2__
    for (; len - i >= 16; i += 16) {
        unsigned m = special16(_mm_loadu_si128((const __m128i *)(const void *)(p + i)));
        if (m != 0) {
            return i + (size_t)__builtin_ctz(m);
        }
    }
#endif
    /* 8 bytes at a time while nothing stands out: message text is mostly plain */
    for (; len - i >= 8; i += 8) {
        uint64_t x;
        memcpy(&x, p + i, 8);
        if (special8(x)) {
            break;
        }
    }
    while (i < len && plain[p[i]]) {
        i++;
    }
    return i;
}

/* Copies the plain prefix of p[0..n) to o and returns its length: o2d_json_plain_len and the
 * copy in one pass. Blocks are stored before they are checked, so o must have room for n
 * bytes (whatever the prefix's length): the caller's room for the rest of the string. One
 * call per escape with a separate scan and memcpy was most of the cost of JSON text in
 * strings (a quote every few bytes). */
static inline size_t copy_plain(const unsigned char *p, size_t n, uint8_t *o)
{
    size_t i = 0;
#ifdef __SSE2__
    for (; n - i >= 16; i += 16) {
        __m128i x = _mm_loadu_si128((const __m128i *)(const void *)(p + i));
        _mm_storeu_si128((__m128i *)(void *)(o + i), x);
        unsigned m = special16(x);
        if (m != 0) {
            return i + (size_t)__builtin_ctz(m);
        }
    }
#else
    for (; n - i >= 8; i += 8) {
        uint64_t x;
        memcpy(&x, p + i, 8);
        if (special8(x)) {
            break;
        }
        memcpy(o + i, &x, 8);
    }
#endif
    while (i < n && plain[p[i]]) {
        o[i] = p[i];
        i++;
    }
    return i;
}

int o2d_json_append_string(struct o2d_buf *b, const char *s, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    if (len == 0) {
        /* s may be NULL here (an empty o2d_buf has no data), and NULL + 0 is undefined */
        return o2d_buf_append(b, "\"\"", 2);
    }
    const unsigned char *p = (const unsigned char *)s;
    size_t mark = b->len;
    /* Room for the string as it is; an escape or a repair makes more as it comes, never more
     * than the output still needs (the rest of the input taken as is), so the buffer's max is
     * hit exactly when the whole string would not fit. */
    int rv = o2d_buf_reserve(b, len + 2);
    if (rv != O2D_OK) {
        return rv;
    }
    uint8_t *o = b->data + b->len;
    *o++ = '"';
    size_t i = 0;
    for (;;) {
        /* room from o: at least len - i + 1 bytes (the rest as it is, the closing quote) */
        size_t k = copy_plain(p + i, len - i, o);
        i += k;
        o += k;
        if (i == len) {
            break;
        }
        unsigned char c = p[i];
        char esc[6];
        const void *src = esc;
        size_t in = 1, out = 2;
        if (c >= 0x80) {
            in = utf8_seq_len(p + i, len - i);
            if (in == 0) {
                in = 1;
                src = "\xEF\xBF\xBD";
                out = 3;
            } else {
                src = p + i;
                out = in;
            }
        } else {
            esc[0] = '\\';
            switch (c) {
            case '"':
                esc[1] = '"';
                break;
            case '\\':
                esc[1] = '\\';
                break;
            case '\n':
                esc[1] = 'n';
                break;
            case '\r':
                esc[1] = 'r';
                break;
            case '\t':
                esc[1] = 't';
                break;
            case '\b':
                esc[1] = 'b';
                break;
            case '\f':
                esc[1] = 'f';
                break;
            default:
                esc[1] = 'u';
                esc[2] = '0';
                esc[3] = '0';
                esc[4] = hex[c >> 4];
                esc[5] = hex[c & 15];
                out = 6;
            }
        }
        size_t need = out + (len - i - in) + 1;
        if ((size_t)(b->data + b->cap - o) < need) {
            b->len = (size_t)(o - b->data);
            rv = o2d_buf_reserve(b, need);
            if (rv != O2D_OK) {
                b->len = mark;
                return rv;
            }
            o = b->data + b->len;
        }
        memcpy(o, src, out);
        o += out;
        i += in;
    }
    *o++ = '"';
    b->len = (size_t)(o - b->data);
    return O2D_OK;
}

int o2d_hex_append(struct o2d_buf *b, const uint8_t *p, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    int rv = o2d_buf_reserve(b, n * 2);
    if (rv != O2D_OK) {
        return rv;
    }
    /* through a local pointer: stores through b->data could alias b->len */
    uint8_t *o = b->data + b->len;
    for (size_t i = 0; i < n; i++) {
        o[2 * i] = (uint8_t)hex[p[i] >> 4];
        o[2 * i + 1] = (uint8_t)hex[p[i] & 15];
    }
    b->len += n * 2;
    return O2D_OK;
}

/* The decimal digits of v, ending at end; returns where they start. Two digits a division. */
static char *u64_digits(char *end, uint64_t v)
{
    static const char pairs[201] = "00010203040506070809101112131415161718192021222324"
                                   "25262728293031323334353637383940414243444546474849"
                                   "50515253545556575859606162636465666768697071727374"
                                   "75767778798081828384858687888990919293949596979899";
    char *p = end;
    while (v >= 100) {
        unsigned r = (unsigned)(v % 100);
        v /= 100;
        p -= 2;
        memcpy(p, pairs + 2 * r, 2);
    }
    if (v >= 10) {
        p -= 2;
        memcpy(p, pairs + 2 * v, 2);
    } else {
        *--p = (char)('0' + v);
    }
    return p;
}

int o2d_json_append_uint(struct o2d_buf *b, uint64_t v)
{
    char tmp[20];
    char *p = u64_digits(tmp + sizeof(tmp), v);
    return o2d_buf_append(b, p, (size_t)(tmp + sizeof(tmp) - p));
}

int o2d_json_append_int(struct o2d_buf *b, int64_t v)
{
    char tmp[21];
    uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
    char *p = u64_digits(tmp + sizeof(tmp), u);
    if (v < 0) {
        *--p = '-';
    }
    return o2d_buf_append(b, p, (size_t)(tmp + sizeof(tmp) - p));
}
