/*
 * fuzz_grpc_frame.c: the gRPC message unframer fed the same bytes whole and in pieces whose
 * sizes the input chooses; both runs must agree on the status and the message bytes, and
 * message spans must lie inside what was fed. Also runs the header helpers (grpc-timeout,
 * percent-encoding, base64) on the input.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "grpc_frame.h"
#include "o2d.h"

static int run(const uint8_t *in, size_t n, size_t max_len, const uint8_t *steps, size_t nsteps,
               uint8_t *msg, size_t *msg_len)
{
    struct grpc_frame f;
    const char *reason = NULL;
    int rv = O2D_OK;
    size_t off = 0, k = 0;
    grpc_frame_init(&f, max_len);
    *msg_len = 0;
    while (off < n) {
        size_t step = nsteps > 0 ? (size_t)steps[k++ % nsteps] + 1 : n;
        if (step > n - off) {
            step = n - off;
        }
        struct grpc_frame_span sp;
        rv = grpc_frame_feed(&f, in + off, step, &sp, &reason);
        if (rv != O2D_OK) {
            return rv;
        }
        if (sp.msg_n > 0) {
            if (sp.msg < in + off || sp.msg + sp.msg_n > in + off + step ||
                *msg_len + sp.msg_n > f.msg_len) {
                abort();
            }
            memcpy(msg + *msg_len, sp.msg, sp.msg_n);
            *msg_len += sp.msg_n;
        }
        off += step;
    }
    return grpc_frame_finish(&f, &reason);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 4) {
        return 0;
    }
    size_t max_len = (size_t)data[0] * 4;
    size_t nsteps = data[1] % 8;
    if (nsteps > size - 2) {
        nsteps = size - 2;
    }
    const uint8_t *steps = data + 2;
    const uint8_t *in = data + 2 + nsteps;
    size_t n = size - 2 - nsteps;

    uint8_t *a = malloc(n + 1), *b = malloc(n + 1);
    size_t al, bl;
    int ra = run(in, n, max_len, NULL, 0, a, &al);
    int rb = run(in, n, max_len, steps, nsteps, b, &bl);
    if (ra != rb || (ra == O2D_OK && (al != bl || memcmp(a, b, al) != 0))) {
        abort();
    }
    free(a);
    free(b);

    int64_t ms;
    grpc_timeout_parse((const char *)in, n < 12 ? n : 12, &ms);
    char pct[64];
    size_t pl = grpc_percent_encode((const char *)in, n, pct, sizeof(pct));
    if (pl >= sizeof(pct) || pct[pl] != '\0') {
        abort();
    }
    size_t bn = n < 96 ? n : 96;
    char b64[GRPC_BASE64_LEN(96)];
    size_t l64 = grpc_base64_unpadded(in, bn, b64, sizeof(b64));
    if (l64 != (bn * 4 + 2) / 3) {
        abort();
    }
    return 0;
}
