/*
 * apm_msgpack.h: translated APM spans (apm.h) in the form Datadog's tracers send to a local
 * Datadog Agent: the v0.4 trace endpoint's msgpack, a body being an array of traces, a trace
 * an array of span maps (DataDog/datadog-agent pkg/trace/api decodeRequest with
 * pb.Traces.UnmarshalMsg; the keys of pkg/proto/datadog/trace/span.proto's msgp names).
 *
 * Pure: no I/O. What the v0.4 format has no field for travels the way tracers carry it:
 * the chunk's priority in the first span's metrics `_sampling_priority_v1` (the agent's
 * setChunkAttributes reads it from the root, then from any span), the chunk's `_dd.p.*`
 * tags, its origin (`_dd.origin`) and the payload's hostname (`_dd.hostname`) in meta. Env and
 * version are already in every span's meta (apm.c). The payload's language, tracer version and
 * container id are request headers: the exporter's business.
 */
#ifndef APM_MSGPACK_H
#define APM_MSGPACK_H

#include <stddef.h>
#include <stdint.h>

#include "apm.h"
#include "o2d_buf.h"

/* The longest array header apm_msgpack_array_header writes (array 32). */
#define APM_MSGPACK_ARRAY_HEADER_MAX 5

/*
 * Appends chunk `ch` of `tp` to out as one v0.4 trace: a msgpack array of span maps.
 * O2D_ERR_TOO_LARGE past out->max (out is then left as it was), O2D_ERR_NOMEM.
 */
int apm_msgpack_trace(struct o2d_buf *out, const DdTracerPayload *tp, const DdTraceChunk *ch);
/* The same bytes, for a payload of an apm_result (apm_translate's, changed since or not by
 * apm_sample; no span of another origin in it): the string lengths translation noted are used
 * instead of measuring each string again. */
int apm_msgpack_trace_translated(struct o2d_buf *out, const DdTracerPayload *tp,
                                 const DdTraceChunk *ch);

/* Writes the header of a msgpack array of n elements into hdr; returns its length. A v0.4
 * body is this header for its trace count followed by the encoded traces, concatenated. */
size_t apm_msgpack_array_header(uint8_t hdr[APM_MSGPACK_ARRAY_HEADER_MAX], uint32_t n);

#endif
