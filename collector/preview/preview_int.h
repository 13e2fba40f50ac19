/*
 * preview_int.h: what the preview's files share (preview_store.c, preview_api.c,
 * preview_lints.c, preview_server.c). Nothing outside collector/preview includes it.
 */
#ifndef O2D_PREVIEW_INT_H
#define O2D_PREVIEW_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "o2d_buf.h"
#include "preview.h"

#define PV_HASH_BUCKETS 4096
#define PV_STATE_SLOTS  4096 /* export states remembered, by request id */
#define PV_SUMMARY_STR  96   /* service, env, root name in the list: cut here */
#define PV_LLM_SLOTS    8192 /* LLM Obs events remembered, by item id: the oldest are forgotten */

/* What one ingest request of a trace brought: its spans of that trace, as a packed
 * ExportTraceServiceRequest (logs: an ExportLogsServiceRequest of its log records). */
struct pv_piece {
    struct pv_piece *next;
    uint64_t origin; /* the ingest request's id: its export state */
    int64_t received_ms;
    int is_logs;
    uint32_t spans;
    size_t len;
    uint8_t data[];
};

struct pv_trace {
    uint8_t trace_id[16];
    struct pv_trace *hnext;         /* hash chain */
    struct pv_trace *older, *newer; /* by last update: the oldest is evicted first */
    struct pv_piece *pieces;        /* in arrival order */
    struct pv_piece **tailp;
    size_t bytes; /* pieces and this struct */
    uint64_t seq; /* last update, for "live" lists */
    int64_t first_ms, last_ms;
    uint64_t start_ns, end_ns; /* earliest start, latest end of its spans */
    uint32_t spans;
    uint64_t last_origin; /* the last request that brought spans: the list's state column */
    int error;            /* a span with status Error */
    int llm;              /* a span LLM Obs takes */
    int has_root;         /* a span without a parent */
    char service[PV_SUMMARY_STR];
    char env[PV_SUMMARY_STR];
    char root[PV_SUMMARY_STR]; /* the root span's name, else the first span's */
};

/* A request's export state per destination, written by observers (atomics only). */
struct pv_state {
    _Atomic uint64_t origin;
    _Atomic uint32_t queued, sent, dropped;
    _Atomic int32_t attempts; /* the most any of its items took */
    _Atomic int32_t reason;   /* the last drop reason */
};

enum pv_dest { PV_DEST_TRACES = 0, PV_DEST_LLMOBS = 1, PV_DEST_N };

/* One LLM Obs event's export state, by item id (the trace buffer queues events, not requests):
 * slot = item id modulo PV_LLM_SLOTS, so a later item takes the slot of an older one. Written
 * with atomics on the llmobs sender's and HTTP threads; item_id is 0 while the slot is being
 * written, and a reader checks it again after reading the rest. */
struct pv_llm_state {
    _Atomic uint64_t item_id;
    _Atomic uint64_t tid_hi, tid_lo; /* the span's OTel trace id, big-endian halves */
    _Atomic uint64_t span_id;
    _Atomic int32_t state;    /* enum dlv_state */
    _Atomic int32_t attempts; /* sending attempts, once settled */
    _Atomic int32_t reason;   /* DLV_DROPPED: enum dlv_drop_reason */
};

struct preview {
    const struct o2d_config *cfg;
    pthread_mutex_t mu;  /* the store below */
    _Atomic int readers; /* pages waiting for or holding mu: captures do not wait then */
    struct pv_trace *buckets[PV_HASH_BUCKETS];
    struct pv_trace *oldest, *newest;
    size_t bytes, max_bytes;
    uint64_t n_traces, seq;
    _Atomic uint64_t spans_captured, skipped_busy, skipped_large, evicted, logs_joined;
    struct pv_state states[PV_DEST_N][PV_STATE_SLOTS];
    struct pv_llm_state llm[PV_LLM_SLOTS];
    _Atomic uint64_t llm_forgotten; /* LLM Obs event states overwritten by newer ones */
    /* the status page */
    preview_status_fn status_fn;
    void *status_ctx;
    /* the server */
    struct MHD_Daemon *daemon;
    uint16_t port;
    int64_t started_ms;
};

/* A copy of a trace's pieces, taken under the lock (owned; pv_copy_free). */
struct pv_copy {
    struct pv_trace summary; /* pieces NULL */
    struct pv_piece **pieces;
    size_t n;
};
/* O2D_OK, O2D_ERR_NOT_FOUND, O2D_ERR_NOMEM. */
int pv_copy_trace(struct preview *pv, const uint8_t trace_id[16], struct pv_copy *out);
void pv_copy_free(struct pv_copy *c);
/* Summaries of every held trace, newest first (owned array; n set). */
int pv_list(struct preview *pv, struct pv_trace **out, size_t *n);

/* Export state of request `origin` at destination d, as JSON appended to b. */
int pv_state_json(struct preview *pv, enum pv_dest d, uint64_t origin, struct o2d_buf *b);
/* One word for a list: "dry run", "queued", "sent", "retried", "dropped", "unknown". */
const char *pv_state_word(struct preview *pv, enum pv_dest d, uint64_t origin);
/* The LLM Obs event of span (trace_id, span_id): its export state as JSON appended to b, and
 * its word (NULL word: not wanted). */
int pv_llm_state_json(struct preview *pv, const uint8_t trace_id[16], uint64_t span_id,
                      struct o2d_buf *b);
const char *pv_llm_state_word(struct preview *pv, const uint8_t trace_id[16], uint64_t span_id);
/* The LLM Obs events of a trace, in one word: "dropped" if one was, else "queued" if one
 * waits, else "sent" / "sent after retries"; "not queued yet" when none is known. */
const char *pv_llm_trace_word(struct preview *pv, const uint8_t trace_id[16]);

/* Frees the store (preview_free stops the server first). */
void preview_store_free(struct preview *pv);

/* 32 lowercase hex digits -> 16 bytes (and 16 -> 8); 0 when not that. */
int pv_parse_hex(const char *s, size_t n, uint8_t *out);

/* preview_lints.c: the lints page's JSON, over everything held. */
int pv_lints_json(struct preview *pv, struct o2d_buf *b);

#endif
