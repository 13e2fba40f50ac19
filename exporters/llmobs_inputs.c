/*
 * llmobs_inputs.c: the LLM Obs trace buffer's inputs on disk (llmobs_inputs.h), a log of its
 * own (disk_log.h) in <sending_queue.storage>/llmobs-input, and the inputs the buffer took,
 * in order, until they are settled.
 */
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "disk_log.h"
#include "llmobs_inputs.h"
#include "o2d.h"
#include "o2d_alloc.h"
#include "o2d_arena.h"
#include "o2d_le.h"
#include "o2d_log.h"
#include "o2d_time.h"

#define ID_BYTES     33 /* trace id 16, span id 8, parent id 8, remote 1 */
#define REPLAY_ARENA (256u << 20)
#define INPUTS_SHARE 4 /* of disk_max_size_mib, as the LLM Obs events */
#define MIN_RING     64

struct taken {
    uint64_t seq;
    int64_t at_ms;
};

struct lo_inputs {
    struct dlog *log;
    int64_t deadline_ms;
    pthread_mutex_t mu;
    struct taken *ring; /* inputs the buffer took, oldest first */
    size_t cap, head, len;
};

int lo_inputs_open(struct lo_inputs **out, const struct datadog_config *cfg, int64_t deadline_ms)
{
    *out = NULL;
    if (cfg->queue_storage[0] == '\0') {
        return O2D_OK;
    }
    struct lo_inputs *in = o2d_calloc(1, sizeof(*in));
    if (in == NULL) {
        return O2D_ERR_NOMEM;
    }
    char dir[DATADOG_URL_MAX + 32];
    struct dlog_config lc;
    datadog_disk_log_config(cfg, "llmobs-input", INPUTS_SHARE, dir, sizeof(dir), &lc);
    lc.when_full = DLOG_FULL_REFUSE; /* an input dropped would lose a span held for later */
    char err[512] = "";
    struct dlog_stats st;
    memset(&st, 0, sizeof(st));
    int rv = dlog_open(&in->log, &lc, err, sizeof(err));
    if (rv == O2D_OK) {
        dlog_get_stats(in->log, &st);
    }
    datadog_disk_log_opened(dir, rv, err, &lc, &st);
    if (rv != O2D_OK) {
        o2d_free(in);
        return rv;
    }
    in->deadline_ms = deadline_ms;
    pthread_mutex_init(&in->mu, NULL);
    *out = in;
    return O2D_OK;
}

void lo_inputs_close(struct lo_inputs *in)
{
    if (in == NULL) {
        return;
    }
    dlog_close(in->log);
    pthread_mutex_destroy(&in->mu);
    o2d_free(in->ring);
    o2d_free(in);
}

static int append(struct lo_inputs *in, enum lo_input_kind kind, const void *data, size_t len,
                  uint64_t *seq)
{
    struct dlog_rec r = {.data = data, .len = len, .tag = kind};
    int rv = dlog_append(in->log, &r, 1, seq);
    /* too large for a segment: refused for good (413), not "retry later" forever */
    return rv == O2D_OK || rv == O2D_ERR_TOO_LARGE ? rv : O2D_ERR_BUSY;
}

int lo_inputs_add_msg(struct lo_inputs *in, enum lo_input_kind kind, const ProtobufCMessage *msg,
                      uint64_t *seq)
{
    size_t len = protobuf_c_message_get_packed_size(msg);
    uint8_t *buf = o2d_malloc(len > 0 ? len : 1);
    if (buf == NULL) {
        return O2D_ERR_NOMEM;
    }
    protobuf_c_message_pack(msg, buf);
    int rv = append(in, kind, buf, len, seq);
    o2d_free(buf);
    return rv;
}

int lo_inputs_add_ids(struct lo_inputs *in, const struct llmobs_ids *ids, size_t n, uint64_t *seq)
{
    uint8_t *buf = o2d_malloc(n * ID_BYTES + 1);
    if (buf == NULL) {
        return O2D_ERR_NOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        uint8_t *p = buf + i * ID_BYTES;
        memcpy(p, ids[i].trace_id, 16);
        o2d_put_le64(p + 16, ids[i].span_id);
        o2d_put_le64(p + 24, ids[i].parent_span_id);
        p[32] = ids[i].parent_is_remote != 0;
    }
    int rv = append(in, LO_INPUT_SKELETON, buf, n * ID_BYTES, seq);
    o2d_free(buf);
    return rv;
}

void lo_inputs_taken(struct lo_inputs *in, uint64_t seq, int64_t now_ms)
{
    pthread_mutex_lock(&in->mu);
    if (in->len == in->cap) {
        size_t cap = in->cap > 0 ? in->cap * 2 : MIN_RING;
        struct taken *r = o2d_malloc(cap * sizeof(*r));
        if (r == NULL) {
            /* Not tracked: never settled here, so replayed after a restart (a duplicate at
             * worst, never a loss). */
            pthread_mutex_unlock(&in->mu);
            return;
        }
        for (size_t i = 0; i < in->len; i++) {
            r[i] = in->ring[(in->head + i) % in->cap];
        }
        o2d_free(in->ring);
        in->ring = r;
        in->cap = cap;
        in->head = 0;
    }
    in->ring[(in->head + in->len) % in->cap] = (struct taken){.seq = seq, .at_ms = now_ms};
    in->len++;
    pthread_mutex_unlock(&in->mu);
}

void lo_inputs_released(struct lo_inputs *in, int64_t poll_ms, int all)
{
    pthread_mutex_lock(&in->mu);
    while (in->len > 0) {
        const struct taken *t = &in->ring[in->head];
        int due = all ? t->at_ms <= poll_ms : t->at_ms + in->deadline_ms < poll_ms;
        if (!due) {
            break;
        }
        dlog_settle(in->log, t->seq);
        in->head = (in->head + 1) % in->cap;
        in->len--;
    }
    pthread_mutex_unlock(&in->mu);
}

size_t lo_inputs_replay(struct lo_inputs *in, lo_replay_fn fn, void *ctx)
{
    struct o2d_arena a;
    o2d_arena_init(&a, REPLAY_ARENA);
    size_t n = 0;
    uint64_t seq;
    uint32_t tag;
    uint8_t *data;
    size_t len;
    while (dlog_read(in->log, &seq, &tag, &data, &len) == O2D_OK) {
        if (tag == LO_INPUT_SKELETON && len % ID_BYTES == 0) {
            size_t k = len / ID_BYTES;
            struct llmobs_ids *ids = o2d_calloc(k > 0 ? k : 1, sizeof(*ids));
            if (ids != NULL) {
                for (size_t i = 0; i < k; i++) {
                    const uint8_t *p = data + i * ID_BYTES;
                    memcpy(ids[i].trace_id, p, 16);
                    ids[i].span_id = o2d_get_le64(p + 16);
                    ids[i].parent_span_id = o2d_get_le64(p + 24);
                    ids[i].parent_is_remote = p[32] != 0;
                }
                fn(ctx, seq, LO_INPUT_SKELETON, NULL, ids, k);
                n++;
                o2d_free(ids);
            }
        } else if (tag == LO_INPUT_TRACES || tag == LO_INPUT_LOGS) {
            struct otlp_request req;
            const char *reason = NULL;
            enum otlp_signal sig = tag == LO_INPUT_TRACES ? OTLP_SIGNAL_TRACES : OTLP_SIGNAL_LOGS;
            if (otlp_decode(&a, sig, OTLP_ENC_PROTOBUF, data, len, &req, &reason) == O2D_OK) {
                req.arena = &a;
                fn(ctx, seq, (enum lo_input_kind)tag, &req, NULL, 0);
                n++;
            } else {
                o2d_logf(O2D_LOG_ERROR, "llmobs: an input kept on disk could not be decoded: %s",
                         reason != NULL ? reason : "?");
                dlog_settle(in->log, seq);
            }
            o2d_arena_reset(&a);
        } else {
            dlog_settle(in->log, seq); /* not ours: nothing to give the buffer */
        }
        o2d_free(data);
    }
    o2d_arena_cleanup(&a);
    return n;
}
