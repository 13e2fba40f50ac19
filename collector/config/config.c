/*
 * config.c: the schema of the configuration and the entry points that read it. A YAML file
 * shaped like an OpenTelemetry Collector configuration is read in steps: config_yaml.c
 * builds a bounded tree, config_walk.c walks it against the one table of known keys below
 * (each row gives a path, its type, the field it sets and its bounds: adding a key is
 * adding a row), expanding ${env:NAME} (config_env.c) as the Collector does; then the
 * whole-file checks here, and o2d_config_prepare() applies the DD_* environment defaults,
 * reads api.key_file and compiles what the exporters take. Every error names the file and
 * the line and says what was expected. What a value means at run time is left to the
 * receivers, the exporters and main.
 */
#include <errno.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config.h"
#include "config_int.h"
#include "delivery.h"
#include "o2d.h"
#include "o2d_alloc.h"
#include "o2d_arena.h"
#include "o2d_buf.h"
#include "o2d_log.h"
#include "sql_cache.h"

#define CONFIG_SIZE_MAX (1024 * 1024) /* bytes of YAML we read */
#define MIB             (1024 * 1024)

const char o2d_config_embedded[] =
    "# otel2dd built-in configuration: the defaults, spelled out. --config replaces it.\n"
    "receivers:\n"
    "  otlp:\n"
    "    protocols:\n"
    "      grpc:\n"
    "        endpoint: 0.0.0.0:4317\n"
    "        max_recv_msg_size_mib: 4     # per message, after decompression too\n"
    "        max_concurrent_streams: 100  # per connection\n"
    "        max_connections: 1024\n"
    "        request_timeout: 30s         # when the client sends no grpc-timeout\n"
    "        read_header_timeout: 10s     # client preface, and each header block\n"
    "        tls:                         # both set: TLS (PEM files); empty: plaintext h2c\n"
    "          cert_file: \"\"\n"
    "          key_file: \"\"\n"
    "          client_ca_file: \"\"        # set: clients must present a certificate it signed\n"
    "        auth:\n"
    "          authenticator: \"\"         # bearertokenauth: extensions.bearertokenauth\n"
    "        keepalive:\n"
    "          server_parameters:\n"
    "            max_connection_idle: 5m\n"
    "            max_connection_age: 0s   # 0 = no limit\n"
    "            max_connection_age_grace: 30s\n"
    "      http:\n"
    "        endpoint: 0.0.0.0:4318\n"
    "        max_request_body_size: 20971520  # 20 MiB, after decompression too\n"
    "        max_connections: 1024\n"
    "        idle_timeout: 60s            # silence from the client closes the connection\n"
    "        read_timeout: 30s            # a whole request must arrive within this\n"
    "        read_header_timeout: 10s     # a request's head, from accept or the last answer\n"
    "        tls:                         # both set: HTTPS (PEM files); empty: plain HTTP\n"
    "          cert_file: \"\"\n"
    "          key_file: \"\"\n"
    "          client_ca_file: \"\"\n"
    "        auth:\n"
    "          authenticator: \"\"\n"
    "    memory_limit_mib: 256            # requests in progress: bodies, decoded, translated\n"
    "    fairness:\n"
    "      max_tenant_share_percent: 100  # of memory_limit_mib and of each exporter queue one "
    "tenant may hold; 100 = no rule\n"
    "extensions:\n"
    "  health_check:\n"
    "    endpoint: 0.0.0.0:13133          # empty = off\n"
    "  preview:                           # local preview pages; on in a dry run (no Datadog\n"
    "                                     # destination), off otherwise unless a file names it\n"
    "    endpoint: ${env:OTEL2DD_PREVIEW_ENDPOINT:-localhost:55679}  # empty = off\n"
    "    max_size_mib: 32                 # recent traces held, oldest evicted first\n"
    "exporters:\n"
    "  datadog:                           # on when DD_API_KEY is set\n"
    "    hostname: \"\"                     # empty: from the spans' resources\n"
    "    api:\n"
    "      key: ${env:DD_API_KEY}\n"
    "      key_file: \"\"\n"
    "      site: ${env:DD_SITE:-datadoghq.com}\n"
    "      endpoint: \"\"                 # empty: https://api.<site>\n"
    "    agent:\n"
    "      endpoint: ${env:DD_TRACE_AGENT_URL:-}  # http://host:8126: through a Datadog Agent\n"
    "    tags: ${env:DD_TAGS:-}           # k:v pairs added to every span and LLM Obs event\n"
    "    traces:\n"
    "      enabled: ${env:DD_TRACE_ENABLED:-true}  # false: APM traces and stats not sent\n"
    "      endpoint: \"\"                 # empty: https://trace.agent.<site>\n"
    "      span_name_as_resource_name: false\n"
    "      span_name_remappings: {}\n"
    "      ignore_resources: []\n"
    "      compute_stats_by_span_kind: true\n"
    "      compute_top_level_by_span_kind: false\n"
    "      peer_tags_aggregation: true\n"
    "      obfuscation:\n"
    "        cache:                       # SQL obfuscation results, as the Agent's\n"
    "          enabled: ${env:DD_APM_OBFUSCATION_CACHE_ENABLED:-true}\n"
    "          max_size: ${env:DD_APM_OBFUSCATION_CACHE_MAX_SIZE:-5000000}  # bytes\n"
    "      flush_interval: 2s\n"
    "      compression: zstd              # zstd | gzip | none (to a local Agent: none)\n"
    "      compression_params:\n"
    "        level: 1                     # zstd 1-19, gzip 1-9\n"
    "      stats:\n"
    "        compression: gzip            # as the Agent's stats writer\n"
    "        compression_params:\n"
    "          level: 1\n"
    "    llmobs:                          # LLM Observability, on with the API key\n"
    "      enabled: ${env:DD_LLMOBS_ENABLED:-true}  # DD_LLMOBS_ENABLED=0 turns it off\n"
    "      endpoint: \"\"                 # empty: https://llmobs-intake.<site>\n"
    "      ml_app: \"\"                   # empty: DD_LLMOBS_ML_APP, then service.name\n"
    "      ml_app_by_service: {}\n"
    "      compression: none              # as the tracers' LLM Obs writers\n"
    "      compression_params:\n"
    "        level: 1\n"
    "      log_join_window: 3s            # hold content-less OTel GenAI llm spans for their log "
    "records\n"
    "      trace_buffer:\n"
    "        timeout: 10s                 # wait this long for a span's parent chain\n"
    "        max_spans: 100000\n"
    "        max_size_mib: 64\n"
    "    metrics:                         # OTLP metrics to /api/v2/series and /api/beta/sketches\n"
    "      enabled: true\n"
    "      endpoint: \"\"                 # empty: https://api.<site>\n"
    "      compression: zstd              # as the Agent's serializer\n"
    "      compression_params:\n"
    "        level: 1\n"
    "      delta_ttl: 3600                # seconds a cumulative series is remembered\n"
    "      resource_attributes_as_tags: false\n"
    "      instrumentation_scope_metadata_as_tags: true\n"
    "      histograms:\n"
    "        mode: distributions          # distributions | counters | nobuckets\n"
    "        send_aggregation_metrics: false\n"
    "      sums:\n"
    "        cumulative_monotonic_mode: to_delta        # to_delta | raw_value\n"
    "        initial_cumulative_monotonic_value: auto   # auto | drop | keep\n"
    "      summaries:\n"
    "        mode: gauges                 # gauges | noquantiles\n"
    "    logs:                            # OTLP logs -> Datadog Logs, on with the API key\n"
    "      enabled: true\n"
    "      endpoint: \"\"                 # empty: https://http-intake.logs.<site>\n"
    "      include_genai_events: false    # true: gen_ai events given to LLM Obs are logs too\n"
    "      compression: zstd              # as the Agent's logs sender\n"
    "      compression_params:\n"
    "        level: 1\n"
    "    sending_queue:\n"
    "      max_size_mib: 64               # full: receivers answer \"retry later\"\n"
    "      num_consumers: 0               # threads building bodies per destination; 0: CPUs\n"
    "      storage: \"\"                  # a directory: queue on disk, kept across restarts\n"
    "      fsync: batch                   # batch: survives power loss; never: kill -9, OOM\n"
    "      disk_max_size_mib: 1024\n"
    "      when_full: refuse              # refuse (\"retry later\") | drop_oldest\n"
    "    retry_on_failure:\n"
    "      max_elapsed_time: 5m\n"
    "  debug:\n"
    "    verbosity: basic                 # quiet | basic | detailed\n"
    "# processors:                      # none by default; see README \"Redaction\"\n"
    "#   redaction: {allow_all_keys: true, patterns: [email, credit_card]}\n"
    "service:\n"
    "  extensions: [health_check]\n"
    "  shutdown_timeout: 20s             # SIGTERM to exit: drain, flush, then give up\n"
    "  telemetry:\n"
    "    metrics:\n"
    "      address: 0.0.0.0:8888          # Prometheus text at /metrics; empty = off\n"
    "    logs:\n"
    "      level: info                    # debug | info | warn | error\n";

void o2d_config_defaults(struct o2d_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    o2d_sampling_defaults(&cfg->sampling);
    cfg->grpc.enabled = 1;
    snprintf(cfg->grpc.endpoint, sizeof(cfg->grpc.endpoint), "%s", "0.0.0.0:4317");
    cfg->grpc.max_recv_msg_size = 4 * (size_t)MIB;
    cfg->grpc.max_concurrent_streams = 100;
    cfg->grpc.max_connections = 1024;
    cfg->grpc.max_connection_idle_ms = 5 * 60 * 1000;
    cfg->grpc.max_connection_age_ms = 0;
    cfg->grpc.max_connection_age_grace_ms = 30 * 1000;
    cfg->grpc.request_timeout_ms = 30 * 1000;
    cfg->grpc.read_header_timeout_ms = 10 * 1000;
    cfg->http.enabled = 1;
    snprintf(cfg->http.endpoint, sizeof(cfg->http.endpoint), "%s", "0.0.0.0:4318");
    cfg->http.max_request_body_size = 20 * (size_t)MIB;
    cfg->http.max_connections = 1024;
    cfg->http.idle_timeout_ms = 60 * 1000;
    cfg->http.read_timeout_ms = 30 * 1000;
    cfg->http.read_header_timeout_ms = 10 * 1000;
    cfg->memory_limit = 256 * (size_t)MIB;
    cfg->tenant_share_pct = 100;
    snprintf(cfg->bearer_scheme, sizeof(cfg->bearer_scheme), "Bearer");
    snprintf(cfg->health_endpoint, sizeof(cfg->health_endpoint), "%s", "0.0.0.0:13133");
    snprintf(cfg->metrics_endpoint, sizeof(cfg->metrics_endpoint), "%s", "0.0.0.0:8888");
    snprintf(cfg->preview_endpoint, sizeof(cfg->preview_endpoint), "%s", "localhost:55679");
    cfg->preview_max_bytes = 32 * (size_t)MIB;
    cfg->shutdown_timeout_ms = 20 * 1000;
    cfg->datadog.traces_enabled = 1;
    cfg->debug_verbosity = O2D_DEBUG_BASIC;
    cfg->log_level = O2D_LOG_INFO;
    snprintf(cfg->source, sizeof(cfg->source), "%s", "<embedded default>");
    snprintf(cfg->datadog.site, sizeof(cfg->datadog.site), "%s", "datadoghq.com");
    cfg->datadog.compute_stats_by_span_kind = 1;
    cfg->datadog.peer_tags_aggregation = 1;
    cfg->datadog.sql_cache_enabled = 1;
    cfg->datadog.sql_cache_max_bytes = SQL_CACHE_DEFAULT_BYTES;
    cfg->datadog.queue_max_bytes = 64 * (size_t)MIB;
    cfg->datadog.queue_disk_max_bytes = 1024 * (size_t)MIB;
    cfg->datadog.queue_fsync = DATADOG_FSYNC_BATCH;
    cfg->datadog.queue_when_full = DATADOG_FULL_REFUSE;
    cfg->datadog.flush_interval_ms = 2000;
    /* What Datadog's own senders use (datadog.c, "Compression"). */
    const int zstd = DATADOG_COMPRESSION(DLV_COMPRESS_ZSTD);
    cfg->datadog.traces_compression = (struct datadog_compression){zstd, 1};
    cfg->datadog.stats_compression =
        (struct datadog_compression){DATADOG_COMPRESSION(DLV_COMPRESS_GZIP), 1};
    cfg->datadog.llmobs_compression =
        (struct datadog_compression){DATADOG_COMPRESSION(DLV_COMPRESS_NONE), 1};
    cfg->datadog.metrics_compression = (struct datadog_compression){zstd, 1};
    cfg->datadog.logs_compression = (struct datadog_compression){zstd, 1};
    cfg->datadog.max_elapsed_ms = 5 * 60 * 1000;
    cfg->datadog.llmobs.enabled = 1;
    cfg->datadog.logs.enabled = 1;
    cfg->datadog.llmobs.buffer_timeout_ms = 10 * 1000;
    cfg->datadog.llmobs.log_join_window_ms = 3 * 1000;
    cfg->datadog.llmobs.buffer_max_spans = 100000;
    cfg->datadog.llmobs.buffer_max_bytes = 64 * (size_t)MIB;
    /* the Collector Datadog exporter's CreateDefaultConfig */
    cfg->datadog.metrics.enabled = 1;
    cfg->datadog.metrics.delta_ttl_s = 3600;
    cfg->datadog.metrics.resource_attributes_as_tags = 0;
    cfg->datadog.metrics.instrumentation_scope_metadata_as_tags = 1;
    cfg->datadog.metrics.histogram_mode = DATADOG_HIST_DISTRIBUTIONS;
    cfg->datadog.metrics.histogram_aggregations = 0;
    cfg->datadog.metrics.cumulative_mode = DATADOG_CUMULATIVE_TO_DELTA;
    cfg->datadog.metrics.initial_value = DATADOG_INITIAL_AUTO;
    cfg->datadog.metrics.summary_mode = DATADOG_SUMMARY_GAUGES;
    cfg->redaction.match_limit = REDACT_DEFAULT_MATCH_LIMIT;
}

/* ---- the key table ---- */

/* The row macros (SECTION, UINT, DURATION, ...) and what each key type reads are in
 * config_int.h; config_walk.c applies the rows, config_write.c writes them back. */

static int parse_compression(const char *s)
{
    return strcmp(s, "zstd") == 0   ? DATADOG_COMPRESSION(DLV_COMPRESS_ZSTD)
           : strcmp(s, "gzip") == 0 ? DATADOG_COMPRESSION(DLV_COMPRESS_GZIP)
           : strcmp(s, "none") == 0 ? DATADOG_COMPRESSION(DLV_COMPRESS_NONE)
                                    : -1;
}

static const char *compression_name(int v)
{
    return v > 0 ? dlv_compression_name((enum dlv_compression)(v - 1)) : "default";
}

static int parse_verbosity(const char *s)
{
    if (strcmp(s, "quiet") == 0) {
        return O2D_DEBUG_QUIET;
    }
    /* The Collector's debug exporter has "normal" between the two; we print the same. */
    if (strcmp(s, "basic") == 0 || strcmp(s, "normal") == 0) {
        return O2D_DEBUG_BASIC;
    }
    if (strcmp(s, "detailed") == 0) {
        return O2D_DEBUG_DETAILED;
    }
    return -1;
}

static const char *verbosity_name(int v)
{
    return v == O2D_DEBUG_QUIET ? "quiet" : v == O2D_DEBUG_DETAILED ? "detailed" : "basic";
}

static int parse_fsync(const char *s)
{
    return strcmp(s, "batch") == 0   ? DATADOG_FSYNC_BATCH
           : strcmp(s, "never") == 0 ? DATADOG_FSYNC_NEVER
                                     : -1;
}

static const char *fsync_name(int v)
{
    return v == DATADOG_FSYNC_NEVER ? "never" : "batch";
}

static int parse_when_full(const char *s)
{
    return strcmp(s, "refuse") == 0        ? DATADOG_FULL_REFUSE
           : strcmp(s, "drop_oldest") == 0 ? DATADOG_FULL_DROP_OLDEST
                                           : -1;
}

static const char *when_full_name(int v)
{
    return v == DATADOG_FULL_DROP_OLDEST ? "drop_oldest" : "refuse";
}

/* exporters.datadog.metrics: the values the Collector Datadog exporter takes. */
static int parse_hist_mode(const char *s)
{
    return strcmp(s, "distributions") == 0 ? DATADOG_HIST_DISTRIBUTIONS
           : strcmp(s, "counters") == 0    ? DATADOG_HIST_COUNTERS
           : strcmp(s, "nobuckets") == 0   ? DATADOG_HIST_NOBUCKETS
                                           : -1;
}

static const char *hist_mode_name(int v)
{
    return v == DATADOG_HIST_COUNTERS    ? "counters"
           : v == DATADOG_HIST_NOBUCKETS ? "nobuckets"
                                         : "distributions";
}

static int parse_cumulative_mode(const char *s)
{
    return strcmp(s, "to_delta") == 0    ? DATADOG_CUMULATIVE_TO_DELTA
           : strcmp(s, "raw_value") == 0 ? DATADOG_CUMULATIVE_RAW_VALUE
                                         : -1;
}

static const char *cumulative_mode_name(int v)
{
    return v == DATADOG_CUMULATIVE_RAW_VALUE ? "raw_value" : "to_delta";
}

static int parse_initial_value(const char *s)
{
    return strcmp(s, "auto") == 0   ? DATADOG_INITIAL_AUTO
           : strcmp(s, "drop") == 0 ? DATADOG_INITIAL_DROP
           : strcmp(s, "keep") == 0 ? DATADOG_INITIAL_KEEP
                                    : -1;
}

static const char *initial_value_name(int v)
{
    return v == DATADOG_INITIAL_DROP ? "drop" : v == DATADOG_INITIAL_KEEP ? "keep" : "auto";
}

static int parse_summary_mode(const char *s)
{
    return strcmp(s, "gauges") == 0        ? DATADOG_SUMMARY_GAUGES
           : strcmp(s, "noquantiles") == 0 ? DATADOG_SUMMARY_NOQUANTILES
                                           : -1;
}

static const char *summary_mode_name(int v)
{
    return v == DATADOG_SUMMARY_NOQUANTILES ? "noquantiles" : "gauges";
}

/* processors.redaction: the Collector's summary and hash_function values; the unkeyed
 * digests (md5, sha1, sha3) are refused: an e-mail's digest is found by hashing guesses. */
static int parse_summary(const char *s)
{
    return strcmp(s, "silent") == 0  ? REDACT_SUMMARY_SILENT
           : strcmp(s, "info") == 0  ? REDACT_SUMMARY_INFO
           : strcmp(s, "debug") == 0 ? REDACT_SUMMARY_DEBUG
                                     : -1;
}

static const char *summary_name(int v)
{
    return v == REDACT_SUMMARY_DEBUG ? "debug" : v == REDACT_SUMMARY_INFO ? "info" : "silent";
}

static int parse_hash_function(const char *s)
{
    return strcmp(s, "none") == 0 || s[0] == '\0' ? REDACT_HASH_NONE
           : strcmp(s, "hmac-sha256") == 0        ? REDACT_HASH_HMAC_SHA256
           : strcmp(s, "hmac-sha512") == 0        ? REDACT_HASH_HMAC_SHA512
                                                  : -1;
}

static const char *hash_function_name(int v)
{
    return v == REDACT_HASH_HMAC_SHA256   ? "hmac-sha256"
           : v == REDACT_HASH_HMAC_SHA512 ? "hmac-sha512"
                                          : "none";
}

#define GRPC      "receivers.otlp.protocols.grpc"
#define HTTP      "receivers.otlp.protocols.http"
#define KEEPALIVE GRPC ".keepalive.server_parameters"

/* A destination's `compression` and `compression_params.level`, as the Collector's
 * confighttp names them; the level's range for its compression is checked in check_whole. */
#define COMPRESSION(p, m)                                                                          \
    ENUM(p ".compression", m.kind, parse_compression, compression_name, "zstd, gzip, none"),       \
        SECTION(p ".compression_params"),                                                          \
        UINT(p ".compression_params.level", m.level, 1, DLV_ZSTD_LEVEL_MAX, 1)
/* clang-format off */
const struct key_row config_key_table[] = {
    SECTION("receivers"),
    SECTION("receivers.otlp"),
    /* Listing protocols turns off those it leaves out (see apply_section). */
    SECTION("receivers.otlp.protocols"),
    SECTION_FLAG(GRPC, grpc.enabled),
    ENDPOINT(GRPC ".endpoint", grpc.endpoint, 0),
    /* gRPC frames a message with a 32-bit length */
    UINT(GRPC ".max_recv_msg_size_mib", grpc.max_recv_msg_size, 1, 4095, MIB),
    UINT(GRPC ".max_concurrent_streams", grpc.max_concurrent_streams, 1, 10000, 1),
    UINT(GRPC ".max_connections", grpc.max_connections, 1, 1000000, 1),
    DURATION(GRPC ".request_timeout", grpc.request_timeout_ms, 1),
    DURATION(GRPC ".read_header_timeout", grpc.read_header_timeout_ms, 1),
    SECTION(GRPC ".tls"),
    STRING(GRPC ".tls.cert_file", grpc.tls_cert_file, KEY_EMPTY_OK),
    STRING(GRPC ".tls.key_file", grpc.tls_key_file, KEY_EMPTY_OK),
    STRING(GRPC ".tls.client_ca_file", grpc.tls_client_ca_file, KEY_EMPTY_OK),
    SECTION(GRPC ".auth"),
    STRING(GRPC ".auth.authenticator", grpc.auth_authenticator, KEY_EMPTY_OK),
    SECTION(GRPC ".keepalive"),
    SECTION(KEEPALIVE),
    DURATION(KEEPALIVE ".max_connection_idle", grpc.max_connection_idle_ms, 1),
    DURATION(KEEPALIVE ".max_connection_age", grpc.max_connection_age_ms, 0), /* 0 = off */
    DURATION(KEEPALIVE ".max_connection_age_grace", grpc.max_connection_age_grace_ms, 0),
    SECTION_FLAG(HTTP, http.enabled),
    ENDPOINT(HTTP ".endpoint", http.endpoint, 0),
    UINT(HTTP ".max_request_body_size", http.max_request_body_size, 1, 4294967295u, 1),
    UINT(HTTP ".max_connections", http.max_connections, 1, 1000000, 1),
    DURATION(HTTP ".idle_timeout", http.idle_timeout_ms, 1),
    DURATION(HTTP ".read_timeout", http.read_timeout_ms, 1),
    DURATION(HTTP ".read_header_timeout", http.read_header_timeout_ms, 1),
    SECTION(HTTP ".tls"),
    STRING(HTTP ".tls.cert_file", http.tls_cert_file, KEY_EMPTY_OK),
    STRING(HTTP ".tls.key_file", http.tls_key_file, KEY_EMPTY_OK),
    STRING(HTTP ".tls.client_ca_file", http.tls_client_ca_file, KEY_EMPTY_OK),
    SECTION(HTTP ".auth"),
    STRING(HTTP ".auth.authenticator", http.auth_authenticator, KEY_EMPTY_OK),
    UINT("receivers.otlp.memory_limit_mib", memory_limit, 1, 1048576, MIB),
    SECTION("receivers.otlp.fairness"),
    UINT("receivers.otlp.fairness.max_tenant_share_percent", tenant_share_pct, 1, 100, 1),
    SECTION("extensions"),
    SECTION("extensions.health_check"),
    ENDPOINT("extensions.health_check.endpoint", health_endpoint, KEY_EMPTY_OK),
    SECTION_FLAG("extensions.bearertokenauth", bearer_section),
    STRING("extensions.bearertokenauth.scheme", bearer_scheme, 0),
    STRING("extensions.bearertokenauth.token", bearer_token, KEY_EMPTY_OK | KEY_SECRET),
    {.path = "extensions.bearertokenauth.tokens", .type = KEY_STRINGS, FIELD(bearer_tokens),
     .count_off = offsetof(struct o2d_config, n_bearer_tokens), .flags = KEY_SECRET},
    STRING("extensions.bearertokenauth.filename", bearer_filename, KEY_EMPTY_OK),
    SECTION_FLAG("extensions.preview", preview_section),
    ENDPOINT("extensions.preview.endpoint", preview_endpoint, KEY_EMPTY_OK),
    UINT("extensions.preview.max_size_mib", preview_max_bytes, 1, 4096, MIB),
    SECTION("exporters"),
    /* Named as the OpenTelemetry Collector's datadogexporter names them. */
    SECTION_FLAG("exporters.datadog", datadog_section),
    STRING("exporters.datadog.hostname", datadog.hostname, KEY_EMPTY_OK),
    SECTION("exporters.datadog.api"),
    STRING("exporters.datadog.api.key", datadog.api_key, KEY_EMPTY_OK | KEY_SECRET),
    STRING("exporters.datadog.api.key_file", datadog_key_file, KEY_EMPTY_OK),
    STRING("exporters.datadog.api.site", datadog.site, 0),
    STRING("exporters.datadog.api.endpoint", datadog.api_endpoint, KEY_EMPTY_OK),
    SECTION("exporters.datadog.agent"),
    STRING("exporters.datadog.agent.endpoint", datadog.agent_endpoint, KEY_EMPTY_OK),
    TAGS("exporters.datadog.tags", dd_tags),
    SECTION("exporters.datadog.traces"),
    BOOL("exporters.datadog.traces.enabled", datadog.traces_enabled),
    STRING("exporters.datadog.traces.endpoint", datadog.traces_endpoint, KEY_EMPTY_OK),
    BOOL("exporters.datadog.traces.span_name_as_resource_name",
         datadog.apm.span_name_as_resource_name),
    STRMAP("exporters.datadog.traces.span_name_remappings", remappings, n_remappings),
    STRINGS("exporters.datadog.traces.ignore_resources", ignore_resources, n_ignore_resources),
    BOOL("exporters.datadog.traces.compute_stats_by_span_kind",
         datadog.compute_stats_by_span_kind),
    BOOL("exporters.datadog.traces.compute_top_level_by_span_kind",
         datadog.apm.compute_top_level_by_span_kind),
    BOOL("exporters.datadog.traces.peer_tags_aggregation", datadog.peer_tags_aggregation),
    /* apm_config.obfuscation.cache.* of the Datadog Agent (pkg/config/setup/apm.go) */
    SECTION("exporters.datadog.traces.obfuscation"),
    SECTION("exporters.datadog.traces.obfuscation.cache"),
    BOOL("exporters.datadog.traces.obfuscation.cache.enabled", datadog.sql_cache_enabled),
    UINT("exporters.datadog.traces.obfuscation.cache.max_size", datadog.sql_cache_max_bytes,
         SQL_CACHE_MIN_BYTES, 1u << 30, 1),
    DURATION("exporters.datadog.traces.flush_interval", datadog.flush_interval_ms, 100),
    COMPRESSION("exporters.datadog.traces", datadog.traces_compression),
    SECTION("exporters.datadog.traces.stats"),
    COMPRESSION("exporters.datadog.traces.stats", datadog.stats_compression),
    SECTION("exporters.datadog.llmobs"),
    BOOL("exporters.datadog.llmobs.enabled", datadog.llmobs.enabled),
    STRING("exporters.datadog.llmobs.endpoint", datadog.llmobs.endpoint, KEY_EMPTY_OK),
    STRING("exporters.datadog.llmobs.ml_app", datadog.llmobs.ml_app, KEY_EMPTY_OK),
    STRMAP("exporters.datadog.llmobs.ml_app_by_service", ml_app_by_service,
           n_ml_app_by_service),
    DURATION("exporters.datadog.llmobs.log_join_window", datadog.llmobs.log_join_window_ms, 0),
    COMPRESSION("exporters.datadog.llmobs", datadog.llmobs_compression),
    SECTION("exporters.datadog.llmobs.trace_buffer"),
    DURATION("exporters.datadog.llmobs.trace_buffer.timeout", datadog.llmobs.buffer_timeout_ms,
             100),
    UINT("exporters.datadog.llmobs.trace_buffer.max_spans", datadog.llmobs.buffer_max_spans, 1,
         100000000, 1),
    UINT("exporters.datadog.llmobs.trace_buffer.max_size_mib", datadog.llmobs.buffer_max_bytes,
         1, 65536, MIB),
    SECTION("exporters.datadog.metrics"),
    BOOL("exporters.datadog.metrics.enabled", datadog.metrics.enabled),
    STRING("exporters.datadog.metrics.endpoint", datadog.metrics.endpoint, KEY_EMPTY_OK),
    COMPRESSION("exporters.datadog.metrics", datadog.metrics_compression),
    /* seconds, an integer as in the Collector; at most a week */
    UINT("exporters.datadog.metrics.delta_ttl", datadog.metrics.delta_ttl_s, 1, 604800, 1),
    BOOL("exporters.datadog.metrics.resource_attributes_as_tags",
         datadog.metrics.resource_attributes_as_tags),
    BOOL("exporters.datadog.metrics.instrumentation_scope_metadata_as_tags",
         datadog.metrics.instrumentation_scope_metadata_as_tags),
    SECTION("exporters.datadog.metrics.histograms"),
    ENUM("exporters.datadog.metrics.histograms.mode", datadog.metrics.histogram_mode,
         parse_hist_mode, hist_mode_name, "distributions, counters, nobuckets"),
    BOOL("exporters.datadog.metrics.histograms.send_aggregation_metrics",
         datadog.metrics.histogram_aggregations),
    SECTION("exporters.datadog.metrics.sums"),
    ENUM("exporters.datadog.metrics.sums.cumulative_monotonic_mode",
         datadog.metrics.cumulative_mode, parse_cumulative_mode, cumulative_mode_name,
         "to_delta, raw_value"),
    ENUM("exporters.datadog.metrics.sums.initial_cumulative_monotonic_value",
         datadog.metrics.initial_value, parse_initial_value, initial_value_name,
         "auto, drop, keep"),
    SECTION("exporters.datadog.metrics.summaries"),
    ENUM("exporters.datadog.metrics.summaries.mode", datadog.metrics.summary_mode,
         parse_summary_mode, summary_mode_name, "gauges, noquantiles"),
    SECTION("exporters.datadog.logs"),
    BOOL("exporters.datadog.logs.enabled", datadog.logs.enabled),
    STRING("exporters.datadog.logs.endpoint", datadog.logs.endpoint, KEY_EMPTY_OK),
    BOOL("exporters.datadog.logs.include_genai_events", datadog.logs.include_genai_events),
    COMPRESSION("exporters.datadog.logs", datadog.logs_compression),
    SECTION("exporters.datadog.sending_queue"),
    UINT("exporters.datadog.sending_queue.max_size_mib", datadog.queue_max_bytes, 1, 65536,
         MIB),
    STRING("exporters.datadog.sending_queue.storage", datadog.queue_storage, KEY_EMPTY_OK),
    UINT("exporters.datadog.sending_queue.num_consumers", datadog.num_consumers, 0, 256, 1),
    ENUM("exporters.datadog.sending_queue.fsync", datadog.queue_fsync, parse_fsync, fsync_name,
         "batch, never"),
    UINT("exporters.datadog.sending_queue.disk_max_size_mib", datadog.queue_disk_max_bytes, 16,
         16 * 1024 * 1024, MIB),
    ENUM("exporters.datadog.sending_queue.when_full", datadog.queue_when_full, parse_when_full,
         when_full_name, "refuse, drop_oldest"),
    SECTION("exporters.datadog.retry_on_failure"),
    DURATION("exporters.datadog.retry_on_failure.max_elapsed_time", datadog.max_elapsed_ms,
             1000),
    SECTION_FLAG("exporters.debug", debug_section),
    ENUM("exporters.debug.verbosity", debug_verbosity, parse_verbosity, verbosity_name,
         "quiet, basic, normal, detailed"),
    SECTION("processors"),
    /* The Collector's redaction processor keys (processor/redactionprocessor config.go),
     * then ours: patterns, drop_message_contents, match_limit. */
    SECTION_FLAG("processors.redaction", redaction.section),
    BOOL("processors.redaction.allow_all_keys", redaction.allow_all_keys),
    STRINGS("processors.redaction.allowed_keys", redaction.allowed_keys,
            redaction.n_allowed_keys),
    STRINGS("processors.redaction.ignored_keys", redaction.ignored_keys,
            redaction.n_ignored_keys),
    STRINGS("processors.redaction.blocked_key_patterns", redaction.blocked_key_patterns,
            redaction.n_blocked_key_patterns),
    STRINGS("processors.redaction.blocked_values", redaction.blocked_values,
            redaction.n_blocked_values),
    STRINGS("processors.redaction.allowed_values", redaction.allowed_values,
            redaction.n_allowed_values),
    ENUM("processors.redaction.summary", redaction.summary, parse_summary, summary_name,
         "silent, info, debug"),
    ENUM("processors.redaction.hash_function", redaction.hash_function, parse_hash_function,
         hash_function_name, "none, hmac-sha256, hmac-sha512 (unkeyed md5, sha1, sha3 are refused)"),
    STRING("processors.redaction.hmac_key", redaction.hmac_key, KEY_EMPTY_OK | KEY_SECRET),
    STRINGS("processors.redaction.patterns", redaction.patterns, redaction.n_patterns),
    BOOL("processors.redaction.drop_message_contents", redaction.drop_message_contents),
    UINT("processors.redaction.match_limit", redaction.match_limit, 1000, 100000000, 1),
    /* Read by config_sampling.c before the walk; the rows let "did you mean" name them. */
    SECTION("processors.probabilistic_sampler"),
    SECTION("processors.llmobs_sampler"),
    SECTION("service"),
    /* service.extensions and service.pipelines are written as for the Collector. Receivers
     * and exporters are fixed; a pipeline's processors decide which processors run for its
     * signal (config_processors.c). */
    NAMES("service.extensions"),
    SECTION("service.pipelines"),
    SECTION("service.pipelines.*"),
    NAMES("service.pipelines.*.receivers"),
    NAMES("service.pipelines.*.processors"),
    NAMES("service.pipelines.*.exporters"),
    DURATION("service.shutdown_timeout", shutdown_timeout_ms, 100),
    SECTION("service.telemetry"),
    SECTION("service.telemetry.metrics"),
    ENDPOINT("service.telemetry.metrics.address", metrics_endpoint, KEY_EMPTY_OK),
    SECTION("service.telemetry.logs"),
    ENUM("service.telemetry.logs.level", log_level, o2d_log_level_parse, o2d_log_level_name,
         "debug, info, warn, error"),
};
/* clang-format on */
const size_t config_key_table_len = sizeof(config_key_table) / sizeof(config_key_table[0]);

int config_section_state(const struct o2d_config *cfg, const struct key_row *row)
{
    /* Which exporters run is decided in prepare, not by the flags alone: Datadog needs a
     * key (without one its section is shown, as comments, so the output still loads), and
     * the debug exporter runs without Datadog even when the file leaves it out. */
    if (strcmp(row->path, "exporters.datadog") == 0) {
        return !cfg->datadog_section ? 0 : cfg->datadog.enabled ? 1 : 2;
    }
    if (strcmp(row->path, "exporters.debug") == 0) {
        return !cfg->datadog.enabled || cfg->debug_section ? 1 : 0;
    }
    return -1;
}

/* ---- loading ---- */

/* RFC 6750 2.1: b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"=" */
static int b64token_ok(const char *s, size_t n)
{
    size_t i = 0;
    while (i < n && (is_alpha(s[i]) || is_digit(s[i]) || strchr("-._~+/", s[i]) != NULL)) {
        i++;
    }
    if (i == 0) {
        return 0;
    }
    while (i < n && s[i] == '=') {
        i++;
    }
    return i == n;
}

int o2d_config_parse_token_entry(const char *s, size_t len, const char **tenant, size_t *tenant_len,
                                 const char **token, size_t *token_len, const char **why)
{
    const char *colon = memchr(s, ':', len);
    *tenant = NULL;
    *tenant_len = 0;
    *token = s;
    *token_len = len;
    if (colon != NULL) {
        *tenant = s;
        *tenant_len = (size_t)(colon - s);
        *token = colon + 1;
        *token_len = len - *tenant_len - 1;
        int ok = *tenant_len > 0 && *tenant_len <= 63;
        for (size_t i = 0; ok && i < *tenant_len; i++) {
            char c = s[i];
            ok = is_alpha(c) || is_digit(c) || c == '.' || c == '_' || c == '-';
        }
        if (!ok) {
            *why = "a tenant name (before ':') must be 1 to 63 of A-Z a-z 0-9 . _ -";
            return O2D_ERR_CONFIG;
        }
    }
    if (*token_len == 0) {
        *why = "empty token";
        return O2D_ERR_CONFIG;
    }
    if (*token_len > 255) {
        *why = "a token must be at most 255 bytes";
        return O2D_ERR_CONFIG;
    }
    if (!b64token_ok(*token, *token_len)) {
        *why = "a token must be an RFC 6750 b64token: A-Z a-z 0-9 - . _ ~ + / then '=' padding";
        return O2D_ERR_CONFIG;
    }
    return O2D_OK;
}

/* receivers.otlp.protocols.*.auth and extensions.bearertokenauth: the Collector's names. */
static int check_auth(struct loader *ld)
{
    const struct o2d_config *c = &ld->cfg;
    const char *paths[] = {GRPC ".auth.authenticator", HTTP ".auth.authenticator"};
    const char *values[] = {c->grpc.auth_authenticator, c->http.auth_authenticator};
    int any = 0;
    for (int i = 0; i < 2; i++) {
        if (values[i][0] == '\0') {
            continue;
        }
        const struct node *p = config_yaml_find(ld->root, paths[i]);
        if (strcmp(values[i], "bearertokenauth") != 0) {
            return config_fail(&ld->err, p ? p->line : 0,
                               "%s: the only authenticator is bearertokenauth, got '%s'", paths[i],
                               values[i]);
        }
        if (!c->bearer_section) {
            return config_fail(&ld->err, p ? p->line : 0,
                               "%s is bearertokenauth but extensions.bearertokenauth is not "
                               "configured",
                               paths[i]);
        }
        any = 1;
    }
    if (!c->bearer_section) {
        return O2D_OK;
    }
    const struct node *ext = config_yaml_find(ld->root, "extensions.bearertokenauth");
    if (c->bearer_token[0] == '\0' && c->n_bearer_tokens == 0 && c->bearer_filename[0] == '\0') {
        return config_fail(&ld->err, ext ? ext->line : 0,
                           "extensions.bearertokenauth needs token, tokens or filename");
    }
    if (!any) {
        return config_fail(&ld->err, ext ? ext->line : 0,
                           "extensions.bearertokenauth is configured but no receiver uses it: set "
                           "receivers.otlp.protocols.grpc.auth.authenticator (or http's) to "
                           "bearertokenauth");
    }
    const char *t, *k, *why;
    size_t tl, kl;
    if (c->bearer_token[0] != '\0' &&
        o2d_config_parse_token_entry(c->bearer_token, strlen(c->bearer_token), &t, &tl, &k, &kl,
                                     &why) != O2D_OK) {
        const struct node *p = config_yaml_find(ld->root, "extensions.bearertokenauth.token");
        return config_fail(&ld->err, p ? p->line : 0, "extensions.bearertokenauth.token: %s", why);
    }
    for (size_t i = 0; i < c->n_bearer_tokens; i++) {
        if (o2d_config_parse_token_entry(c->bearer_tokens[i], strlen(c->bearer_tokens[i]), &t, &tl,
                                         &k, &kl, &why) != O2D_OK) {
            const struct node *p = config_yaml_find(ld->root, "extensions.bearertokenauth.tokens");
            return config_fail(&ld->err, p ? p->line : 0,
                               "extensions.bearertokenauth.tokens entry %zu: %s", i + 1, why);
        }
    }
    const char *sch = c->bearer_scheme;
    for (size_t i = 0; sch[i] != '\0'; i++) {
        if (!(is_alpha(sch[i]) || is_digit(sch[i]) || strchr("-._~+", sch[i]) != NULL)) {
            const struct node *p = config_yaml_find(ld->root, "extensions.bearertokenauth.scheme");
            return config_fail(&ld->err, p ? p->line : 0,
                               "extensions.bearertokenauth.scheme must be one word, got '%s'", sch);
        }
    }
    return O2D_OK;
}

/* A level the destination's compression takes: gzip 1-9, zstd 1-19 (the table's range); with
 * `compression: none` the level is kept for when compression is switched on, and unused. */
static int check_compression(struct loader *ld)
{
    static const struct {
        const char *key;
        size_t off;
    } dests[] = {
        {"exporters.datadog.traces", offsetof(struct datadog_config, traces_compression)},
        {"exporters.datadog.traces.stats", offsetof(struct datadog_config, stats_compression)},
        {"exporters.datadog.llmobs", offsetof(struct datadog_config, llmobs_compression)},
        {"exporters.datadog.metrics", offsetof(struct datadog_config, metrics_compression)},
        {"exporters.datadog.logs", offsetof(struct datadog_config, logs_compression)},
    };
    for (size_t i = 0; i < sizeof(dests) / sizeof(dests[0]); i++) {
        const struct datadog_compression *c =
            (const struct datadog_compression *)((const char *)&ld->cfg.datadog + dests[i].off);
        char key[128];
        snprintf(key, sizeof(key), "%s.compression_params.level", dests[i].key);
        const struct node *p = config_yaml_find(ld->root, key);
        enum dlv_compression kind = (enum dlv_compression)(c->kind - 1);
        if (p == NULL || kind == DLV_COMPRESS_NONE ||
            dlv_compression_level_ok(kind, (int)c->level)) {
            continue;
        }
        return config_fail(&ld->err, p->line, "%s: %u is not a %s level (%s)", key, c->level,
                           dlv_compression_name(kind), kind == DLV_COMPRESS_GZIP ? "1-9" : "1-19");
    }
    return O2D_OK;
}

/* Checks that involve more than one key, once the whole file is applied. A component whose
 * keys constrain each other adds its check here. */
static int check_whole(struct loader *ld)
{
    if (!ld->cfg.grpc.enabled && !ld->cfg.http.enabled) {
        const struct node *p = config_yaml_find(ld->root, "receivers.otlp.protocols");
        return config_fail(&ld->err, p ? p->line : 0,
                           "receivers.otlp.protocols must enable grpc, http or both");
    }
    int rv = check_auth(ld);
    if (rv != O2D_OK) {
        return rv;
    }
    rv = config_processors_resolve(ld);
    if (rv != O2D_OK) {
        return rv;
    }
    rv = check_compression(ld);
    if (rv != O2D_OK) {
        return rv;
    }
    /* contrib exporter/datadogexporter HistogramConfig.validate, word for word */
    const struct datadog_metrics_config *m = &ld->cfg.datadog.metrics;
    if (m->histogram_mode == DATADOG_HIST_NOBUCKETS && !m->histogram_aggregations) {
        const struct node *p = config_yaml_find(ld->root, "exporters.datadog.metrics.histograms");
        return config_fail(&ld->err, p ? p->line : 0,
                           "'nobuckets' mode and `send_aggregation_metrics` set to false will "
                           "send no histogram metrics");
    }
    return O2D_OK;
}

int o2d_config_load_string(struct o2d_config *cfg, const char *name, const char *yaml, size_t len,
                           char *err, size_t errlen)
{
    struct loader *ld = NULL;
    int rc = O2D_ERR_CONFIG;

    if (err != NULL && errlen > 0) {
        err[0] = '\0';
    }
    if (name == NULL) {
        name = "<config>";
    }
    /* The loader holds the parse stack and a working copy of the configuration. */
    ld = o2d_calloc(1, sizeof(*ld));
    if (ld == NULL) {
        config_format_err(err, errlen, name, 0, "out of memory while reading the configuration");
        return O2D_ERR_NOMEM;
    }
    ld->err.name = name;
    ld->err.buf = err;
    ld->err.size = errlen;
    ld->cfg = *cfg;
    o2d_arena_init(&ld->arena, TREE_BYTES_MAX);
    if (len > CONFIG_SIZE_MAX) {
        rc = config_fail(&ld->err, 0, "larger than %d bytes", CONFIG_SIZE_MAX);
        goto out;
    }
    rc = config_yaml_parse(&ld->arena, &ld->err, yaml, len, &ld->root);
    if (rc != O2D_OK) {
        goto out;
    }
    if (ld->root != NULL && ld->root->kind == NODE_MAP) {
        rc = config_sampling_take(ld);
        rc = rc == O2D_OK ? config_walk(ld, ld->root, "") : rc;
    } else if (ld->root != NULL && !ld->root->is_null) {
        /* An empty file, or one with only comments, keeps every default. */
        rc = config_fail(&ld->err, ld->root->line, "the top level must be a map, got %s",
                         config_kind_name(ld->root));
    }
    if (rc == O2D_OK) {
        rc = check_whole(ld);
    }
    if (rc == O2D_OK) {
        snprintf(ld->cfg.source, sizeof(ld->cfg.source), "%s", name);
        *cfg = ld->cfg;
    }
out:
    o2d_arena_cleanup(&ld->arena);
    o2d_free(ld);
    return rc;
}

int o2d_config_load_file(struct o2d_config *cfg, const char *path, char *err, size_t errlen)
{
    struct o2d_buf b;
    FILE *f = NULL;
    int rc = O2D_ERR_CONFIG;
    char chunk[8192];

    if (err != NULL && errlen > 0) {
        err[0] = '\0';
    }
    o2d_buf_init(&b, CONFIG_SIZE_MAX);
    f = fopen(path, "rb");
    if (f == NULL) {
        config_format_err(err, errlen, path, 0, "cannot open: %s", strerror(errno));
        goto out;
    }
    for (;;) {
        size_t n = fread(chunk, 1, sizeof(chunk), f);
        int saved = errno;
        if (n > 0) {
            int s = o2d_buf_append(&b, chunk, n);
            if (s == O2D_ERR_TOO_LARGE) {
                config_format_err(err, errlen, path, 0, "larger than %d bytes", CONFIG_SIZE_MAX);
                goto out;
            }
            if (s != O2D_OK) {
                config_format_err(err, errlen, path, 0,
                                  "out of memory while reading the configuration");
                rc = O2D_ERR_NOMEM;
                goto out;
            }
        }
        if (n < sizeof(chunk)) {
            if (ferror(f)) {
                config_format_err(err, errlen, path, 0, "cannot read: %s", strerror(saved));
                goto out;
            }
            break;
        }
    }
    rc = o2d_config_load_string(cfg, path, b.data ? (const char *)b.data : "", b.len, err, errlen);
out:
    if (f != NULL) {
        fclose(f);
    }
    o2d_buf_cleanup(&b);
    return rc;
}

int o2d_config_read(struct o2d_config *cfg, const char *path, unsigned flags, char *err,
                    size_t errlen)
{
    o2d_config_defaults(cfg);
    int rv;
    if (path != NULL && strncmp(path, "env:", 4) == 0) {
        /* The Collector's env provider (confmap/provider/envprovider): --config env:NAME
         * reads the YAML from a variable, which is how an ECS task without a volume gets one. */
        const char *text = getenv(path + 4);
        if (text == NULL || text[0] == '\0') {
            config_format_err(err, errlen, path, 0, "the environment variable is not set");
            return O2D_ERR_CONFIG;
        }
        rv = o2d_config_load_string(cfg, path, text, strlen(text), err, errlen);
    } else if (path != NULL) {
        rv = o2d_config_load_file(cfg, path, err, errlen);
    } else {
        rv = o2d_config_load_string(cfg, "<embedded default>", o2d_config_embedded,
                                    strlen(o2d_config_embedded), err, errlen);
    }
    return rv == O2D_OK ? o2d_config_prepare(cfg, flags, err, errlen) : rv;
}

/* ---- after loading ---- */

/* Copies the value of environment variable `name`, if set and non-empty, into dst. */
static void env_default(const char *name, char *dst, size_t size)
{
    const char *v = getenv(name);
    if (v != NULL && v[0] != '\0' && dst[0] == '\0') {
        snprintf(dst, size, "%s", v);
    }
}

/* DD_TRACE_ENABLED / DD_LLMOBS_ENABLED: when set to a false value, turns *field off. */
static int env_switch(const char *name, int *field, char *err, size_t errlen)
{
    char a[SHOW_MAX + 4];
    const char *v = getenv(name);
    if (v == NULL || v[0] == '\0') {
        return O2D_OK;
    }
    int b = o2d_config_parse_bool(v);
    if (b < 0) {
        snprintf(err, errlen, "%s must be true, false, 1 or 0, got '%s'", name,
                 config_show(a, v, strlen(v)));
        return O2D_ERR_CONFIG;
    }
    if (b == 0) {
        *field = 0;
    }
    return O2D_OK;
}

static int read_key_file(struct o2d_config *cfg, char *err, size_t errlen)
{
    FILE *f = fopen(cfg->datadog_key_file, "r");
    if (f == NULL) {
        snprintf(err, errlen, "exporters.datadog.api.key_file: cannot open '%s': %s",
                 cfg->datadog_key_file, strerror(errno));
        return O2D_ERR_CONFIG;
    }
    char buf[sizeof(cfg->datadog.api_key) + 1];
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    /* Secrets files usually end with a newline; surrounding blanks are never part of a key. */
    while (n > 0 &&
           (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' ' || buf[n - 1] == '\t')) {
        buf[--n] = '\0';
    }
    if (n == 0 || n >= sizeof(cfg->datadog.api_key)) {
        snprintf(err, errlen, "exporters.datadog.api.key_file: '%s' must hold one API key",
                 cfg->datadog_key_file);
        return O2D_ERR_CONFIG;
    }
    memcpy(cfg->datadog.api_key, buf, n + 1);
    return O2D_OK;
}

/* exporters.datadog.agent.endpoint: "http[s]://host[:port]" with at most a trailing "/".
 * NULL when it is, else why not. A path is refused rather than guessed at: the exporters
 * append the Agent's own paths (/v0.4/traces, /evp_proxy/v2/...) to the base URL. */
static const char *agent_endpoint_problem(const char *url)
{
    const char *p;
    if (strncasecmp(url, "http://", 7) == 0) {
        p = url + 7;
    } else if (strncasecmp(url, "https://", 8) == 0) {
        p = url + 8;
    } else {
        return "is not an http:// or https:// URL";
    }
    const char *host = p;
    if (*p == '[') {
        p = strchr(p, ']');
        if (p == NULL) {
            return "has an unterminated [IPv6] host";
        }
        p++;
    } else {
        while (*p != '\0' && *p != ':' && *p != '/' && *p != '?' && *p != '#') {
            if (*p == '@' || (unsigned char)*p <= ' ') {
                return "has a character that does not belong in a host name";
            }
            p++;
        }
    }
    if (p == host || (*host == '[' && p - host <= 2)) {
        return "has no host";
    }
    if (*p == ':') {
        long port = 0;
        const char *d = ++p;
        while (*p >= '0' && *p <= '9' && port <= 65535) {
            port = port * 10 + (*p++ - '0');
        }
        if (p == d || port < 1 || port > 65535) {
            return "has an invalid port";
        }
    }
    while (*p == '/') {
        p++;
    }
    if (*p != '\0') {
        return "has a path, query or fragment, which is not supported: give the Agent's base "
               "URL";
    }
    return NULL;
}

int o2d_config_prepare(struct o2d_config *cfg, unsigned flags, char *err, size_t errlen)
{
    struct datadog_config *dd = &cfg->datadog;
    if (cfg->datadog_key_file[0] != '\0' && dd->api_key[0] == '\0') {
        int rc = read_key_file(cfg, err, errlen);
        if (rc != O2D_OK) {
            return rc;
        }
    }
    /* A ddtrace task definition's variables keep their meaning as defaults. */
    env_default("DD_SERVICE", cfg->default_service, sizeof(cfg->default_service));
    env_default("DD_ENV", cfg->default_env, sizeof(cfg->default_env));
    env_default("DD_VERSION", cfg->default_version, sizeof(cfg->default_version));
    dd->apm.default_service = cfg->default_service[0] ? cfg->default_service : NULL;
    dd->apm.default_env = cfg->default_env[0] ? cfg->default_env : NULL;
    dd->apm.default_version = cfg->default_version[0] ? cfg->default_version : NULL;
    dd->apm.fallback_hostname = dd->hostname[0] ? dd->hostname : NULL;
    dd->tenant_share_pct = cfg->tenant_share_pct; /* the queues' share (exporter.h: admit) */

    struct datadog_llmobs_config *lo = &dd->llmobs;
    env_default("DD_LLMOBS_ML_APP", lo->ml_app, sizeof(lo->ml_app));
    o2d_sampling_prepare(&cfg->sampling);
    dd->sampler = &cfg->sampling.apm;
    lo->map.sampler = &cfg->sampling.llmobs;
    /* The embedded default reads these two through ${env:...}; a file may not, and a
     * ddtrace user's DD_TRACE_ENABLED=false must still stop traces: false always wins. */
    int rc = env_switch("DD_TRACE_ENABLED", &dd->traces_enabled, err, errlen);
    if (rc == O2D_OK) {
        rc = env_switch("DD_LLMOBS_ENABLED", &lo->enabled, err, errlen);
    }
    if (rc != O2D_OK) {
        return rc;
    }
    char why[160];
    if (o2d_config_parse_tags(cfg->dd_tags, cfg->tag_kv, &cfg->n_tags, why, sizeof(why)) !=
        O2D_OK) {
        /* The loader checked the text already; only a caller that filled dd_tags by hand
         * gets here. */
        snprintf(err, errlen, "%s: exporters.datadog.tags: %s", cfg->source, why);
        return O2D_ERR_CONFIG;
    }
    for (size_t i = 0; i < cfg->n_tags; i++) {
        memcpy(cfg->tag_split[i], cfg->tag_kv[i], sizeof(cfg->tag_split[i]));
        char *colon = strchr(cfg->tag_split[i], ':');
        *colon = '\0';
        cfg->apm_tags[i].key = cfg->tag_split[i];
        cfg->apm_tags[i].value = colon + 1;
        cfg->llmobs_tags[i] = cfg->tag_kv[i];
    }
    dd->apm.tags = cfg->n_tags ? cfg->apm_tags : NULL;
    dd->apm.n_tags = cfg->n_tags;
    lo->map.tags = cfg->n_tags ? cfg->llmobs_tags : NULL;
    lo->map.n_tags = cfg->n_tags;
    for (size_t i = 0; i < cfg->n_ml_app_by_service; i++) {
        cfg->ml_app_rules[i].service = cfg->ml_app_by_service[i][0];
        cfg->ml_app_rules[i].ml_app = cfg->ml_app_by_service[i][1];
    }
    lo->map.ml_app_by_service = cfg->n_ml_app_by_service ? cfg->ml_app_rules : NULL;
    lo->map.n_ml_app_by_service = cfg->n_ml_app_by_service;
    lo->map.ml_app = lo->ml_app[0] ? lo->ml_app : NULL;
    lo->map.default_service = dd->apm.default_service;
    lo->map.default_env = dd->apm.default_env;
    lo->map.default_version = dd->apm.default_version;

    for (size_t i = 0; i < cfg->n_remappings; i++) {
        cfg->remap[i].from = cfg->remappings[i][0];
        cfg->remap[i].to = cfg->remappings[i][1];
    }
    dd->apm.remappings = cfg->n_remappings ? cfg->remap : NULL;
    dd->apm.n_remappings = cfg->n_remappings;

    cfg->n_ignore_re = 0;
    for (size_t i = 0; i < cfg->n_ignore_resources; i++) {
        int re = regcomp(&cfg->ignore_re[i], cfg->ignore_resources[i], REG_EXTENDED | REG_NOSUB);
        if (re != 0) {
            char rwhy[128];
            regerror(re, &cfg->ignore_re[i], rwhy, sizeof(rwhy));
            snprintf(err, errlen,
                     "exporters.datadog.traces.ignore_resources: '%s' is not a regular "
                     "expression: %s",
                     cfg->ignore_resources[i], rwhy);
            o2d_config_cleanup(cfg);
            return O2D_ERR_CONFIG;
        }
        cfg->n_ignore_re++;
    }
    dd->apm.ignore_resources = cfg->n_ignore_re ? cfg->ignore_re : NULL;
    dd->apm.n_ignore_resources = cfg->n_ignore_re;

    rc = config_processors_prepare(cfg, err, errlen);
    if (rc != O2D_OK) {
        o2d_config_cleanup(cfg);
        return rc;
    }

    /* The embedded default spells out exporters.debug only to document it: with a key,
     * Datadog alone runs. A file that names exporters.debug keeps it next to Datadog. */
    int embedded = strcmp(cfg->source, "<embedded default>") == 0;
    if (embedded) {
        cfg->debug_section = 0;
    }
    /* The embedded default's preview section only documents it: there the preview is on
     * when nothing goes to Datadog (o2d_config_preview_on). */
    cfg->preview_auto = embedded;
    if (!cfg->datadog_section) {
        dd->enabled = 0;
        return O2D_OK;
    }
    if (dd->site[0] == '\0') {
        snprintf(dd->site, sizeof(dd->site), "%s", "datadoghq.com");
    }
    /* Agent mode: a Datadog Agent sends with its own key; with both set, the Agent wins. */
    const char *problem =
        dd->agent_endpoint[0] != '\0' ? agent_endpoint_problem(dd->agent_endpoint) : NULL;
    if (problem != NULL) {
        snprintf(err, errlen,
                 "%s: exporters.datadog.agent.endpoint: '%s' %s (for example "
                 "http://datadog-agent:8126)",
                 cfg->source, dd->agent_endpoint, problem);
        o2d_config_cleanup(cfg);
        return O2D_ERR_CONFIG;
    }
    if (dd->agent_endpoint[0] != '\0') {
        /* The Agent's receiver reads plain bodies (datadog.c, "Compression"): what is sent,
         * and so what validate shows. */
        dd->traces_compression.kind = DATADOG_COMPRESSION(DLV_COMPRESS_NONE);
        dd->stats_compression.kind = DATADOG_COMPRESSION(DLV_COMPRESS_NONE);
    }
    dd->enabled = dd->api_key[0] != '\0' || dd->agent_endpoint[0] != '\0';
    if (!dd->enabled && !embedded && !(flags & O2D_PREPARE_NO_KEY)) {
        snprintf(err, errlen,
                 "%s: exporters.datadog is configured but no API key is set: set api.key "
                 "(for example ${env:DD_API_KEY}) or api.key_file, or agent.endpoint to send "
                 "through a Datadog Agent",
                 cfg->source);
        o2d_config_cleanup(cfg);
        return O2D_ERR_CONFIG;
    }
    /* A request is answered once its spans are synced (sending_queue.fsync: batch): the
     * receiving thread parks it (gRPC: the stream; HTTP/1.1: the connection, suspended) and
     * goes on serving; one thread per receiver waits for the syncs. */
    int syncs =
        cfg->datadog.queue_storage[0] != '\0' && cfg->datadog.queue_fsync == DATADOG_FSYNC_BATCH;
    cfg->grpc.workers_per_cpu = 1;
    cfg->grpc.defer_syncs = syncs;
    cfg->http.workers_per_cpu = 1;
    cfg->http.defer_syncs = syncs;
    return O2D_OK;
}

void o2d_config_cleanup(struct o2d_config *cfg)
{
    config_processors_cleanup(cfg);
    for (size_t i = 0; i < cfg->n_ignore_re; i++) {
        regfree(&cfg->ignore_re[i]);
    }
    cfg->n_ignore_re = 0;
    cfg->datadog.apm.ignore_resources = NULL;
    cfg->datadog.apm.n_ignore_resources = 0;
}

int o2d_config_preview_on(const struct o2d_config *cfg)
{
    if (cfg->preview_endpoint[0] == '\0') {
        return 0;
    }
    return cfg->preview_auto ? !cfg->datadog.enabled : cfg->preview_section;
}
