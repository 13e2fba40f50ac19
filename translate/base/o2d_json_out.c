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

/* Whether any of 4 bytes is not plain (special8 on half the width). */
static int special4(uint32_t x)
{
    const uint32_t ones = 0x01010101u, high = 0x80808080u;
    uint32_t q = x ^ (ones * '"'), bs = x ^ (ones * '\\');
    return ((((x - ones * 0x20) & ~x) | ((q - ones) & ~q) | ((bs - ones) & ~bs) | x) & high) != 0;
}

/*
 * The plain prefix of a string shorter than a vector (or a vector's tail), 8 and 4 bytes at a
 * time: when the rest is plain, one load that ends at n covers it (overlapping bytes already
 * known to be plain). A byte loop finds where a flagged word's first special byte is. With o,
 * the plain bytes are copied too (the same overlapping stores: rewriting bytes with the values
 * they hold). Strings of a few bytes (tags, names, ids) are most of the calls, and their
 * byte-at-a-time loop was a third of what escaping cost.
 */
static inline size_t plain_tail(const unsigned char *p, size_t i, size_t n, uint8_t *o)
{
    if (n - i >= 8) {
        uint64_t x;
        memcpy(&x, p + i, 8);
        if (!special8(x)) {
            if (o != NULL) {
                memcpy(o + i, &x, 8);
            }
            i += 8;
            if (i == n) {
                return n;
            }
            memcpy(&x, p + n - 8, 8);
            if (!special8(x)) {
                if (o != NULL) {
                    memcpy(o + n - 8, &x, 8);
                }
                return n;
            }
        }
    } else if (n - i >= 4) {
        uint32_t x;
        memcpy(&x, p + i, 4);
        if (!special4(x)) {
            if (o != NULL) {
                memcpy(o + i, &x, 4);
            }
            i += 4;
            if (i == n) {
                return n;
            }
            memcpy(&x, p + n - 4, 4);
            if (!special4(x)) {
                if (o != NULL) {
                    memcpy(o + n - 4, &x, 4);
                }
                return n;
            }
        }
    }
    while (i < n && plain[p[i]]) {
        if (o != NULL) {
            o[i] = p[i];
        }
        i++;
    }
    return i;
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

/* The plain prefix of p[i..n), 16 bytes at a time, copied to o[i..) unless o is NULL. Blocks
 * are stored before they are checked, so o must have room for n bytes (whatever the
 * prefix's length). The last block ends at n, overlapping bytes known to be plain. */
static inline size_t plain_sse2(const unsigned char *p, size_t i, size_t n, uint8_t *o)
{
    if (n - i < 16) {
        return plain_tail(p, i, n, o);
    }
    for (; n - i >= 16; i += 16) {
        __m128i x = _mm_loadu_si128((const __m128i *)(const void *)(p + i));
        if (o != NULL) {
            _mm_storeu_si128((__m128i *)(void *)(o + i), x);
        }
        unsigned m = special16(x);
        if (m != 0) {
            return i + (size_t)__builtin_ctz(m);
        }
    }
    if (i == n) {
        return n;
    }
    __m128i x = _mm_loadu_si128((const __m128i *)(const void *)(p + n - 16));
    if (o != NULL) {
        _mm_storeu_si128((__m128i *)(void *)(o + n - 16), x);
    }
    unsigned m = special16(x);
    return m != 0 ? n - 16 + (size_t)__builtin_ctz(m) : n;
}
#endif

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define HAVE_AVX2_PATH 1
/* 32 bytes a step where the CPU has AVX2 (chosen once, at start-up): message text is most of
 * what goes through here, and twice the width halves the instructions a byte. */
__attribute__((target("avx2"))) static inline unsigned special32(__m256i x)
{
    const __m256i space = _mm256_set1_epi8(0x20), quote = _mm256_set1_epi8('"'),
                  bslash = _mm256_set1_epi8('\\');
    __m256i bad =
        _mm256_or_si256(_mm256_cmpgt_epi8(space, x),
                        _mm256_or_si256(_mm256_cmpeq_epi8(x, quote), _mm256_cmpeq_epi8(x, bslash)));
    return (unsigned)_mm256_movemask_epi8(bad);
}

__attribute__((target("avx2"))) static inline size_t plain_avx2(const unsigned char *p, size_t i,
                                                                size_t n, uint8_t *o)
{
    if (n - i < 32) {
        return plain_sse2(p, i, n, o);
    }
    for (; n - i >= 32; i += 32) {
        __m256i x = _mm256_loadu_si256((const __m256i *)(const void *)(p + i));
        if (o != NULL) {
            _mm256_storeu_si256((__m256i *)(void *)(o + i), x);
        }
        unsigned m = special32(x);
        if (m != 0) {
            return i + (size_t)__builtin_ctz(m);
        }
    }
    if (i == n) {
        return n;
    }
    __m256i x = _mm256_loadu_si256((const __m256i *)(const void *)(p + n - 32));
    if (o != NULL) {
        _mm256_storeu_si256((__m256i *)(void *)(o + n - 32), x);
    }
    unsigned m = special32(x);
    return m != 0 ? n - 32 + (size_t)__builtin_ctz(m) : n;
}

static int use_avx2;

__attribute__((constructor)) static void pick_width(void)
{
    __builtin_cpu_init();
    use_avx2 = __builtin_cpu_supports("avx2") != 0;
}

__attribute__((target("avx2"))) static size_t plain_len_avx2(const char *s, size_t len)
{
    return plain_avx2((const unsigned char *)s, 0, len, NULL);
}
#endif

static size_t plain_len_base(const char *s, size_t len)
{
#ifdef __SSE2__
    return plain_sse2((const unsigned char *)s, 0, len, NULL);
#else
    return plain_tail((const unsigned char *)s, 0, len, NULL);
#endif
}

size_t o2d_json_plain_len(const char *s, size_t len)
{
#ifdef HAVE_AVX2_PATH
    if (use_avx2 && len >= 32) {
        return plain_len_avx2(s, len);
    }
#endif
    return plain_len_base(s, len);
}

/* The escape (or the UTF-8 repair) of the byte at p[i], which is not plain, written at o:
 * returns the bytes written and sets *in to the input bytes it stands for. o has room for 6. */
static inline size_t escape_at(const unsigned char *p, size_t i, size_t len, uint8_t *o, size_t *in)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char c = p[i];
    *in = 1;
    if (c >= 0x80) {
        size_t n = utf8_seq_len(p + i, len - i);
        if (n == 0) {
            memcpy(o, "\xEF\xBF\xBD", 3);
            return 3;
        }
        *in = n;
        for (size_t k = 0; k < n; k++) {
            o[k] = p[i + k];
        }
        return n;
    }
    o[0] = '\\';
    switch (c) {
    case '"':
        o[1] = '"';
        return 2;
    case '\\':
        o[1] = '\\';
        return 2;
    case '\n':
        o[1] = 'n';
        return 2;
    case '\r':
        o[1] = 'r';
        return 2;
    case '\t':
        o[1] = 't';
        return 2;
    case '\b':
        o[1] = 'b';
        return 2;
    case '\f':
        o[1] = 'f';
        return 2;
    default:
        o[1] = 'u';
        o[2] = '0';
        o[3] = '0';
        o[4] = (uint8_t)hex[c >> 4];
        o[5] = (uint8_t)hex[c & 15];
        return 6;
    }
}

/*
 * o2d_json_append_string's body, with the plain-run scanner it is given (inlined into each
 * width's copy). The scanner copies a plain run while it looks for its end, in one pass; one
 * call per escape with a separate scan and memcpy was most of the cost of JSON text in
 * strings (a quote every few bytes).
 */
static inline __attribute__((always_inline)) int
append_string_with(struct o2d_buf *b, const char *s, size_t len,
                   size_t (*scan)(const unsigned char *, size_t, size_t, uint8_t *))
{
    if (len == 0) {
        /* s may be NULL here (an empty o2d_buf has no data), and NULL + 0 is undefined */
        return o2d_buf_append(b, "\"\"", 2);
    }
    const unsigned char *p = (const unsigned char *)s;
    size_t mark = b->len;
    /* Room for the string as it is; an escape or a repair makes more as it comes, never more
     * than the output still needs (the rest of the input taken as is), so the buffer's max is
     * hit exactly when the whole string would not fit. */
    int rv;
    /* cap never exceeds max: what fits in cap needs no other check */
    if (len + 2 > b->cap - b->len || len > SIZE_MAX - 2) {
        rv = o2d_buf_reserve(b, len > SIZE_MAX - 2 ? SIZE_MAX : len + 2);
        if (rv != O2D_OK) {
            return rv;
        }
    }
    uint8_t *o = b->data + b->len;
    *o++ = '"';
    /* o - i: where input byte i goes while no escape has been written since */
    size_t i = 0;
    for (;;) {
        /* room from o: at least len - i + 1 bytes (the rest as it is, the closing quote) */
        size_t k = scan(p, i, len, o - i);
        o += k - i;
        i = k;
        if (i == len) {
            break;
        }
        size_t in;
        if ((size_t)(b->data + b->cap - o) >= 6 + (len - i) + 1) {
            o += escape_at(p, i, len, o, &in);
        } else {
            /* grown to exactly what the output still needs, so that the buffer's max is hit
             * only when the whole string would not fit */
            uint8_t esc[6];
            size_t out = escape_at(p, i, len, esc, &in);
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
            memcpy(o, esc, out);
            o += out;
        }
        i += in;
    }
    *o++ = '"';
    b->len = (size_t)(o - b->data);
    return O2D_OK;
}

#ifdef HAVE_AVX2_PATH
__attribute__((target("avx2"))) static int append_string_avx2(struct o2d_buf *b, const char *s,
                                                              size_t len)
{
    return append_string_with(b, s, len, plain_avx2);
}
#endif

static int append_string_base(struct o2d_buf *b, const char *s, size_t len)
{
#ifdef __SSE2__
    return append_string_with(b, s, len, plain_sse2);
#else
    return append_string_with(b, s, len, plain_tail);
#endif
}

int o2d_json_append_string(struct o2d_buf *b, const char *s, size_t len)
{
#ifdef HAVE_AVX2_PATH
    /* shorter strings (names, tags, ids: most calls) never reach a 32-byte step */
    if (use_avx2 && len >= 32) {
        return append_string_avx2(b, s, len);
    }
#endif
    return append_string_base(b, s, len);
}

/* The two hex digits of every byte value, 512 characters. */
#define HEX_ROW(h)                                                                                 \
    h "0" h "1" h "2" h "3" h "4" h "5" h "6" h "7" h "8" h "9" h "a" h "b" h "c" h "d" h "e" h "f"
static const char hex_pairs[513] = HEX_ROW("0") HEX_ROW("1") HEX_ROW("2") HEX_ROW("3") HEX_ROW("4")
    HEX_ROW("5") HEX_ROW("6") HEX_ROW("7") HEX_ROW("8") HEX_ROW("9") HEX_ROW("a") HEX_ROW("b")
        HEX_ROW("c") HEX_ROW("d") HEX_ROW("e") HEX_ROW("f");

int o2d_hex_append(struct o2d_buf *b, const uint8_t *p, size_t n)
{
    int rv = o2d_buf_reserve(b, n * 2);
    if (rv != O2D_OK) {
        return rv;
    }
    /* through a local pointer: stores through b->data could alias b->len */
    uint8_t *o = b->data + b->len;
    for (size_t i = 0; i < n; i++) {
        memcpy(o + 2 * i, hex_pairs + 2 * p[i], 2); /* a byte's two digits in one store */
    }
    b->len += n * 2;
    return O2D_OK;
}

static const char pairs[201] = "00010203040506070809101112131415161718192021222324"
                               "25262728293031323334353637383940414243444546474849"
                               "50515253545556575859606162636465666768697071727374"
                               "75767778798081828384858687888990919293949596979899";

/* The 8 decimal digits of v < 10^8, leading zeros included, at p: v / 10^6 in 47-bit fixed
 * point (the multiplier rounded up, so the error stays under 10^-6 for every such v: checked
 * for all 10^8 of them), then two digits at a time by multiplying the fraction by 100, instead
 * of six divisions. */
static void digits8(char *p, uint32_t v)
{
    const uint64_t mask = ((uint64_t)1 << 47) - 1;
    uint64_t t = (uint64_t)v * (((uint64_t)1 << 47) / 1000000 + 1);
    memcpy(p, pairs + 2 * (t >> 47), 2);
    t = (t & mask) * 100;
    memcpy(p + 2, pairs + 2 * (t >> 47), 2);
    t = (t & mask) * 100;
    memcpy(p + 4, pairs + 2 * (t >> 47), 2);
    t = (t & mask) * 100;
    memcpy(p + 6, pairs + 2 * (t >> 47), 2);
}

/* The decimal digits of v, ending at end; returns where they start. Eight digits a 64-bit
 * division, then two at a time in 32 bits: span ids have 19 or 20 digits, and ten 64-bit
 * divisions each were most of what writing one cost. */
static char *u64_digits(char *end, uint64_t v)
{
    char *p = end;
    while (v >= 100000000) {
        uint32_t r = (uint32_t)(v % 100000000);
        v /= 100000000;
        p -= 8;
        digits8(p, r);
    }
    uint32_t w = (uint32_t)v;
    while (w >= 100) {
        unsigned r = w % 100;
        w /= 100;
        p -= 2;
        memcpy(p, pairs + 2 * r, 2);
    }
    if (w >= 10) {
        p -= 2;
        memcpy(p, pairs + 2 * w, 2);
    } else {
        *--p = (char)('0' + w);
    }
    return p;
}

size_t o2d_json_format_uint(char out[20], uint64_t v)
{
    char tmp[20];
    char *p = u64_digits(tmp + sizeof(tmp), v);
    size_t n = (size_t)(tmp + sizeof(tmp) - p);
    memcpy(out, p, n);
    return n;
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
