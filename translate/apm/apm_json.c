/*
 * apm_json.c: span events and links as JSON the way the Go side of Datadog's OTLP ingest
 * writes them (transform.go MarshalEvents / MarshalLinks); attribute values through
 * translate/resource's Go-style JSON (res_json.c).
 *
 * Unlike Go, invalid UTF-8 never reaches the output: it becomes \ufffd (Go's encoder does the
 * same for strings; MarshalLinks writes raw strings, which we escape so the result is JSON).
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apm_int.h"
#include "o2d.h"
#include "o2d_json_out.h"

/* MarshalEvents (transform.go@021dec7): zero/empty fields are left out; attribute values are
 * JSON-typed. */
int apm_json_events(struct o2d_buf *b, struct o2d_arena *a, const OtlpSpan *span)
{
    int rv = o2d_buf_append_byte(b, '[');
    for (size_t i = 0; i < span->n_events && rv == O2D_OK; i++) {
        const Opentelemetry__Proto__Trace__V1__Span__Event *e = span->events[i];
        int wrote = 0;
        if (i > 0) {
            rv = o2d_buf_append_byte(b, ',');
        }
        rv = rv == O2D_OK ? o2d_buf_append_byte(b, '{') : rv;
        if (rv == O2D_OK && e->time_unix_nano != 0) {
            rv = o2d_buf_printf(b, "\"time_unix_nano\":%" PRIu64, e->time_unix_nano);
            wrote = 1;
        }
        if (rv == O2D_OK && e->name[0] != '\0') {
            rv = o2d_buf_append_str(b, wrote ? ",\"name\":" : "\"name\":");
            if (rv == O2D_OK) {
                rv = apm_json_string(b, e->name, strlen(e->name));
            }
            wrote = 1;
        }
        if (rv == O2D_OK && e->n_attributes > 0) {
            rv = o2d_buf_append_str(b, wrote ? ",\"attributes\":{" : "\"attributes\":{");
            for (size_t j = 0; j < e->n_attributes && rv == O2D_OK; j++) {
                const OtlpKeyValue *kv = e->attributes[j];
                if (j > 0) {
                    rv = o2d_buf_append_byte(b, ',');
                }
                rv = rv == O2D_OK ? apm_json_string(b, kv->key, strlen(kv->key)) : rv;
                rv = rv == O2D_OK ? o2d_buf_append_byte(b, ':') : rv;
                rv = rv == O2D_OK ? apm_json_value(b, a, kv->value, 0) : rv;
            }
            rv = rv == O2D_OK ? o2d_buf_append_byte(b, '}') : rv;
            wrote = 1;
        }
        if (rv == O2D_OK && e->dropped_attributes_count != 0) {
            rv = o2d_buf_printf(b, "%s\"dropped_attributes_count\":%" PRIu32, wrote ? "," : "",
                                e->dropped_attributes_count);
        }
        rv = rv == O2D_OK ? o2d_buf_append_byte(b, '}') : rv;
    }
    return rv == O2D_OK ? o2d_buf_append_byte(b, ']') : rv;
}

static int hex_id(struct o2d_buf *b, const ProtobufCBinaryData *id, size_t want)
{
    static const uint8_t zero[16];
    /* A missing or odd-sized id is written as zeros of the expected width, as pdata does. */
    if (id->len != want) {
        return o2d_hex_append(b, zero, want);
    }
    return o2d_hex_append(b, id->data, want);
}

/* MarshalLinks (transform.go@021dec7, key "tracestate"): attribute values are AsString(). */
int apm_json_links(struct o2d_buf *b, struct o2d_arena *a, const OtlpSpan *span)
{
    int rv = o2d_buf_append_byte(b, '[');
    for (size_t i = 0; i < span->n_links && rv == O2D_OK; i++) {
        const Opentelemetry__Proto__Trace__V1__Span__Link *l = span->links[i];
        if (i > 0) {
            rv = o2d_buf_append_byte(b, ',');
        }
        rv = rv == O2D_OK ? o2d_buf_append_str(b, "{\"trace_id\":\"") : rv;
        rv = rv == O2D_OK ? hex_id(b, &l->trace_id, 16) : rv;
        rv = rv == O2D_OK ? o2d_buf_append_str(b, "\",\"span_id\":\"") : rv;
        rv = rv == O2D_OK ? hex_id(b, &l->span_id, 8) : rv;
        rv = rv == O2D_OK ? o2d_buf_append_byte(b, '"') : rv;
        if (rv == O2D_OK && l->trace_state[0] != '\0') {
            rv = o2d_buf_append_str(b, ",\"tracestate\":");
            rv = rv == O2D_OK ? apm_json_string(b, l->trace_state, strlen(l->trace_state)) : rv;
        }
        if (rv == O2D_OK && l->n_attributes > 0) {
            rv = o2d_buf_append_str(b, ",\"attributes\":{");
            for (size_t j = 0; j < l->n_attributes && rv == O2D_OK; j++) {
                struct apm_str s;
                if (j > 0) {
                    rv = o2d_buf_append_byte(b, ',');
                }
                rv = rv == O2D_OK
                         ? apm_json_string(b, l->attributes[j]->key, strlen(l->attributes[j]->key))
                         : rv;
                rv = rv == O2D_OK ? o2d_buf_append_byte(b, ':') : rv;
                rv = rv == O2D_OK ? apm_value_as_string(a, l->attributes[j]->value, &s) : rv;
                rv = rv == O2D_OK ? apm_json_string(b, s.p, s.n) : rv;
            }
            rv = rv == O2D_OK ? o2d_buf_append_byte(b, '}') : rv;
        }
        if (rv == O2D_OK && l->dropped_attributes_count > 0) {
            rv = o2d_buf_printf(b, ",\"dropped_attributes_count\":%" PRIu32,
                                l->dropped_attributes_count);
        }
        rv = rv == O2D_OK ? o2d_buf_append_byte(b, '}') : rv;
    }
    return rv == O2D_OK ? o2d_buf_append_byte(b, ']') : rv;
}
