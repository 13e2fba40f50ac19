/*
 * o2d_inflate.c: bounded gzip inflate on zlib. Output goes straight into the caller's
 * bounded buffer; when the buffer is at its maximum and zlib still has output, the input is
 * too large.
 */
#include <zlib.h>

#include "o2d.h"
#include "o2d_inflate.h"

#define INFLATE_STEP (64 * 1024)

int o2d_gunzip(const uint8_t *in, size_t len, struct o2d_buf *out, const char **reason)
{
    z_stream zs = {0};
    int rv = O2D_ERR_INVALID;
    *reason = NULL;
    if (len == 0) {
        *reason = "gzip body is empty";
        return O2D_ERR_INVALID;
    }
    if (inflateInit2(&zs, 16 + MAX_WBITS) != Z_OK) {
        *reason = "cannot initialise gzip decoder";
        return O2D_ERR_NOMEM;
    }
    zs.next_in = (Bytef *)in;
    for (;;) {
        /* zlib's counters are 32-bit: feed at most 1 GiB at a time. */
        size_t left = len - (size_t)(zs.next_in - in);
        zs.avail_in = left > (1u << 30) ? (1u << 30) : (uInt)left;
        if (out->cap == out->len) {
            size_t step = len * 4 > INFLATE_STEP ? len * 4 : INFLATE_STEP;
            if (step > out->max - out->len) {
                step = out->max - out->len;
            }
            if (step == 0) {
                /* At the limit: any further output means the body is too large. */
                unsigned char probe;
                zs.next_out = &probe;
                zs.avail_out = 1;
                int zr = inflate(&zs, Z_NO_FLUSH);
                if (zs.avail_out == 0) {
                    *reason = "decompressed body exceeds the size limit";
                    rv = O2D_ERR_TOO_LARGE;
                    goto out;
                }
                if (zr == Z_STREAM_END) {
                    goto member_end;
                }
                *reason = "gzip body is corrupt or truncated";
                goto out;
            }
            int r = o2d_buf_reserve(out, step);
            if (r != O2D_OK) {
                *reason = "out of memory while decompressing";
                rv = r;
                goto out;
            }
        }
        zs.next_out = out->data + out->len;
        zs.avail_out =
            (uInt)((out->cap - out->len) > (1u << 30) ? (1u << 30) : (out->cap - out->len));
        uInt before = zs.avail_out;
        int zr = inflate(&zs, Z_NO_FLUSH);
        out->len += before - zs.avail_out;
        if (zr == Z_STREAM_END) {
            goto member_end;
        }
        if (zr == Z_OK) {
            continue;
        }
        if (zr == Z_BUF_ERROR && zs.avail_out == 0) {
            continue;
        }
        if (zr == Z_MEM_ERROR) {
            *reason = "out of memory while decompressing";
            rv = O2D_ERR_NOMEM;
            goto out;
        }
        *reason = zr == Z_BUF_ERROR ? "gzip body is truncated" : "gzip body is corrupt";
        goto out;
    member_end:
        if ((size_t)(zs.next_in - in) == len) {
            rv = O2D_OK;
            goto out;
        }
        /* Another gzip member follows (RFC 1952 allows several); anything else is junk. */
        if (len - (size_t)(zs.next_in - in) < 2 || zs.next_in[0] != 0x1f || zs.next_in[1] != 0x8b) {
            *reason = "gzip body has trailing data";
            goto out;
        }
        inflateReset(&zs);
    }
out:
    inflateEnd(&zs);
    return rv;
}
