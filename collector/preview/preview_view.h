/*
 * preview_view.h: one trace as the pages show it (preview_api.c): its pieces decoded, each
 * span with the APM span it became and its LLM Obs kind, parent and root; and the
 * per-attribute table (preview_attrs.c) filled by the APM translator's recorder.
 */
#ifndef O2D_PREVIEW_VIEW_H
#define O2D_PREVIEW_VIEW_H

#include "apm.h"
#include "llmobs.h"
#include "o2d_arena.h"
#include "preview_int.h"

/* The LLM Obs event limit the tracers and our exporter apply (llmobs_exporter_int.h,
 * LLMOBS_MAX_EVENT_BYTES): 5,000,000 bytes. */
#define PV_LLMOBS_MAX_EVENT 5000000u

struct pv_vspan {
    const OtlpSpan *span; /* in the view's arena */
    const OtlpResourceSpans *rs;
    const OtlpScopeSpans *ss;
    const DdSpan *dd;               /* NULL: dropped (ignore_resources) */
    const DdTracerPayload *payload; /* dd's payload */
    size_t piece;
    uint64_t origin;
    uint64_t id, parent;
    enum llmobs_kind kind;
    uint64_t llm_parent, llm_root;
    struct llmobs_span *llm; /* built on demand (owned) */
    int depth;
    int orphan; /* its parent is not held */
};

struct pv_view {
    uint8_t trace_id[16];
    struct o2d_arena arena;
    struct pv_copy copy;
    struct pv_vspan *spans;
    size_t n;
    uint32_t *slots; /* span id -> index + 1 (0: empty), cap entries */
    size_t cap;
    const OtlpLogsReq **logs;
    size_t n_logs;
};

/* rec: the recorder the APM translation tells (NULL: none). Call pv_view_free even on error. */
int pv_view_load(struct preview *pv, const uint8_t trace_id[16], struct pv_view *v,
                 const struct apm_recorder *rec);
void pv_view_free(struct pv_view *v);
struct pv_vspan *pv_view_find(struct pv_view *v, uint64_t id);
/* Appends s's LLM Obs event JSON; O2D_ERR_NOT_FOUND when s is no LLM Obs span. */
int pv_view_llm_event(struct preview *pv, struct pv_view *v, struct pv_vspan *s,
                      struct o2d_buf *out);

/* ---- the per-attribute table ---- */

struct pv_attr_note {
    enum apm_rec_source src;
    char attr[128];
    enum apm_rec_what what;
    char target[128];
    const char *detail; /* static */
};

#define PV_ATTR_NOTES_MAX 1024

struct pv_attr_table {
    uint64_t span_id;
    struct apm_recorder rec;
    struct pv_attr_note *notes; /* owned */
    size_t n;
    size_t dropped; /* past PV_ATTR_NOTES_MAX */
};
void pv_attr_table_init(struct pv_attr_table *t);
void pv_attr_table_cleanup(struct pv_attr_table *t);
/* The recorder that fills t with what happens to span `span_id`. */
const struct apm_recorder *pv_attr_recorder(struct pv_attr_table *t, uint64_t span_id);
/* A JSON array: one row per attribute of the span, its resource and scope (and one per
 * default that filled a field), saying what each became; the final APM span is read to tell
 * values truncated, normalized, obfuscated or removed, and the LLM Obs fields gen_ai
 * attributes feed. */
int pv_attr_table_json(const struct pv_attr_table *t, const struct pv_vspan *s,
                       const struct o2d_config *cfg, struct o2d_buf *b);

#endif
