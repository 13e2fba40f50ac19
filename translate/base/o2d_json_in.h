/*
 * o2d_json_in.h: JSON text -> jansson value, for the JSON that instrumentations put into span
 * attributes (gen_ai.input.messages, tool arguments, ...), which is read once per span on
 * the receiving thread. It accepts exactly what json_loadb(JSON_DECODE_ANY | JSON_ALLOW_NUL)
 * accepts and builds the same value (same key order, last value of a repeated key, integers
 * past 64 bits and reals past double refused, nesting cut at JSON_PARSER_MAX_DEPTH); jansson
 * stays the value type and its allocator is used. Why not json_loadb itself: its lexer reads
 * one byte at a time through a stream callback and copies every byte into a buffer, ~150
 * instructions a byte here, which made it half of the LLM Obs CPU (tests/bench/RESULTS-
 * llmobs.md); this reader scans strings in runs and builds values straight from the text.
 * Its pull side also reads OTLP/JSON request bodies (otlp_json.c) without any tree.
 */
#ifndef O2D_JSON_IN_H
#define O2D_JSON_IN_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "o2d_arena.h"
#include "o2d_buf.h"

/* The reason given for text that is not valid UTF-8 (jansson refuses it too); callers that
 * repair UTF-8 compare the pointer and retry on the repaired text. */
extern const char o2d_json_in_bad_utf8[];

/*
 * Parses s[0..n) (borrowed). O2D_OK with *out (a new reference); O2D_ERR_INVALID with
 * *reason (static) when the text is not one JSON value; O2D_ERR_NOMEM when jansson could not
 * allocate. *out is NULL unless O2D_OK.
 */
int o2d_json_in_load(const char *s, size_t n, json_t **out, const char **reason);

/*
 * Pull reading, for a caller that reads one known shape without building values and gives
 * up on anything else: the same string rules as o2d_json_in_load (escapes decoded, UTF-8
 * checked, control characters refused). Fields are private.
 */
struct o2d_json_in_pull {
    const unsigned char *p, *end;
    struct o2d_buf tmp; /* the last escaped string, or a long number's text */
    uint8_t key[64];    /* the last escaped key (o2d_json_in_pull_key) */
    const char *reason; /* set once, by the first failure */
    int nomem;
};
void o2d_json_in_pull_init(struct o2d_json_in_pull *r, const char *s, size_t n);
void o2d_json_in_pull_cleanup(struct o2d_json_in_pull *r);
/* The next byte after whitespace, not consumed; -1 at the end of the text. */
int o2d_json_in_pull_peek(struct o2d_json_in_pull *r);
/* Consumes the structural byte c ('[', ':', ...) when it comes next; 0 otherwise. */
int o2d_json_in_pull_take(struct o2d_json_in_pull *r, int c);
/* Reads the string that comes next: *s, *n hold it decoded (in the text when it has no
 * escape, else in r's buffer until the next string). 0 when no valid string comes next. */
int o2d_json_in_pull_string(struct o2d_json_in_pull *r, const char **s, size_t *n);

/* The reason given for an integer past int64 or a real past a double (jansson's numeric
 * overflow); compare the pointer. */
extern const char o2d_json_in_range[];

/* A number as jansson holds it: an integer (no fraction, no exponent) in i, and also as a
 * double in d; a real only in d. */
struct o2d_json_in_num {
    int real;
    int64_t i;
    double d;
};
/* Reads the number that comes next; 0 when none does or it is out of range. */
int o2d_json_in_pull_number(struct o2d_json_in_pull *r, struct o2d_json_in_num *out);
/* Reads the literal that comes next: 't', 'f' or 'n'; 0 when it is no literal. */
int o2d_json_in_pull_literal(struct o2d_json_in_pull *r);
/* Reads an object key and the ':' after it; a key holding "\u0000" is refused, as jansson
 * refuses it. *s, *n hold it decoded, in the text or in r (until the next key); an escaped
 * key longer than r's 64 bytes comes back with its length but *s NULL: no name a caller
 * looks for is that long. Uses no growing buffer. */
int o2d_json_in_pull_key(struct o2d_json_in_pull *r, const char **s, size_t *n);
/* After an element of an object or array: 1 when ',' comes next (consumed), 0 when the
 * closer `close` does (consumed), -1 (a failure) otherwise. */
int o2d_json_in_pull_next(struct o2d_json_in_pull *r, int close);
/* Skips the value that comes next, whatever its shape, checking it exactly as
 * o2d_json_in_load would; `depth` is that value's nesting level (1 at the top), and nesting
 * past JSON_PARSER_MAX_DEPTH fails. Uses no heap and no recursion (r's buffer only for a
 * long number that ends the text). */
int o2d_json_in_pull_skip(struct o2d_json_in_pull *r, size_t depth);
/* Reads the string that comes next, decoded and checked: without escapes *s points into the
 * text (*copied 0); with escapes it is decoded into a NUL-terminated block of a (*copied 1),
 * so the reader's own buffer never grows. 1 on success, 0 when no valid string comes next,
 * -1 when the arena refused the block. */
int o2d_json_in_pull_string_arena(struct o2d_json_in_pull *r, struct o2d_arena *a, const char **s,
                                  size_t *n, int *copied);
/* 1 when only whitespace is left; 0 (a failure) otherwise. */
int o2d_json_in_pull_end(struct o2d_json_in_pull *r);
/* After a 0 from any pull call: O2D_ERR_NOMEM (r's buffer could not grow), or
 * O2D_ERR_INVALID with *reason (static: o2d_json_in_bad_utf8, o2d_json_in_range, ...). */
int o2d_json_in_pull_failure(const struct o2d_json_in_pull *r, const char **reason);

/*
 * jansson's allocator (json_set_alloc_funcs(o2d_json_in_malloc, o2d_json_in_free), once, at
 * start-up): the heap through o2d_malloc, except while the calling thread has a scratch
 * arena open, when values come from the arena and freeing them does nothing; closing the
 * scratch releases them in one step. Translation opens one around work whose jansson values
 * all die inside it (parsed attribute JSON is a throwaway tree): no value allocated inside
 * may be used or freed after the close, and no value from outside may grow inside (an
 * object's table or an array's storage would land in the arena).
 */
struct o2d_json_in_scratch {
    struct o2d_arena arena;
    struct o2d_arena *prev;
};
void *o2d_json_in_malloc(size_t n);
void o2d_json_in_free(void *p);
void o2d_json_in_scratch_init(struct o2d_json_in_scratch *s);
void o2d_json_in_scratch_cleanup(struct o2d_json_in_scratch *s);
/* open: this thread's jansson values come from s until close, which releases them (s keeps
 * one block to reuse). */
void o2d_json_in_scratch_open(struct o2d_json_in_scratch *s);
void o2d_json_in_scratch_close(struct o2d_json_in_scratch *s);

#endif
