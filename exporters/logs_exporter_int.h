/*
 * logs_exporter_int.h: the pure half of the Datadog Logs exporter (logs_wire.c), declared for
 * logs_exporter.c and its unit tests only: one log object (JSON) an item; a body is a JSON
 * array of at most 1,000 of them and 5 MB before compression, gzip, with DD-API-KEY. Nothing
 * outside exporters/logs_*.c and tests/unit/test_logs_encode.c includes this.
 */
#ifndef O2D_LOGS_EXPORTER_INT_H
#define O2D_LOGS_EXPORTER_INT_H

#include <stddef.h>
#include <stdint.h>

#include "delivery.h"

/* The intake's limits (Datadog Logs API, "Send logs": 5 MB uncompressed payload, 1,000 log
 * entries per array, 1 MB per entry, which translate/logs enforces). */
#define LOGS_MAX_BODY_BYTES 5000000u
#define LOGS_MAX_ITEMS      1000u

/* The destination's context: what the headers say. */
struct logs_wire {
    char key_header[300]; /* "DD-API-KEY: <key>": never logged */
};

/* The destination: one log object an item, JSON array bodies, gzip. */
extern const struct dlv_dest_type logs_dest;

/* An item holding one log object; NULL when out of memory. */
struct dlv_item *logs_item(const uint8_t *json, size_t len);

#endif
