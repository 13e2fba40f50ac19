/*
 * grpc_frame.h: the pure pieces of the gRPC receiver, with no sockets and no nghttp2: the
 * incremental parser of the one length-prefixed message of a unary call (gRPC "PROTOCOL-HTTP2":
 * Compressed-Flag, 4-byte big-endian Message-Length, Message), grpc-timeout parsing, the
 * grpc-encoding decision, percent-encoding of grpc-message and unpadded base64 for -bin
 * headers. The parser never buffers: it tells the caller where the message bytes are in what
 * it was fed, so that the caller reserves memory before it keeps them.
 */
#ifndef O2D_GRPC_FRAME_H
#define O2D_GRPC_FRAME_H

#include <stddef.h>
#include <stdint.h>

#include "ingest.h"
#include "otlp.h"

#define GRPC_PREFIX_LEN 5

/* Reasons (static; they become grpc-message, tests compare them). */
extern const char grpc_reason_too_large[];
extern const char grpc_reason_bad_flag[];
extern const char grpc_reason_extra[];
extern const char grpc_reason_truncated[];
extern const char grpc_reason_no_message[];
extern const char grpc_reason_flag_no_encoding[];
extern const char grpc_reason_bad_encoding[];

enum grpc_frame_state {
    GRPC_FRAME_PREFIX = 0,  /* reading the 5-byte prefix */
    GRPC_FRAME_MESSAGE = 1, /* reading the message */
    GRPC_FRAME_DONE = 2,    /* one whole message arrived */
    GRPC_FRAME_FAILED = 3,  /* an error was returned; feed no more */
};

struct grpc_frame {
    size_t max_len; /* largest Message-Length accepted */
    enum grpc_frame_state state;
    uint8_t prefix[GRPC_PREFIX_LEN];
    size_t prefix_have;
    int compressed;  /* the Compressed-Flag, once the prefix is whole */
    size_t msg_len;  /* the declared Message-Length, once the prefix is whole */
    size_t msg_have; /* message bytes seen so far */
};

/* What one call to grpc_frame_feed() found in its input. */
struct grpc_frame_span {
    int prefix_done;    /* the prefix became whole during this call: msg_len is known */
    const uint8_t *msg; /* message bytes within the input (points into it), or NULL */
    size_t msg_n;
};

void grpc_frame_init(struct grpc_frame *f, size_t max_len);

/*
 * Consumes p[0..n). On O2D_OK every byte was consumed and *out says which of them belong to
 * the message. O2D_ERR_TOO_LARGE as soon as a prefix declares more than max_len (before any
 * message byte is looked at); O2D_ERR_INVALID for a Compressed-Flag other than 0/1 or for any
 * byte after the first whole message (unary calls carry exactly one). *reason is set on error.
 */
int grpc_frame_feed(struct grpc_frame *f, const uint8_t *p, size_t n, struct grpc_frame_span *out,
                    const char **reason);

/* At the end of the request stream: O2D_OK if exactly one whole message arrived, else
 * O2D_ERR_INVALID (no message at all, or the body ended inside the prefix or message). */
int grpc_frame_finish(const struct grpc_frame *f, const char **reason);

/*
 * grpc-timeout = 1-8 ASCII digits followed by one of H M S m u n. On O2D_OK *ms is the
 * timeout in milliseconds, rounded up (a positive timeout never becomes 0). O2D_ERR_INVALID
 * otherwise (the caller ignores the header then).
 */
int grpc_timeout_parse(const char *s, size_t len, int64_t *ms);

enum grpc_encoding {
    GRPC_ENC_ABSENT = 0,   /* no grpc-encoding header */
    GRPC_ENC_IDENTITY = 1, /* "identity" */
    GRPC_ENC_GZIP = 2,     /* "gzip" */
    GRPC_ENC_OTHER = 3,    /* anything else: UNIMPLEMENTED */
};

enum grpc_encoding grpc_encoding_parse(const char *s, size_t len);

/*
 * The compression to pass to ingest for a message with this Compressed-Flag under this
 * grpc-encoding. O2D_ERR_UNSUPPORTED for an unknown encoding (UNIMPLEMENTED),
 * O2D_ERR_INTERNAL for flag 1 without an encoding that compresses (the gRPC spec calls that
 * an error; grpc-go answers INTERNAL).
 */
int grpc_frame_compression(int compressed, enum grpc_encoding enc, enum o2d_compression *comp,
                           const char **reason);

/* The OTLP signal served at an HTTP/2 :path; O2D_ERR_NOT_FOUND for any other path. */
int grpc_path_signal(const char *path, size_t len, enum otlp_signal *sig);

/* content-type starts with "application/grpc" (then end, '+' or ';'). */
int grpc_content_type_ok(const char *s, size_t len);

/*
 * Percent-encodes a grpc-message value as the gRPC spec asks: bytes outside 0x20..0x7E and
 * '%' become %XX. Writes at most outcap-1 characters plus a NUL, never splitting an escape;
 * returns the length written. s may hold any bytes (it is not assumed NUL-terminated).
 */
size_t grpc_percent_encode(const char *s, size_t len, char *out, size_t outcap);

/* Room grpc_base64_unpadded() needs for n input bytes, NUL included. */
#define GRPC_BASE64_LEN(n) ((((n) + 2) / 3) * 4 + 1)

/* Base64 without '=' padding (gRPC -bin headers). out must hold GRPC_BASE64_LEN(len) bytes;
 * returns the length written (NUL-terminated), or 0 if outcap is too small. */
size_t grpc_base64_unpadded(const uint8_t *in, size_t len, char *out, size_t outcap);

#endif
