/*
 * otlp_pbcheck.c: a bounded walk over protobuf wire data, driven by protobuf-c descriptors
 * (wire format: https://protobuf.dev/programming-guides/encoding/). It allocates nothing and
 * recurses at most max_depth levels, so a hostile message nested a million levels deep is
 * refused here instead of overflowing protobuf-c's recursive unpack. It also turns
 * protobuf-c's silent NULL into a reason a sender can act on.
 *
 * A string field holding a NUL byte is refused: protobuf-c hands strings on as NUL-terminated
 * C strings, so everything after decoding would silently cut it at the NUL. otlp_json.c
 * refuses "\u0000" in a string field with the same reason, so both encodings agree.
 */
#include <string.h>

#include "o2d.h"
#include "otlp.h"

static int read_varint(const uint8_t *p, size_t len, size_t *i, uint64_t *v)
{
    uint64_t r = 0;
    for (unsigned shift = 0; shift < 70; shift += 7) {
        if (*i >= len) {
            return -1;
        }
        uint8_t b = p[(*i)++];
        if (shift == 63 && b > 1) {
            return -2;
        }
        r |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *v = r;
            return 0;
        }
    }
    return -2;
}

enum wire {
    WIRE_VARINT = 0,
    WIRE_64BIT = 1,
    WIRE_LEN = 2,
    WIRE_32BIT = 5,
};

static int expected_wire(ProtobufCType t)
{
    switch (t) {
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_FIXED64:
    case PROTOBUF_C_TYPE_DOUBLE:
        return WIRE_64BIT;
    case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_FIXED32:
    case PROTOBUF_C_TYPE_FLOAT:
        return WIRE_32BIT;
    case PROTOBUF_C_TYPE_STRING:
    case PROTOBUF_C_TYPE_BYTES:
    case PROTOBUF_C_TYPE_MESSAGE:
        return WIRE_LEN;
    default:
        return WIRE_VARINT;
    }
}

/* A packed run of scalars must hold whole elements. */
static int check_packed(int wire, const uint8_t *p, size_t len, const char **reason)
{
    if (wire == WIRE_64BIT || wire == WIRE_32BIT) {
        if (len % (wire == WIRE_64BIT ? 8 : 4) != 0) {
            *reason = "packed repeated field has a partial element";
            return O2D_ERR_INVALID;
        }
        return O2D_OK;
    }
    size_t i = 0;
    uint64_t v;
    while (i < len) {
        if (read_varint(p, len, &i, &v) != 0) {
            *reason = "packed repeated field has a bad varint";
            return O2D_ERR_INVALID;
        }
    }
    return O2D_OK;
}

static int scan(const ProtobufCMessageDescriptor *d, const uint8_t *p, size_t len, unsigned depth,
                unsigned max_depth, const char **reason)
{
    size_t i = 0;
    while (i < len) {
        uint64_t key, v;
        int r = read_varint(p, len, &i, &key);
        if (r != 0) {
            *reason =
                r == -1 ? "truncated message: field tag runs past the end" : "malformed field tag";
            return O2D_ERR_INVALID;
        }
        uint64_t num = key >> 3;
        int wire = (int)(key & 7);
        if (num == 0 || num > 536870911u) {
            *reason = "invalid field number";
            return O2D_ERR_INVALID;
        }
        const ProtobufCFieldDescriptor *f =
            d ? protobuf_c_message_descriptor_get_field(d, (unsigned)num) : NULL;
        const uint8_t *sub = NULL;
        size_t sublen = 0;
        switch (wire) {
        case WIRE_VARINT:
            r = read_varint(p, len, &i, &v);
            if (r != 0) {
                *reason =
                    r == -1 ? "truncated message: varint runs past the end" : "malformed varint";
                return O2D_ERR_INVALID;
            }
            break;
        case WIRE_64BIT:
        case WIRE_32BIT: {
            size_t n = wire == WIRE_64BIT ? 8 : 4;
            if (len - i < n) {
                *reason = "truncated message: fixed-size field runs past the end";
                return O2D_ERR_INVALID;
            }
            i += n;
            break;
        }
        case WIRE_LEN:
            if (read_varint(p, len, &i, &v) != 0) {
                *reason = "truncated message: length runs past the end";
                return O2D_ERR_INVALID;
            }
            if (v > len - i) {
                *reason = "length-delimited field runs past the end of its message";
                return O2D_ERR_INVALID;
            }
            sub = p + i;
            sublen = (size_t)v;
            i += (size_t)v;
            break;
        case 3:
        case 4:
            *reason = "protobuf groups are not supported";
            return O2D_ERR_INVALID;
        default:
            *reason = "invalid wire type";
            return O2D_ERR_INVALID;
        }
        if (f == NULL) {
            continue; /* unknown fields are skipped, as protobuf-c does */
        }
        int want = expected_wire(f->type);
        if (wire != want) {
            if (wire == WIRE_LEN && f->label == PROTOBUF_C_LABEL_REPEATED && want != WIRE_LEN) {
                r = check_packed(want, sub, sublen, reason);
                if (r != O2D_OK) {
                    return r;
                }
                continue;
            }
            *reason = "wrong wire type for a known field";
            return O2D_ERR_INVALID;
        }
        if (f->type == PROTOBUF_C_TYPE_STRING && memchr(sub, '\0', sublen) != NULL) {
            *reason = "a string holds a NUL character";
            return O2D_ERR_INVALID;
        }
        if (f->type == PROTOBUF_C_TYPE_MESSAGE) {
            if (depth + 1 > max_depth) {
                *reason = "messages nested too deeply";
                return O2D_ERR_INVALID;
            }
            r = scan(f->descriptor, sub, sublen, depth + 1, max_depth, reason);
            if (r != O2D_OK) {
                return r;
            }
        }
    }
    return O2D_OK;
}

int otlp_pb_check(const ProtobufCMessageDescriptor *desc, const uint8_t *buf, size_t len,
                  unsigned max_depth, const char **reason)
{
    *reason = NULL;
    return scan(desc, buf, len, 0, max_depth, reason);
}
