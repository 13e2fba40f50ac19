/*
 * stats.h: APM stats ("trace metrics": hits, errors, duration, latency distributions), as
 * the Datadog trace agent's concentrator computes them (pkg/trace/stats; see
 * ../shared/reference/datadog-apm.md section 2). Datadog does not derive them from spans,
 * so whoever sends spans agentlessly must send these too.
 *
 * Pure and single-threaded: the caller locks and passes the clock in. Spans are added from
 * translated TracerPayloads (apm.h) before anything is dropped; every string kept is copied.
 * Memory is bounded by max_groups_per_bucket; groups refused by that cap are counted.
 */
#ifndef STATS_H
#define STATS_H

#include <stddef.h>
#include <stdint.h>

#include "apm.h"

struct stats_concentrator;

struct stats_config {
    int64_t bucket_ns;              /* 10 s */
    size_t max_groups_per_bucket;   /* cap on distinct aggregation keys per bucket */
    int compute_stats_by_span_kind; /* traces.compute_stats_by_span_kind (default on) */
    int peer_tags_aggregation;      /* traces.peer_tags_aggregation (default on) */
    const char *agent_env;          /* env when a payload has none: "none" */
    const char *agent_hostname;     /* StatsPayload.AgentHostname: names this instance */
    const char *agent_version;      /* StatsPayload.AgentVersion */
    /* Agent mode: a payload without env or hostname keeps them empty instead of taking
     * agent_env / agent_hostname, so that stats and traces get the same from the Agent that
     * takes both: its default env (pkg/trace/agent processStats fills an empty Env), and its
     * own host (the StatsPayload it wraps them in names it, as the traces' TracerPayload). */
    int agent_fills_defaults;
    /* The clock at creation: spans that ended before its bucket count in it, as the agent's
     * oldestTs; 0 = no such floor until the first flush. */
    int64_t now_ns;
};

int stats_concentrator_new(struct stats_concentrator **out, const struct stats_config *cfg);
void stats_concentrator_free(struct stats_concentrator *c);

/* Adds the eligible spans (top-level, measured, or by span kind) of one payload. */
int stats_add_payload(struct stats_concentrator *c, const DdTracerPayload *tp);

/*
 * Encodes the buckets that are closed at now_ns (all of them when `force`, at shutdown) as
 * msgpack StatsPayloads (at most 4000 groups each) and calls emit for each; the buckets are
 * then forgotten. emit borrows the bytes. Returns O2D_OK or the first error of emit.
 */
int stats_flush(struct stats_concentrator *c, int64_t now_ns, int force,
                int (*emit)(void *ctx, const uint8_t *msgpack, size_t len), void *ctx);

/* One ClientStatsPayload, as a tracer sends it to a local Agent's /v0.6/stats; `lang` is the
 * payload key's language (the Datadog-Meta-Lang header), "" if none. Both are borrowed. */
typedef int (*stats_client_emit_fn)(void *ctx, const uint8_t *msgpack, size_t len,
                                    const char *lang);

/*
 * stats_flush for agent mode: the same closed buckets, encoded as msgpack ClientStatsPayloads
 * (the tracers' shape, not the agent's StatsPayload wrapper), one per payload key and at most
 * 4000 groups, numbered by Sequence from 1.
 */
int stats_flush_client(struct stats_concentrator *c, int64_t now_ns, int force,
                       stats_client_emit_fn emit, void *ctx);

struct stats_counters {
    uint64_t spans_counted;  /* spans that fed a group */
    uint64_t groups_dropped; /* spans refused because a bucket was at max_groups_per_bucket */
    uint64_t payloads;       /* StatsPayloads emitted */
};
void stats_get_counters(const struct stats_concentrator *c, struct stats_counters *out);

#endif
