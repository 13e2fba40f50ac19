/*
 * fuzz_preview.c: the preview's pages on hostile traces. The input is an OTLP/protobuf traces
 * body; what decodes is captured into a small store (256 KiB, so that eviction runs too) and
 * every page of every trace held is asked for: the list, the trace, each span (with its
 * per-attribute table, its apm.json and llmobs.json), the LLM view, the lints and the status.
 * Oracles: every answer is valid JSON (jansson parses it, which also rejects invalid UTF-8),
 * with status 200 or 404; the store never holds more than its bound.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "config.h"
#include "o2d.h"
#include "o2d_alloc.h"
#include "o2d_arena.h"
#include "otlp.h"
#include "preview.h"

static int no_params(void *ctx, void (*fn)(void *arg, const char *name), void *arg)
{
    (void)ctx;
    (void)fn;
    (void)arg;
    return 0;
}

static const char *no_get(void *ctx, const char *name)
{
    (void)ctx;
    (void)name;
    return NULL;
}

static json_t *ask(struct preview *pv, const char *path)
{
    struct preview_query q = {no_get, no_params, NULL};
    uint8_t *body = NULL;
    size_t len = 0;
    const char *ctype = NULL;
    unsigned int code = preview_api(pv, path, &q, &body, &len, &ctype);
    if (body == NULL || (code != 200 && code != 404)) {
        abort();
    }
    json_error_t err;
    json_t *j = json_loadb((const char *)body, len, 0, &err);
    if (j == NULL) {
        fprintf(stderr, "%s: not JSON (%s at %d): %.*s\n", path, err.text, err.position,
                (int)(len < 4000 ? len : 4000), (const char *)body);
        abort();
    }
    o2d_free(body);
    return j;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct o2d_config cfg;
    static int once;
    if (!once) {
        o2d_config_defaults(&cfg);
        cfg.preview_max_bytes = 256 * 1024;
        once = 1;
    }
    struct o2d_arena a;
    o2d_arena_init(&a, 64u << 20);
    struct otlp_request req;
    const char *reason = NULL;
    if (otlp_decode(&a, OTLP_SIGNAL_TRACES, OTLP_ENC_PROTOBUF, data, size, &req, &reason) !=
        O2D_OK) {
        o2d_arena_cleanup(&a);
        return 0;
    }
    struct preview *pv = NULL;
    if (preview_new(&pv, &cfg) != O2D_OK) {
        abort();
    }
    req.id = 1;
    preview_capture(pv, &req);
    o2d_arena_cleanup(&a);
    struct preview_stats st;
    preview_stats(pv, &st);
    if (st.bytes > st.max_bytes) {
        abort();
    }
    json_decref(ask(pv, "/api/status"));
    json_decref(ask(pv, "/api/lints"));
    json_t *list = ask(pv, "/api/traces");
    size_t i;
    json_t *t;
    json_array_foreach(json_object_get(list, "traces"), i, t)
    {
        const char *tid = json_string_value(json_object_get(t, "trace_id"));
        char path[256];
        snprintf(path, sizeof(path), "/api/traces/%s", tid);
        json_t *tr = ask(pv, path);
        snprintf(path, sizeof(path), "/api/traces/%s/llm", tid);
        json_decref(ask(pv, path));
        size_t k;
        json_t *sp;
        json_array_foreach(json_object_get(tr, "spans"), k, sp)
        {
            if (k >= 50) {
                break;
            }
            const char *sid = json_string_value(json_object_get(sp, "span_id"));
            static const char *const what[] = {"", "/apm.json", "/llmobs.json"};
            for (int w = 0; w < 3; w++) {
                snprintf(path, sizeof(path), "/api/traces/%s/spans/%s%s", tid, sid, what[w]);
                json_decref(ask(pv, path));
            }
        }
        json_decref(tr);
    }
    json_decref(list);
    preview_free(pv);
    return 0;
}
