/*
 * fuzz_metrics.c: the metrics path: bytes -> otlp_decode (protobuf, every data point decoded)
 * -> mtr_translate (histograms, sketches, the delta cache) with every mode, one translator kept
 * across inputs so that the cache sees sequences.
 */
#include <stddef.h>
#include <stdint.h>

#include "mtr.h"
#include "o2d_arena.h"
#include "otlp.h"

static const char *const TAGS[] = {"service:fuzz"};

static int resource(void *ctx, const OtlpResource *res, struct o2d_arena *a,
                    const char *const **tags, size_t *ntags, const char **host)
{
    (void)ctx;
    (void)res;
    (void)a;
    *tags = TAGS;
    *ntags = 1;
    *host = "fuzz-host";
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct mtr_translator *t[2];
    if (t[0] == NULL) {
        const char *reason;
        struct mtr_config cfg;
        mtr_config_default(&cfg);
        cfg.max_cache_entries = 1000;
        cfg.send_aggregation_metrics = 1;
        t[0] = mtr_new(&cfg, 1, &reason);
        cfg.hist_mode = MTR_HIST_COUNTERS;
        cfg.initial_mode = MTR_INITIAL_KEEP;
        cfg.summary_mode = MTR_SUMMARY_NOQUANTILES;
        t[1] = mtr_new(&cfg, 1, &reason);
    }
    struct o2d_arena a;
    o2d_arena_init(&a, 16 * size + 1024 * 1024);
    struct otlp_request req;
    const char *reason;
    if (otlp_decode(&a, OTLP_SIGNAL_METRICS, OTLP_ENC_PROTOBUF, data, size, &req, &reason) == 0) {
        for (int i = 0; i < 2; i++) {
            struct mtr_result res;
            mtr_translate(t[i], req.msg.metrics, (uint64_t)size * 1000000000u, resource, NULL, &a,
                          &res);
        }
    }
    o2d_arena_cleanup(&a);
    return 0;
}
