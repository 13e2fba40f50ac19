/*
 * h2_track.c: the frame-boundary follower of h2_track.h. One pass over the bytes, a byte
 * at a time through a frame header and in runs through the magic and payloads, so the
 * state is the same whatever pieces the bytes arrive in.
 */
#include "h2_track.h"

void h2_track_init(struct h2_track *t)
{
    *t = (struct h2_track){.magic_left = H2_MAGIC_LEN};
}

static int opens_block(uint8_t type)
{
    return type == H2_FRAME_HEADERS || type == H2_FRAME_PUSH_PROMISE;
}

void h2_track_feed(struct h2_track *t, const uint8_t *p, size_t n, int64_t now)
{
    while (n > 0) {
        if (t->magic_left > 0) {
            size_t k = n < t->magic_left ? n : t->magic_left;
            t->magic_left -= (uint32_t)k;
            p += k;
            n -= k;
            continue;
        }
        if (t->fh_len < H2_FRAME_HD) {
            t->fh[t->fh_len++] = *p++;
            n--;
            if (t->fh_len < H2_FRAME_HD) {
                continue;
            }
            t->payload_left = (uint32_t)t->fh[0] << 16 | (uint32_t)t->fh[1] << 8 | t->fh[2];
            if (opens_block(t->fh[3]) && t->block_start_ms == 0) {
                t->block_start_ms = now > 0 ? now : 1;
            }
        } else {
            size_t k = n < t->payload_left ? n : t->payload_left;
            t->payload_left -= (uint32_t)k;
            p += k;
            n -= k;
        }
        if (t->payload_left == 0) {
            /* A whole frame is in. */
            uint8_t type = t->fh[3], flags = t->fh[4];
            t->preface_done = 1;
            if ((opens_block(type) || type == H2_FRAME_CONTINUATION) &&
                (flags & H2_FLAG_END_HEADERS)) {
                t->block_start_ms = 0;
            }
            t->fh_len = 0;
        }
    }
}
