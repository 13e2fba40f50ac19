/*
 * fuzz_h2_track.c: the HTTP/2 frame-boundary follower fed the same client bytes whole and in
 * pieces whose sizes the input chooses, each piece with its own clock reading. Both runs
 * must end where a plain, non-incremental walk over the whole stream says: the same magic
 * and frame-header position, payload bytes left and preface state, a header block open in
 * both or neither, and its start time the clock of the piece that completed the opening
 * frame header.
 *
 * Input: byte 0 gives the number of piece sizes (mod 8), the next bytes are the sizes (each
 * plus one, used in turn), the rest is the stream the client sends, magic included.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "h2_track.h"

static int opens_block(uint8_t type)
{
    return type == H2_FRAME_HEADERS || type == H2_FRAME_PUSH_PROMISE;
}

static int closes_block(uint8_t type, uint8_t flags)
{
    return (opens_block(type) || type == H2_FRAME_CONTINUATION) && (flags & H2_FLAG_END_HEADERS);
}

/* Where a frame-by-frame walk over the whole of in[0..n) ends; at[i] is the clock when byte i
 * was fed. */
static void walk(const uint8_t *in, size_t n, const int64_t *at, struct h2_track *want)
{
    h2_track_init(want);
    size_t off = n < H2_MAGIC_LEN ? n : H2_MAGIC_LEN;
    want->magic_left = (uint32_t)(H2_MAGIC_LEN - off);
    while (off < n) {
        if (n - off < H2_FRAME_HD) {
            want->fh_len = (uint8_t)(n - off);
            memcpy(want->fh, in + off, n - off);
            return;
        }
        const uint8_t *h = in + off;
        uint32_t len = (uint32_t)h[0] << 16 | (uint32_t)h[1] << 8 | h[2];
        if (opens_block(h[3]) && want->block_start_ms == 0) {
            want->block_start_ms = at[off + H2_FRAME_HD - 1];
        }
        off += H2_FRAME_HD;
        if (n - off < len) {
            want->fh_len = H2_FRAME_HD;
            memcpy(want->fh, h, H2_FRAME_HD);
            want->payload_left = len - (uint32_t)(n - off);
            return;
        }
        off += len;
        want->preface_done = 1;
        if (closes_block(h[3], h[4])) {
            want->block_start_ms = 0;
        }
    }
}

static void check(const struct h2_track *got, const struct h2_track *want)
{
    if (got->magic_left != want->magic_left || got->fh_len != want->fh_len ||
        memcmp(got->fh, want->fh, got->fh_len) != 0 ||
        (got->fh_len == H2_FRAME_HD && got->payload_left != want->payload_left) ||
        got->preface_done != want->preface_done || got->block_start_ms != want->block_start_ms) {
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) {
        return 0;
    }
    size_t nsteps = data[0] % 8;
    if (nsteps > size - 1) {
        nsteps = size - 1;
    }
    const uint8_t *steps = data + 1;
    const uint8_t *in = data + 1 + nsteps;
    size_t n = size - 1 - nsteps;
    int64_t *at = calloc(n + 1, sizeof(*at));
    if (at == NULL) {
        return 0;
    }

    /* Whole, at one clock reading (0 stands for "no block", so the tracker stores 1). */
    struct h2_track whole, want;
    h2_track_init(&whole);
    h2_track_feed(&whole, in, n, 0);
    for (size_t i = 0; i < n; i++) {
        at[i] = 1;
    }
    walk(in, n, at, &want);
    check(&whole, &want);

    /* In pieces, the clock one tick later for each. */
    struct h2_track parts;
    h2_track_init(&parts);
    size_t off = 0, k = 0;
    while (off < n) {
        size_t step = nsteps > 0 ? (size_t)steps[k % nsteps] + 1 : n;
        if (step > n - off) {
            step = n - off;
        }
        k++;
        for (size_t i = off; i < off + step; i++) {
            at[i] = (int64_t)k;
        }
        h2_track_feed(&parts, in + off, step, (int64_t)k);
        off += step;
    }
    walk(in, n, at, &want);
    check(&parts, &want);

    /* The two runs agree on everything but the clock. */
    if (parts.magic_left != whole.magic_left || parts.fh_len != whole.fh_len ||
        parts.payload_left != whole.payload_left || parts.preface_done != whole.preface_done ||
        (parts.block_start_ms == 0) != (whole.block_start_ms == 0)) {
        abort();
    }
    free(at);
    return 0;
}
