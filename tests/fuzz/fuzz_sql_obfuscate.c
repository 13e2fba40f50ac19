/*
 * fuzz_sql_obfuscate.c: sql_obfuscate() on arbitrary bytes. Oracles: the status is OK or
 * INVALID (the buffer is big enough); an error leaves the buffer empty; an accepted query
 * gives non-empty, valid UTF-8 output that is the same when appended after a prefix and that
 * fits a buffer of exactly its size but not one byte less. Literal leaks: without `"` or `
 * in the input (the only quoted text the agent keeps, as identifiers), no output token
 * starts with a digit (every number literal became `?`) and no `'` survives (every string
 * literal became `?`). Through the SQL cache (sql_cache.h, one small cache for the whole run, so
 * entries are evicted as inputs go by), twice, the same status and bytes as without it.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "o2d.h"
#include "o2d_buf.h"
#include "sql_cache.h"
#include "sql_obfuscate.h"

static int valid_utf8(const uint8_t *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        uint8_t c = s[i];
        size_t k;
        uint32_t r;
        if (c < 0x80) {
            i++;
            continue;
        } else if (c >= 0xC2 && c <= 0xDF) {
            k = 1;
            r = c & 0x1F;
        } else if (c >= 0xE0 && c <= 0xEF) {
            k = 2;
            r = c & 0x0F;
        } else if (c >= 0xF0 && c <= 0xF4) {
            k = 3;
            r = c & 0x07;
        } else {
            return 0;
        }
        if (n - i - 1 < k) {
            return 0;
        }
        for (size_t j = 1; j <= k; j++) {
            if ((s[i + j] & 0xC0) != 0x80) {
                return 0;
            }
            r = (r << 6) | (s[i + j] & 0x3F);
        }
        if ((k == 2 && (r < 0x800 || (r >= 0xD800 && r <= 0xDFFF))) ||
            (k == 3 && (r < 0x10000 || r > 0x10FFFF))) {
            return 0;
        }
        i += k + 1;
    }
    return 1;
}

/* sql_cache_obfuscate gives rv and out's bytes, twice (a miss, then usually a hit). */
static void check_cached(const char *sql, size_t size, int rv, const struct o2d_buf *out)
{
    static struct sql_cache *cache;
    if (cache == NULL && sql_cache_new(SQL_CACHE_MIN_BYTES, &cache) != O2D_OK) {
        abort();
    }
    for (int i = 0; i < 2; i++) {
        struct o2d_buf b;
        o2d_buf_init(&b, 4 * size + 64);
        if (sql_cache_obfuscate(cache, sql, size, &b) != rv || b.len != out->len ||
            (b.len > 0 && memcmp(b.data, out->data, b.len) != 0)) {
            abort();
        }
        o2d_buf_cleanup(&b);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *sql = (const char *)data;
    struct o2d_buf out, again, tight;
    o2d_buf_init(&out, 4 * size + 64);
    int rv = sql_obfuscate(sql, size, &out);
    check_cached(sql, size, rv, &out);
    if (rv != O2D_OK) {
        if (rv != O2D_ERR_INVALID || out.len != 0) {
            abort();
        }
        o2d_buf_cleanup(&out);
        return 0;
    }
    if (out.len == 0 || !valid_utf8(out.data, out.len)) {
        abort();
    }

    if (memchr(data, '"', size) == NULL && memchr(data, '`', size) == NULL) {
        if (memchr(out.data, '\'', out.len) != NULL) {
            abort();
        }
        for (size_t i = 0; i < out.len; i++) {
            if ((i == 0 || out.data[i - 1] == ' ') && out.data[i] >= '0' && out.data[i] <= '9') {
                abort();
            }
        }
    }

    o2d_buf_init(&again, 4 * size + 80);
    if (o2d_buf_append(&again, "prefix: ", 8) != O2D_OK ||
        sql_obfuscate(sql, size, &again) != O2D_OK || again.len != 8 + out.len ||
        memcmp(again.data + 8, out.data, out.len) != 0) {
        abort();
    }

    o2d_buf_init(&tight, out.len - 1);
    if (sql_obfuscate(sql, size, &tight) != O2D_ERR_TOO_LARGE || tight.len != 0) {
        abort();
    }
    o2d_buf_cleanup(&tight);
    o2d_buf_init(&tight, out.len);
    if (sql_obfuscate(sql, size, &tight) != O2D_OK || tight.len != out.len ||
        memcmp(tight.data, out.data, out.len) != 0) {
        abort();
    }

    o2d_buf_cleanup(&tight);
    o2d_buf_cleanup(&again);
    o2d_buf_cleanup(&out);
    return 0;
}
