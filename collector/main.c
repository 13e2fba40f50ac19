/*
 * main.c: the otel2dd program: command line, configuration, start, run until SIGINT or
 * SIGTERM, then drain and stop.
 *
 * Start order: pipeline (exporters), ingest, health (answering 503 "starting"), metrics,
 * receivers; health turns 200 once every receiver listens. Stop order is the reverse: health
 * 503 "draining", receivers stop accepting and finish the requests in flight, the pipeline
 * flushes, all within service.shutdown_timeout; one "undelivered" line accounts for what
 * could not be sent; then everything is freed and the exit code is 0. The metrics server
 * goes just before what it reads (ingest, pipeline), so the drain can be watched. Signals are
 * taken synchronously with sigwait() in the main thread; every other thread has them blocked.
 *
 * Before anything starts, the soft limit on open files is raised to the hard one, and a
 * warning says so when the receivers' max_connections together, plus a margin for
 * everything else the process opens, still exceed it: past that limit clients are refused
 * (acceptor.c) long before max_connections.
 */
#include <getopt.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include <jansson.h>

#include "config.h"
#include "exporter.h"
#include "grpc_server.h"
#include "health.h"
#include "health_cmd.h"
#include "http_server.h"
#include "auth.h"
#include "ingest.h"
#include "metrics_server.h"
#include "preview.h"
#include "o2d.h"
#include "o2d_alloc.h"
#include "o2d_json_in.h"
#include "o2d_log.h"
#include "pipeline.h"
#include "translate_cmd.h"
#include "validate_cmd.h"

/*
 * glibc keeps freed memory: an mmap'ed chunk, once freed, raises the mmap threshold to its
 * size (up to 32 MiB), so the next large request body or arena block comes from a
 * per-thread heap, and a heap gives memory back only from its top. Fixing the thresholds
 * turns that adaptation off: every allocation from 1 MiB up (large bodies, inflated bodies,
 * arena blocks past what a thread keeps) is its own mapping, returned whole when freed, and
 * heaps are trimmed once 1 MiB is free at their top. So the process shrinks back after a
 * burst (README.md, "Memory"). Not lower: a 128 or 512 KiB threshold maps and faults in
 * the body buffer of every mid-sized request (400 KB, 1000 spans), which measured 1.8 times
 * the CPU per span, and threads then wait on each other's page faults.
 */
static void tune_malloc(void)
{
    mallopt(M_MMAP_THRESHOLD, 1024 * 1024);
    mallopt(M_TRIM_THRESHOLD, 1024 * 1024);
}

static void usage(FILE *f)
{
    fprintf(f, "usage: otel2dd [--config FILE] [--version] [--help]\n"
               "       otel2dd translate [--config FILE] [FILE|-]\n"
               "       otel2dd validate [--config FILE | FILE]\n"
               "       otel2dd health [--timeout T] [URL]\n"
               "\n"
               "Receives OpenTelemetry traces and logs over OTLP/gRPC (:4317) and OTLP/HTTP\n"
               "(:4318) and delivers them to Datadog.\n"
               "\n"
               "  -c, --config FILE  YAML configuration (default: the embedded one); env:NAME\n"
               "                     reads it from environment variable NAME\n"
               "  -v, --version      print the version and exit\n"
               "  -h, --help         print this help and exit\n");
}

static void log_totals(struct ingest *ing)
{
    struct ingest_totals t;
    ingest_get_totals(ing, &t);
    struct o2d_logline l;
    o2d_log_begin(&l, O2D_LOG_INFO, "totals");
    o2d_log_uint(&l, "grpc_spans", t.items[O2D_TRANSPORT_GRPC][OTLP_SIGNAL_TRACES]);
    o2d_log_uint(&l, "http_spans", t.items[O2D_TRANSPORT_HTTP][OTLP_SIGNAL_TRACES]);
    o2d_log_uint(&l, "grpc_log_records", t.items[O2D_TRANSPORT_GRPC][OTLP_SIGNAL_LOGS]);
    o2d_log_uint(&l, "http_log_records", t.items[O2D_TRANSPORT_HTTP][OTLP_SIGNAL_LOGS]);
    o2d_log_uint(&l, "metric_points_dropped", t.metric_points_dropped);
    o2d_log_uint(&l, "rejected_items", t.rejected_items);
    o2d_log_uint(&l, "grpc_requests_refused", t.refused[O2D_TRANSPORT_GRPC]);
    o2d_log_uint(&l, "http_requests_refused", t.refused[O2D_TRANSPORT_HTTP]);
    o2d_log_end(&l);
}

/* Descriptors besides the receivers' connections: listeners, epoll and event fds of the
 * workers, exporters' sockets, disk queue files, health and metrics connections. */
#define FD_MARGIN 128

/* Raises the soft RLIMIT_NOFILE to the hard limit, and warns when it is still too low. */
static void raise_nofile(const struct o2d_config *cfg)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) {
        return;
    }
    if (rl.rlim_cur < rl.rlim_max) {
        struct rlimit up = {rl.rlim_max, rl.rlim_max};
        if (setrlimit(RLIMIT_NOFILE, &up) == 0) {
            rl = up;
        }
    }
    uint64_t need = FD_MARGIN;
    need += cfg->grpc.enabled ? cfg->grpc.max_connections : 0;
    need += cfg->http.enabled ? cfg->http.max_connections : 0;
    if (rl.rlim_cur != RLIM_INFINITY && (uint64_t)rl.rlim_cur < need) {
        struct o2d_logline l;
        o2d_log_begin(&l, O2D_LOG_WARN,
                      "open file limit below the connection limits: clients past it are "
                      "refused; raise the limit (ulimit -n, ECS ulimits nofile) or lower "
                      "max_connections");
        o2d_log_uint(&l, "nofile", (uint64_t)rl.rlim_cur);
        o2d_log_uint(&l, "needed", need);
        o2d_log_uint(&l, "grpc_max_connections", cfg->grpc.enabled ? cfg->grpc.max_connections : 0);
        o2d_log_uint(&l, "http_max_connections", cfg->http.enabled ? cfg->http.max_connections : 0);
        o2d_log_end(&l);
    }
}

/*
 * extensions.bearertokenauth, when a receiver names it: the token store (its file read now,
 * then watched), handed to ingest, which both receivers ask. Fairness needs no token: without
 * one a tenant is a service.name.
 */
static int start_auth(const struct o2d_config *cfg, struct ingest *ing, struct auth **out)
{
    char err[512] = "";
    ingest_set_tenant_share(ing, cfg->tenant_share_pct);
    int grpc_on = cfg->grpc.enabled && cfg->grpc.auth_authenticator[0] != '\0';
    int http_on = cfg->http.enabled && cfg->http.auth_authenticator[0] != '\0';
    if (!grpc_on && !http_on) {
        return O2D_OK;
    }
    const char *entries[O2D_MAX_PATTERNS + 1];
    size_t n = 0;
    if (cfg->bearer_token[0] != '\0') {
        entries[n++] = cfg->bearer_token;
    }
    for (size_t i = 0; i < cfg->n_bearer_tokens; i++) {
        entries[n++] = cfg->bearer_tokens[i];
    }
    int rv = auth_new(out, cfg->bearer_scheme, entries, n, cfg->bearer_filename, err, sizeof(err));
    if (rv == O2D_OK) {
        rv = auth_start(*out);
    }
    if (rv != O2D_OK) {
        o2d_logf(O2D_LOG_ERROR, "extensions.bearertokenauth: %s", err[0] ? err : o2d_strerror(rv));
        return rv;
    }
    ingest_set_auth(ing, *out);
    ingest_set_auth_required(ing, O2D_TRANSPORT_GRPC, grpc_on);
    ingest_set_auth_required(ing, O2D_TRANSPORT_HTTP, http_on);
    struct o2d_logline l;
    o2d_log_begin(&l, O2D_LOG_INFO, "bearer token authentication on");
    o2d_log_raw(&l, "grpc", grpc_on ? "true" : "false", grpc_on ? 4 : 5);
    o2d_log_raw(&l, "http", http_on ? "true" : "false", http_on ? 4 : 5);
    o2d_log_cstr(&l, "source", cfg->bearer_filename[0] != '\0' ? "filename" : "tokens");
    o2d_log_end(&l);
    return O2D_OK;
}

static int run(const struct o2d_config *cfg)
{
    struct auth *auth = NULL;
    struct pipeline *pipeline = NULL;
    struct ingest *ing = NULL;
    struct health_server *health = NULL;
    struct metrics_server *metrics = NULL;
    struct grpc_server *grpc = NULL;
    struct http_server *http = NULL;
    char err[512] = "";
    int rv;
    int exit_code = 1;

    if ((rv = pipeline_new(&pipeline, cfg)) != O2D_OK) {
        o2d_logf(O2D_LOG_ERROR, "cannot start the pipeline: %s", o2d_strerror(rv));
        goto out;
    }
    if ((rv = ingest_new(&ing, pipeline_ingest_submit, pipeline, cfg->memory_limit)) != O2D_OK) {
        o2d_logf(O2D_LOG_ERROR, "cannot start ingest: %s", o2d_strerror(rv));
        goto out;
    }
    ingest_set_metrics_forwarded(ing, pipeline_forwards_metrics(pipeline));
    ingest_set_full(ing, pipeline_ingest_full);
    if (start_auth(cfg, ing, &auth) != O2D_OK) {
        goto out;
    }
    if (cfg->health_endpoint[0] != '\0' &&
        health_server_new(&health, cfg->health_endpoint, err, sizeof(err)) != O2D_OK) {
        o2d_logf(O2D_LOG_ERROR, "health_check: %s", err);
        goto out;
    }
    if (cfg->metrics_endpoint[0] != '\0' &&
        metrics_server_new(&metrics, cfg->metrics_endpoint, ing, pipeline, err, sizeof(err)) !=
            O2D_OK) {
        o2d_logf(O2D_LOG_ERROR, "service.telemetry.metrics: %s", err);
        goto out;
    }
    if (pipeline_preview(pipeline) != NULL &&
        preview_start(pipeline_preview(pipeline), err, sizeof(err)) != O2D_OK) {
        o2d_logf(O2D_LOG_ERROR, "extensions.preview: %s", err);
        goto out;
    }
    if (cfg->grpc.enabled &&
        ((rv = grpc_server_new(&grpc, &cfg->grpc, ing, err, sizeof(err))) != O2D_OK ||
         (rv = grpc_server_start(grpc)) != O2D_OK)) {
        o2d_logf(O2D_LOG_ERROR, "otlp grpc receiver: %s", err[0] ? err : o2d_strerror(rv));
        goto out;
    }
    if (cfg->http.enabled &&
        ((rv = http_server_new(&http, &cfg->http, ing, err, sizeof(err))) != O2D_OK ||
         (rv = http_server_start(http)) != O2D_OK)) {
        o2d_logf(O2D_LOG_ERROR, "otlp http receiver: %s", err[0] ? err : o2d_strerror(rv));
        goto out;
    }
    if (health != NULL) {
        health_set_state(health, HEALTH_READY);
    }
    struct o2d_logline l;
    o2d_log_begin(&l, O2D_LOG_INFO, "started");
    o2d_log_cstr(&l, "version", O2D_VERSION);
    o2d_log_cstr(&l, "config", cfg->source);
    o2d_log_end(&l);

    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    int sig = 0;
    sigwait(&set, &sig);

    o2d_log_begin(&l, O2D_LOG_INFO, "stopping");
    o2d_log_cstr(&l, "signal", sig == SIGINT ? "SIGINT" : "SIGTERM");
    o2d_log_int(&l, "shutdown_timeout_ms", cfg->shutdown_timeout_ms);
    o2d_log_end(&l);
    /* service.shutdown_timeout, 20 s by default: ECS kills a task 30 s after SIGTERM. The
     * receivers, then the exporters, share this one deadline. */
    int64_t deadline = o2d_now_ms() + cfg->shutdown_timeout_ms;
    if (health != NULL) {
        health_set_state(health, HEALTH_DRAINING);
    }
    if (grpc != NULL) {
        grpc_server_shutdown(grpc, deadline);
    }
    if (http != NULL) {
        http_server_shutdown(http, deadline);
    }
    pipeline_shutdown(pipeline, deadline);
    log_totals(ing);
    pipeline_log_undelivered(pipeline);
    exit_code = 0;

out:
    grpc_server_free(grpc);
    http_server_free(http);
    health_server_free(health);
    metrics_server_free(metrics);
    ingest_free(ing);
    auth_free(auth);
    pipeline_free(pipeline);
    return exit_code;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},
        {"version", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    /* Every command parses JSON through jansson; its values come from o2d_json_in's
     * per-thread scratch arena while an LLM Obs span is built, from the heap otherwise. */
    json_set_alloc_funcs(o2d_json_in_malloc, o2d_json_in_free);
    if (argc > 1 && strcmp(argv[1], "translate") == 0) {
        return translate_main(argc - 1, argv + 1);
    }
    if (argc > 1 && strcmp(argv[1], "validate") == 0) {
        return validate_main(argc - 1, argv + 1);
    }
    if (argc > 1 && strcmp(argv[1], "health") == 0) {
        return health_main(argc - 1, argv + 1);
    }
    const char *config_path = NULL;
    int c;
    while ((c = getopt_long(argc, argv, "c:vh", opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            config_path = optarg;
            break;
        case 'v':
            printf("otel2dd %s\n", O2D_VERSION);
            return 0;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "otel2dd: unexpected argument '%s'\n", argv[optind]);
        usage(stderr);
        return 2;
    }

    /* Before any thread exists: signals are for sigwait() in this thread only, and a peer
     * that closes its socket must not kill the process. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    tune_malloc();

    struct o2d_config cfg;
    char err[1024] = "";
    int rv = o2d_config_read(&cfg, config_path, 0, err, sizeof(err));
    if (rv != O2D_OK) {
        struct o2d_logline l;
        o2d_log_begin(&l, O2D_LOG_ERROR, "invalid configuration");
        o2d_log_cstr(&l, "error", err);
        o2d_log_end(&l);
        return 1;
    }
    o2d_log_set_level(cfg.log_level);
    raise_nofile(&cfg);
    rv = run(&cfg);
    o2d_config_cleanup(&cfg);
    return rv;
}
