/*
 * sql_obfuscate.c: the Datadog trace agent's default (legacy) SQL obfuscator, rewritten in C
 * from the rules of DataDog/datadog-agent pkg/obfuscate/sql_tokenizer.go (the tokenizer) and
 * pkg/obfuscate/sql.go (attemptObfuscation: discardFilter -> replaceFilter -> groupingFilter),
 * with the agent's default configuration: no DBMS hint, no table names, no SQL alias kept, no
 * digit replacement, no dollar_quoted_func. The metadata filter collects nothing in that
 * configuration and is left out.
 *
 * Linear and bounded: at most two passes (the backslash retry below), no recursion, no
 * allocation except for a dollar-quote tag that holds escapes. Tokens are spans of the input;
 * only their rendering (the span, `?`, or the unquoted content of "x" / `x`) is written to the
 * output. The input is checked to be valid UTF-8 without NUL bytes first; the agent fails on
 * invalid UTF-8 anywhere, so this changes no result, and it makes every output byte either
 * ASCII written here or a copy of whole characters of the input.
 *
 * Deliberate differences from the agent (rare, malformed input only):
 *  - a NUL byte anywhere is an error (the agent keeps NULs inside strings and mangles them
 *    after a token);
 *  - `-.` not followed by a digit is the token `-` then `.` (the agent emits `-.` and then
 *    mislabels the next character);
 *  - dollar-quote delimiters are matched byte by byte (the agent compares the low byte of each
 *    rune, so a non-ASCII tag never closes and `U+0124` counts as `$`);
 *  - "is a letter" for non-ASCII characters uses a short table of non-letter blocks
 *    (punctuation, symbols, combining marks, emoji, private use) instead of Go's full
 *    unicode.IsLetter tables, and keywords are matched by ASCII case folding only (Go's
 *    ToUpper also maps U+017F to S and U+0131 to I);
 *  - the agent remembers, process-wide, whether the last query needed backslashes taken
 *    literally and starts the next query that way; this function is stateless and always
 *    tries backslash escapes first, then literal backslashes (the agent's initial order).
 */
#include <endian.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "o2d.h"
#include "o2d_alloc.h"
#include "o2d_json_out.h"
#include "sql_obfuscate.h"

/* Token kinds: single ASCII characters stand for themselves, named kinds are above 255. */
enum {
    TK_END = 256,
    TK_ID,
    TK_KEYWORD, /* a keyword that no filter looks at (FROM, LIMIT, ...): not an ID */
    TK_NULL,
    TK_STRING,
    TK_DQ_STRING,
    TK_DOLLAR_STRING,
    TK_NUMBER,
    TK_BOOLEAN,
    TK_VALUE_ARG,
    TK_COMMENT,
    TK_VARIABLE,
    TK_SAVEPOINT,
    TK_PREPARED,
    TK_ESCAPE_SEQ,
    TK_OPERATOR, /* <=>, <=, >=, <>, !=, !~, !~*, :: */
    TK_NOT,
    TK_AS,
    TK_SELECT,
    TK_UPDATE,
    TK_DELETE,
    /* Marks set by the filters. */
    TK_FILTERED_GROUPABLE,
    TK_FILTERED_GROUPABLE_PAREN,
    TK_FILTERED,
    TK_FILTERED_BRACKETED_ID,
};

/* How a token is written out. */
enum render { R_NONE, R_SPAN, R_QMARK, R_UNQUOTE };

struct token {
    int kind;
    size_t start, end;  /* span in the input */
    enum render render; /* R_SPAN or R_UNQUOTE from the scanner */
    bool blank;         /* R_UNQUOTE: the content is empty or white space only */
};

struct lexer {
    const uint8_t *s;
    size_t n;
    size_t pos;
    uint32_t curlys;     /* open `{` of a top-level JDBC escape such as {call f(?)} */
    bool literal_escape; /* a backslash in a string is an ordinary character */
    bool seen_escape;    /* a backslash was seen in a string */
};

/* ---- characters ---- */

/* Decodes the character at s[i] (i < n), which validate_utf8() has checked. */
static inline uint32_t decode(const uint8_t *s, size_t i, size_t *len)
{
    uint8_t c = s[i];
    if (c < 0x80) {
        *len = 1;
        return c;
    }
    if (c < 0xE0) {
        *len = 2;
        return ((uint32_t)(c & 0x1F) << 6) | (s[i + 1] & 0x3F);
    }
    if (c < 0xF0) {
        *len = 3;
        return ((uint32_t)(c & 0x0F) << 12) | ((uint32_t)(s[i + 1] & 0x3F) << 6) |
               (s[i + 2] & 0x3F);
    }
    *len = 4;
    return ((uint32_t)(c & 0x07) << 18) | ((uint32_t)(s[i + 1] & 0x3F) << 12) |
           ((uint32_t)(s[i + 2] & 0x3F) << 6) | (s[i + 3] & 0x3F);
}

/* Strict UTF-8 (no overlong forms, surrogates or values past U+10FFFF) and no NUL byte. Most
 * queries are ASCII: eight bytes at a time are checked for a high bit or a zero byte, and
 * only from the first word that has one is the rest checked character by character (an
 * ASCII prefix ends on a character boundary). */
static bool validate_utf8(const uint8_t *s, size_t n)
{
    const uint64_t ones = 0x0101010101010101ULL, highs = 0x8080808080808080ULL;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, s + i, 8);
        /* (w - ones) & ~w has a high bit set where w has a zero byte (exact as to whether
         * there is one, which is all that is asked) */
        if (((w | ((w - ones) & ~w)) & highs) != 0) {
            break;
        }
    }
    s += i;
    n -= i;
    return o2d_utf8_valid_prefix((const char *)s, n) == n && memchr(s, 0, n) == NULL;
}

/* Byte classes, ASCII only (other bytes are 0 and take the Unicode path): C_IDENT continues
 * an identifier (letters, digits, _ @ # . * $), C_SPACE is white space, C_LEAD starts an
 * identifier (letters, _ @). */
enum { C_IDENT = 1, C_SPACE = 2, C_LEAD = 4 };
static const uint8_t byte_class[256] = {
    0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 2, 2, 2, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    2, 0, 0, 1, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0,
    5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 0, 0, 0, 0, 5,
    0, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
};

/* unicode.IsSpace */
static inline bool is_space(uint32_t r)
{
    if (r < 0x80) {
        return byte_class[r] & C_SPACE;
    }
    return r == 0x85 || r == 0xA0 || r == 0x1680 || (r >= 0x2000 && r <= 0x200A) || r == 0x2028 ||
           r == 0x2029 || r == 0x202F || r == 0x205F || r == 0x3000;
}

/* Non-ASCII blocks that hold no letters (or almost none), sorted: an approximation of Go's
 * unicode.IsLetter that keeps accented Latin, Greek, Cyrillic, CJK and other scripts. */
static const uint32_t non_letters[][2] = {
    {0x0080, 0x00A9}, {0x00AB, 0x00B4}, {0x00B6, 0x00B9},   {0x00BB, 0x00BF},    {0x00D7, 0x00D7},
    {0x00F7, 0x00F7}, {0x02C2, 0x02C5}, {0x02D2, 0x02DF},   {0x0300, 0x036F},    {0x0482, 0x0489},
    {0x0591, 0x05C7}, {0x0600, 0x061F}, {0x064B, 0x0669},   {0x06F0, 0x06F9},    {0x0966, 0x096F},
    {0x2000, 0x20FF}, {0x2150, 0x2BFF}, {0x2E00, 0x2E7F},   {0x3000, 0x3004},    {0x3008, 0x3020},
    {0x3099, 0x309C}, {0xD800, 0xF8FF}, {0xFE00, 0xFE6F},   {0xFF01, 0xFF20},    {0xFF3B, 0xFF40},
    {0xFF5B, 0xFF65}, {0xFFE0, 0xFFFF}, {0x1F000, 0x1FAFF}, {0xE0000, 0x10FFFF},
};

/* unicode.IsLetter(r) || r == '_' || r == '@' */
static bool is_leading_letter(uint32_t r)
{
    if (r < 0x80) {
        return byte_class[r] & C_LEAD;
    }
    if (is_space(r)) {
        return false;
    }
    for (size_t i = 0; i < sizeof(non_letters) / sizeof(non_letters[0]); i++) {
        if (r < non_letters[i][0]) {
            return true;
        }
        if (r <= non_letters[i][1]) {
            return false;
        }
    }
    return true;
}

static bool is_letter(uint32_t r)
{
    return r == '#' || is_leading_letter(r);
}

static bool is_digit(uint32_t r)
{
    return r >= '0' && r <= '9';
}

/* ---- tokenizer (sql_tokenizer.go Scan) ---- */

/* The character at i, or UINT32_MAX at the end; *len is its size (0 at the end). */
static uint32_t peek(const struct lexer *lx, size_t i, size_t *len)
{
    if (i >= lx->n) {
        *len = 0;
        return UINT32_MAX;
    }
    return decode(lx->s, i, len);
}

static uint8_t byte_at(const struct lexer *lx, size_t i)
{
    return i < lx->n ? lx->s[i] : 0;
}

static int digit_val(uint8_t c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return 16;
}

static size_t scan_mantissa(const struct lexer *lx, size_t i, int base)
{
    while (i < lx->n && digit_val(lx->s[i]) < base) {
        i++;
    }
    return i;
}

/* scanNumber from i; returns the end. Hex, octal-looking, fractions and exponents. */
static size_t scan_number(const struct lexer *lx, size_t i, bool seen_dot)
{
    if (seen_dot) {
        i = scan_mantissa(lx, i, 10);
        goto exponent;
    }
    if (byte_at(lx, i) == '0') {
        i++;
        uint8_t c = byte_at(lx, i);
        if (c == 'x' || c == 'X') {
            return scan_mantissa(lx, i + 1, 16);
        }
        i = scan_mantissa(lx, i, 8);
        c = byte_at(lx, i);
        if (c == '8' || c == '9') {
            i = scan_mantissa(lx, i, 10);
        }
        c = byte_at(lx, i);
        if (c != '.' && c != 'e' && c != 'E') {
            return i;
        }
    } else {
        i = scan_mantissa(lx, i, 10);
    }
    if (byte_at(lx, i) == '.') {
        i = scan_mantissa(lx, i + 1, 10);
    }
exponent:
    if (byte_at(lx, i) == 'e' || byte_at(lx, i) == 'E') {
        i++;
        if (byte_at(lx, i) == '+' || byte_at(lx, i) == '-') {
            i++;
        }
        i = scan_mantissa(lx, i, 10);
    }
    return i;
}

/*
 * scanString: i is just past the opening delimiter. A doubled delimiter stands for itself; a
 * backslash takes the next character unless escapes are literal. On success *end is just
 * past the closing delimiter and *blank says whether the content is empty or white space.
 */
static int scan_string(struct lexer *lx, uint8_t delim, size_t i, size_t *end, bool *blank)
{
    bool only_space = true;
    for (;;) {
        if (i >= lx->n) {
            return O2D_ERR_INVALID; /* unexpected EOF in string */
        }
        uint8_t c = lx->s[i];
        if (c == delim) {
            if (byte_at(lx, i + 1) == delim) {
                only_space = false;
                i += 2;
                continue;
            }
            i++;
            break;
        }
        if (c == '\\') {
            lx->seen_escape = true;
            if (!lx->literal_escape) {
                size_t len;
                uint32_t r = peek(lx, i + 1, &len);
                if (len == 0) {
                    return O2D_ERR_INVALID;
                }
                only_space = only_space && is_space(r);
                i += 1 + len;
                continue;
            }
        }
        size_t len;
        uint32_t r = decode(lx->s, i, &len);
        only_space = only_space && is_space(r);
        i += len;
    }
    *end = i;
    *blank = only_space;
    return O2D_OK;
}

/* Writes the unescaped content of a string span (delimiters included) to dst, which has room
 * for the span, or only measures it when dst is NULL; returns the length. Mirrors
 * scan_string on input it has accepted. */
static size_t unquote(const struct lexer *lx, size_t start, size_t end, uint8_t *dst)
{
    uint8_t delim = lx->s[start];
    size_t n = 0;
    for (size_t i = start + 1; i < end - 1;) {
        uint8_t c = lx->s[i];
        size_t len = 1;
        const uint8_t *from = lx->s + i;
        if (c == delim) {
            i += 2; /* doubled */
        } else if (c == '\\' && !lx->literal_escape) {
            decode(lx->s, i + 1, &len);
            from++;
            i += 1 + len;
        } else {
            i++;
        }
        if (dst != NULL) {
            memcpy(dst + n, from, len);
        }
        n += len;
    }
    return n;
}

/* scanDollarQuotedString: s[start] is `$`, not followed by a digit. */
static int scan_dollar_string(struct lexer *lx, size_t start, size_t *end)
{
    size_t tag_end;
    bool blank;
    int rv = scan_string(lx, '$', start + 1, &tag_end, &blank);
    if (rv != O2D_OK) {
        return rv;
    }
    /* The delimiter is `$tag$` with the tag unescaped, or `$$` for an empty or blank tag.
     * Without escapes or doubled `$` in the tag it is the input span itself. */
    const uint8_t *delim = lx->s + start;
    size_t dlen = tag_end - start;
    uint8_t *owned = NULL;
    if (blank) {
        delim = (const uint8_t *)"$$";
        dlen = 2;
    } else if (memchr(lx->s + start + 1, '\\', dlen - 2) != NULL ||
               memchr(lx->s + start + 1, '$', dlen - 2) != NULL) {
        owned = o2d_malloc(dlen);
        if (owned == NULL) {
            return O2D_ERR_NOMEM;
        }
        owned[0] = '$';
        dlen = 1 + unquote(lx, start, tag_end, owned + 1);
        owned[dlen++] = '$';
        delim = owned;
    }
    /* The agent's matcher restarts from zero on a mismatch without re-checking the byte. */
    size_t got = 0;
    size_t i = tag_end;
    rv = O2D_ERR_INVALID; /* unexpected EOF in dollar-quoted string */
    while (i < lx->n) {
        if (lx->s[i++] == delim[got]) {
            if (++got == dlen) {
                *end = i;
                rv = O2D_OK;
                break;
            }
        } else {
            got = 0;
        }
    }
    o2d_free(owned);
    return rv;
}

struct keyword {
    uint64_t word; /* the keyword's bytes, little-endian, zero-padded */
    int kind;
};

/* The keywords of sql_tokenizer.go but SAVEPOINT (9 bytes, checked apart), in a table
 * indexed by a multiplicative hash with no collision among them; those no filter looks at
 * are TK_KEYWORD. */
#define KEYWORD_HASH(w) ((size_t)(((w)*0x7a2b11940dcdb281ULL) >> 59))
static const struct keyword keywords[32] = {
    [0] = {0x455441434e555254ULL, TK_KEYWORD},  /* TRUNCATE */
    [2] = {0x0000455441455243ULL, TK_KEYWORD},  /* CREATE */
    [4] = {0x00004554454c4544ULL, TK_DELETE},   /* DELETE */
    [5] = {0x000000004d4f5246ULL, TK_KEYWORD},  /* FROM */
    [8] = {0x0000455441445055ULL, TK_UPDATE},   /* UPDATE */
    [9] = {0x00000045534c4146ULL, TK_BOOLEAN},  /* FALSE */
    [12] = {0x0000004e49474542ULL, TK_KEYWORD}, /* BEGIN */
    [13] = {0x000000004f544e49ULL, TK_KEYWORD}, /* INTO */
    [14] = {0x00005443454c4553ULL, TK_SELECT},  /* SELECT */
    [15] = {0x0000545245534e49ULL, TK_KEYWORD}, /* INSERT */
    [16] = {0x000054494d4d4f43ULL, TK_KEYWORD}, /* COMMIT */
    [18] = {0x00000054494d494cULL, TK_KEYWORD}, /* LIMIT */
    [19] = {0x0000000045555254ULL, TK_BOOLEAN}, /* TRUE */
    [22] = {0x000000004c4c554eULL, TK_NULL},    /* NULL */
    [23] = {0x000000004e494f4aULL, TK_KEYWORD}, /* JOIN */
    [24] = {0x000000544e415247ULL, TK_KEYWORD}, /* GRANT */
    [26] = {0x0000454b4f564552ULL, TK_KEYWORD}, /* REVOKE */
    [28] = {0x0000005245544c41ULL, TK_KEYWORD}, /* ALTER */
    [30] = {0x00000000504f5244ULL, TK_KEYWORD}, /* DROP */
    [31] = {0x0000000000005341ULL, TK_AS},      /* AS */
};

/* Case-insensitive keyword lookup of p[0..len), with avail bytes readable from p. `& 0xDF`
 * folds a-z onto A-Z and keeps every other byte of an identifier off A-Z, so only letters can
 * match. */
static int identifier_kind(const uint8_t *p, size_t len, size_t avail)
{
    if (len < 2 || len > 9) {
        return TK_ID;
    }
    if (len == 9) {
        static const char sp[] = "SAVEPOINT";
        for (size_t j = 0; j < 9; j++) {
            if ((p[j] & 0xDF) != (uint8_t)sp[j]) {
                return TK_ID;
            }
        }
        return TK_SAVEPOINT;
    }
    uint64_t w = 0;
    if (avail >= 8) { /* one load, the bytes past the identifier masked off */
        memcpy(&w, p, 8);
        w = le64toh(w) & (~0ULL >> (8 * (8 - len))) & 0xDFDFDFDFDFDFDFDFULL;
    } else {
        for (size_t j = 0; j < len; j++) {
            w |= (uint64_t)(p[j] & 0xDF) << (8 * j);
        }
    }
    const struct keyword *kw = &keywords[KEYWORD_HASH(w)];
    return kw->word == w ? kw->kind : TK_ID;
}

static bool valid_after_bang(uint32_t r)
{
    return r == '(' || r == '`' || r == '\'' || r == '"' || r == '+' || r == '-' ||
           (r != UINT32_MAX && (is_space(r) || is_letter(r) || is_digit(r)));
}

/* Scans the next token into *t. O2D_OK (t->kind TK_END at the end), O2D_ERR_INVALID where the
 * agent's tokenizer returns LexError, O2D_ERR_NOMEM. */
static int scan(struct lexer *lx, struct token *t)
{
    size_t len;
    uint32_t r;
    for (;;) {
        size_t p = lx->pos;
        while (p < lx->n && (byte_class[lx->s[p]] & C_SPACE)) {
            p++;
        }
        lx->pos = p;
        r = peek(lx, p, &len);
        if (len == 0 || r < 0x80 || !is_space(r)) {
            break;
        }
        lx->pos += len;
    }
    size_t start = lx->pos;
    t->start = start;
    t->render = R_SPAN;
    t->blank = false;
    if (len == 0) {
        t->kind = TK_END;
        return O2D_OK;
    }
    size_t i = start + len; /* just past the first character */
    int rv;
    if (r < 0x80 ? (byte_class[r] & C_LEAD) != 0 : is_leading_letter(r)) {
        for (;;) {
            /* ASCII fast path; other characters go through the Unicode checks below. */
            const uint8_t *p = lx->s;
            size_t n = lx->n;
            while (i < n && (byte_class[p[i]] & C_IDENT)) {
                i++;
            }
            r = peek(lx, i, &len);
            if (len == 0 || !(is_letter(r) || is_digit(r) || r == '.' || r == '*' || r == '$')) {
                break;
            }
            i += len;
        }
        t->kind = identifier_kind(lx->s + start, i - start, lx->n - start);
        goto done;
    }
    if (is_digit(r)) {
        i = scan_number(lx, start, false);
        t->kind = TK_NUMBER;
        goto done;
    }
    uint8_t c = (uint8_t)r;
    uint8_t next = byte_at(lx, i);
    t->kind = c;
    if (r >= 0x80) {
        return O2D_ERR_INVALID; /* unexpected byte */
    }
    switch (c) {
    case ':':
        if (next == ':') {
            i++;
            t->kind = TK_OPERATOR;
            break;
        }
        r = peek(lx, i, &len);
        if (next == '=' || (len > 0 && is_space(r))) {
            break;
        }
        /* scanBindVar */
        if (len == 0 || !(is_letter(r) || is_digit(r))) {
            return O2D_ERR_INVALID;
        }
        for (;;) {
            r = peek(lx, i, &len);
            if (len == 0 || !(is_letter(r) || is_digit(r) || r == '.')) {
                break;
            }
            i += len;
        }
        t->kind = TK_VALUE_ARG;
        break;
    case '~':
        if (next == '*') {
            i++;
        }
        break;
    case '?':
    case '=':
    case ',':
    case ';':
    case '(':
    case ')':
    case '+':
    case '*':
    case '&':
    case '|':
    case '^':
    case '[':
    case ']':
        break;
    case '.':
        if (is_digit(next)) {
            i = scan_number(lx, i, true);
            t->kind = TK_NUMBER;
        }
        break;
    case '/':
        if (next == '/') {
            goto line_comment;
        }
        if (next == '*') {
            /* The closing pair is searched for after the opening one, so slash-star-slash
             * is still open. */
            for (i++;;) {
                const uint8_t *star = memchr(lx->s + i, '*', lx->n - i);
                if (star == NULL || (size_t)(star - lx->s) + 1 >= lx->n) {
                    return O2D_ERR_INVALID; /* unexpected EOF in comment */
                }
                i = (size_t)(star - lx->s) + 1;
                if (lx->s[i] == '/') {
                    i++;
                    break;
                }
            }
            t->kind = TK_COMMENT;
        }
        break;
    case '-':
        if (next == '-') {
            goto line_comment;
        }
        if (next == '>' || is_digit(next)) {
            /* Without a DBMS hint, `->` is scanned as a number made of the `-` alone. */
            i = scan_number(lx, i, false);
            t->kind = TK_NUMBER;
        } else if (next == '.' && is_digit(byte_at(lx, i + 1))) {
            i = scan_number(lx, i + 1, true);
            t->kind = TK_NUMBER;
        }
        break;
    case '#':
    line_comment : {
        const uint8_t *nl = memchr(lx->s + i, '\n', lx->n - i);
        i = nl != NULL ? (size_t)(nl - lx->s) + 1 : lx->n;
        t->kind = TK_COMMENT;
        break;
    }
    case '<':
        if (next == '>') {
            i++;
            t->kind = TK_OPERATOR;
        } else if (next == '=') {
            i += byte_at(lx, i + 1) == '>' ? 2 : 1;
            t->kind = TK_OPERATOR;
        }
        break;
    case '>':
        if (next == '=') {
            i++;
            t->kind = TK_OPERATOR;
        }
        break;
    case '!':
        if (next == '=') {
            i++;
            t->kind = TK_OPERATOR;
        } else if (next == '~') {
            i += byte_at(lx, i + 1) == '*' ? 2 : 1;
            t->kind = TK_OPERATOR;
        } else if (valid_after_bang(peek(lx, i, &len))) {
            t->kind = TK_NOT;
        } else {
            return O2D_ERR_INVALID;
        }
        break;
    case '\'':
    case '"':
    case '`': {
        bool blank;
        rv = scan_string(lx, c, i, &i, &blank);
        if (rv != O2D_OK) {
            return rv;
        }
        t->kind = c == '\'' ? TK_STRING : c == '"' ? TK_DQ_STRING : TK_ID;
        t->render = R_UNQUOTE;
        t->blank = blank;
        break;
    }
    case '%':
        if (next == '(') {
            const uint8_t *close = memchr(lx->s + i + 1, ')', lx->n - i - 1);
            i = close != NULL ? (size_t)(close - lx->s) + 1 : lx->n;
            r = peek(lx, i, &len);
            if (len == 0 || !is_letter(r)) {
                return O2D_ERR_INVALID; /* invalid character after variable identifier */
            }
            i += len;
            t->kind = TK_VARIABLE;
        } else if (next != 0 && is_letter(r = peek(lx, i, &len))) {
            i += len; /* format parameter such as %s */
            t->kind = TK_VARIABLE;
        }
        break;
    case '$':
        if (is_digit(next)) {
            i = scan_number(lx, i, false);
            t->kind = TK_PREPARED;
            break;
        }
        rv = scan_dollar_string(lx, start, &i);
        if (rv != O2D_OK) {
            return rv;
        }
        t->kind = TK_DOLLAR_STRING;
        break;
    case '{':
        /* The agent's "pos == 1": a `{` first in the query and followed by an ASCII byte or
         * nothing opens a JDBC escape shown in full; other `{...}` become `?`. */
        if ((start == 0 && next < 0x80) || lx->curlys > 0) {
            lx->curlys++;
            break;
        }
        {
            const uint8_t *close = memchr(lx->s + i, '}', lx->n - i);
            if (close == NULL) {
                return O2D_ERR_INVALID; /* unexpected EOF in escape sequence */
            }
            i = (size_t)(close - lx->s) + 1;
            t->kind = TK_ESCAPE_SEQ;
        }
        break;
    case '}':
        if (lx->curlys == 0) {
            return O2D_ERR_INVALID;
        }
        lx->curlys--;
        break;
    default:
        return O2D_ERR_INVALID; /* unexpected byte */
    }
done:
    t->end = i;
    lx->pos = i;
    return O2D_OK;
}

/* ---- filters and output (sql.go attemptObfuscation) ---- */

static bool is_filtered_groupable(int kind)
{
    return kind == TK_FILTERED_GROUPABLE || kind == TK_FILTERED_GROUPABLE_PAREN;
}

static int mark_filtered_groupable(int kind)
{
    return kind == '(' ? TK_FILTERED_GROUPABLE_PAREN : TK_FILTERED_GROUPABLE;
}

static inline int put(struct o2d_buf *out, const void *p, size_t n)
{
    if (n <= out->cap - out->len) {
        memcpy(out->data + out->len, p, n);
        out->len += n;
        return O2D_OK;
    }
    return o2d_buf_append(out, p, n);
}

static int put_token(struct o2d_buf *out, const struct lexer *lx, const struct token *t,
                     enum render render)
{
    if (render == R_QMARK) {
        return put(out, "?", 1);
    }
    if (render == R_SPAN) {
        return put(out, lx->s + t->start, t->end - t->start);
    }
    /* R_UNQUOTE: the content is never longer than the span. */
    if (t->blank) {
        uint8_t d[2] = {lx->s[t->start], lx->s[t->start]};
        return put(out, d, 2);
    }
    size_t need = t->end - t->start;
    if (o2d_buf_reserve(out, need) != O2D_OK) {
        /* Near the maximum the content may still fit: measure it. */
        need = unquote(lx, t->start, t->end, NULL);
        int rv = o2d_buf_reserve(out, need);
        if (rv != O2D_OK) {
            return rv;
        }
    }
    out->len += unquote(lx, t->start, t->end, out->data + out->len);
    return O2D_OK;
}

static int emit(struct o2d_buf *out, const struct lexer *lx, const struct token *t,
                enum render render, bool space, bool paren_prefix)
{
    int rv = O2D_OK;
    if (space) {
        rv = put(out, " ", 1);
    }
    if (rv == O2D_OK && paren_prefix) {
        rv = put(out, "( ", 2);
    }
    if (rv == O2D_OK && render != R_NONE) {
        rv = put_token(out, lx, t, render);
    }
    return rv;
}

/*
 * Output that is a copy of the input is written in runs: run_from..run_to of the input is
 * owed to the output. A token written as itself, after a space or not, extends the run when
 * the input has exactly that (the space, then the token) right after it; anything else pays
 * what is owed first. Most of a query (keywords, names, commas) is written by one memcpy a run
 * instead of one a token.
 */
struct run {
    size_t from, to; /* from == to: nothing owed */
};

static int run_flush(struct o2d_buf *out, const struct lexer *lx, struct run *r)
{
    int rv = r->to > r->from ? put(out, lx->s + r->from, r->to - r->from) : O2D_OK;
    r->from = r->to = 0;
    return rv;
}

/* emit() of a token written as itself (R_SPAN, no paren prefix), through the run. */
static int emit_span(struct o2d_buf *out, const struct lexer *lx, const struct token *t, bool space,
                     struct run *r)
{
    size_t at = t->start - (space ? 1 : 0); /* where the input would hold the same bytes */
    bool same = !space || (t->start > 0 && lx->s[t->start - 1] == ' ');
    if (same && r->to > r->from && at == r->to) {
        r->to = t->end;
        return O2D_OK;
    }
    int rv = run_flush(out, lx, r);
    if (rv != O2D_OK) {
        return rv;
    }
    if (!same) {
        rv = put(out, " ", 1);
        at = t->start;
    }
    r->from = at;
    r->to = t->end;
    return rv;
}

static int attempt(const uint8_t *sql, size_t len, bool literal_escape, struct o2d_buf *out,
                   bool *seen_escape)
{
    struct lexer lx = {.s = sql, .n = len, .literal_escape = literal_escape};
    bool emitted = false;
    struct run run = {0, 0};
    int buf_rv = O2D_OK;
    int last = 0;
    int group_filter = 0; /* values in the current group: ?, ?, ? */
    int group_multi = 0;  /* groups in a row: (?, ?), (?, ?) */
    int rv;
    for (;;) {
        struct token t;
        rv = scan(&lx, &t);
        *seen_escape = lx.seen_escape;
        if (rv != O2D_OK) {
            return rv;
        }
        if (t.kind == TK_END) {
            break;
        }
        int kind = t.kind;
        enum render render = t.render;
        bool paren_prefix = false;

        /* discardFilter: comments, `;`, `AS alias` and `AS [bracketed alias]`. */
        if (last == TK_FILTERED_BRACKETED_ID && kind != ']') {
            if (kind != TK_ID) {
                return O2D_ERR_INVALID; /* expected identifier in bracketed filter */
            }
            kind = TK_FILTERED_BRACKETED_ID;
            render = R_NONE;
        } else if (last == TK_FILTERED_BRACKETED_ID || last == TK_AS) {
            kind = kind == '[' ? TK_FILTERED_BRACKETED_ID : TK_FILTERED;
            render = R_NONE;
        } else if (kind == TK_COMMENT) {
            kind = TK_FILTERED;
            render = R_NONE;
        } else if (kind == ';') {
            kind = TK_FILTERED_GROUPABLE;
            render = R_NONE;
        } else if (kind == TK_AS) {
            render = R_NONE;
        }

        /* replaceFilter: literals become `?`, and so do a "string" after `=` and the token
         * after SAVEPOINT. */
        if (last == TK_SAVEPOINT || (last == '=' && kind == TK_DQ_STRING)) {
            kind = mark_filtered_groupable(kind);
            render = R_QMARK;
        } else {
            switch (kind) {
            case TK_DOLLAR_STRING:
            case TK_STRING:
            case TK_NUMBER:
            case TK_NULL:
            case TK_VARIABLE:
            case TK_PREPARED:
            case TK_BOOLEAN:
            case TK_ESCAPE_SEQ:
            case '?':
                kind = TK_FILTERED_GROUPABLE;
                render = R_QMARK;
                break;
            default:
                break;
            }
        }

        /* groupingFilter: one `?` per group, one group per run of groups, unless a group
         * turns out to be a subquery. */
        if ((last == '(' && is_filtered_groupable(kind)) || (kind == '(' && group_multi > 0)) {
            group_multi++;
        }
        bool subquery =
            kind == TK_SELECT || kind == TK_DELETE || kind == TK_UPDATE || kind == TK_ID;
        if (group_multi > 0 && last == TK_FILTERED_GROUPABLE_PAREN && subquery) {
            group_filter = group_multi = 0;
            paren_prefix = true;
        } else if (is_filtered_groupable(kind)) {
            if (++group_filter > 1) {
                render = R_NONE;
            }
        } else if (group_filter > 0 && (kind == ',' || kind == '?')) {
            kind = TK_FILTERED_GROUPABLE;
            render = R_NONE;
        } else if (group_multi > 1) {
            kind = mark_filtered_groupable(kind);
            render = R_NONE;
        } else if (kind != ',' && kind != '(' && kind != ')') {
            group_filter = group_multi = 0;
        }

        if (render != R_NONE || paren_prefix) {
            bool space = emitted && kind != ',' && !(kind == '=' && last == ':');
            emitted = true;
            /* After a buffer error the scan goes on without writing: a lexing error further
             * on must still win (and may send the query to the literal-backslash retry). */
            if (buf_rv == O2D_OK) {
                if (render == R_SPAN && !paren_prefix) {
                    buf_rv = emit_span(out, &lx, &t, space, &run);
                } else if ((buf_rv = run_flush(out, &lx, &run)) == O2D_OK) {
                    buf_rv = emit(out, &lx, &t, render, space, paren_prefix);
                }
            }
        }
        last = kind;
    }
    if (buf_rv == O2D_OK) {
        buf_rv = run_flush(out, &lx, &run);
    }
    if (buf_rv != O2D_OK) {
        return buf_rv;
    }
    return emitted ? O2D_OK : O2D_ERR_INVALID; /* result is empty */
}

int sql_obfuscate(const char *sql, size_t len, struct o2d_buf *out)
{
    const uint8_t *s = (const uint8_t *)sql;
    size_t start = out->len;
    if (len == 0 || !validate_utf8(s, len)) {
        return O2D_ERR_INVALID;
    }
    /* Room for the usual case up front; the output is rarely longer than twice the input. */
    size_t avail = out->max - out->len;
    size_t want = len <= (SIZE_MAX - 16) / 2 ? 2 * len + 16 : SIZE_MAX;
    int rv = o2d_buf_reserve(out, want < avail ? want : avail);
    if (rv != O2D_OK) {
        return rv;
    }
    bool seen_escape = false;
    rv = attempt(s, len, false, out, &seen_escape);
    if (rv == O2D_ERR_INVALID && seen_escape) {
        /* As the agent does: a query that fails with backslash escapes and has a backslash
         * in a string is tried again with backslashes taken literally. */
        out->len = start;
        rv = attempt(s, len, true, out, &seen_escape);
    }
    if (rv != O2D_OK) {
        out->len = start;
    }
    return rv;
}
