/*
 * validate_cmd.c: `otel2dd validate [--config FILE | FILE]`. Loads and prepares the
 * configuration exactly as a start would (the embedded default when no file is given, the
 * DD_* variables applied, api.key_file read), but opens no socket and sends nothing. Prints
 * the effective configuration as YAML on stdout (collector/config/config_write.c writes it
 * from the key table, so it loads back to the same values), then a summary in YAML
 * comments: where data goes, which receivers listen where, whether LLM Observability is on
 * and why. An invalid file prints "file:line: message" on stderr and exits 1. The API key
 * is never printed: the YAML says "<secret>", the summary never names it, and the loader's
 * messages hide it.
 * Whether TLS certificates load is left to the receivers, which check them at start.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "datadog.h"
#include "llmobs_exporter.h"
#include "o2d.h"
#include "validate_cmd.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: otel2dd validate [--config FILE | FILE]\n"
               "\n"
               "Checks a configuration (default: the embedded one) as a start would, without\n"
               "listening or sending, and prints the effective configuration with the API key\n"
               "masked. Exit status: 0 valid, 1 invalid, 2 usage error.\n");
}

/* A value made safe for a one-line comment: a newline in it would end the comment. */
static const char *safe(const char *s, char *out, size_t n)
{
    size_t i = 0;
    for (; s[i] != '\0' && i + 1 < n; i++) {
        unsigned char c = (unsigned char)s[i];
        out[i] = c < 0x20 || c == 0x7f ? '?' : (char)c;
    }
    out[i] = '\0';
    return out;
}

/* A URL without any user:password@ part, which may hold a credential. */
static const char *without_userinfo(const char *url, char *out, size_t n)
{
    const char *scheme = strstr(url, "://");
    const char *host = scheme != NULL ? scheme + 3 : url;
    const char *slash = strchr(host, '/');
    const char *at = strchr(host, '@');
    if (at == NULL || (slash != NULL && at > slash)) {
        return url;
    }
    snprintf(out, n, "%.*s%s", (int)(host - url), url, at + 1);
    return out;
}

static void receiver_line(FILE *out, const char *name, int enabled, const char *endpoint,
                          const char *cert)
{
    if (!enabled) {
        fprintf(out, "#   %s: off\n", name);
    } else {
        char b[O2D_ENDPOINT_MAX];
        fprintf(out, "#   %s: listens on %s (%s)\n", name, safe(endpoint, b, sizeof(b)),
                cert[0] != '\0' ? "TLS" : "plaintext");
    }
}

/* Which processors run for which signal, in order, and each one's effective rules. */
static void write_processors(const struct o2d_config *cfg, FILE *out)
{
    static const char *const signals[O2D_SIGNALS] = {"traces", "logs", "metrics"};
    fprintf(out, "# processors (%s):\n",
            cfg->pipelines_given ? "as service.pipelines lists them"
                                 : "every configured one, for each signal it fits");
    for (int s = 0; s < O2D_SIGNALS; s++) {
        fprintf(out, "#   %s:", signals[s]);
        if (cfg->processors[s].n == 0) {
            fputs(" none", out);
        }
        for (size_t i = 0; i < cfg->processors[s].n; i++) {
            fprintf(out, "%s %s", i ? "," : "",
                    o2d_processor_types[cfg->processors[s].ids[i]].name);
        }
        fputc('\n', out);
    }
    for (int id = 0; id < O2D_PROCESSOR_COUNT; id++) {
        const struct o2d_processor_type *t = &o2d_processor_types[id];
        if (!o2d_processor_configured(cfg, (enum o2d_processor)id)) {
            continue;
        }
        if (!o2d_processor_listed(cfg, (enum o2d_processor)id)) {
            fprintf(out, "#   %s: OFF, configured but no pipeline lists it\n", t->name);
        }
        if (t->describe != NULL) {
            fprintf(out, "#   %s rules:\n", t->name);
            t->describe(cfg, out);
        }
    }
}

static void write_summary(const struct o2d_config *cfg, FILE *out)
{
    const struct datadog_config *dd = &cfg->datadog;
    char base[DATADOG_URL_MAX];
    char clean[DATADOG_URL_MAX];
    char b1[DATADOG_URL_MAX];
    char b2[DATADOG_URL_MAX];
    char b3[DATADOG_URL_MAX];
    int agent = dd->agent_endpoint[0] != '\0';

    fputs("\n# ---- summary ----\n# where data goes:\n", out);
    if (!dd->enabled) {
        fputs("#   nowhere: no Datadog API key is set (DD_API_KEY, exporters.datadog.api.key or\n"
              "#   api.key_file); the debug exporter logs what arrives\n",
              out);
    } else if (agent) {
        fprintf(out, "#   through the Datadog Agent at %s (agent mode: no API key needed)\n",
                safe(without_userinfo(dd->agent_endpoint, clean, sizeof(clean)), b1, sizeof(b1)));
    } else {
        datadog_traces_base(dd, base, sizeof(base));
        fprintf(out, "#   agentless, Datadog site %s\n", safe(dd->site, b1, sizeof(b1)));
        if (dd->traces_enabled) {
            fprintf(out, "#   APM traces: %s/api/v0.2/traces\n", safe(base, b1, sizeof(b1)));
            fprintf(out, "#   APM stats:  %s/api/v0.2/stats\n", b1);
        }
        if (dd->llmobs.enabled) {
            llmobs_exporter_intake_base(dd, base, sizeof(base));
            fprintf(out, "#   LLM Observability: %s/api/v2/llmobs\n", safe(base, b1, sizeof(b1)));
        }
    }
    if (dd->enabled && cfg->debug_section) {
        fputs("#   and the debug exporter, which logs what arrives\n", out);
    }
    if (dd->enabled) {
        if (dd->traces_enabled) {
            fputs("# APM traces and stats: on\n", out);
        } else {
            fputs("# APM traces and stats: off (exporters.datadog.traces.enabled false or\n"
                  "#   DD_TRACE_ENABLED=false): spans are received, LLM spans go to LLM\n"
                  "#   Observability only\n",
                  out);
        }
    }
    if (!dd->enabled) {
        fputs("# LLM Observability: off (no API key)\n", out);
    } else if (!dd->llmobs.enabled) {
        const char *env = getenv("DD_LLMOBS_ENABLED");
        if (env != NULL && o2d_config_parse_bool(env) == 0) {
            fputs("# LLM Observability: off (DD_LLMOBS_ENABLED is false)\n", out);
        } else {
            fputs("# LLM Observability: off (exporters.datadog.llmobs.enabled is false)\n", out);
        }
    } else {
        fprintf(out, "# LLM Observability: on; ml_app: %s\n",
                dd->llmobs.ml_app[0] != '\0' ? dd->llmobs.ml_app
                                             : "the spans' service.name (no ml_app set)");
    }
    if (dd->enabled && dd->queue_storage[0] != '\0') {
        fprintf(out,
                "# queues: on disk in %s (fsync: %s, at most %zu MiB, when full: %s); kept "
                "across restarts\n",
                dd->queue_storage, dd->queue_fsync == DATADOG_FSYNC_NEVER ? "never" : "batch",
                dd->queue_disk_max_bytes >> 20,
                dd->queue_when_full == DATADOG_FULL_DROP_OLDEST ? "drop the oldest" : "refuse");
    }
    fputs("# receivers:\n", out);
    receiver_line(out, "OTLP/gRPC", cfg->grpc.enabled, cfg->grpc.endpoint, cfg->grpc.tls_cert_file);
    receiver_line(out, "OTLP/HTTP", cfg->http.enabled, cfg->http.endpoint, cfg->http.tls_cert_file);
    fprintf(out, "# health check: %s\n",
            cfg->health_endpoint[0] != '\0' ? safe(cfg->health_endpoint, b1, sizeof(b1)) : "off");
    if (cfg->metrics_endpoint[0] != '\0') {
        fprintf(out, "# metrics: http://%s/metrics\n", safe(cfg->metrics_endpoint, b1, sizeof(b1)));
    } else {
        fputs("# metrics: off\n", out);
    }
    fprintf(out, "# defaults for spans without them: service %s, env %s, version %s\n",
            cfg->default_service[0] ? safe(cfg->default_service, b1, sizeof(b1))
                                    : "(none; DD_SERVICE)",
            cfg->default_env[0] ? safe(cfg->default_env, b2, sizeof(b2)) : "(none; DD_ENV)",
            cfg->default_version[0] ? safe(cfg->default_version, b3, sizeof(b3))
                                    : "(none; DD_VERSION)");
    fprintf(out, "# tags added to every span and LLM Obs event: %zu\n", cfg->n_tags);
    write_processors(cfg, out);
    fprintf(out, "# shutdown: SIGTERM drains for at most %lld ms, then exits 0\n",
            (long long)cfg->shutdown_timeout_ms);
}

int validate_main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *path = NULL;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            path = optarg;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (argc - optind > 1 || (path != NULL && optind < argc)) {
        usage(stderr);
        return 2;
    }
    if (optind < argc) {
        path = argv[optind];
    }

    struct o2d_config cfg;
    char err[1024] = "";
    int rv = o2d_config_read(&cfg, path, 0, err, sizeof(err));
    if (rv != O2D_OK) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    rv = o2d_config_write_yaml(&cfg, stdout);
    write_summary(&cfg, stdout);
    o2d_config_cleanup(&cfg);
    if (rv != O2D_OK || fflush(stdout) != 0) {
        fprintf(stderr, "otel2dd validate: cannot write the output\n");
        return 1;
    }
    return 0;
}
