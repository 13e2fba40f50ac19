/*
 * pb_json.h: any protobuf-c message as JSON text, driven by its descriptor, for people to
 * read (`otel2dd translate`) and for golden tests. Field names are the .proto names (the
 * Datadog intake's own: traceID, parentID, tracerPayloads, ...); every field is printed,
 * defaults included, so that a reader sees parentID "0" rather than nothing; 64-bit
 * integers are decimal strings (JSON numbers lose precision past 2^53); map fields are
 * objects; bytes are base64; strings are escaped and repaired.
 */
#ifndef PB_JSON_H
#define PB_JSON_H

#include <protobuf-c/protobuf-c.h>

#include "o2d_buf.h"

int pb_json_print(struct o2d_buf *b, const ProtobufCMessage *m);

#endif
