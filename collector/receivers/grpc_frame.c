/*
 * grpc_frame.c: message framing and header helpers of the gRPC receiver, following the gRPC
 * "PROTOCOL-HTTP2" document (grpc/grpc doc/PROTOCOL-HTTP2.md): Length-Prefixed-Message,
 * Timeout, Message-Encoding, Status-Message percent-encoding, and -bin header base64.
 * Pure functions; grpc_server.c does the I/O and decides what to answer.
 */
#include <string.h>

#include <openssl/evp.h>

#include "grpc_frame.h"
#include "o2d.h"

const char grpc_reason_too_large[] = "grpc: message larger than max_recv_msg_size";
const char grpc_reason_bad_flag[] = "grpc: invalid compressed flag";
const char grpc_reason_extra[] = "grpc: more than one message in a unary call";
const char grpc_reason_truncated[] = "grpc: request ended inside a message";
const char grpc_reason_no_message[] = "grpc: request carried no message";
const char grpc_reason_flag_no_encoding[] = "grpc: compressed flag set without grpc-encoding";
const char grpc_reason_bad_encoding[] = "grpc: unsupported grpc-encoding";

void grpc_frame_init(struct grpc_frame *f, size_t max_len)
{
    memset(f, 0, sizeof(*f));
    f->max_len = max_len;
    f->state = GRPC_FRAME_PREFIX;
}

static int fail(struct grpc_frame *f, int status, const char *why, const char **reason)
{
    f->state = GRPC_FRAME_FAILED;
    *reason = why;
    return status;
}

int grpc_frame_feed(struct grpc_frame *f, const uint8_t *p, size_t n, struct grpc_frame_span *out,
                    const char **reason)
{
    out->prefix_done = 0;
    out->msg = NULL;
    out->msg_n = 0;
    if (f->state == GRPC_FRAME_FAILED) {
        *reason = grpc_reason_extra;
        return O2D_ERR_INVALID;
    }
    size_t i = 0;
    if (f->state == GRPC_FRAME_PREFIX && n > 0) {
        size_t take = GRPC_PREFIX_LEN - f->prefix_have;
        if (take > n) {
            take = n;
        }
        memcpy(f->prefix + f->prefix_have, p, take);
        f->prefix_have += take;
        i = take;
        if (f->prefix_have < GRPC_PREFIX_LEN) {
            return O2D_OK;
        }
        if (f->prefix[0] > 1) {
            return fail(f, O2D_ERR_INVALID, grpc_reason_bad_flag, reason);
        }
        f->compressed = f->prefix[0];
        f->msg_len = ((size_t)f->prefix[1] << 24) | ((size_t)f->prefix[2] << 16) |
                     ((size_t)f->prefix[3] << 8) | (size_t)f->prefix[4];
        out->prefix_done = 1;
        if (f->msg_len > f->max_len) {
            return fail(f, O2D_ERR_TOO_LARGE, grpc_reason_too_large, reason);
        }
        f->state = f->msg_len == 0 ? GRPC_FRAME_DONE : GRPC_FRAME_MESSAGE;
    }
    if (f->state == GRPC_FRAME_MESSAGE && i < n) {
        size_t take = f->msg_len - f->msg_have;
        if (take > n - i) {
            take = n - i;
        }
        out->msg = p + i;
        out->msg_n = take;
        f->msg_have += take;
        i += take;
        if (f->msg_have == f->msg_len) {
            f->state = GRPC_FRAME_DONE;
        }
    }
    if (i < n) {
        /* Only reachable in GRPC_FRAME_DONE: bytes after the one message. */
        out->msg = NULL;
        out->msg_n = 0;
        return fail(f, O2D_ERR_INVALID, grpc_reason_extra, reason);
    }
    return O2D_OK;
}

int grpc_frame_finish(const struct grpc_frame *f, const char **reason)
{
    switch (f->state) {
    case GRPC_FRAME_DONE:
        return O2D_OK;
    case GRPC_FRAME_PREFIX:
        *reason = f->prefix_have == 0 ? grpc_reason_no_message : grpc_reason_truncated;
        return O2D_ERR_INVALID;
    case GRPC_FRAME_MESSAGE:
        *reason = grpc_reason_truncated;
        return O2D_ERR_INVALID;
    case GRPC_FRAME_FAILED:
    default:
        *reason = grpc_reason_extra;
        return O2D_ERR_INVALID;
    }
}

int grpc_timeout_parse(const char *s, size_t len, int64_t *ms)
{
    /* TimeoutValue is at most 8 digits, so every product below fits an int64. */
    if (len < 2 || len > 9) {
        return O2D_ERR_INVALID;
    }
    int64_t v = 0;
    for (size_t i = 0; i + 1 < len; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return O2D_ERR_INVALID;
        }
        v = v * 10 + (s[i] - '0');
    }
    switch (s[len - 1]) {
    case 'H':
        *ms = v * 3600 * 1000;
        break;
    case 'M':
        *ms = v * 60 * 1000;
        break;
    case 'S':
        *ms = v * 1000;
        break;
    case 'm':
        *ms = v;
        break;
    case 'u':
        *ms = (v + 999) / 1000;
        break;
    case 'n':
        *ms = (v + 999999) / 1000000;
        break;
    default:
        return O2D_ERR_INVALID;
    }
    return O2D_OK;
}

static int token_is(const char *s, size_t len, const char *tok)
{
    size_t tl = strlen(tok);
    return len == tl && memcmp(s, tok, tl) == 0;
}

enum grpc_encoding grpc_encoding_parse(const char *s, size_t len)
{
    if (token_is(s, len, "identity")) {
        return GRPC_ENC_IDENTITY;
    }
    if (token_is(s, len, "gzip")) {
        return GRPC_ENC_GZIP;
    }
    return GRPC_ENC_OTHER;
}

int grpc_frame_compression(int compressed, enum grpc_encoding enc, enum o2d_compression *comp,
                           const char **reason)
{
    if (enc == GRPC_ENC_OTHER) {
        *reason = grpc_reason_bad_encoding;
        return O2D_ERR_UNSUPPORTED;
    }
    if (!compressed) {
        *comp = O2D_COMP_NONE;
        return O2D_OK;
    }
    if (enc != GRPC_ENC_GZIP) {
        *reason = grpc_reason_flag_no_encoding;
        return O2D_ERR_INTERNAL;
    }
    *comp = O2D_COMP_GZIP;
    return O2D_OK;
}

static const struct {
    const char *path;
    enum otlp_signal sig;
} grpc_methods[] = {
    {"/opentelemetry.proto.collector.trace.v1.TraceService/Export", OTLP_SIGNAL_TRACES},
    {"/opentelemetry.proto.collector.logs.v1.LogsService/Export", OTLP_SIGNAL_LOGS},
    {"/opentelemetry.proto.collector.metrics.v1.MetricsService/Export", OTLP_SIGNAL_METRICS},
};

int grpc_path_signal(const char *path, size_t len, enum otlp_signal *sig)
{
    for (size_t i = 0; i < sizeof(grpc_methods) / sizeof(grpc_methods[0]); i++) {
        if (token_is(path, len, grpc_methods[i].path)) {
            *sig = grpc_methods[i].sig;
            return O2D_OK;
        }
    }
    return O2D_ERR_NOT_FOUND;
}

int grpc_content_type_ok(const char *s, size_t len)
{
    static const char base[] = "application/grpc";
    size_t bl = sizeof(base) - 1;
    if (len < bl || memcmp(s, base, bl) != 0) {
        return 0;
    }
    return len == bl || s[bl] == '+' || s[bl] == ';';
}

size_t grpc_percent_encode(const char *s, size_t len, char *out, size_t outcap)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;
    if (outcap == 0) {
        return 0;
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c <= 0x7e && c != '%') {
            if (o + 1 >= outcap) {
                break;
            }
            out[o++] = (char)c;
        } else {
            if (o + 3 >= outcap) {
                break;
            }
            out[o++] = '%';
            out[o++] = hex[c >> 4];
            out[o++] = hex[c & 0xf];
        }
    }
    out[o] = '\0';
    return o;
}

size_t grpc_base64_unpadded(const uint8_t *in, size_t len, char *out, size_t outcap)
{
    if (outcap < GRPC_BASE64_LEN(len) || len > (size_t)INT32_MAX / 2) {
        return 0;
    }
    int n = EVP_EncodeBlock((unsigned char *)out, in, (int)len);
    size_t o = n < 0 ? 0 : (size_t)n;
    while (o > 0 && out[o - 1] == '=') {
        o--;
    }
    out[o] = '\0';
    return o;
}
