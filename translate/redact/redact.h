/*
 * redact.h: the redaction processor. Removes or masks what must not leave: attribute keys
 * outside an allow list, values of blocked keys, values matching regular expressions (the
 * user's blocked_values and built-in named patterns: e-mail, payment cards with a Luhn
 * check, cloud and LLM provider keys, bearer tokens, IP addresses), and, on request, the
 * contents of LLM messages while their roles, models, token counts and tool names stay.
 *
 * The keys and their meaning follow the OpenTelemetry Collector's redaction processor
 * (opentelemetry-collector-contrib processor/redactionprocessor, config.go and
 * processor.go): allow_all_keys, allowed_keys, ignored_keys, blocked_key_patterns,
 * blocked_values, allowed_values, summary, hash_function, hmac_key. Ours on top: `patterns`
 * (built-in names) and `drop_message_contents`.
 *
 * Regular expressions are PCRE2 (libpcre2-8), JIT-compiled where the platform has a JIT,
 * with a match limit and a depth limit so that no pattern can take unbounded time on a
 * value; a value whose match hits a limit is treated as matched (the whole value is
 * replaced: fail closed). Compiled rules are immutable and shared by every thread; only the
 * per-pattern counters change, atomically.
 *
 * Applied once per request, in place, on the decoded protobuf-c structures; replaced text
 * is allocated in the request's arena. What the exporters make of the result is theirs.
 */
#ifndef O2D_REDACT_H
#define O2D_REDACT_H

#include <stddef.h>
#include <stdint.h>

#include "otlp.h"

#define REDACT_MAX_LIST 32 /* entries in each list of the configuration */

enum redact_summary {
    REDACT_SUMMARY_SILENT = 0, /* the Collector's default: no diagnostic attributes */
    REDACT_SUMMARY_INFO,       /* redaction.*.count */
    REDACT_SUMMARY_DEBUG,      /* redaction.*.count and redaction.*.keys */
};

enum redact_hash {
    REDACT_HASH_NONE = 0, /* a match becomes a marker: "****" or "[REDACTED:name]" */
    REDACT_HASH_HMAC_SHA256,
    REDACT_HASH_HMAC_SHA512,
};

/* What redact_rules_new() compiles. Every pointer is borrowed for the call only. */
struct redact_config {
    int allow_all_keys;
    const char *allowed_keys[REDACT_MAX_LIST];
    size_t n_allowed_keys;
    const char *ignored_keys[REDACT_MAX_LIST];
    size_t n_ignored_keys;
    const char *blocked_key_patterns[REDACT_MAX_LIST];
    size_t n_blocked_key_patterns;
    const char *blocked_values[REDACT_MAX_LIST];
    size_t n_blocked_values;
    const char *allowed_values[REDACT_MAX_LIST];
    size_t n_allowed_values;
    const char *patterns[REDACT_MAX_LIST]; /* built-in names (redact_builtin_name) */
    size_t n_patterns;
    enum redact_summary summary;
    enum redact_hash hash;
    const char *hmac_key; /* with hash: the key (secret: never in a message) */
    int drop_message_contents;
    uint32_t match_limit; /* 0: REDACT_DEFAULT_MATCH_LIMIT */
};

#define REDACT_DEFAULT_MATCH_LIMIT 100000u

struct redact_rules;

/*
 * Compiles `c`. O2D_OK with *out set, or O2D_ERR_CONFIG with err saying which list, which
 * entry and why (for a pattern: PCRE2's message and the offset), or O2D_ERR_NOMEM.
 */
int redact_rules_new(struct redact_rules **out, const struct redact_config *c, char *err,
                     size_t errlen);
void redact_rules_free(struct redact_rules *r);

/*
 * Redacts one decoded request in place (traces, logs or metrics): strings it replaces are
 * allocated in req->arena. O2D_OK, or O2D_ERR_NOMEM / O2D_ERR_TOO_LARGE when the arena
 * cannot hold the result (the request is then partly redacted and must not be exported).
 */
int redact_request(const struct redact_rules *r, struct otlp_request *req);

/*
 * Redacts one text the way an attribute value under `key` is (key NULL: a plain value, such
 * as a log body), for tests and tools. *out is s itself when nothing changed, else a string
 * in `a`. O2D_OK or O2D_ERR_NOMEM.
 */
int redact_text(const struct redact_rules *r, struct o2d_arena *a, const char *key, const char *s,
                const char **out);

/* The counters, for /metrics: n rules (the built-in patterns and blocked_values entries
 * first, then the key rules), each a closed-set label and the values it redacted. */
size_t redact_rules_counters(const struct redact_rules *r);
const char *redact_counter_name(const struct redact_rules *r, size_t i);
uint64_t redact_counter_value(const struct redact_rules *r, size_t i);

/* For `otel2dd validate`: one line per effective rule ("email: [pattern]"), into out. */
void redact_rules_describe(const struct redact_rules *r, void (*line)(void *ctx, const char *s),
                           void *ctx);

/* Built-in patterns: their names (NULL past the end) and whether a name is one. */
const char *redact_builtin_name(size_t i);
int redact_builtin_known(const char *name);

/* Luhn checksum over the digits of s[0..len), other bytes skipped: 1 when valid. */
int redact_luhn_ok(const char *s, size_t len);

#endif
