/*
 * o2d_msgpack.h: a msgpack-c packer that writes into an o2d_buf (bounded, growable), keeping
 * the first append error so that a caller checks once at the end. Used by every msgpack
 * writer (APM stats, agent-mode traces).
 */
#ifndef O2D_MSGPACK_H
#define O2D_MSGPACK_H

#include <msgpack.h>

#include "o2d_buf.h"

struct o2d_msgpack_out {
    struct o2d_buf *b;
    int rv; /* O2D_OK, or the first o2d_buf_append error */
};

/* Points `pk` at `b` through `o`, which must outlive the packer's use. */
void o2d_msgpack_init(msgpack_packer *pk, struct o2d_msgpack_out *o, struct o2d_buf *b);

#endif
