/*
 * fuzz_otlp_pbtrace.c: differential target for the one-pass trace decoder (otlp_pbtrace.c).
 * The same bytes go through the path it replaces (otlp_pb_check, then
 * protobuf_c_message_unpack, with otlp_decode's reasons) and through otlp_pb_decode_traces;
 * both must accept or refuse alike, with the same status and reason, and when they accept,
 * every field of every message must be equal (unknown fields included). The arenas are large
 * enough that the memory limit never decides (where the two allocate differently). Also
 * checks that the decoder's "all strings are UTF-8" holds for every string it kept, and that
 * its memory limit is exact: what it accepted it accepts again with the limit at the bytes
 * it used, and refuses as too large with one byte less.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "o2d.h"
#include "o2d_arena.h"
#include "o2d_json_out.h"
#include "otlp.h"

#define MUST(c)                                                                                    \
    do {                                                                                           \
        if (!(c)) {                                                                                \
            fprintf(stderr, "differential mismatch: %s (line %d)\n", #c, __LINE__);                \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static int all_utf8;

static void same_str(const ProtobufCFieldDescriptor *fd, const char *x, const char *y)
{
    MUST((x == NULL) == (y == NULL));
    if (x == NULL) {
        return;
    }
    MUST(strcmp(x, y) == 0);
    /* an unset string is the shared empty default in both */
    MUST((x == (const char *)fd->default_value) == (y == (const char *)fd->default_value));
    size_t n = strlen(x);
    if (o2d_utf8_valid_prefix(x, n) != n) {
        all_utf8 = 0;
    }
}

static void same_bytes(const ProtobufCBinaryData *x, const ProtobufCBinaryData *y)
{
    MUST(x->len == y->len);
    MUST((x->data == NULL) == (y->data == NULL));
    MUST(x->len == 0 || memcmp(x->data, y->data, x->len) == 0);
}

static void same_msg(const ProtobufCMessage *x, const ProtobufCMessage *y);

/* One value of field fd at x and y (a scalar slot or an element of a repeated array). */
static void same_value(const ProtobufCFieldDescriptor *fd, const void *x, const void *y)
{
    switch (fd->type) {
    case PROTOBUF_C_TYPE_STRING:
        same_str(fd, *(char *const *)x, *(char *const *)y);
        break;
    case PROTOBUF_C_TYPE_BYTES:
        same_bytes(x, y);
        break;
    case PROTOBUF_C_TYPE_MESSAGE: {
        const ProtobufCMessage *mx = *(ProtobufCMessage *const *)x;
        const ProtobufCMessage *my = *(ProtobufCMessage *const *)y;
        MUST((mx == NULL) == (my == NULL));
        if (mx != NULL) {
            same_msg(mx, my);
        }
        break;
    }
    case PROTOBUF_C_TYPE_BOOL:
        MUST(*(const protobuf_c_boolean *)x == *(const protobuf_c_boolean *)y);
        break;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_FIXED64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_DOUBLE:
        MUST(memcmp(x, y, 8) == 0);
        break;
    default:
        MUST(memcmp(x, y, 4) == 0);
        break;
    }
}

static size_t elt_size(ProtobufCType t)
{
    switch (t) {
    case PROTOBUF_C_TYPE_BYTES:
        return sizeof(ProtobufCBinaryData);
    case PROTOBUF_C_TYPE_STRING:
    case PROTOBUF_C_TYPE_MESSAGE:
        return sizeof(void *);
    case PROTOBUF_C_TYPE_BOOL:
        return sizeof(protobuf_c_boolean);
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_FIXED64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_DOUBLE:
        return 8;
    default:
        return 4;
    }
}

static void same_msg(const ProtobufCMessage *x, const ProtobufCMessage *y)
{
    const ProtobufCMessageDescriptor *d = x->descriptor;
    MUST(y->descriptor == d);
    const char *bx = (const char *)x, *by = (const char *)y;
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *fd = &d->fields[i];
        if (fd->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t nx = *(const size_t *)(bx + fd->quantifier_offset);
            size_t ny = *(const size_t *)(by + fd->quantifier_offset);
            MUST(nx == ny);
            const char *ax = *(char *const *)(bx + fd->offset);
            const char *ay = *(char *const *)(by + fd->offset);
            for (size_t k = 0; k < nx; k++) {
                same_value(fd, ax + k * elt_size(fd->type), ay + k * elt_size(fd->type));
            }
        } else if (fd->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
            uint32_t cx = *(const uint32_t *)(bx + fd->quantifier_offset);
            uint32_t cy = *(const uint32_t *)(by + fd->quantifier_offset);
            MUST(cx == cy);
            if (cx == fd->id) {
                same_value(fd, bx + fd->offset, by + fd->offset);
            }
        } else {
            same_value(fd, bx + fd->offset, by + fd->offset);
        }
    }
    MUST(x->n_unknown_fields == y->n_unknown_fields);
    for (unsigned k = 0; k < x->n_unknown_fields; k++) {
        const ProtobufCMessageUnknownField *ux = &x->unknown_fields[k];
        const ProtobufCMessageUnknownField *uy = &y->unknown_fields[k];
        MUST(ux->tag == uy->tag && ux->wire_type == uy->wire_type && ux->len == uy->len);
        MUST(memcmp(ux->data, uy->data, ux->len) == 0);
    }
}

/* The path otlp_pbtrace.c replaced, with otlp_decode's answers. */
static int reference(struct o2d_arena *a, const uint8_t *p, size_t n, OtlpTraceReq **out,
                     const char **reason)
{
    const ProtobufCMessageDescriptor *desc =
        &opentelemetry__proto__collector__trace__v1__export_trace_service_request__descriptor;
    int rv = otlp_pb_check(desc, p, n, OTLP_MAX_MESSAGE_DEPTH, reason);
    if (rv != O2D_OK) {
        return rv;
    }
    *out = (OtlpTraceReq *)protobuf_c_message_unpack(desc, &a->pb, n, p);
    if (*out == NULL) {
        *reason = a->failed ? "decoded request exceeds the memory limit"
                            : "protobuf message could not be decoded";
        return a->failed ? O2D_ERR_TOO_LARGE : O2D_ERR_INVALID;
    }
    return O2D_OK;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct o2d_arena ra, oa;
    o2d_arena_init(&ra, 512 * size + 1024 * 1024);
    o2d_arena_init(&oa, 512 * size + 1024 * 1024);
    OtlpTraceReq *rm = NULL, *om = NULL;
    const char *rr = NULL, *orr = NULL;
    int utf8 = -1;
    int rv = reference(&ra, data, size, &rm, &rr);
    int ov = otlp_pb_decode_traces(&oa, data, size, &om, &utf8, &orr);
    MUST(rv != O2D_ERR_TOO_LARGE);
    MUST(rv == ov);
    if (rv != O2D_OK) {
        MUST(rr != NULL && orr != NULL && strcmp(rr, orr) == 0);
    } else {
        all_utf8 = 1;
        same_msg(&rm->base, &om->base);
        /* 1 only when it holds; a string overwritten later may have made it 0 */
        MUST(utf8 == 0 || all_utf8 == 1);
        size_t used = oa.used;
        o2d_arena_reset(&oa);
        o2d_arena_set_limit(&oa, used);
        MUST(otlp_pb_decode_traces(&oa, data, size, &om, &utf8, &orr) == O2D_OK);
        MUST(oa.used == used);
        if (used > 0) {
            o2d_arena_reset(&oa);
            o2d_arena_set_limit(&oa, used - 1);
            MUST(otlp_pb_decode_traces(&oa, data, size, &om, &utf8, &orr) == O2D_ERR_TOO_LARGE);
        }
    }
    o2d_arena_cleanup(&ra);
    o2d_arena_cleanup(&oa);
    return 0;
}
