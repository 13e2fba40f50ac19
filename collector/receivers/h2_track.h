/*
 * h2_track.h: follows the frame boundaries of the bytes a client sends on an HTTP/2
 * connection (RFC 9113: the 24-byte client magic, then 9-byte frame headers and payloads by
 * their length), to tell when the client preface is complete and when a header block
 * (HEADERS or PUSH_PROMISE, then CONTINUATIONs until END_HEADERS) begins and ends. The gRPC
 * receiver uses it for read_header_timeout, since nghttp2's callbacks say nothing of a block
 * it has not finished. It reads lengths, types and the END_HEADERS flag only: checking the
 * frames (their order, sizes, stream ids) is left to nghttp2, which sees the same bytes
 * first. Pure: no allocation, no clock but the one passed in.
 */
#ifndef O2D_H2_TRACK_H
#define O2D_H2_TRACK_H

#include <stddef.h>
#include <stdint.h>

/* RFC 9113 3.4 (client connection preface), 4.1 (frame layout), 6 (types and flags). */
#define H2_MAGIC_LEN          24
#define H2_FRAME_HD           9
#define H2_FRAME_DATA         0x0
#define H2_FRAME_HEADERS      0x1
#define H2_FRAME_PUSH_PROMISE 0x5
#define H2_FRAME_CONTINUATION 0x9
#define H2_FLAG_END_HEADERS   0x4

struct h2_track {
    uint32_t magic_left;     /* bytes of the client magic still to come */
    uint8_t fh[H2_FRAME_HD]; /* the frame header being read */
    uint8_t fh_len;          /* its bytes in; H2_FRAME_HD while its payload is read */
    uint32_t payload_left;   /* payload bytes of the current frame still to come */
    int preface_done;        /* the magic and a whole first frame (SETTINGS) are in */
    int64_t block_start_ms;  /* a header block began then and has not ended; 0 = none */
};

/* A connection whose client magic is still to come. */
void h2_track_init(struct h2_track *t);

/*
 * Follows p[0..n), the next bytes of the client's stream. A header block begins when the
 * frame header of a HEADERS or PUSH_PROMISE is whole while none is open (block_start_ms
 * becomes now, or 1 when now <= 0, so 0 keeps meaning none); it ends when a whole HEADERS,
 * PUSH_PROMISE or CONTINUATION frame with END_HEADERS is in. Any n, any split.
 */
void h2_track_feed(struct h2_track *t, const uint8_t *p, size_t n, int64_t now);

#endif
