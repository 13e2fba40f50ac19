/*
 * redact_int.h: internal to translate/redact/ (nothing outside it includes this). The
 * compiled rules, the state of one run over a request, and what the files share:
 *   redact.c       rules: compiling, the built-in patterns, text redaction, counters
 *   redact_otlp.c  the walk over a decoded request: keys, values, bodies, summaries
 *   redact_json.c  message contents: JSON text parsed, its string leaves redacted
 */
#ifndef O2D_REDACT_INT_H
#define O2D_REDACT_INT_H

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stdatomic.h>

#include "o2d_buf.h"
#include "redact.h"

#define REDACT_NAME_MAX    40
#define REDACT_REPLACE_MAX 48
/* Value patterns: the built-ins and blocked_values. */
#define REDACT_MAX_PATTERNS (2 * REDACT_MAX_LIST)
/* Counters past the value patterns: keys removed, keys masked, contents dropped. */
enum {
    REDACT_CTR_KEYS_REMOVED = 0,
    REDACT_CTR_KEYS_MASKED,
    REDACT_CTR_CONTENTS,
    REDACT_CTR_EXTRA,
};
/* JSON nesting we walk in a message value; deeper text is redacted as text. */
#define REDACT_JSON_DEPTH 64

struct redact_pattern {
    char name[REDACT_NAME_MAX];       /* the counter's label: "email", "blocked_values.2" */
    char replace[REDACT_REPLACE_MAX]; /* without hashing: "[REDACTED:email]" or "****" */
    const char *source;               /* the regular expression (static or in the rules) */
    pcre2_code *code;
    int (*check)(const char *s, size_t len); /* a match counts only when this says 1 */
    const char *needle; /* every match holds this (case-insensitively when needle_ci) */
    int needle_ci;
    unsigned classes; /* byte classes every match holds (redact.c C_*); 0: none known */
    unsigned min_digits, min_dots, min_colons; /* what every match holds at least */
    int builtin; /* hashing wraps a built-in's digest in "[REDACTED:name:...]" */
};

struct redact_rules {
    int allow_all_keys;
    char allowed_keys[REDACT_MAX_LIST][256];
    size_t n_allowed_keys;
    char ignored_keys[REDACT_MAX_LIST][256];
    size_t n_ignored_keys;
    pcre2_code *blocked_keys[REDACT_MAX_LIST];
    char blocked_keys_src[REDACT_MAX_LIST][256];
    size_t n_blocked_keys;
    pcre2_code *allowed_values[REDACT_MAX_LIST];
    char allowed_values_src[REDACT_MAX_LIST][256];
    size_t n_allowed_values;
    struct redact_pattern pats[REDACT_MAX_PATTERNS];
    char pats_src[REDACT_MAX_LIST][256]; /* blocked_values as written */
    size_t n_pats;
    enum redact_summary summary;
    enum redact_hash hash;
    unsigned char hmac_key[256];
    size_t hmac_key_len;
    int drop_message_contents;
    uint32_t match_limit;
    _Atomic uint64_t counters[REDACT_MAX_PATTERNS + REDACT_CTR_EXTRA];
};

/* One run over a request (or one text): the scratch PCRE2 needs and the output arena. */
struct redact_run {
    const struct redact_rules *r;
    struct o2d_arena *a;
    pcre2_match_data *md;
    pcre2_match_context *mctx;
    pcre2_jit_stack *jit;
    struct o2d_buf buf; /* one value being rebuilt */
};

int redact_run_init(struct redact_run *run, const struct redact_rules *r, struct o2d_arena *a);
void redact_run_cleanup(struct redact_run *run);

void redact_count(const struct redact_rules *r, size_t counter, uint64_t n);

/* Whether a regular expression of the rules matches s[0..len) somewhere; a match that hits a
 * limit counts as one. */
int redact_re_matches(struct redact_run *run, const pcre2_code *code, const char *s, size_t len);

/*
 * The value patterns applied to s[0..len) in order, each to the previous one's result.
 * *out is s when nothing matched, else a NUL-terminated string in the arena; *changed says
 * which. O2D_OK or O2D_ERR_NOMEM.
 */
int redact_patterns(struct redact_run *run, const char *s, size_t len, const char **out,
                    int *changed);
/* The whole value replaced as a blocked key's value is ("****" or its digest). */
int redact_mask_whole(struct redact_run *run, const char *s, size_t len, const char **out);

/* Message keys: gen_ai.input.messages, OpenInference's llm.input_messages.N.message.content
 * and the like, whose value is message text or JSON of messages. */
int redact_is_message_key(const char *key);
/* Keys whose string values stay when message contents are dropped (role, name, ...). */
int redact_is_structural_key(const char *key);

/*
 * A message value: JSON of messages (string leaves redacted, or with drop_message_contents
 * every leaf but the structural ones replaced), or text when it is not JSON. *out and
 * *changed as for redact_patterns.
 */
int redact_message(struct redact_run *run, const char *s, size_t len, const char **out,
                   int *changed);

#define REDACT_CONTENT_MARK "[REDACTED:content]"

#endif
