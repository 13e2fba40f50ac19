/*
 * otlp_print.h: OTLP values as JSON text, for people to read (the debug exporter, and
 * `otel2dd translate` later). Strings are escaped and repaired (o2d_json_out.h); ids are
 * lowercase hex; depth is bounded by the decoder's nesting limit.
 */
#ifndef OTLP_PRINT_H
#define OTLP_PRINT_H

#include "o2d_buf.h"
#include "otlp.h"

/* Appends an AnyValue: string, bool, number, {"bytes":"<hex>"}, array or object. */
int otlp_print_anyvalue(struct o2d_buf *b, const OtlpAnyValue *v);
/* Appends attributes as one JSON object {"key": value, ...}. */
int otlp_print_attributes(struct o2d_buf *b, OtlpKeyValue *const *kv, size_t n);
/* The string value of a resource attribute, or NULL (points into the request). */
const char *otlp_resource_string(const OtlpResource *r, const char *key);
/* "unspecified", "internal", "server", "client", "producer", "consumer". */
const char *otlp_span_kind_name(int kind);

#endif
