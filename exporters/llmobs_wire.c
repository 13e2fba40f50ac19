/*
 * llmobs_wire.c: the pure half of the LLM Observability exporter (llmobs_exporter_int.h):
 * span events as items, wrapped in the envelopes Datadog's tracers send and cut into JSON
 * array bodies under the intake's limit by the delivery layer (delivery.h).
 */
#include <string.h>

#include "llmobs_exporter_int.h"
#include "o2d.h"
#include "o2d_json_out.h"

static const char envelope_head[] = "{\"_dd.stage\":\"raw\",\"_dd.tracer_version\":";
static const char envelope_mid[] = ",\"event_type\":\"span\",\"spans\":[";
static const char envelope_tail[] = "]}";

size_t llmobs_exporter_envelope_size(const char *tracer_version, size_t event_len)
{
    /* The version is a plain ASCII literal: quoted, it takes two more bytes. One byte for
     * the "," or "]" that follows the envelope in the body. */
    return sizeof(envelope_head) - 1 + strlen(tracer_version) + 2 + sizeof(envelope_mid) - 1 +
           event_len + sizeof(envelope_tail) - 1 + 1;
}

int llmobs_exporter_append_envelope(struct o2d_buf *out, const char *tracer_version,
                                    const uint8_t *ev, size_t len)
{
    size_t before = out->len;
    int rv = o2d_buf_append(out, envelope_head, sizeof(envelope_head) - 1);
    if (rv == O2D_OK) {
        rv = o2d_json_append_string(out, tracer_version, strlen(tracer_version));
    }
    if (rv == O2D_OK) {
        rv = o2d_buf_append(out, envelope_mid, sizeof(envelope_mid) - 1);
    }
    if (rv == O2D_OK) {
        rv = o2d_buf_append(out, ev, len);
    }
    if (rv == O2D_OK) {
        rv = o2d_buf_append(out, envelope_tail, sizeof(envelope_tail) - 1);
    }
    if (rv != O2D_OK) {
        out->len = before;
    }
    return rv;
}

static size_t event_cost(void *ctx, const struct dlv_item *it)
{
    const struct llmobs_wire *w = ctx;
    return llmobs_exporter_envelope_size(w->tracer_version, it->len);
}

static int events_encode(void *ctx, struct dlv_item *const *items, size_t n, struct o2d_buf *out)
{
    const struct llmobs_wire *w = ctx;
    size_t size = 1;
    for (size_t i = 0; i < n; i++) {
        size += llmobs_exporter_envelope_size(w->tracer_version, items[i]->len);
    }
    if (size > out->max) {
        return O2D_ERR_TOO_LARGE;
    }
    /* the whole body at once: grown from nothing, a 4 MB body was copied and faulted in a
     * dozen times */
    int rv = o2d_buf_reserve(out, size);
    if (rv != O2D_OK || n == 0) {
        return rv != O2D_OK ? rv : o2d_buf_append(out, "[]", 2);
    }
    /* Every envelope starts alike: its head is written once (with the "[" of the body),
     * then copied in front of each event along with the "," before it. */
    size_t start = out->len;
    rv = o2d_buf_append_byte(out, ',');
    if (rv == O2D_OK) {
        rv = llmobs_exporter_append_envelope(out, w->tracer_version, NULL, 0);
    }
    if (rv != O2D_OK) {
        out->len = start;
        return rv;
    }
    size_t head = out->len - start - (sizeof(envelope_tail) - 1);
    out->data[start] = '[';
    out->len = start + head;
    /* exactly what the loop writes (the reservation above assumed a plain version) */
    size_t rest = 1 + (n - 1) * head;
    for (size_t i = 0; i < n; i++) {
        rest += items[i]->len + sizeof(envelope_tail) - 1;
    }
    rv = o2d_buf_reserve(out, rest);
    if (rv != O2D_OK) {
        out->len = start;
        return rv;
    }
    for (size_t i = 0; i < n; i++) {
        const struct dlv_item *it = items[i];
        if (i > 0) {
            memcpy(out->data + out->len, out->data + start, head);
            out->data[out->len] = ',';
            out->len += head;
        }
        memcpy(out->data + out->len, it->data, it->len);
        out->len += it->len;
        memcpy(out->data + out->len, envelope_tail, sizeof(envelope_tail) - 1);
        out->len += sizeof(envelope_tail) - 1;
    }
    out->data[out->len++] = ']';
    return O2D_OK;
}

static void events_headers(void *ctx, struct dlv_item *const *items, size_t n,
                           struct dlv_headers *h)
{
    const struct llmobs_wire *w = ctx;
    (void)items;
    (void)n;
    dlv_headers_add(h, w->key_header, 0);
    dlv_headers_add(h, "Content-Type: application/json", 0);
}

const struct dlv_dest_type llmobs_dest = {
    .name = "llmobs",
    .request = "llmobs",
    .unit = "events",
    .body_overhead = 1, /* "[": each envelope's cost counts its "," or "]" */
    .item_cost = event_cost,
    .encode = events_encode,
    .headers = events_headers,
};
