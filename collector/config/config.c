/*
 * config.c: reads the configuration, a YAML file shaped like an OpenTelemetry Collector
 * configuration, into struct o2d_config. libyaml's event parser builds a small tree (map,
 * sequence and scalar nodes, each with its line) in an arena, bounded in input size, node
 * count and depth. The tree is then walked against one table of known keys that gives, for
 * each path, its type, the field it sets and its bounds: adding a key is adding a row.
 * ${env:NAME} and ${env:NAME:-default} are expanded in the values the table reads, as the
 * Collector does. Every error names the file and the line and says what was expected.
 * What a value means at run time is left to the receivers, the exporters and main.
 */
#include <errno.h>
#include <regex.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <yaml.h>

#include "config.h"
#include "o2d.h"
#include "o2d_alloc.h"
#include "o2d_arena.h"
#include "o2d_buf.h"
#include "o2d_log.h"

#define CONFIG_SIZE_MAX (1024 * 1024)      /* bytes of YAML we read */
#define TREE_BYTES_MAX  (16 * 1024 * 1024) /* the arena holding the tree and expanded values */
#define TREE_NODES_MAX  10000
#define TREE_DEPTH_MAX  32
#define VALUE_MAX       4096 /* one value after ${env:...} expansion */
#define ENV_NAME_MAX    255
#define PATH_BUF        512
#define SHOW_MAX        64 /* bytes of the user's text quoted in a message */
#define MIB             (1024 * 1024)
#define DURATION_MAX_MS (7LL * 24 * 3600 * 1000)

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
    "    memory_limit_mib: 256            # requests in progress: bodies, decoded, translated\n"
    "extensions:\n"
    "  health_check:\n"
    "    endpoint: 0.0.0.0:13133          # empty = off\n"
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
    "      flush_interval: 2s\n"
    "    llmobs:                          # LLM Observability, on with the API key\n"
    "      enabled: ${env:DD_LLMOBS_ENABLED:-true}  # DD_LLMOBS_ENABLED=0 turns it off\n"
    "      endpoint: \"\"                 # empty: https://llmobs-intake.<site>\n"
    "      ml_app: \"\"                   # empty: DD_LLMOBS_ML_APP, then service.name\n"
    "      ml_app_by_service: {}\n"
    "      trace_buffer:\n"
    "        timeout: 10s                 # wait this long for a span's parent chain\n"
    "        max_spans: 100000\n"
    "        max_size_mib: 64\n"
    "    sending_queue:\n"
    "      max_size_mib: 64               # full: receivers answer \"retry later\"\n"
    "    retry_on_failure:\n"
    "      max_elapsed_time: 5m\n"
    "  debug:\n"
    "    verbosity: basic                 # quiet | basic | detailed\n"
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
    snprintf(cfg->health_endpoint, sizeof(cfg->health_endpoint), "%s", "0.0.0.0:13133");
    snprintf(cfg->metrics_endpoint, sizeof(cfg->metrics_endpoint), "%s", "0.0.0.0:8888");
    cfg->shutdown_timeout_ms = 20 * 1000;
    cfg->datadog.traces_enabled = 1;
    cfg->debug_verbosity = O2D_DEBUG_BASIC;
    cfg->log_level = O2D_LOG_INFO;
    snprintf(cfg->source, sizeof(cfg->source), "%s", "<embedded default>");
    snprintf(cfg->datadog.site, sizeof(cfg->datadog.site), "%s", "datadoghq.com");
    cfg->datadog.compute_stats_by_span_kind = 1;
    cfg->datadog.peer_tags_aggregation = 1;
    cfg->datadog.queue_max_bytes = 64 * (size_t)MIB;
    cfg->datadog.flush_interval_ms = 2000;
    cfg->datadog.max_elapsed_ms = 5 * 60 * 1000;
    cfg->datadog.llmobs.enabled = 1;
    cfg->datadog.llmobs.buffer_timeout_ms = 10 * 1000;
    cfg->datadog.llmobs.buffer_max_spans = 100000;
    cfg->datadog.llmobs.buffer_max_bytes = 64 * (size_t)MIB;
}

/* ---- the key table ---- */

enum key_type {
    KEY_SECTION,  /* a map, or null for an empty one; `off`, if any, is an int set to 1 */
    KEY_NAMES,    /* a sequence of names, checked for shape and otherwise ignored */
    KEY_STRING,   /* a char array */
    KEY_ENDPOINT, /* a char array holding host:port, [ipv6]:port or :port */
    KEY_UINT,     /* an unsigned field of 4 or 8 bytes: the value written times `scale` */
    KEY_DURATION, /* an int64_t of milliseconds */
    KEY_ENUM,     /* an int-sized field set from parse() */
    KEY_BOOL,     /* an int: true, false, 1 or 0 (o2d_config_parse_bool) */
    KEY_TAGS,     /* a char array holding DD_TAGS-style pairs, checked when read */
    KEY_STRINGS,  /* a sequence of strings into O2D_MAX_PATTERNS rows of 256 bytes */
    KEY_STRMAP,   /* a map of string to string into O2D_MAX_REMAPPINGS pairs of 128 bytes */
};

#define KEY_EMPTY_OK 1u /* KEY_STRING, KEY_ENDPOINT: "" is allowed and means off */
#define KEY_SECRET   2u /* KEY_STRING: never shown in a message */

struct key_row {
    const char *path; /* keys joined by '.'; "*" stands for any one key */
    enum key_type type;
    size_t off;                  /* into struct o2d_config, or NO_FIELD */
    size_t size;                 /* of the field */
    uint64_t min, max;           /* KEY_UINT in the unit written, KEY_DURATION in ms */
    uint64_t scale;              /* KEY_UINT: stored = written * scale */
    unsigned flags;              /* KEY_EMPTY_OK */
    int (*parse)(const char *s); /* KEY_ENUM: the value, -1 when unknown */
    const char *(*name)(int v);  /* KEY_ENUM: the inverse of parse, for writing */
    const char *choices;         /* KEY_ENUM: what parse() takes, for messages */
    size_t count_off;            /* KEY_STRINGS, KEY_STRMAP: the size_t entry count */
};

#define NO_FIELD ((size_t)-1)
#define FIELD(m) .off = offsetof(struct o2d_config, m), .size = sizeof(((struct o2d_config *)0)->m)

/* Row builders, so that the table reads one key per line. */
/* clang-format off */
#define SECTION(p)         {.path = (p), .type = KEY_SECTION, .off = NO_FIELD}
#define SECTION_FLAG(p, m) {.path = (p), .type = KEY_SECTION, FIELD(m)}
#define NAMES(p)           {.path = (p), .type = KEY_NAMES, .off = NO_FIELD}
#define ENDPOINT(p, m, fl) {.path = (p), .type = KEY_ENDPOINT, FIELD(m), .flags = (fl)}
#define UINT(p, m, lo, hi, sc) \
    {.path = (p), .type = KEY_UINT, FIELD(m), .min = (lo), .max = (hi), .scale = (sc)}
#define DURATION(p, m, lo) \
    {.path = (p), .type = KEY_DURATION, FIELD(m), .min = (lo), .max = DURATION_MAX_MS}
#define ENUM(p, m, fn, nm, ch) \
    {.path = (p), .type = KEY_ENUM, FIELD(m), .parse = (fn), .name = (nm), .choices = (ch)}
#define STRING(p, m, fl)   {.path = (p), .type = KEY_STRING, FIELD(m), .flags = (fl)}
#define BOOL(p, m)         {.path = (p), .type = KEY_BOOL, FIELD(m)}
#define TAGS(p, m)         {.path = (p), .type = KEY_TAGS, FIELD(m), .flags = KEY_EMPTY_OK}
/* clang-format on */

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

#define GRPC      "receivers.otlp.protocols.grpc"
#define HTTP      "receivers.otlp.protocols.http"
#define KEEPALIVE GRPC ".keepalive.server_parameters"

/* clang-format off */
static const struct key_row key_table[] = {
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
    UINT("receivers.otlp.memory_limit_mib", memory_limit, 1, 1048576, MIB),
    SECTION("extensions"),
    SECTION("extensions.health_check"),
    ENDPOINT("extensions.health_check.endpoint", health_endpoint, KEY_EMPTY_OK),
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
    {.path = "exporters.datadog.traces.span_name_remappings", .type = KEY_STRMAP,
     FIELD(remappings), .count_off = offsetof(struct o2d_config, n_remappings)},
    {.path = "exporters.datadog.traces.ignore_resources", .type = KEY_STRINGS,
     FIELD(ignore_resources), .count_off = offsetof(struct o2d_config, n_ignore_resources)},
    BOOL("exporters.datadog.traces.compute_stats_by_span_kind",
         datadog.compute_stats_by_span_kind),
    BOOL("exporters.datadog.traces.compute_top_level_by_span_kind",
         datadog.apm.compute_top_level_by_span_kind),
    BOOL("exporters.datadog.traces.peer_tags_aggregation", datadog.peer_tags_aggregation),
    DURATION("exporters.datadog.traces.flush_interval", datadog.flush_interval_ms, 100),
    SECTION("exporters.datadog.llmobs"),
    BOOL("exporters.datadog.llmobs.enabled", datadog.llmobs.enabled),
    STRING("exporters.datadog.llmobs.endpoint", datadog.llmobs.endpoint, KEY_EMPTY_OK),
    STRING("exporters.datadog.llmobs.ml_app", datadog.llmobs.ml_app, KEY_EMPTY_OK),
    {.path = "exporters.datadog.llmobs.ml_app_by_service", .type = KEY_STRMAP,
     FIELD(ml_app_by_service), .count_off = offsetof(struct o2d_config, n_ml_app_by_service)},
    SECTION("exporters.datadog.llmobs.trace_buffer"),
    DURATION("exporters.datadog.llmobs.trace_buffer.timeout", datadog.llmobs.buffer_timeout_ms,
             100),
    UINT("exporters.datadog.llmobs.trace_buffer.max_spans", datadog.llmobs.buffer_max_spans, 1,
         100000000, 1),
    UINT("exporters.datadog.llmobs.trace_buffer.max_size_mib", datadog.llmobs.buffer_max_bytes,
         1, 65536, MIB),
    SECTION("exporters.datadog.sending_queue"),
    UINT("exporters.datadog.sending_queue.max_size_mib", datadog.queue_max_bytes, 1, 65536,
         MIB),
    SECTION("exporters.datadog.retry_on_failure"),
    DURATION("exporters.datadog.retry_on_failure.max_elapsed_time", datadog.max_elapsed_ms,
             1000),
    SECTION_FLAG("exporters.debug", debug_section),
    ENUM("exporters.debug.verbosity", debug_verbosity, parse_verbosity, verbosity_name,
         "quiet, basic, normal, detailed"),
    SECTION("service"),
    /* service.extensions and service.pipelines are written as for the Collector; our one
     * pipeline is fixed, so they are only checked for shape. */
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

#define KEY_TABLE_LEN (sizeof(key_table) / sizeof(key_table[0]))

/* ---- the tree ---- */

enum node_kind { NODE_SCALAR, NODE_MAP, NODE_SEQ };

struct node {
    enum node_kind kind;
    int is_null;        /* a plain scalar that YAML reads as null: empty, ~ or null */
    unsigned long line; /* 1-based */
    const char *text;   /* NODE_SCALAR: in the arena, NUL-terminated after len bytes */
    size_t len;
    struct node *child; /* NODE_MAP: key, value, key, value, ... */
    struct node *last;
    struct node *next;
};

struct loader {
    const char *name; /* the file, for messages */
    char *err;
    size_t errlen;
    struct o2d_arena arena; /* the tree and expanded values; released in one step */
    size_t nodes;
    struct node *stack[TREE_DEPTH_MAX]; /* open maps and sequences while parsing */
    size_t depth;
    int documents;
    struct node *root;
    struct o2d_config cfg; /* the working copy, handed back only on success */
    char tags_scratch[O2D_MAX_TAGS][O2D_TAG_MAX + 1]; /* KEY_TAGS is parsed to check it */
};

static void vformat_err(char *err, size_t errlen, const char *name, unsigned long line,
                        const char *fmt, va_list ap)
{
    if (err == NULL || errlen == 0) {
        return;
    }
    int n =
        line ? snprintf(err, errlen, "%s:%lu: ", name, line) : snprintf(err, errlen, "%s: ", name);
    if (n >= 0 && (size_t)n < errlen) {
        vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
    }
}

static void format_err(char *err, size_t errlen, const char *name, unsigned long line,
                       const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static void format_err(char *err, size_t errlen, const char *name, unsigned long line,
                       const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vformat_err(err, errlen, name, line, fmt, ap);
    va_end(ap);
}

/* Writes "name:line: message" and returns O2D_ERR_CONFIG; line 0 leaves the line out. */
static int fail(struct loader *ld, unsigned long line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail(struct loader *ld, unsigned long line, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vformat_err(ld->err, ld->errlen, ld->name, line, fmt, ap);
    va_end(ap);
    return O2D_ERR_CONFIG;
}

static int fail_nomem(struct loader *ld)
{
    fail(ld, 0, "out of memory while reading the configuration");
    return O2D_ERR_NOMEM;
}

/* The user's text made fit for a one-line message: control bytes become '?', long text is
 * cut (not inside a UTF-8 sequence) and marked with "...". */
static const char *show(char out[SHOW_MAX + 4], const char *s, size_t len)
{
    size_t n = len;
    if (n > SHOW_MAX) {
        n = SHOW_MAX;
        while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80) {
            n--;
        }
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        out[i] = c < 0x20 || c == 0x7f ? '?' : (char)c;
    }
    if (n < len) {
        memcpy(out + n, "...", 3);
        n += 3;
    }
    out[n] = '\0';
    return out;
}

static const char *kind_name(const struct node *n)
{
    switch (n->kind) {
    case NODE_MAP:
        return "a map";
    case NODE_SEQ:
        return "a sequence";
    case NODE_SCALAR:
        break;
    }
    return n->is_null ? "nothing" : "a single value";
}

static int is_digit(int c)
{
    return c >= '0' && c <= '9';
}

static int is_alpha(int c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int is_null_scalar(const yaml_event_t *ev)
{
    const char *v = (const char *)ev->data.scalar.value;
    size_t len = ev->data.scalar.length;
    if (ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE) {
        return 0;
    }
    return len == 0 || (len == 1 && v[0] == '~') ||
           (len == 4 &&
            (memcmp(v, "null", 4) == 0 || memcmp(v, "Null", 4) == 0 || memcmp(v, "NULL", 4) == 0));
}

static int add_node(struct loader *ld, enum node_kind kind, const yaml_event_t *ev)
{
    unsigned long line = (unsigned long)ev->start_mark.line + 1;
    if (ld->nodes >= TREE_NODES_MAX) {
        return fail(ld, line, "more than %d YAML nodes", TREE_NODES_MAX);
    }
    if (kind != NODE_SCALAR && ld->depth >= TREE_DEPTH_MAX) {
        return fail(ld, line, "nested deeper than %d levels", TREE_DEPTH_MAX);
    }
    struct node *n = o2d_arena_alloc(&ld->arena, sizeof(*n));
    if (n == NULL) {
        return fail_nomem(ld);
    }
    memset(n, 0, sizeof(*n));
    n->kind = kind;
    n->line = line;
    if (kind == NODE_SCALAR) {
        n->len = ev->data.scalar.length;
        n->text = o2d_arena_strndup(&ld->arena, (const char *)ev->data.scalar.value, n->len);
        if (n->text == NULL) {
            return fail_nomem(ld);
        }
        n->is_null = is_null_scalar(ev);
    }
    ld->nodes++;
    if (ld->depth == 0) {
        ld->root = n;
    } else {
        struct node *parent = ld->stack[ld->depth - 1];
        if (parent->last != NULL) {
            parent->last->next = n;
        } else {
            parent->child = n;
        }
        parent->last = n;
    }
    if (kind != NODE_SCALAR) {
        ld->stack[ld->depth++] = n;
    }
    return O2D_OK;
}

static int take_event(struct loader *ld, const yaml_event_t *ev)
{
    unsigned long line = (unsigned long)ev->start_mark.line + 1;
    char a[SHOW_MAX + 4];
    switch (ev->type) {
    case YAML_DOCUMENT_START_EVENT:
        if (++ld->documents > 1) {
            return fail(ld, line, "only one YAML document is allowed");
        }
        return O2D_OK;
    case YAML_ALIAS_EVENT:
        /* Aliases would let a small file expand into a large tree. */
        return fail(ld, line, "YAML aliases (*%s) are not supported",
                    show(a, (const char *)ev->data.alias.anchor,
                         strlen((const char *)ev->data.alias.anchor)));
    case YAML_SCALAR_EVENT:
        return add_node(ld, NODE_SCALAR, ev);
    case YAML_MAPPING_START_EVENT:
        return add_node(ld, NODE_MAP, ev);
    case YAML_SEQUENCE_START_EVENT:
        return add_node(ld, NODE_SEQ, ev);
    case YAML_MAPPING_END_EVENT:
    case YAML_SEQUENCE_END_EVENT:
        ld->depth--;
        return O2D_OK;
    default:
        return O2D_OK;
    }
}

static unsigned long line_at(const char *s, size_t len, size_t offset)
{
    unsigned long line = 1;
    for (size_t i = 0; i < offset && i < len; i++) {
        line += s[i] == '\n';
    }
    return line;
}

static int yaml_failed(struct loader *ld, const yaml_parser_t *p, const char *yaml, size_t len)
{
    const char *problem = p->problem ? p->problem : "cannot be parsed";
    if (p->error == YAML_MEMORY_ERROR) {
        return fail_nomem(ld);
    }
    if (p->error == YAML_READER_ERROR) {
        return fail(ld, line_at(yaml, len, p->problem_offset), "invalid YAML: %s", problem);
    }
    unsigned long line = (unsigned long)p->problem_mark.line + 1;
    if (p->context != NULL) {
        return fail(ld, line, "invalid YAML: %s (%s at line %lu)", problem, p->context,
                    (unsigned long)p->context_mark.line + 1);
    }
    return fail(ld, line, "invalid YAML: %s", problem);
}

static int parse_tree(struct loader *ld, const char *yaml, size_t len)
{
    yaml_parser_t parser;
    yaml_event_t ev;
    int rc = O2D_OK;
    int end = 0;

    if (!yaml_parser_initialize(&parser)) {
        return fail_nomem(ld);
    }
    yaml_parser_set_input_string(&parser, (const unsigned char *)yaml, len);
    while (rc == O2D_OK && !end) {
        if (!yaml_parser_parse(&parser, &ev)) {
            rc = yaml_failed(ld, &parser, yaml, len);
            break;
        }
        rc = take_event(ld, &ev);
        end = ev.type == YAML_STREAM_END_EVENT;
        yaml_event_delete(&ev);
    }
    yaml_parser_delete(&parser);
    return rc;
}

/* ---- matching keys against the table ---- */

/* Does the pattern pat[0..plen) ("a.*.b") name the path ("a.x.b")? */
static int pattern_matches(const char *pat, size_t plen, const char *path)
{
    size_t alen = strlen(path);
    size_t i = 0;
    size_t j = 0;
    for (;;) {
        if (i == plen || j == alen) {
            return i == plen && j == alen;
        }
        size_t pe = i;
        while (pe < plen && pat[pe] != '.') {
            pe++;
        }
        size_t ae = j;
        while (ae < alen && path[ae] != '.') {
            ae++;
        }
        int star = pe - i == 1 && pat[i] == '*';
        if (!star && (pe - i != ae - j || memcmp(pat + i, path + j, pe - i) != 0)) {
            return 0;
        }
        i = pe < plen ? pe + 1 : pe;
        j = ae < alen ? ae + 1 : ae;
    }
}

/* If the row is a key directly under `path`, its last segment ("*" for any); else NULL. */
static const char *row_leaf_under(const struct key_row *row, const char *path)
{
    const char *dot = strrchr(row->path, '.');
    if (dot == NULL) {
        return path[0] == '\0' ? row->path : NULL;
    }
    return pattern_matches(row->path, (size_t)(dot - row->path), path) ? dot + 1 : NULL;
}

static const struct key_row *find_row(const char *path, const struct node *key)
{
    const struct key_row *any = NULL;
    if (key->len == 0 || strlen(key->text) != key->len || strchr(key->text, '.') != NULL) {
        return NULL;
    }
    for (size_t i = 0; i < KEY_TABLE_LEN; i++) {
        const char *leaf = row_leaf_under(&key_table[i], path);
        if (leaf == NULL) {
            continue;
        }
        if (strcmp(leaf, key->text) == 0) {
            return &key_table[i];
        }
        if (strcmp(leaf, "*") == 0) {
            any = &key_table[i];
        }
    }
    return any;
}

/* Levenshtein distance, for "did you mean"; long words are simply far apart. */
static size_t edit_distance(const char *a, size_t alen, const char *b)
{
    size_t blen = strlen(b);
    size_t row[SHOW_MAX + 1];
    if (alen > SHOW_MAX || blen > SHOW_MAX) {
        return SIZE_MAX;
    }
    for (size_t j = 0; j <= blen; j++) {
        row[j] = j;
    }
    for (size_t i = 1; i <= alen; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= blen; j++) {
            size_t up = row[j];
            size_t best = diag + (a[i - 1] != b[j - 1]);
            if (up + 1 < best) {
                best = up + 1;
            }
            if (row[j - 1] + 1 < best) {
                best = row[j - 1] + 1;
            }
            row[j] = best;
            diag = up;
        }
    }
    return row[blen];
}

static int unknown_key(struct loader *ld, const char *path, const struct node *key)
{
    char k[SHOW_MAX + 4];
    char where[PATH_BUF + 8];
    char expected[512];
    size_t elen = 0;
    const char *best = NULL;
    size_t best_d = 3; /* suggest within an edit distance of 2 */

    expected[0] = '\0';
    for (size_t i = 0; i < KEY_TABLE_LEN; i++) {
        const char *leaf = row_leaf_under(&key_table[i], path);
        if (leaf == NULL || strcmp(leaf, "*") == 0) {
            continue;
        }
        size_t d = edit_distance(key->text, key->len, leaf);
        if (d < best_d) {
            best_d = d;
            best = leaf;
        }
        int n = snprintf(expected + elen, sizeof(expected) - elen, "%s%s", elen ? ", " : "", leaf);
        if (n > 0 && (size_t)n < sizeof(expected) - elen) {
            elen += (size_t)n;
        }
    }
    if (path[0] != '\0') {
        snprintf(where, sizeof(where), "under %s", path);
    } else {
        snprintf(where, sizeof(where), "at the top level");
    }
    show(k, key->text, key->len);
    if (best != NULL) {
        return fail(ld, key->line, "unknown key '%s' %s; did you mean '%s'?", k, where, best);
    }
    return fail(ld, key->line, "unknown key '%s' %s; expected one of: %s", k, where, expected);
}

/* ---- values ---- */

static void store_uint(struct o2d_config *cfg, const struct key_row *row, uint64_t v)
{
    char *field = (char *)cfg + row->off;
    if (row->size == sizeof(uint64_t)) {
        uint64_t x = v;
        memcpy(field, &x, sizeof(x));
    } else if (row->size == sizeof(uint32_t)) {
        uint32_t x = (uint32_t)v;
        memcpy(field, &x, sizeof(x));
    }
}

/* Resolves the inside of one ${...} into *out / *outlen (borrowed from the environment or
 * from the value itself). */
static int resolve_ref(struct loader *ld, unsigned long line, const char *key, int secret,
                       const char *ref, size_t rlen, const char **out, size_t *outlen)
{
    char a[SHOW_MAX + 4];
    char name[ENV_NAME_MAX + 1];
    const char *p = ref;
    size_t plen = rlen;
    const char *def = NULL;
    size_t dlen = 0;

    /* The Collector's default scheme is env: ${NAME} is ${env:NAME}. */
    if (rlen >= 4 && memcmp(ref, "env:", 4) == 0) {
        p += 4;
        plen -= 4;
    } else if (memchr(ref, ':', rlen) != NULL) {
        return fail(ld, line,
                    "%s: '${%s}' is not supported; use ${env:NAME} or ${env:NAME:-default}", key,
                    secret ? "<secret>" : show(a, ref, rlen));
    }
    for (size_t i = 0; i + 1 < plen; i++) {
        if (p[i] == ':' && p[i + 1] == '-') {
            def = p + i + 2;
            dlen = plen - i - 2;
            plen = i;
            break;
        }
    }
    int ok = plen > 0 && plen <= ENV_NAME_MAX && (is_alpha(p[0]) || p[0] == '_');
    for (size_t i = 0; ok && i < plen; i++) {
        ok = is_alpha(p[i]) || is_digit(p[i]) || p[i] == '_';
    }
    if (!ok) {
        return fail(ld, line, "%s: '%s' is not a valid environment variable name", key,
                    secret ? "<secret>" : show(a, p, plen));
    }
    memcpy(name, p, plen);
    name[plen] = '\0';
    const char *v = getenv(name);
    if (v != NULL) {
        *out = v;
        *outlen = strlen(v);
    } else if (def != NULL) {
        *out = def;
        *outlen = dlen;
    } else {
        /* As the Collector: an unset variable without a default is the empty string. */
        *out = "";
        *outlen = 0;
    }
    return O2D_OK;
}

/* Expands ${env:NAME}, ${env:NAME:-default} and $$ (a literal $) in s[0..len). A secret's
 * text is never quoted in a message: a key written inline may sit inside a broken ${. */
static int expand_env(struct loader *ld, unsigned long line, const char *key, const char *s,
                      size_t len, int secret, const char **out)
{
    struct o2d_buf b;
    int rc = O2D_OK;
    size_t i = 0;

    o2d_buf_init(&b, VALUE_MAX);
    while (i < len && rc == O2D_OK) {
        const char *piece = s + i;
        size_t plen = 1;
        if (s[i] == '$' && i + 1 < len && s[i + 1] == '$') {
            i += 2;
        } else if (s[i] == '$' && i + 1 < len && s[i + 1] == '{') {
            const char *close = memchr(s + i + 2, '}', len - i - 2);
            if (close == NULL) {
                rc = fail(ld, line, "%s: '${' without a closing '}'", key);
                break;
            }
            rc = resolve_ref(ld, line, key, secret, s + i + 2, (size_t)(close - s) - i - 2, &piece,
                             &plen);
            i = (size_t)(close - s) + 1;
        } else {
            i++;
        }
        if (rc == O2D_OK) {
            rc = o2d_buf_append(&b, piece, plen);
        }
    }
    if (rc == O2D_ERR_TOO_LARGE) {
        rc =
            fail(ld, line, "%s is longer than %d bytes after ${env:...} expansion", key, VALUE_MAX);
    } else if (rc == O2D_ERR_NOMEM) {
        rc = fail_nomem(ld);
    }
    if (rc == O2D_OK) {
        *out = o2d_arena_strndup(&ld->arena, b.data ? (const char *)b.data : "", b.len);
        if (*out == NULL) {
            rc = fail_nomem(ld);
        }
    }
    o2d_buf_cleanup(&b);
    return rc;
}

/* Decimal digits only, as YAML 1.2 and the Collector read a plain integer; saturates. */
static int parse_uint(const char *s, uint64_t *out)
{
    uint64_t v = 0;
    if (*s == '\0') {
        return -1;
    }
    for (; *s; s++) {
        if (!is_digit(*s)) {
            return -1;
        }
        unsigned d = (unsigned)(*s - '0');
        v = v > (UINT64_MAX - d) / 10 ? UINT64_MAX : v * 10 + d;
    }
    *out = v;
    return 0;
}

/* A Go-style duration restricted to whole numbers of ms, s, m and h ("1m30s"), or a bare
 * 0; in milliseconds, saturating. */
static int parse_duration(const char *s, uint64_t *ms)
{
    uint64_t total = 0;
    if (strcmp(s, "0") == 0) {
        *ms = 0;
        return 0;
    }
    if (*s == '\0') {
        return -1;
    }
    while (*s) {
        uint64_t n = 0;
        uint64_t unit;
        if (!is_digit(*s)) {
            return -1;
        }
        for (; is_digit(*s); s++) {
            unsigned d = (unsigned)(*s - '0');
            n = n > (UINT64_MAX - d) / 10 ? UINT64_MAX : n * 10 + d;
        }
        if (s[0] == 'm' && s[1] == 's') {
            unit = 1;
            s += 2;
        } else if (*s == 's' || *s == 'm' || *s == 'h') {
            unit = *s == 's' ? 1000 : *s == 'm' ? 60000 : 3600000;
            s++;
        } else {
            return -1;
        }
        n = n > UINT64_MAX / unit ? UINT64_MAX : n * unit;
        total = total > UINT64_MAX - n ? UINT64_MAX : total + n;
    }
    *ms = total;
    return 0;
}

static const char *format_duration(char *out, size_t outlen, uint64_t ms)
{
    if (ms == 0) {
        snprintf(out, outlen, "0s");
    } else if (ms % 3600000 == 0) {
        snprintf(out, outlen, "%lluh", (unsigned long long)(ms / 3600000));
    } else if (ms % 60000 == 0) {
        snprintf(out, outlen, "%llum", (unsigned long long)(ms / 60000));
    } else if (ms % 1000 == 0) {
        snprintf(out, outlen, "%llus", (unsigned long long)(ms / 1000));
    } else {
        snprintf(out, outlen, "%llums", (unsigned long long)ms);
    }
    return out;
}

/* host:port, [ipv6]:port or :port, port 0..65535 (0 asks the system for a free port). */
static int endpoint_valid(const char *s)
{
    const char *colon;
    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        if (close == NULL || close == s + 1 || close[1] != ':') {
            return 0;
        }
        for (const char *p = s + 1; p < close; p++) {
            if (!(is_alpha(*p) || is_digit(*p) || *p == ':' || *p == '.' || *p == '%')) {
                return 0;
            }
        }
        colon = close + 1;
    } else {
        colon = strrchr(s, ':');
        if (colon == NULL) {
            return 0;
        }
        for (const char *p = s; p < colon; p++) {
            if (!(is_alpha(*p) || is_digit(*p) || *p == '.' || *p == '-' || *p == '_')) {
                return 0;
            }
        }
    }
    uint64_t port;
    size_t digits = strlen(colon + 1);
    return digits >= 1 && digits <= 5 && parse_uint(colon + 1, &port) == 0 && port <= 65535;
}

int o2d_config_parse_bool(const char *s)
{
    /* ddtrace's asbool takes "true" and "1" in any case and reads anything else as false;
     * we take its two spellings of each and refuse the rest, because "yes" or "on" would
     * mean false under ddtrace and true to a YAML 1.1 reader: neither guess is safe. */
    if (strcasecmp(s, "true") == 0 || strcmp(s, "1") == 0) {
        return 1;
    }
    if (strcasecmp(s, "false") == 0 || strcmp(s, "0") == 0) {
        return 0;
    }
    return -1;
}

static int is_blank(int c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

/* Follows dd-trace-py ddtrace/internal/utils/formats.py parse_tags_str. */
int o2d_config_parse_tags(const char *s, char kv[O2D_MAX_TAGS][O2D_TAG_MAX + 1], size_t *n,
                          char *why, size_t whylen)
{
    char a[SHOW_MAX + 4];
    char sep = strchr(s, ',') != NULL ? ',' : ' ';
    *n = 0;
    while (*s) {
        const char *end = strchr(s, sep);
        const char *next = end != NULL ? end + 1 : s + strlen(s);
        if (end == NULL) {
            end = next;
        }
        while (s < end && is_blank((unsigned char)*s)) {
            s++;
        }
        while (end > s && is_blank((unsigned char)end[-1])) {
            end--;
        }
        size_t len = (size_t)(end - s);
        const char *colon = memchr(s, ':', len);
        const char *kend = colon != NULL ? colon : end;
        const char *v = colon != NULL ? colon + 1 : end;
        while (kend > s && is_blank((unsigned char)kend[-1])) {
            kend--;
        }
        while (v < end && is_blank((unsigned char)*v)) {
            v++;
        }
        size_t klen = (size_t)(kend - s);
        size_t vlen = (size_t)(end - v);
        for (size_t i = 0; i < len; i++) {
            if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) {
                snprintf(why, whylen, "'%s' holds a control character", show(a, s, len));
                return O2D_ERR_CONFIG;
            }
        }
        if (klen > 0) {
            if (klen + 1 + vlen > O2D_TAG_MAX) {
                snprintf(why, whylen, "'%s' is longer than %d bytes", show(a, s, len), O2D_TAG_MAX);
                return O2D_ERR_CONFIG;
            }
            size_t i = 0;
            /* A later key replaces an earlier one, as in ddtrace's dict. */
            while (i < *n && !(strncmp(kv[i], s, klen) == 0 && kv[i][klen] == ':')) {
                i++;
            }
            if (i == O2D_MAX_TAGS) {
                snprintf(why, whylen, "more than %d key:value pairs", O2D_MAX_TAGS);
                return O2D_ERR_CONFIG;
            }
            memcpy(kv[i], s, klen);
            kv[i][klen] = ':';
            memcpy(kv[i] + klen + 1, v, vlen);
            kv[i][klen + 1 + vlen] = '\0';
            if (i == *n) {
                (*n)++;
            }
        }
        s = next;
    }
    return O2D_OK;
}

/* What a row takes, for messages: "<key> must be <this>". */
static const char *expectation(const struct key_row *row, char *out, size_t outlen)
{
    char lo[32];
    char hi[32];
    switch (row->type) {
    case KEY_SECTION:
        return "a map";
    case KEY_NAMES:
        return "a sequence of names";
    case KEY_STRING:
        return "a string";
    case KEY_ENDPOINT:
        return row->flags & KEY_EMPTY_OK
                   ? "host:port, [ipv6]:port or :port (port 0-65535), or empty for off"
                   : "host:port, [ipv6]:port or :port (port 0-65535)";
    case KEY_UINT:
        return row->min > 0 ? "a positive integer" : "a non-negative integer";
    case KEY_DURATION:
        snprintf(out, outlen, "a duration from %s to %s such as 500ms, 30s, 5m or 1h",
                 format_duration(lo, sizeof(lo), row->min),
                 format_duration(hi, sizeof(hi), row->max));
        return out;
    case KEY_ENUM:
        snprintf(out, outlen, "one of %s", row->choices);
        return out;
    case KEY_BOOL:
        return "true, false, 1 or 0";
    case KEY_TAGS:
        return "key:value pairs separated by commas or blanks";
    case KEY_STRINGS:
        return "a sequence of strings";
    case KEY_STRMAP:
        return "a map of names to names";
    }
    return "a value";
}

static int store_text(struct loader *ld, const struct key_row *row, const struct node *key,
                      unsigned long line, const char *v)
{
    char a[SHOW_MAX + 4];
    size_t len = strlen(v);
    if (len >= row->size) {
        return fail(ld, line, "%s must be shorter than %zu bytes, got '%s'", key->text, row->size,
                    row->flags & KEY_SECRET ? "<secret>" : show(a, v, len));
    }
    memcpy((char *)&ld->cfg + row->off, v, len + 1);
    return O2D_OK;
}

static int apply_value(struct loader *ld, const struct key_row *row, const struct node *key,
                       const struct node *v)
{
    char a[SHOW_MAX + 4];
    char what[128];
    char lower[32];
    unsigned long line = v->is_null ? key->line : v->line;
    const char *s;
    uint64_t n;

    if (v->kind != NODE_SCALAR) {
        return fail(ld, key->line, "%s must be %s, got %s", key->text,
                    expectation(row, what, sizeof(what)), kind_name(v));
    }
    if (!v->is_null && strlen(v->text) != v->len) {
        return fail(ld, line, "%s must not contain a NUL byte", key->text);
    }
    int rc = expand_env(ld, line, key->text, v->is_null ? "" : v->text, v->is_null ? 0 : v->len,
                        (row->flags & KEY_SECRET) != 0, &s);
    if (rc != O2D_OK) {
        return rc;
    }
    if (row->flags & KEY_SECRET) {
        snprintf(a, sizeof(a), "<secret>");
    } else {
        show(a, s, strlen(s));
    }
    switch (row->type) {
    case KEY_ENDPOINT:
        if (!(s[0] == '\0' && (row->flags & KEY_EMPTY_OK)) && !endpoint_valid(s)) {
            return fail(ld, line, "%s must be %s, got '%s'", key->text,
                        expectation(row, what, sizeof(what)), a);
        }
        return store_text(ld, row, key, line, s);
    case KEY_STRING:
        if (s[0] == '\0' && !(row->flags & KEY_EMPTY_OK)) {
            return fail(ld, line, "%s must not be empty", key->text);
        }
        return store_text(ld, row, key, line, s);
    case KEY_UINT:
        if (parse_uint(s, &n) != 0) {
            return fail(ld, line, "%s must be %s, got '%s'", key->text,
                        expectation(row, what, sizeof(what)), a);
        }
        if (n < row->min || n > row->max) {
            return fail(ld, line, "%s must be between %llu and %llu, got '%s'", key->text,
                        (unsigned long long)row->min, (unsigned long long)row->max, a);
        }
        store_uint(&ld->cfg, row, n * row->scale);
        return O2D_OK;
    case KEY_DURATION:
        if (parse_duration(s, &n) != 0 || n < row->min || n > row->max) {
            return fail(ld, line, "%s must be %s, got '%s'", key->text,
                        expectation(row, what, sizeof(what)), a);
        }
        store_uint(&ld->cfg, row, n);
        return O2D_OK;
    case KEY_ENUM: {
        size_t len = strlen(s);
        int e = -1;
        /* Case does not matter, as for the Collector's levels. */
        if (len < sizeof(lower)) {
            for (size_t i = 0; i <= len; i++) {
                lower[i] = s[i] >= 'A' && s[i] <= 'Z' ? (char)(s[i] - 'A' + 'a') : s[i];
            }
            e = row->parse(lower);
        }
        if (e < 0) {
            return fail(ld, line, "%s must be %s, got '%s'", key->text,
                        expectation(row, what, sizeof(what)), a);
        }
        store_uint(&ld->cfg, row, (uint64_t)e);
        return O2D_OK;
    }
    case KEY_BOOL: {
        int b = o2d_config_parse_bool(s);
        if (b < 0) {
            return fail(ld, line, "%s must be %s, got '%s'", key->text,
                        expectation(row, what, sizeof(what)), a);
        }
        store_uint(&ld->cfg, row, (uint64_t)b);
        return O2D_OK;
    }
    case KEY_TAGS: {
        char why[160];
        size_t count;
        if (o2d_config_parse_tags(s, ld->tags_scratch, &count, why, sizeof(why)) != O2D_OK) {
            return fail(ld, line, "%s: %s", key->text, why);
        }
        return store_text(ld, row, key, line, s);
    }
    case KEY_SECTION:
    case KEY_NAMES:
    case KEY_STRINGS:
    case KEY_STRMAP:
        break;
    }
    return fail(ld, line, "%s: internal error: no reader for this key", key->text);
}

/* One scalar of a list or map, env-expanded, into dst[0..size). */
static int store_item(struct loader *ld, const char *path, const struct node *e, char *dst,
                      size_t size)
{
    char a[SHOW_MAX + 4];
    const char *s;
    if (e->kind != NODE_SCALAR || e->is_null) {
        return fail(ld, e->line, "%s must hold strings, got %s in it", path, kind_name(e));
    }
    if (strlen(e->text) != e->len) {
        return fail(ld, e->line, "%s must not contain a NUL byte", path);
    }
    int rc = expand_env(ld, e->line, path, e->text, e->len, 0, &s);
    if (rc != O2D_OK) {
        return rc;
    }
    size_t len = strlen(s);
    if (len == 0 || len >= size) {
        return fail(ld, e->line, "%s entries must be 1 to %zu bytes, got '%s'", path, size - 1,
                    show(a, s, len));
    }
    memcpy(dst, s, len + 1);
    return O2D_OK;
}

/* traces.ignore_resources: a sequence of regular expressions (compiled in prepare). */
static int apply_strings(struct loader *ld, const struct key_row *row, const char *path,
                         const struct node *key, const struct node *v)
{
    char(*rows)[256] = (char(*)[256])((char *)&ld->cfg + row->off);
    size_t *count = (size_t *)((char *)&ld->cfg + row->count_off);
    *count = 0;
    if (v->kind == NODE_SCALAR && v->is_null) {
        return O2D_OK;
    }
    if (v->kind != NODE_SEQ) {
        return fail(ld, key->line, "%s must be a sequence of strings, got %s", path, kind_name(v));
    }
    for (const struct node *e = v->child; e != NULL; e = e->next) {
        if (*count == O2D_MAX_PATTERNS) {
            return fail(ld, e->line, "%s takes at most %d entries", path, O2D_MAX_PATTERNS);
        }
        int rc = store_item(ld, path, e, rows[*count], sizeof(rows[0]));
        if (rc != O2D_OK) {
            return rc;
        }
        (*count)++;
    }
    return O2D_OK;
}

/* traces.span_name_remappings: a map of operation name to new name. */
static int apply_strmap(struct loader *ld, const struct key_row *row, const char *path,
                        const struct node *key, const struct node *v)
{
    char(*pairs)[2][128] = (char(*)[2][128])((char *)&ld->cfg + row->off);
    size_t *count = (size_t *)((char *)&ld->cfg + row->count_off);
    *count = 0;
    if (v->kind == NODE_SCALAR && v->is_null) {
        return O2D_OK;
    }
    if (v->kind != NODE_MAP) {
        return fail(ld, key->line, "%s must be a map of names to names, got %s", path,
                    kind_name(v));
    }
    for (const struct node *k = v->child; k != NULL && k->next != NULL; k = k->next->next) {
        size_t i = *count;
        if (i == O2D_MAX_REMAPPINGS) {
            return fail(ld, k->line, "%s takes at most %d entries", path, O2D_MAX_REMAPPINGS);
        }
        int rc = store_item(ld, path, k, pairs[i][0], sizeof(pairs[i][0]));
        if (rc == O2D_OK) {
            rc = store_item(ld, path, k->next, pairs[i][1], sizeof(pairs[i][1]));
        }
        if (rc != O2D_OK) {
            return rc;
        }
        (*count)++;
    }
    return O2D_OK;
}

static int check_names(struct loader *ld, const char *path, const struct node *key,
                       const struct node *v)
{
    if (v->kind == NODE_SCALAR && v->is_null) {
        return O2D_OK;
    }
    if (v->kind != NODE_SEQ) {
        return fail(ld, key->line, "%s must be a sequence of names, got %s", path, kind_name(v));
    }
    for (const struct node *e = v->child; e != NULL; e = e->next) {
        if (e->kind != NODE_SCALAR || e->is_null) {
            return fail(ld, e->line, "%s must be a sequence of names, got %s in it", path,
                        kind_name(e));
        }
    }
    return O2D_OK;
}

static int walk_map(struct loader *ld, const struct node *map, const char *path);

static int apply_section(struct loader *ld, const struct key_row *row, const char *path,
                         const struct node *key, const struct node *v)
{
    if (!(v->kind == NODE_MAP || (v->kind == NODE_SCALAR && v->is_null))) {
        return fail(ld, key->line, "%s must be a map, got %s", path, kind_name(v));
    }
    if (row->off != NO_FIELD) {
        store_uint(&ld->cfg, row, 1);
    }
    /* As in the Collector, a section that lists its parts turns off those it leaves out
     * (protocols without grpc: no gRPC). */
    for (size_t i = 0; i < KEY_TABLE_LEN; i++) {
        const struct key_row *r = &key_table[i];
        if (r->type == KEY_SECTION && r->off != NO_FIELD && row_leaf_under(r, path) != NULL) {
            store_uint(&ld->cfg, r, 0);
        }
    }
    return v->kind == NODE_MAP ? walk_map(ld, v, path) : O2D_OK;
}

static int walk_map(struct loader *ld, const struct node *map, const char *path)
{
    char a[SHOW_MAX + 4];
    char child[PATH_BUF];
    for (const struct node *k = map->child; k != NULL && k->next != NULL; k = k->next->next) {
        const struct node *v = k->next;
        int rc;
        if (k->kind != NODE_SCALAR || k->is_null) {
            return fail(ld, k->line, "keys %s%s must be names, got %s", path[0] ? "under " : "",
                        path[0] ? path : "at the top level", kind_name(k));
        }
        for (const struct node *p = map->child; p != k; p = p->next->next) {
            if (p->kind == NODE_SCALAR && p->len == k->len &&
                memcmp(p->text, k->text, k->len) == 0) {
                return fail(ld, k->line, "duplicate key '%s' %s%s (first at line %lu)",
                            show(a, k->text, k->len), path[0] ? "under " : "",
                            path[0] ? path : "at the top level", p->line);
            }
        }
        const struct key_row *row = find_row(path, k);
        if (row == NULL) {
            return unknown_key(ld, path, k);
        }
        int n = snprintf(child, sizeof(child), "%s%s%s", path, path[0] ? "." : "", k->text);
        if (n < 0 || (size_t)n >= sizeof(child)) {
            return fail(ld, k->line, "key '%s' makes a path longer than %d bytes",
                        show(a, k->text, k->len), PATH_BUF - 1);
        }
        switch (row->type) {
        case KEY_SECTION:
            rc = apply_section(ld, row, child, k, v);
            break;
        case KEY_NAMES:
            rc = check_names(ld, child, k, v);
            break;
        case KEY_STRINGS:
            rc = apply_strings(ld, row, child, k, v);
            break;
        case KEY_STRMAP:
            rc = apply_strmap(ld, row, child, k, v);
            break;
        default:
            rc = apply_value(ld, row, k, v);
            break;
        }
        if (rc != O2D_OK) {
            return rc;
        }
    }
    return O2D_OK;
}

/* The node at a path of plain keys, or NULL. */
static const struct node *find_node(const struct node *n, const char *path)
{
    while (n != NULL && *path) {
        const char *dot = strchr(path, '.');
        size_t len = dot ? (size_t)(dot - path) : strlen(path);
        const struct node *k = NULL;
        if (n->kind != NODE_MAP) {
            return NULL;
        }
        for (k = n->child; k != NULL && k->next != NULL; k = k->next->next) {
            if (k->kind == NODE_SCALAR && k->len == len && memcmp(k->text, path, len) == 0) {
                break;
            }
        }
        n = k != NULL ? k->next : NULL;
        path += len + (dot != NULL);
    }
    return n;
}

static int check_whole(struct loader *ld)
{
    if (!ld->cfg.grpc.enabled && !ld->cfg.http.enabled) {
        const struct node *p = find_node(ld->root, "receivers.otlp.protocols");
        return fail(ld, p ? p->line : 0, "receivers.otlp.protocols must enable grpc, http or both");
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
        format_err(err, errlen, name, 0, "out of memory while reading the configuration");
        return O2D_ERR_NOMEM;
    }
    ld->name = name;
    ld->err = err;
    ld->errlen = errlen;
    ld->cfg = *cfg;
    o2d_arena_init(&ld->arena, TREE_BYTES_MAX);
    if (len > CONFIG_SIZE_MAX) {
        rc = fail(ld, 0, "larger than %d bytes", CONFIG_SIZE_MAX);
        goto out;
    }
    rc = parse_tree(ld, yaml, len);
    if (rc != O2D_OK) {
        goto out;
    }
    if (ld->root != NULL && ld->root->kind == NODE_MAP) {
        rc = walk_map(ld, ld->root, "");
    } else if (ld->root != NULL && !ld->root->is_null) {
        /* An empty file, or one with only comments, keeps every default. */
        rc = fail(ld, ld->root->line, "the top level must be a map, got %s", kind_name(ld->root));
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
        format_err(err, errlen, path, 0, "cannot open: %s", strerror(errno));
        goto out;
    }
    for (;;) {
        size_t n = fread(chunk, 1, sizeof(chunk), f);
        int saved = errno;
        if (n > 0) {
            int s = o2d_buf_append(&b, chunk, n);
            if (s == O2D_ERR_TOO_LARGE) {
                format_err(err, errlen, path, 0, "larger than %d bytes", CONFIG_SIZE_MAX);
                goto out;
            }
            if (s != O2D_OK) {
                format_err(err, errlen, path, 0, "out of memory while reading the configuration");
                rc = O2D_ERR_NOMEM;
                goto out;
            }
        }
        if (n < sizeof(chunk)) {
            if (ferror(f)) {
                format_err(err, errlen, path, 0, "cannot read: %s", strerror(saved));
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
    int rv = path != NULL ? o2d_config_load_file(cfg, path, err, errlen)
                          : o2d_config_load_string(cfg, "<embedded default>", o2d_config_embedded,
                                                   strlen(o2d_config_embedded), err, errlen);
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
                 show(a, v, strlen(v)));
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

    struct datadog_llmobs_config *lo = &dd->llmobs;
    env_default("DD_LLMOBS_ML_APP", lo->ml_app, sizeof(lo->ml_app));
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

    /* The embedded default spells out exporters.debug only to document it: with a key,
     * Datadog alone runs. A file that names exporters.debug keeps it next to Datadog. */
    int embedded = strcmp(cfg->source, "<embedded default>") == 0;
    if (embedded) {
        cfg->debug_section = 0;
    }
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
    return O2D_OK;
}

void o2d_config_cleanup(struct o2d_config *cfg)
{
    for (size_t i = 0; i < cfg->n_ignore_re; i++) {
        regfree(&cfg->ignore_re[i]);
    }
    cfg->n_ignore_re = 0;
    cfg->datadog.apm.ignore_resources = NULL;
    cfg->datadog.apm.n_ignore_resources = 0;
}

/* ---- writing the effective configuration ---- */

static int word_is(const char *s, const char *w)
{
    return strcasecmp(s, w) == 0;
}

/* Would a YAML reader take s, written plain, as something else than this string? */
static int needs_quotes(const char *s)
{
    size_t len = strlen(s);
    if (len == 0 || strchr("-?:,[]{}#&*!|>'\"%@` \t", s[0]) != NULL || is_blank(s[len - 1]) ||
        s[len - 1] == ':' || strstr(s, ": ") != NULL || strstr(s, " #") != NULL) {
        return 1;
    }
    for (size_t i = 0; i < len; i++) {
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) {
            return 1;
        }
    }
    static const char *const words[] = {"true", "false", "yes",  "no", "on",   "off",
                                        "y",    "n",     "null", "~",  ".inf", ".nan"};
    for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++) {
        if (word_is(s, words[i])) {
            return 1;
        }
    }
    /* Anything a reader could take for a number: digits with signs, dots, exponents. */
    size_t digits = 0;
    for (size_t i = 0; i < len; i++) {
        if (is_digit(s[i])) {
            digits++;
        } else if (!strchr("+-._eExXoOabcdefABCDEF", s[i])) {
            return 0;
        }
    }
    return digits > 0;
}

/* A string value: quoted when needed, '$' doubled so that ${...} in it stays text. */
static void write_string(FILE *out, const char *s)
{
    int q = needs_quotes(s);
    if (q) {
        fputc('"', out);
    }
    for (const char *p = s; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (c == '$') {
            fputs("$$", out);
        } else if (q && (c == '"' || c == '\\')) {
            fprintf(out, "\\%c", c);
        } else if (q && (c < 0x20 || c == 0x7f)) {
            fprintf(out, "\\x%02x", c);
        } else {
            fputc(c, out);
        }
    }
    if (q) {
        fputc('"', out);
    }
}

static uint64_t load_uint(const struct o2d_config *cfg, const struct key_row *row)
{
    const char *field = (const char *)cfg + row->off;
    if (row->size == sizeof(uint64_t)) {
        uint64_t x;
        memcpy(&x, field, sizeof(x));
        return x;
    }
    uint32_t x;
    memcpy(&x, field, sizeof(x));
    return x;
}

/* 0: leave the section out; 1: write it; 2: write it as comments. */
static int section_state(const struct o2d_config *cfg, const struct key_row *row)
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
    if (row->off != NO_FIELD) {
        return load_uint(cfg, row) != 0;
    }
    return 1;
}

static int has_content(const struct o2d_config *cfg, const char *path)
{
    for (size_t i = 0; i < KEY_TABLE_LEN; i++) {
        const struct key_row *r = &key_table[i];
        const char *leaf = row_leaf_under(r, path);
        if (leaf == NULL || strcmp(leaf, "*") == 0 || r->type == KEY_NAMES) {
            continue;
        }
        if (r->type != KEY_SECTION) {
            return 1;
        }
        if (section_state(cfg, r) != 0 && has_content(cfg, r->path)) {
            return 1;
        }
    }
    return 0;
}

static void write_value(const struct o2d_config *cfg, const struct key_row *row, FILE *out,
                        int indent, const char *cm)
{
    const char *field = (const char *)cfg + row->off;
    char d[32];
    int iv;
    switch (row->type) {
    case KEY_STRING:
    case KEY_ENDPOINT:
    case KEY_TAGS:
        if ((row->flags & KEY_SECRET) && field[0] != '\0') {
            write_string(out, "<secret>");
        } else {
            write_string(out, field);
        }
        break;
    case KEY_UINT:
        fprintf(out, "%llu", (unsigned long long)(load_uint(cfg, row) / row->scale));
        break;
    case KEY_DURATION: {
        int64_t ms;
        memcpy(&ms, field, sizeof(ms));
        fputs(format_duration(d, sizeof(d), ms > 0 ? (uint64_t)ms : 0), out);
        break;
    }
    case KEY_ENUM:
        memcpy(&iv, field, sizeof(iv));
        fputs(row->name(iv), out);
        break;
    case KEY_BOOL:
        memcpy(&iv, field, sizeof(iv));
        fputs(iv ? "true" : "false", out);
        break;
    case KEY_STRINGS: {
        const char(*rows)[256] = (const char(*)[256])field;
        size_t n;
        memcpy(&n, (const char *)cfg + row->count_off, sizeof(n));
        if (n == 0) {
            fputs(" []", out);
        }
        for (size_t i = 0; i < n; i++) {
            fprintf(out, "\n%*s%s- ", indent + 2, "", cm);
            write_string(out, rows[i]);
        }
        break;
    }
    case KEY_STRMAP: {
        const char(*pairs)[2][128] = (const char(*)[2][128])field;
        size_t n;
        memcpy(&n, (const char *)cfg + row->count_off, sizeof(n));
        if (n == 0) {
            fputs(" {}", out);
        }
        for (size_t i = 0; i < n; i++) {
            fprintf(out, "\n%*s%s", indent + 2, "", cm);
            write_string(out, pairs[i][0]);
            fputs(": ", out);
            write_string(out, pairs[i][1]);
        }
        break;
    }
    case KEY_SECTION:
    case KEY_NAMES:
        break;
    }
}

/* The keys directly under `path`, in table order, sections recursively. */
static void write_section(const struct o2d_config *cfg, FILE *out, const char *path, int indent,
                          const char *cm)
{
    for (size_t i = 0; i < KEY_TABLE_LEN; i++) {
        const struct key_row *r = &key_table[i];
        const char *leaf = row_leaf_under(r, path);
        /* "*" rows and KEY_NAMES (service.pipelines, service.extensions) hold nothing. */
        if (leaf == NULL || strcmp(leaf, "*") == 0 || r->type == KEY_NAMES) {
            continue;
        }
        if (r->type == KEY_SECTION) {
            int st = section_state(cfg, r);
            if (st == 0 || !has_content(cfg, r->path)) {
                continue;
            }
            const char *sub = st == 2 ? "# " : cm;
            fprintf(out, "%*s%s%s:\n", indent, "", sub, leaf);
            write_section(cfg, out, r->path, indent + 2, sub);
            continue;
        }
        fprintf(out, "%*s%s%s:", indent, "", cm, leaf);
        if (r->type != KEY_STRINGS && r->type != KEY_STRMAP) {
            fputc(' ', out);
        }
        write_value(cfg, r, out, indent, cm);
        fputc('\n', out);
    }
}

int o2d_config_write_yaml(const struct o2d_config *cfg, FILE *out)
{
    char a[SHOW_MAX + 4];
    fprintf(out, "# otel2dd effective configuration, from %s\n",
            show(a, cfg->source, strlen(cfg->source)));
    write_section(cfg, out, "", 0, "");
    return ferror(out) ? O2D_ERR_SYSTEM : O2D_OK;
}
