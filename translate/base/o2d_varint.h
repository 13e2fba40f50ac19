/*
 * o2d_varint.h: protobuf base-128 varints, for the encoders that frame protobuf bytes by hand
 * (the Datadog exporters' items: a TracerPayload or a MetricSeries framed as a field of the
 * payload that carries it).
 */
#ifndef O2D_VARINT_H
#define O2D_VARINT_H

#include <stddef.h>
#include <stdint.h>

/* Bytes v takes as a varint: 1 to 10. */
static inline size_t o2d_varint_len(uint64_t v)
{
    if (v < 0x80) { /* most lengths and tags: no loop */
        return 1;
    }
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

/* Writes v at p (room for o2d_varint_len(v) bytes); returns the bytes written. */
static inline size_t o2d_put_varint(uint8_t *p, uint64_t v)
{
    if (v < 0x80) {
        p[0] = (uint8_t)v;
        return 1;
    }
    size_t n = 0;
    while (v >= 0x80) {
        p[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    p[n++] = (uint8_t)v;
    return n;
}

#endif
