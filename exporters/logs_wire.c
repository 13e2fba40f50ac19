/*
 * logs_wire.c: the pure half of the Datadog Logs exporter (logs_exporter_int.h): log objects
 * as items, JSON array bodies under the intake's limits (5 MB before compression, 1,000
 * entries), zstd by default (logs.compression), DD-API-KEY; the delivery layer (delivery.h) packs,
 * compresses and halves.
 */
#include <string.h>

#include "logs_exporter_int.h"
#include "o2d.h"

struct dlv_item *logs_item(const uint8_t *json, size_t len)
{
    struct dlv_item *it = dlv_item_new(len, 0, 1);
    if (it != NULL) {
        memcpy(it->data, json, len);
    }
    return it;
}

/* An object and its "," or "]". */
static size_t entry_cost(void *ctx, const struct dlv_item *it)
{
    (void)ctx;
    return it->len + 1;
}

static int logs_encode(void *ctx, struct dlv_item *const *items, size_t n, struct o2d_buf *out)
{
    (void)ctx;
    size_t size = 1;
    for (size_t i = 0; i < n; i++) {
        size += items[i]->len + 1;
    }
    /* The intake's limit is on the body before compression, whatever out->max allows. */
    if (size > LOGS_MAX_BODY_BYTES || size > out->max - out->len || n > LOGS_MAX_ITEMS) {
        return O2D_ERR_TOO_LARGE;
    }
    int rv = o2d_buf_reserve(out, size);
    for (size_t i = 0; rv == O2D_OK && i < n; i++) {
        rv = o2d_buf_append_byte(out, i == 0 ? '[' : ',');
        if (rv == O2D_OK) {
            rv = o2d_buf_append(out, items[i]->data, items[i]->len);
        }
    }
    if (rv == O2D_OK) {
        rv = o2d_buf_append_str(out, n == 0 ? "[]" : "]");
    }
    return rv;
}

static void logs_headers(void *ctx, struct dlv_item *const *items, size_t n, struct dlv_headers *h)
{
    const struct logs_wire *w = ctx;
    (void)items;
    (void)n;
    dlv_headers_add(h, w->key_header, 0);
    dlv_headers_add(h, "Content-Type: application/json", 0);
}

const struct dlv_dest_type logs_dest = {
    .name = "datadog_logs",
    .request = "logs",
    .unit = "records",
    .body_overhead = 1, /* "[": each entry's cost counts its "," or "]" */
    .item_cost = entry_cost,
    .max_items = LOGS_MAX_ITEMS,
    .encode = logs_encode,
    .headers = logs_headers,
};
