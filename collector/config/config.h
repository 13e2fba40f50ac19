/*
 * config.h: the effective configuration of otel2dd. It is read from one YAML file shaped
 * like an OpenTelemetry Collector configuration (config.c, which drives the other files of
 * this folder), or from the embedded default when no file is given. Every limit the
 * receivers enforce lives here with its default.
 */
#ifndef O2D_CONFIG_H
#define O2D_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "config_sampling.h"
#include "datadog.h"  /* struct datadog_config */
#include "exporter.h" /* enum o2d_debug_verbosity */
#include "otlp.h"     /* struct otlp_request, enum otlp_signal */
#include "redact.h"   /* struct redact_rules */

#define O2D_ENDPOINT_MAX   256
#define O2D_MAX_PATTERNS   32
#define O2D_MAX_REMAPPINGS 32
/* exporters.datadog.tags / DD_TAGS: at most this many pairs, each "key:value" at most
 * O2D_TAG_MAX bytes (Datadog's tag length limit is 200 characters). */
#define O2D_MAX_TAGS 32
#define O2D_TAG_MAX  200

/* receivers.otlp.protocols.grpc */
struct o2d_grpc_config {
    int enabled;                         /* the section is present (on by default) */
    char endpoint[O2D_ENDPOINT_MAX];     /* host:port, default 0.0.0.0:4317 */
    size_t max_recv_msg_size;            /* max_recv_msg_size_mib, default 4 MiB, after
                                            decompression too */
    uint32_t max_concurrent_streams;     /* default 100 */
    int workers_per_cpu;                 /* receiving threads per online CPU (not a key; 1) */
    int defer_syncs;                     /* not a key: with a disk queue that syncs, requests are
                                            parked until their sync, the worker serving on */
    uint32_t max_connections;            /* default 1024 */
    int64_t max_connection_idle_ms;      /* keepalive.server_parameters.max_connection_idle,
                                            default 5 min */
    int64_t max_connection_age_ms;       /* ...max_connection_age, 0 = off (default) */
    int64_t max_connection_age_grace_ms; /* ...max_connection_age_grace, default 30 s */
    int64_t request_timeout_ms;          /* a request must arrive whole within this when the
                                            client sends no grpc-timeout; default 30 s */
    int64_t read_header_timeout_ms;      /* the client preface, and each header block once
                                            begun, must arrive whole within this; 10 s */
    char tls_cert_file[256];             /* tls.cert_file: PEM chain; empty = plaintext h2c */
    char tls_key_file[256];              /* tls.key_file: PEM private key */
    char tls_client_ca_file[256];        /* tls.client_ca_file: PEM CAs; set = clients must
                                            present a certificate they signed (mTLS) */
    char auth_authenticator[64];         /* auth.authenticator: "" or "bearertokenauth" */
};

/* receivers.otlp.protocols.http */
struct o2d_http_config {
    int enabled;
    char endpoint[O2D_ENDPOINT_MAX]; /* default 0.0.0.0:4318 */
    size_t max_request_body_size;    /* bytes, after decompression too; default 20 MiB */
    uint32_t max_connections;        /* default 1024 */
    int workers_per_cpu;             /* receiving threads per online CPU (not a key; 1) */
    int defer_syncs;                 /* not a key: with a disk queue that syncs, a request's
                                        connection is suspended until its sync */
    int64_t idle_timeout_ms;         /* no byte from the client for this long closes the
                                        connection; default 60 s */
    int64_t read_timeout_ms;         /* a whole request must arrive within this; default 30 s */
    int64_t read_header_timeout_ms;  /* a request's head must be complete within this of the
                                        accept (after a keep-alive answer: idle_timeout plus
                                        this); default 10 s */
    char tls_cert_file[256];         /* tls.cert_file: PEM chain; empty = plaintext HTTP */
    char tls_key_file[256];          /* tls.key_file: PEM private key */
    char tls_client_ca_file[256];    /* tls.client_ca_file (mTLS), as for gRPC */
    char auth_authenticator[64];     /* auth.authenticator: "" or "bearertokenauth" */
};

/* Processors (top-level `processors:` sections). One row each in o2d_processor_types
 * (config_processors.c); a new processor adds its id here and its row there. */
enum o2d_processor {
    O2D_PROCESSOR_REDACTION = 0,
    O2D_PROCESSOR_PROBABILISTIC_SAMPLER, /* applied by the Datadog exporter (config_sampling.h) */
    O2D_PROCESSOR_LLMOBS_SAMPLER,        /* applied by the LLM Obs exporter */
    O2D_PROCESSOR_COUNT,
};
#define O2D_SIGNALS 3 /* enum otlp_signal: traces, logs, metrics */

/* What runs for one signal, in order. */
struct o2d_processor_list {
    size_t n;
    enum o2d_processor ids[O2D_PROCESSOR_COUNT];
};

/* processors.redaction as written (keys of the Collector's redaction processor, plus
 * `patterns` and `drop_message_contents`), and the rules prepare compiles from it. */
struct o2d_redaction_config {
    int section;        /* processors.redaction is in the file */
    int allow_all_keys; /* default false, as the Collector: only allowed_keys are kept */
    char allowed_keys[O2D_MAX_PATTERNS][256];
    size_t n_allowed_keys;
    char ignored_keys[O2D_MAX_PATTERNS][256];
    size_t n_ignored_keys;
    char blocked_key_patterns[O2D_MAX_PATTERNS][256];
    size_t n_blocked_key_patterns;
    char blocked_values[O2D_MAX_PATTERNS][256];
    size_t n_blocked_values;
    char allowed_values[O2D_MAX_PATTERNS][256];
    size_t n_allowed_values;
    char patterns[O2D_MAX_PATTERNS][256]; /* built-in names: email, credit_card, ... */
    size_t n_patterns;
    int summary;       /* enum redact_summary, default silent */
    int hash_function; /* enum redact_hash, default none */
    char hmac_key[256];
    int drop_message_contents;
    uint32_t match_limit;
    struct redact_rules *rules; /* compiled by o2d_config_prepare; NULL when off */
};

struct o2d_config {
    struct o2d_grpc_config grpc;
    struct o2d_http_config http;
    /* receivers.otlp.memory_limit_mib: what all requests in progress may hold at once (bodies
     * as they arrive, inflated bodies, decoded structures and their translation); past it new
     * requests are answered "retry later". 256 MiB. */
    size_t memory_limit;
    /* receivers.otlp.fairness.max_tenant_share_percent: what one tenant (its bearer token's
     * tenant, else its service.name) may hold of memory_limit; 100 = no rule (default). */
    uint32_t tenant_share_pct;
    /* extensions.bearertokenauth (the Collector's bearertokenauth extension): tokens as
     * "tenant:token" or "token"; filename wins over token and tokens. */
    int bearer_section;
    char bearer_scheme[32]; /* default "Bearer" */
    char bearer_token[256];
    char bearer_tokens[O2D_MAX_PATTERNS][256];
    size_t n_bearer_tokens;
    char bearer_filename[256];
    /* extensions.health_check.endpoint, default 0.0.0.0:13133; empty = off */
    char health_endpoint[O2D_ENDPOINT_MAX];
    /* extensions.preview.endpoint, default localhost:55679; empty = off. In the embedded
     * default the preview runs only in a dry run (no Datadog destination); in a file, when
     * the section is there (o2d_config_preview_on). */
    char preview_endpoint[O2D_ENDPOINT_MAX];
    size_t preview_max_bytes; /* extensions.preview.max_size_mib, default 32 MiB */
    int preview_section;      /* extensions.preview is in the file */
    int preview_auto;         /* the embedded default: on exactly when Datadog is off */
    /* service.telemetry.metrics.address: Prometheus text at /metrics, default 0.0.0.0:8888;
     * empty = off */
    char metrics_endpoint[O2D_ENDPOINT_MAX];
    /* service.shutdown_timeout: from SIGTERM to exit, draining receivers, queues, stats and
     * the trace buffer; default 20 s (inside ECS's default 30 s stop timeout) */
    int64_t shutdown_timeout_ms;
    /* exporters.datadog.tags (default ${env:DD_TAGS}) as written: "k:v" pairs separated by
     * commas or blanks; checked by the loader, parsed by o2d_config_prepare() into: */
    char dd_tags[1024];
    char tag_kv[O2D_MAX_TAGS][O2D_TAG_MAX + 1];    /* "key:value", for LLM Obs */
    char tag_split[O2D_MAX_TAGS][O2D_TAG_MAX + 1]; /* "key\0value", for APM */
    const char *llmobs_tags[O2D_MAX_TAGS];
    struct apm_tag apm_tags[O2D_MAX_TAGS];
    size_t n_tags;
    /* exporters.datadog: on when an API key is set (DD_API_KEY in the embedded default) */
    struct datadog_config datadog;
    int datadog_section; /* exporters.datadog is in the file */
    int debug_section;   /* exporters.debug is in the file: keep it next to Datadog */
    char datadog_key_file[256];
    /* traces.ignore_resources and traces.span_name_remappings as written; compiled and
     * pointed to from datadog.apm by o2d_config_prepare(). */
    char ignore_resources[O2D_MAX_PATTERNS][256];
    size_t n_ignore_resources;
    char remappings[O2D_MAX_REMAPPINGS][2][128];
    size_t n_remappings;
    regex_t ignore_re[O2D_MAX_PATTERNS];
    size_t n_ignore_re; /* compiled, to free */
    struct apm_remap remap[O2D_MAX_REMAPPINGS];
    /* exporters.datadog.llmobs.ml_app_by_service as written, and the rules pointing at it */
    char ml_app_by_service[O2D_MAX_REMAPPINGS][2][128];
    size_t n_ml_app_by_service;
    struct llmobs_ml_app_rule ml_app_rules[O2D_MAX_REMAPPINGS];
    /* DD_SERVICE, DD_ENV, DD_VERSION: defaults for spans that lack them */
    char default_service[128];
    char default_env[128];
    char default_version[128];
    /* exporters.debug.verbosity */
    enum o2d_debug_verbosity debug_verbosity;
    /* processors.* */
    struct o2d_redaction_config redaction;
    /* The processors each signal runs, in order (o2d_config_prepare): with
     * service.pipelines, what its lists say; without, every configured processor that
     * fits the signal, in the table's order. */
    struct o2d_processor_list processors[O2D_SIGNALS];
    int pipelines_given; /* service.pipelines is in the file */
    /* service.telemetry.logs.level: one of enum o2d_log_level */
    int log_level;
    /* processors.probabilistic_sampler and processors.llmobs_sampler (config_sampling.h) */
    struct o2d_sampling_config sampling;
    /* Where it came from: a path, or "<embedded default>". */
    char source[256];
};

/* Fills every field with its default (what the embedded configuration also says). */
void o2d_config_defaults(struct o2d_config *cfg);

/*
 * Loads a YAML configuration. On error returns O2D_ERR_CONFIG and writes into err a message
 * naming the file, the line and what was expected ("otel2dd.yaml:7: unknown key 'endpont'
 * under receivers.otlp.protocols.grpc; did you mean 'endpoint'?").
 */
int o2d_config_load_file(struct o2d_config *cfg, const char *path, char *err, size_t errlen);
int o2d_config_load_string(struct o2d_config *cfg, const char *name, const char *yaml, size_t len,
                           char *err, size_t errlen);

/*
 * After loading: reads api.key_file, applies the DD_* environment defaults (DD_SITE,
 * DD_SERVICE, DD_ENV, DD_VERSION), compiles traces.ignore_resources, and decides whether
 * the Datadog exporter is on (a key is set). A file that configures exporters.datadog
 * without a key is an error; the embedded default without DD_API_KEY is not (it keeps the
 * debug exporter). O2D_ERR_CONFIG with err filled on failure.
 */
int o2d_config_prepare(struct o2d_config *cfg, unsigned flags, char *err, size_t errlen);
/* For `otel2dd translate`, which sends nothing: a missing API key is not an error. */
#define O2D_PREPARE_NO_KEY 1u
/* Frees what o2d_config_prepare() compiled. */
void o2d_config_cleanup(struct o2d_config *cfg);

/*
 * DD_TAGS as ddtrace reads it: pairs separated by commas when the text has one, else by
 * blanks; each trimmed; "key:value" split at the first ':'; a pair without ':' is a key
 * with an empty value; empty keys are skipped; a later key replaces an earlier one. Writes
 * "key:value" into kv[0..*n). O2D_ERR_CONFIG with `why` filled ("...") when there are more
 * than O2D_MAX_TAGS keys, a pair is longer than O2D_TAG_MAX bytes or holds a control byte.
 */
int o2d_config_parse_tags(const char *s, char kv[O2D_MAX_TAGS][O2D_TAG_MAX + 1], size_t *n,
                          char *why, size_t whylen);

/*
 * A bearer token entry "tenant:token" or "token" (extensions.bearertokenauth, and each line of
 * its file) split into pointers into s. O2D_OK, or O2D_ERR_CONFIG with *why (static, never
 * quoting the token) when the token is empty, longer than 255 bytes or not an RFC 6750
 * b64token, or the tenant is not 1 to 63 of [A-Za-z0-9._-].
 */
int o2d_config_parse_token_entry(const char *s, size_t len, const char **tenant, size_t *tenant_len,
                                 const char **token, size_t *token_len, const char **why);

/* "true", "false", "1", "0" in any case -> 1 or 0, as ddtrace's asbool reads a variable
 * (but anything else is an error here, not false); -1 otherwise. */
int o2d_config_parse_bool(const char *s);

/*
 * Writes the effective configuration as YAML that loads back to the same values: every key
 * of the table with its value, sections nested, strings quoted where YAML needs it and '$'
 * doubled so that nothing expands again. The API key is never written: "<secret>" when set.
 * When the Datadog exporter is off (no key) its section is written as comments, so the
 * output still loads without a key. Returns O2D_OK or O2D_ERR_SYSTEM on a write error.
 */
int o2d_config_write_yaml(const struct o2d_config *cfg, FILE *out);

/*
 * What every command does to get its configuration: defaults, then the file at `path` (or
 * the YAML in environment variable NAME when path is "env:NAME", or the embedded default when
 * NULL), then o2d_config_prepare(flags). O2D_ERR_CONFIG (or
 * O2D_ERR_NOMEM) with err filled on failure.
 */
int o2d_config_read(struct o2d_config *cfg, const char *path, unsigned flags, char *err,
                    size_t errlen);

/* ---- processors (config_processors.c) ---- */

/* A processor type: the key under `processors:` (and in service.pipelines), the signals it
 * fits, and what prepare, cleanup, apply and validate do for it. */
struct o2d_processor_type {
    const char *name;
    unsigned signals;   /* 1u << OTLP_SIGNAL_* */
    size_t present_off; /* an int in struct o2d_config: its section is in the file */
    /* Builds what apply needs from the keys (compiles patterns); O2D_ERR_CONFIG with err. */
    int (*prepare)(struct o2d_config *cfg, char *err, size_t errlen);
    void (*cleanup)(struct o2d_config *cfg);
    /* Runs on one decoded request before the exporters; NULL when an exporter applies it. */
    int (*apply)(const struct o2d_config *cfg, struct otlp_request *req);
    /* `otel2dd validate`: the effective rules, as "# ..." lines. */
    void (*describe)(const struct o2d_config *cfg, FILE *out);
};
extern const struct o2d_processor_type o2d_processor_types[O2D_PROCESSOR_COUNT];

/* Whether processor `id` is configured (its section is in the file). */
int o2d_processor_configured(const struct o2d_config *cfg, enum o2d_processor id);
/* Whether some signal runs processor `id`. */
int o2d_processor_listed(const struct o2d_config *cfg, enum o2d_processor id);
/* Runs the processors of req's signal that have an apply, in order. O2D_OK or the first
 * failure's status (the request must then not be exported). */
int o2d_processors_apply(const struct o2d_config *cfg, struct otlp_request *req);

/* The embedded default configuration, used when no --config is given. */
extern const char o2d_config_embedded[];

/* Whether the preview server runs (after o2d_config_prepare). */
int o2d_config_preview_on(const struct o2d_config *cfg);

#endif
