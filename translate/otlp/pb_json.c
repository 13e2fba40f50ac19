/*
 * pb_json.c: descriptor-driven protobuf-c -> JSON. Recursion follows the message's own
 * nesting, which for the messages we print (Datadog payloads we built) is shallow.
 */
#include <inttypes.h>
#include <math.h>
#include <string.h>

#include <openssl/evp.h>

#include "o2d.h"
#include "o2d_json_out.h"
#include "pb_json.h"

static int print_message(struct o2d_buf *b, const ProtobufCMessage *m);

static int is_map_entry(const ProtobufCMessageDescriptor *d)
{
    size_t n = strlen(d->name);
    return d->n_fields == 2 && n > 5 && strcmp(d->name + n - 5, "Entry") == 0 &&
           d->fields[0].id == 1 && d->fields[1].id == 2 && strcmp(d->fields[0].name, "key") == 0 &&
           strcmp(d->fields[1].name, "value") == 0;
}

static int print_base64(struct o2d_buf *b, const ProtobufCBinaryData *bd)
{
    size_t n = 4 * ((bd->len + 2) / 3);
    int rv = o2d_buf_reserve(b, n + 3);
    if (rv != O2D_OK) {
        return rv;
    }
    b->data[b->len++] = '"';
    if (bd->len > 0) {
        b->len += (size_t)EVP_EncodeBlock(b->data + b->len, bd->data, (int)bd->len);
    }
    b->data[b->len++] = '"';
    return O2D_OK;
}

static int print_double(struct o2d_buf *b, double v)
{
    if (isnan(v)) {
        return o2d_buf_append_str(b, "\"NaN\"");
    }
    if (isinf(v)) {
        return o2d_buf_append_str(b, v > 0 ? "\"Infinity\"" : "\"-Infinity\"");
    }
    return o2d_buf_printf(b, "%.17g", v);
}

/* One value of field f stored at p. */
static int print_value(struct o2d_buf *b, const ProtobufCFieldDescriptor *f, const void *p)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_ENUM:
        return o2d_buf_printf(b, "%" PRId32, *(const int32_t *)p);
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        return o2d_buf_printf(b, "%" PRIu32, *(const uint32_t *)p);
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
        return o2d_buf_printf(b, "\"%" PRId64 "\"", *(const int64_t *)p);
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        return o2d_buf_printf(b, "\"%" PRIu64 "\"", *(const uint64_t *)p);
    case PROTOBUF_C_TYPE_FLOAT:
        return print_double(b, *(const float *)p);
    case PROTOBUF_C_TYPE_DOUBLE:
        return print_double(b, *(const double *)p);
    case PROTOBUF_C_TYPE_BOOL:
        return o2d_buf_append_str(b, *(const protobuf_c_boolean *)p ? "true" : "false");
    case PROTOBUF_C_TYPE_STRING: {
        const char *s = *(char *const *)p;
        return o2d_json_append_string(b, s ? s : "", s ? strlen(s) : 0);
    }
    case PROTOBUF_C_TYPE_BYTES:
        return print_base64(b, (const ProtobufCBinaryData *)p);
    case PROTOBUF_C_TYPE_MESSAGE: {
        const ProtobufCMessage *sub = *(ProtobufCMessage *const *)p;
        return sub ? print_message(b, sub) : o2d_buf_append_str(b, "null");
    }
    }
    return O2D_ERR_INTERNAL;
}

static size_t value_size(const ProtobufCFieldDescriptor *f)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        return 8;
    case PROTOBUF_C_TYPE_DOUBLE:
        return sizeof(double);
    case PROTOBUF_C_TYPE_BOOL:
        return sizeof(protobuf_c_boolean);
    case PROTOBUF_C_TYPE_STRING:
    case PROTOBUF_C_TYPE_MESSAGE:
        return sizeof(void *);
    case PROTOBUF_C_TYPE_BYTES:
        return sizeof(ProtobufCBinaryData);
    default:
        return 4;
    }
}

/* A map entry's key as a JSON object key: strings as they are, numbers in quotes. */
static int print_map_key(struct o2d_buf *b, const ProtobufCMessage *entry)
{
    const ProtobufCFieldDescriptor *kf = &entry->descriptor->fields[0];
    const void *p = (const char *)entry + kf->offset;
    if (kf->type == PROTOBUF_C_TYPE_STRING) {
        return print_value(b, kf, p);
    }
    int rv = o2d_buf_append_byte(b, '"');
    if (rv == O2D_OK) {
        rv = print_value(b, kf, p);
    }
    return rv == O2D_OK ? o2d_buf_append_byte(b, '"') : rv;
}

static int print_field(struct o2d_buf *b, const ProtobufCMessage *m,
                       const ProtobufCFieldDescriptor *f)
{
    const char *base = (const char *)m;
    if (f->label != PROTOBUF_C_LABEL_REPEATED) {
        return print_value(b, f, base + f->offset);
    }
    size_t n = *(const size_t *)(base + f->quantifier_offset);
    const char *arr = *(char *const *)(base + f->offset);
    int map = f->type == PROTOBUF_C_TYPE_MESSAGE &&
              is_map_entry((const ProtobufCMessageDescriptor *)f->descriptor);
    int rv = o2d_buf_append_byte(b, map ? '{' : '[');
    for (size_t i = 0; i < n && rv == O2D_OK; i++) {
        if (i > 0) {
            rv = o2d_buf_append_byte(b, ',');
        }
        if (rv != O2D_OK) {
            break;
        }
        const void *p = arr + i * value_size(f);
        if (map) {
            const ProtobufCMessage *entry = *(ProtobufCMessage *const *)p;
            const ProtobufCFieldDescriptor *vf = &entry->descriptor->fields[1];
            rv = print_map_key(b, entry);
            if (rv == O2D_OK) {
                rv = o2d_buf_append_byte(b, ':');
            }
            if (rv == O2D_OK) {
                rv = print_value(b, vf, (const char *)entry + vf->offset);
            }
        } else {
            rv = print_value(b, f, p);
        }
    }
    return rv == O2D_OK ? o2d_buf_append_byte(b, map ? '}' : ']') : rv;
}

static int print_message(struct o2d_buf *b, const ProtobufCMessage *m)
{
    const ProtobufCMessageDescriptor *d = m->descriptor;
    int rv = o2d_buf_append_byte(b, '{');
    int first = 1;
    for (unsigned i = 0; i < d->n_fields && rv == O2D_OK; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
            uint32_t which = *(const uint32_t *)((const char *)m + f->quantifier_offset);
            if (which != f->id) {
                continue;
            }
        }
        if (!first) {
            rv = o2d_buf_append_byte(b, ',');
        }
        first = 0;
        if (rv == O2D_OK) {
            rv = o2d_json_append_string(b, f->name, strlen(f->name));
        }
        if (rv == O2D_OK) {
            rv = o2d_buf_append_byte(b, ':');
        }
        if (rv == O2D_OK) {
            rv = print_field(b, m, f);
        }
    }
    return rv == O2D_OK ? o2d_buf_append_byte(b, '}') : rv;
}

int pb_json_print(struct o2d_buf *b, const ProtobufCMessage *m)
{
    return print_message(b, m);
}
