/*
 * apm_pb.h: a TracerPayload (proto/datadog/trace/tracer_payload.proto) written as protobuf
 * bytes in one pass, without protobuf-c's size walk and descriptor-driven pack.
 *
 * The bytes are the ones protobuf-c 1.4's datadog__trace__tracer_payload__pack writes for the
 * same struct: fields in field-number order, proto3 zero values (0, "", NULL, a 0.0 or -0.0
 * double, an empty bytes value) left out, map entries as their entry messages in array order,
 * minimal varints, negative int32 values as ten-byte varints. Unknown fields (only a decoded
 * message can carry them, never a translated one) are not written.
 */
#ifndef APM_PB_H
#define APM_PB_H

#include "apm.h"
#include "o2d_buf.h"

/* Appends tp's bytes to out. O2D_OK, O2D_ERR_TOO_LARGE past out's maximum, O2D_ERR_NOMEM. On an
 * error out->len is what it was. */
int apm_pb_tracer_payload(struct o2d_buf *out, const DdTracerPayload *tp);
/* The same bytes, for a payload of an apm_result (apm_translate's, changed since or not by
 * apm_sample; no span of another origin in it): the string lengths translation noted are used
 * instead of measuring each string again. */
int apm_pb_tracer_payload_translated(struct o2d_buf *out, const DdTracerPayload *tp);

#endif
