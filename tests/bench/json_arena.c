/*
 * json_arena.c: what decoding an OTLP/JSON body costs, in memory and CPU, for the streaming
 * decoder (translate/otlp/otlp_json.c) and for the jansson tree walk it replaced (kept as the
 * reference of tests/unit/otlp_json_ref.c). Not a test; built on demand:
 *
 *   cmake --build build --target json_arena
 *   node tests/bench/gen_json_bodies.js /tmp/json_bodies
 *   build/json_arena tests/data/json/traces_js_sdk.json /tmp/json_bodies/t100.json ...
 *
 * For each file (the signal is taken from its first "resource..." key) and for a few built
 * hostile bodies (empty attributes, tiny attributes, empty array values, empty data points),
 * it prints the body size, the arena bytes used and their ratio to the body, the peak bytes
 * jansson held (reference only: the tree), and the CPU time a decode takes (getrusage over
 * enough decodes to read about 64 MB of text).
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "o2d.h"
#include "otlp.h"

#include "../unit/otlp_json_ref.c"

static size_t heap_now, heap_peak;

/* jansson's allocations with their size in front, to know the tree's peak. */
static void *count_malloc(size_t n)
{
    size_t *p = malloc(n + sizeof(size_t) * 2);
    if (p == NULL) {
        return NULL;
    }
    p[0] = n;
    heap_now += n;
    if (heap_now > heap_peak) {
        heap_peak = heap_now;
    }
    return p + 2;
}

static void count_free(void *ptr)
{
    if (ptr == NULL) {
        return;
    }
    size_t *p = (size_t *)ptr - 2;
    heap_now -= p[0];
    free(p);
}

static double cpu_seconds(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

typedef int (*decode_fn)(struct o2d_arena *, enum otlp_signal, const uint8_t *, size_t, void **,
                         const char **);

struct result {
    int rv;
    size_t arena;
    size_t heap;
    double us;
};

static struct result run(decode_fn fn, enum otlp_signal sig, const char *body, size_t len)
{
    struct o2d_arena a;
    struct result r;
    void *msg;
    const char *reason;
    o2d_arena_init(&a, (size_t)1 << 36);
    heap_now = heap_peak = 0;
    r.rv = fn(&a, sig, (const uint8_t *)body, len, &msg, &reason);
    r.arena = a.used;
    r.heap = heap_peak;
    if (r.rv != O2D_OK) {
        fprintf(stderr, "decode failed: %s\n", reason ? reason : "?");
    }
    size_t n = (64u << 20) / (len + 1) + 1;
    double t0 = cpu_seconds();
    for (size_t i = 0; i < n; i++) {
        o2d_arena_reset(&a);
        fn(&a, sig, (const uint8_t *)body, len, &msg, &reason);
    }
    r.us = (cpu_seconds() - t0) / (double)n * 1e6;
    o2d_arena_cleanup(&a);
    return r;
}

static void measure(const char *name, enum otlp_signal sig, const char *body, size_t len)
{
    struct result s = run(otlp_json_decode, sig, body, len);
    struct result t = run(otlp_json_ref_decode, sig, body, len);
    printf("%-28s %10zu | %10zu %6.2f %9.1f %7.1f | %10zu %10zu %6.2f %9.1f %7.1f\n", name, len,
           s.arena, (double)s.arena / (double)len, s.us, (double)len / s.us, t.arena, t.heap,
           (double)(t.arena + t.heap) / (double)len, t.us, (double)len / t.us);
}

static enum otlp_signal signal_of(const char *body)
{
    if (strstr(body, "resourceLogs") != NULL || strstr(body, "resource_logs") != NULL) {
        return OTLP_SIGNAL_LOGS;
    }
    if (strstr(body, "resourceMetrics") != NULL || strstr(body, "resource_metrics") != NULL) {
        return OTLP_SIGNAL_METRICS;
    }
    return OTLP_SIGNAL_TRACES;
}

/* A body of `n` copies of `elem` inside `head` ... `tail`. */
static char *repeat(const char *head, const char *elem, const char *tail, size_t n, size_t *len)
{
    size_t el = strlen(elem), hl = strlen(head), tl = strlen(tail);
    char *b = malloc(hl + n * (el + 1) + tl + 1);
    if (b == NULL) {
        exit(1);
    }
    size_t o = 0;
    memcpy(b, head, hl);
    o = hl;
    for (size_t i = 0; i < n; i++) {
        if (i > 0) {
            b[o++] = ',';
        }
        memcpy(b + o, elem, el);
        o += el;
    }
    memcpy(b + o, tail, tl);
    o += tl;
    b[o] = '\0';
    *len = o;
    return b;
}

#define SPAN_ATTRS "{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[{\"attributes\":["
#define SPAN_TAIL  "]}]}]}]}"

int main(int argc, char **argv)
{
    json_set_alloc_funcs(count_malloc, count_free);
    printf("%-28s %10s | %10s %6s %9s %7s | %10s %10s %6s %9s %7s\n", "body", "bytes", "arena", "x",
           "us", "MB/s", "ref arena", "ref tree", "x", "us", "MB/s");
    for (int i = 1; i < argc; i++) {
        FILE *f = fopen(argv[i], "rb");
        if (f == NULL) {
            perror(argv[i]);
            return 1;
        }
        fseek(f, 0, SEEK_END);
        long size = ftell(f);
        rewind(f);
        char *body = malloc((size_t)size + 1);
        if (body == NULL || fread(body, 1, (size_t)size, f) != (size_t)size) {
            return 1;
        }
        body[size] = '\0';
        fclose(f);
        const char *name = strrchr(argv[i], '/') ? strrchr(argv[i], '/') + 1 : argv[i];
        measure(name, signal_of(body), body, (size_t)size);
        free(body);
    }
    static const struct {
        const char *name, *head, *elem, *tail;
        enum otlp_signal sig;
    } hostile[] = {
        {"hostile: {} attributes", SPAN_ATTRS, "{}", SPAN_TAIL, OTLP_SIGNAL_TRACES},
        {"hostile: tiny attributes", SPAN_ATTRS, "{\"key\":\"a\"}", SPAN_TAIL, OTLP_SIGNAL_TRACES},
        {"hostile: tiny int attrs", SPAN_ATTRS, "{\"key\":\"a\",\"value\":{\"intValue\":1}}",
         SPAN_TAIL, OTLP_SIGNAL_TRACES},
        {"hostile: {} array values",
         SPAN_ATTRS "{\"key\":\"a\",\"value\":{\"arrayValue\":{"
                    "\"values\":[",
         "{}", "]}}}" SPAN_TAIL, OTLP_SIGNAL_TRACES},
        {"hostile: {} spans", "{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[", "{}", "]}]}]}",
         OTLP_SIGNAL_TRACES},
        {"hostile: {} data points",
         "{\"resourceMetrics\":[{\"scopeMetrics\":[{\"metrics\":[{\"gauge\":{\"dataPoints\":[",
         "{}", "]}}]}]}]}", OTLP_SIGNAL_METRICS},
    };
    for (size_t i = 0; i < sizeof(hostile) / sizeof(hostile[0]); i++) {
        size_t len;
        char *body = repeat(hostile[i].head, hostile[i].elem, hostile[i].tail, 100000, &len);
        measure(hostile[i].name, hostile[i].sig, body, len);
        free(body);
    }
    return 0;
}
