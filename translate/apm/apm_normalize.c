/*
 * apm_normalize.c: the Datadog trace agent's string normalizers (DataDog/datadog-agent
 * pkg/trace/traceutil/normalize/normalize.go: NormalizeTag, NormalizeTagValue, NormalizeName,
 * NormalizeService, NormalizePeerService, TruncateUTF8), plus the UTF-8 repair that keeps every
 * string we emit valid.
 *
 * ASCII behaves byte for byte as the Go code. Beyond ASCII, Go asks its unicode tables whether a
 * rune is a letter, a digit or upper case; we ask glibc's C.UTF-8 locale (iswalpha_l and
 * friends), which agrees for letters and case, and counts other scripts' digits as letters (the
 * result is the same: the character is kept). Without that locale every non-ASCII character is
 * kept as a letter.
 */
#include <locale.h>
#include <pthread.h>
#include <string.h>
#include <wctype.h>

#include "apm_int.h"
#include "o2d.h"
#include "o2d_json_out.h"

static pthread_once_t utf8_locale_once = PTHREAD_ONCE_INIT;
static locale_t utf8_locale = (locale_t)0;

static void utf8_locale_init(void)
{
    utf8_locale = newlocale(LC_CTYPE_MASK, "C.UTF-8", (locale_t)0);
}

/* The code point at s and its length, or -1 with length 1 for an invalid byte. */
static int32_t decode_rune(const unsigned char *s, size_t avail, size_t *width)
{
    uint32_t cp;
    size_t n = o2d_utf8_decode(s, avail, &cp);
    *width = n ? n : 1;
    return n ? (int32_t)cp : -1;
}

static size_t encode_rune(char *out, int32_t cp)
{
    unsigned char *o = (unsigned char *)out;
    if (cp < 0x80) {
        o[0] = (unsigned char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (unsigned char)(0xC0 | (cp >> 6));
        o[1] = (unsigned char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (unsigned char)(0xE0 | (cp >> 12));
        o[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (unsigned char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (unsigned char)(0xF0 | (cp >> 18));
    o[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
    o[3] = (unsigned char)(0x80 | (cp & 0x3F));
    return 4;
}

static size_t rune_len(int32_t cp)
{
    return cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
}

size_t apm_normalize_truncate_utf8(const char *s, size_t n, size_t limit)
{
    if (n <= limit) {
        return n;
    }
    size_t cut = limit;
    while (cut > 0 && ((unsigned char)s[cut] & 0xC0) == 0x80) {
        cut--;
    }
    return cut;
}

int apm_normalize_utf8(struct o2d_arena *a, struct apm_str *s)
{
    size_t valid = o2d_utf8_valid_prefix(s->p, s->n);
    if (valid == s->n) {
        return O2D_OK;
    }
    /* Each invalid byte becomes the 3-byte U+FFFD. */
    char *out = o2d_arena_alloc(a, valid + (s->n - valid) * 3 + 1);
    if (out == NULL) {
        return O2D_ERR_TOO_LARGE;
    }
    memcpy(out, s->p, valid);
    size_t o = valid;
    const unsigned char *p = (const unsigned char *)s->p;
    for (size_t i = valid; i < s->n;) {
        size_t w;
        if (decode_rune(p + i, s->n - i, &w) < 0) {
            memcpy(out + o, "\xEF\xBF\xBD", 3);
            o += 3;
            i++;
        } else {
            memcpy(out + o, p + i, w);
            o += w;
            i += w;
        }
    }
    out[o] = '\0';
    s->p = out;
    s->n = o;
    return O2D_OK;
}

static int is_valid_ascii_start(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || c == ':';
}

static int is_valid_ascii_tag_char(unsigned char c)
{
    return is_valid_ascii_start(c) || (c >= '0' && c <= '9') || c == '.' || c == '/' || c == '-';
}

/* isNormalizedASCIITag: the fast path that returns the input unchanged. */
static int is_normalized_ascii_tag(struct apm_str t, int check_start)
{
    if (t.n == 0) {
        return 1;
    }
    if (t.n > APM_MAX_TAG_LEN) {
        return 0;
    }
    const unsigned char *p = (const unsigned char *)t.p;
    size_t i = 0;
    if (check_start) {
        if (!is_valid_ascii_start(p[0])) {
            return 0;
        }
        i++;
    }
    for (; i < t.n; i++) {
        if (is_valid_ascii_tag_char(p[i])) {
            continue;
        }
        if (p[i] != '_') {
            return 0;
        }
        i++;
        if (i == t.n || !is_valid_ascii_tag_char(p[i])) {
            return 0;
        }
    }
    return 1;
}

static int rune_is_upper(int32_t r)
{
    if (utf8_locale == (locale_t)0) {
        return 0;
    }
    return iswupper_l((wint_t)r, utf8_locale);
}

static int32_t rune_to_lower(int32_t r)
{
    return (int32_t)towlower_l((wint_t)r, utf8_locale);
}

static int rune_is_letter(int32_t r)
{
    if (r < 0) {
        return 0;
    }
    if (r < 0x80) {
        return (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z');
    }
    if (r == 0xFFFD) {
        return 0;
    }
    if (utf8_locale == (locale_t)0) {
        return 1;
    }
    return iswalpha_l((wint_t)r, utf8_locale) && !iswpunct_l((wint_t)r, utf8_locale);
}

static int rune_is_digit(int32_t r)
{
    return r >= '0' && r <= '9';
}

int apm_normalize_tag(struct o2d_arena *a, struct apm_str in, int tag_value, struct apm_str *out)
{
    int strip_start = !tag_value;
    if (is_normalized_ascii_tag(in, strip_start)) {
        *out = in;
        return O2D_OK;
    }
    pthread_once(&utf8_locale_once, utf8_locale_init);
    char *tag = o2d_arena_alloc(a, in.n + 1);
    if (tag == NULL) {
        return O2D_ERR_TOO_LARGE;
    }
    memcpy(tag, in.p, in.n);
    const unsigned char *src = (const unsigned char *)in.p;
    size_t cuts[APM_MAX_TAG_LEN + 8][2];
    size_t ncuts = 0;
    size_t trim = 0, chars = 0, i = 0, jump = 0;
    while (i < in.n) {
        int32_t r = decode_rune(src + i, in.n - i, &jump);
        if (r >= 'a' && r <= 'z') {
            chars++;
            goto end;
        }
        if (r == ':') {
            chars++;
            goto end;
        }
        if (r >= 'A' && r <= 'Z') {
            tag[i] = (char)(r + ('a' - 'A'));
            chars++;
            goto end;
        }
        if (r >= 0x80 && rune_is_upper(r)) {
            int32_t low = rune_to_lower(r);
            if (rune_len(low) == rune_len(r)) {
                encode_rune(tag + i, low);
                r = low;
            }
        }
        if (rune_is_letter(r)) {
            chars++;
        } else if (strip_start && chars == 0) {
            trim = i + jump;
        } else if (rune_is_digit(r) || r == '.' || r == '/' || r == '-') {
            chars++;
        } else {
            chars++;
            if (ncuts > 0 && cuts[ncuts - 1][1] >= i) {
                cuts[ncuts - 1][1] += jump;
            } else {
                cuts[ncuts][0] = i;
                cuts[ncuts][1] = i + jump;
                ncuts++;
            }
        }
    end:
        if (i + jump >= 2 * APM_MAX_TAG_LEN || chars >= APM_MAX_TAG_LEN) {
            break;
        }
        i += jump;
    }
    size_t endpos = i < in.n ? i + jump : in.n;
    char *t = tag + trim;
    size_t len = endpos > trim ? endpos - trim : 0;
    size_t delta = trim;
    for (size_t c = 0; c < ncuts; c++) {
        size_t start = cuts[c][0] - delta, stop = cuts[c][1] - delta;
        if (stop >= len) {
            len = start;
            break;
        }
        t[start] = '_';
        if (stop - start == 1) {
            continue;
        }
        memmove(t + start + 1, t + stop, len - stop);
        len -= stop - start - 1;
        delta += cuts[c][1] - cuts[c][0] - 1;
    }
    t[len] = '\0';
    out->p = t;
    out->n = len;
    return O2D_OK;
}

static int is_alpha(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int is_alnum(unsigned char c)
{
    return is_alpha(c) || (c >= '0' && c <= '9');
}

static int is_valid_metric_name(const unsigned char *s, size_t n)
{
    if (n == 0 || !is_alpha(s[0])) {
        return 0;
    }
    for (size_t j = 1; j < n; j++) {
        unsigned char b = s[j];
        if (!(is_alnum(b) || (b == '.' && s[j - 1] != '_') || (b == '_' && s[j - 1] != '_'))) {
            return 0;
        }
    }
    return 1;
}

static const struct apm_str default_span_name = APM_STR_LIT("unnamed_operation");

int apm_normalize_name(struct o2d_arena *a, struct apm_str in, struct apm_str *out)
{
    if (in.n == 0) {
        *out = default_span_name;
        return O2D_OK;
    }
    size_t n = apm_normalize_truncate_utf8(in.p, in.n, APM_MAX_NAME_LEN);
    const unsigned char *s = (const unsigned char *)in.p;
    size_t i = 0;
    while (i < n && !is_alpha(s[i])) {
        i++;
    }
    if (i == n) {
        *out = default_span_name;
        return O2D_OK;
    }
    if (is_valid_metric_name(s + i, n - i)) {
        size_t len = n - i;
        if (s[i + len - 1] == '_') {
            len--;
        }
        out->p = in.p + i;
        out->n = len;
        return O2D_OK;
    }
    char *res = o2d_arena_alloc(a, APM_MAX_NAME_LEN + 1);
    if (res == NULL) {
        return O2D_ERR_TOO_LARGE;
    }
    size_t ptr = 0;
    for (; i < n; i++) {
        if (is_alnum(s[i])) {
            res[ptr++] = (char)s[i];
        } else if (s[i] == '.') {
            if (res[ptr - 1] == '_') {
                res[ptr - 1] = '.';
            } else {
                res[ptr++] = '.';
            }
        } else if (res[ptr - 1] != '.' && res[ptr - 1] != '_') {
            res[ptr++] = '_';
        }
    }
    if (res[ptr - 1] == '_') {
        ptr--;
    }
    res[ptr] = '\0';
    out->p = res;
    out->n = ptr;
    return O2D_OK;
}

static int normalize_service_like(struct o2d_arena *a, struct apm_str in, struct apm_str fallback,
                                  struct apm_str *out)
{
    if (in.n == 0) {
        *out = fallback;
        return O2D_OK;
    }
    in.n = apm_normalize_truncate_utf8(in.p, in.n, APM_MAX_SERVICE_LEN);
    int rv = apm_normalize_tag(a, in, 1, out);
    if (rv == O2D_OK && out->n == 0) {
        *out = fallback;
    }
    return rv;
}

int apm_normalize_service(struct o2d_arena *a, struct apm_str in, struct apm_str *out)
{
    return normalize_service_like(a, in, APM_STR_LIT("unnamed-service"), out);
}

int apm_normalize_peer_service(struct o2d_arena *a, struct apm_str in, struct apm_str *out)
{
    return normalize_service_like(a, in, APM_STR_LIT(""), out);
}
