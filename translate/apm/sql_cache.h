/*
 * sql_cache.h: a bounded cache of SQL obfuscation results, keyed by the exact query text, as
 * the Datadog trace agent keeps one in front of its obfuscator (DataDog/datadog-agent
 * pkg/obfuscate/cache.go and sql.go ObfuscateSQLStringWithOptions: keyed by the query,
 * bounded by the bytes of the results, apm_config.obfuscation.cache.enabled default true,
 * .max_size default 5,000,000 bytes, pkg/config/setup/apm.go). Services send the same
 * statements again and again (prepared statements, ORMs), so a repeated query costs a hash,
 * a compare and a copy instead of a tokenizer run.
 *
 * Shared by every receiving thread: the entries are split over shards by hash, each behind
 * its own mutex with its own share of the byte budget and least-recently-used eviction.
 * Unlike the agent, whose bound counts the results only, the bound here counts everything an
 * entry holds (the query, the result, the bookkeeping) and each shard's table. A query longer
 * than SQL_CACHE_MAX_QUERY, or an entry above a shard's budget / 8, is obfuscated and not
 * kept. Results that do not depend on the caller's buffer are kept: the obfuscated text, and
 * "cannot be parsed" (sql_obfuscate is stateless, so both are what the next call would
 * return); a result that did not fit the caller's buffer is not.
 */
#ifndef SQL_CACHE_H
#define SQL_CACHE_H

#include <stddef.h>
#include <stdint.h>

#include "o2d_buf.h"

/* Longest query kept (the agent's rationale for its budget: resources are at most 5,000
 * bytes); longer ones are obfuscated every time. */
#define SQL_CACHE_MAX_QUERY 8192
/* exporters.datadog.traces.obfuscation.cache.max_size: the agent's default. */
#define SQL_CACHE_DEFAULT_BYTES 5000000u
/* Smallest budget accepted: every shard can hold a few entries. */
#define SQL_CACHE_MIN_BYTES (64u * 1024)

struct sql_cache;

struct sql_cache_counters {
    uint64_t hits;      /* queries answered from the cache */
    uint64_t misses;    /* queries obfuscated (and kept when they qualify) */
    uint64_t evictions; /* entries dropped to make room */
    uint64_t entries;   /* entries now */
    uint64_t bytes;     /* bytes they and the tables take now (<= max_bytes) */
};

/* A cache of at most max_bytes (>= SQL_CACHE_MIN_BYTES): O2D_OK, O2D_ERR_INVALID (too small),
 * O2D_ERR_NOMEM. */
int sql_cache_new(size_t max_bytes, struct sql_cache **out);
void sql_cache_free(struct sql_cache *c);

/*
 * sql_obfuscate() (sql_obfuscate.h) through the cache: the same status and the same bytes
 * appended to out. c == NULL obfuscates without a cache. Thread-safe.
 */
int sql_cache_obfuscate(struct sql_cache *c, const char *sql, size_t len, struct o2d_buf *out);

void sql_cache_get_counters(struct sql_cache *c, struct sql_cache_counters *out);

#endif
