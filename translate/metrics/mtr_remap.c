/*
 * mtr_remap.c: the renames and copies the OpenTelemetry Collector's Datadog exporter asks of
 * Datadog's translator (contrib exporter/datadogexporter metrics_exporter.go passes
 * WithRemapping, which also sets withOTelPrefix; withRuntimeRemapping is the translator's
 * default), as datadog-agent pkg/opentelemetry-mapping-go/otlp/metrics does them:
 *   - metrics_remapping.go renameMetrics: renameHostMetrics (system.* and process.* become
 *     otel.*), kafka_mapping.go renameKafkaMetrics (eight kafka.* names become otel.*),
 *     renameAgentInternalOTelMetric (datadog_trace_agent* and datadog_otlp* become otelcol_*);
 *   - metrics_remapping.go remapMetrics: remapSystemMetrics, remapContainerMetrics and
 *     kafka_mapping.go remapKafkaMetrics, remapJvmMetrics, each a copyMetricWithAttr (a gauge or
 *     sum copied under a Datadog name, its points filtered by hasAny, divided, and given the
 *     attributesMapping's fixed and dynamic attributes);
 *   - runtime_metric_mappings.go runtimeMetricsMappings with metrics_translator.go MapMetrics and
 *     map{Sum,Gauge,Histogram}RuntimeMetricWithAttributes: Go, .NET and JVM runtime metrics
 *     copied under the Datadog runtime names, whole, or one metric per point whose attributes
 *     select it (those attributes removed from the copy).
 * A copy is an OTLP metric built in the request's arena, pointing into the decoded request for
 * everything it does not change; mtr.c maps it as any other metric once the scope's own metrics
 * are mapped (MapMetrics' newMetrics). Left out: the "nanocore" unit of the container.cpu copies
 * (units are sent only behind a feature gate, and dd_metrics.h has none), the languages
 * MapMetrics reports (the exporter's host metadata), and remapSDKTraceMetrics
 * (traces.span.sdk.metrics.duration), only in the newest metrics_remapping.go seen.
 */
#include <string.h>

#include "mtr_int.h"
#include "o2d.h"

#define CASE(c)   OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_##c
#define AS_INT    OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__VALUE_AS_INT
#define AS_DOUBLE OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__VALUE_AS_DOUBLE
#define NELEM(x)  (sizeof(x) / sizeof((x)[0]))

/* divMebibytes and divPercentage */
#define DIV_MIB (1024.0 * 1024.0)
#define DIV_PCT 0.01

#define FILTER_MAX 7

struct kv {
    const char *k, *v;
};

/* One copyMetricWithAttr call. */
struct copy_rule {
    const char *from, *to;
    double div;
    struct kv fixed[3];           /* attributesMapping.fixed: put on every copied point */
    struct kv dynamic;            /* attributesMapping.dynamic: {old key, new key}, value copied */
    struct kv filter[FILTER_MAX]; /* hasAny: any of these string attributes; none: all points */
};

/* The tables read as Datadog's, one copy or mapping a line. */
// clang-format off
#define NONE {{0}}, {0}, {{0}}
#define FIXED(...) {__VA_ARGS__}, {0}
#define WHERE(...) {{0}}, {0}, {__VA_ARGS__}
#define PRODUCER FIXED({"type", "producer-metrics"}), {{0}}
#define PRODUCER_TOPIC {{"type", "producer-topic-metrics"}}, {"client-id", "client"}, {{0}}
#define CONSUMER_FETCH FIXED({"type", "consumer-fetch-manager-metrics"}), {{0}}
#define CONSUMER_FETCH_CLIENT {{"type", "consumer-fetch-manager-metrics"}}, {"client-id", "client"}, {{0}}
#define GROUP {{0}}, {"group", "consumer_group"}, {{0}}
#define YOUNG_GCS {"name", "Copy"}, {"name", "PS Scavenge"}, {"name", "ParNew"}, {"name", "G1 Young Generation"}
#define OLD_GCS {"name", "MarkSweepCompact"}, {"name", "PS MarkSweep"}, {"name", "ConcurrentMarkSweep"}, \
    {"name", "G1 Mixed Generation"}, {"name", "G1 Old Generation"}, {"name", "Shenandoah Cycles"}, {"name", "ZGC"}

/* In the order remapMetrics makes them; the copies of one name are consecutive. */
static const struct copy_rule COPIES[] = {
    /* remapSystemMetrics */
    {"system.cpu.load_average.1m", "system.load.1", 1, NONE},
    {"system.cpu.load_average.5m", "system.load.5", 1, NONE},
    {"system.cpu.load_average.15m", "system.load.15", 1, NONE},
    {"system.cpu.utilization", "system.cpu.idle", DIV_PCT, WHERE({"state", "idle"})},
    {"system.cpu.utilization", "system.cpu.user", DIV_PCT, WHERE({"state", "user"})},
    {"system.cpu.utilization", "system.cpu.system", DIV_PCT, WHERE({"state", "system"})},
    {"system.cpu.utilization", "system.cpu.iowait", DIV_PCT, WHERE({"state", "wait"})},
    {"system.cpu.utilization", "system.cpu.stolen", DIV_PCT, WHERE({"state", "steal"})},
    {"system.memory.usage", "system.mem.total", DIV_MIB, NONE},
    {"system.memory.usage", "system.mem.usable", DIV_MIB, WHERE({"state", "free"}, {"state", "cached"}, {"state", "buffered"})},
    {"system.network.io", "system.net.bytes_rcvd", 1, WHERE({"direction", "receive"})},
    {"system.network.io", "system.net.bytes_sent", 1, WHERE({"direction", "transmit"})},
    {"system.paging.usage", "system.swap.free", DIV_MIB, WHERE({"state", "free"})},
    {"system.paging.usage", "system.swap.used", DIV_MIB, WHERE({"state", "used"})},
    {"system.filesystem.utilization", "system.disk.in_use", 1, NONE},
    /* remapContainerMetrics */
    {"container.cpu.usage.total", "container.cpu.usage", 1, NONE},
    {"container.cpu.usage.usermode", "container.cpu.user", 1, NONE},
    {"container.cpu.usage.system", "container.cpu.system", 1, NONE},
    {"container.cpu.throttling_data.throttled_time", "container.cpu.throttled", 1, NONE},
    {"container.cpu.throttling_data.throttled_periods", "container.cpu.throttled.periods", 1, NONE},
    {"container.memory.usage.total", "container.memory.usage", 1, NONE},
    {"container.memory.active_anon", "container.memory.kernel", 1, NONE},
    {"container.memory.hierarchical_memory_limit", "container.memory.limit", 1, NONE},
    {"container.memory.usage.limit", "container.memory.soft_limit", 1, NONE},
    {"container.memory.total_cache", "container.memory.cache", 1, NONE},
    {"container.memory.total_swap", "container.memory.swap", 1, NONE},
    {"container.blockio.io_service_bytes_recursive", "container.io.write", 1, WHERE({"operation", "write"})},
    {"container.blockio.io_service_bytes_recursive", "container.io.read", 1, WHERE({"operation", "read"})},
    {"container.blockio.io_serviced_recursive", "container.io.write.operations", 1, WHERE({"operation", "write"})},
    {"container.blockio.io_serviced_recursive", "container.io.read.operations", 1, WHERE({"operation", "read"})},
    {"container.network.io.usage.tx_bytes", "container.net.sent", 1, NONE},
    {"container.network.io.usage.tx_packets", "container.net.sent.packets", 1, NONE},
    {"container.network.io.usage.rx_bytes", "container.net.rcvd", 1, NONE},
    {"container.network.io.usage.rx_packets", "container.net.rcvd.packets", 1, NONE},
    /* remapKafkaMetrics */
    {"kafka.producer.request-rate", "kafka.producer.request_rate", 1, PRODUCER},
    {"kafka.producer.response-rate", "kafka.producer.response_rate", 1, PRODUCER},
    {"kafka.producer.request-latency-avg", "kafka.producer.request_latency_avg", 1, PRODUCER},
    {"kafka.producer.outgoing-byte-rate", "kafka.producer.bytes_out", 1, PRODUCER},
    {"kafka.producer.io-wait-time-ns-avg", "kafka.producer.io_wait", 1, PRODUCER},
    {"kafka.producer.byte-rate", "kafka.producer.bytes_out", 1, PRODUCER_TOPIC},
    {"kafka.consumer.total.bytes-consumed-rate", "kafka.consumer.bytes_in", 1, CONSUMER_FETCH},
    {"kafka.consumer.total.records-consumed-rate", "kafka.consumer.messages_in", 1, CONSUMER_FETCH},
    {"kafka.network.io", "kafka.net.bytes_out.rate", 1,
     FIXED({"type", "BrokerTopicMetrics"}, {"name", "BytesOutPerSec"}), {{"state", "out"}}},
    {"kafka.network.io", "kafka.net.bytes_in.rate", 1,
     FIXED({"type", "BrokerTopicMetrics"}, {"name", "BytesInPerSec"}), {{"state", "in"}}},
    {"kafka.purgatory.size", "kafka.request.producer_request_purgatory.size", 1,
     FIXED({"type", "DelayedOperationPurgatory"}, {"name", "PurgatorySize"}, {"delayedOperation", "Produce"}),
     {{"type", "produce"}}},
    {"kafka.purgatory.size", "kafka.request.fetch_request_purgatory.size", 1,
     FIXED({"type", "DelayedOperationPurgatory"}, {"name", "PurgatorySize"}, {"delayedOperation", "Fetch"}),
     {{"type", "fetch"}}},
    {"kafka.partition.under_replicated", "kafka.replication.under_replicated_partitions", 1,
     FIXED({"type", "ReplicaManager"}, {"name", "UnderReplicatedPartitions"}), {{0}}},
    {"kafka.isr.operation.count", "kafka.replication.isr_shrinks.rate", 1,
     FIXED({"type", "ReplicaManager"}, {"name", "IsrShrinksPerSec"}), {{"operation", "shrink"}}},
    {"kafka.isr.operation.count", "kafka.replication.isr_expands.rate", 1,
     FIXED({"type", "ReplicaManager"}, {"name", "IsrExpandsPerSec"}), {{"operation", "expand"}}},
    {"kafka.leader.election.rate", "kafka.replication.leader_elections.rate", 1,
     FIXED({"type", "ControllerStats"}, {"name", "LeaderElectionRateAndTimeMs"}), {{0}}},
    {"kafka.partition.offline", "kafka.replication.offline_partitions_count", 1,
     FIXED({"type", "KafkaController"}, {"name", "OfflinePartitionsCount"}), {{0}}},
    {"kafka.request.time.avg", "kafka.request.produce.time.avg", 1,
     FIXED({"type", "RequestMetrics"}, {"name", "TotalTimeMs"}, {"request", "Produce"}), {{"type", "produce"}}},
    {"kafka.request.time.avg", "kafka.request.fetch_consumer.time.avg", 1,
     FIXED({"type", "RequestMetrics"}, {"name", "TotalTimeMs"}, {"request", "FetchConsumer"}), {{"type", "fetchconsumer"}}},
    {"kafka.request.time.avg", "kafka.request.fetch_follower.time.avg", 1,
     FIXED({"type", "RequestMetrics"}, {"name", "TotalTimeMs"}, {"request", "FetchFollower"}), {{"type", "fetchfollower"}}},
    {"kafka.message.count", "kafka.messages_in.rate", 1,
     FIXED({"type", "BrokerTopicMetrics"}, {"name", "MessagesInPerSec"}), {{0}}},
    {"kafka.request.failed", "kafka.request.produce.failed.rate", 1,
     FIXED({"type", "BrokerTopicMetrics"}, {"name", "FailedProduceRequestsPerSec"}), {{"type", "produce"}}},
    {"kafka.request.failed", "kafka.request.fetch.failed.rate", 1,
     FIXED({"type", "BrokerTopicMetrics"}, {"name", "FailedFetchRequestsPerSec"}), {{"type", "fetch"}}},
    {"kafka.request.time.99p", "kafka.request.produce.time.99percentile", 1,
     FIXED({"type", "RequestMetrics"}, {"name", "TotalTimeMs"}, {"request", "Produce"}), {{"type", "produce"}}},
    {"kafka.request.time.99p", "kafka.request.fetch_consumer.time.99percentile", 1,
     FIXED({"type", "RequestMetrics"}, {"name", "TotalTimeMs"}, {"request", "FetchConsumer"}), {{"type", "fetchconsumer"}}},
    {"kafka.request.time.99p", "kafka.request.fetch_follower.time.99percentile", 1,
     FIXED({"type", "RequestMetrics"}, {"name", "TotalTimeMs"}, {"request", "FetchFollower"}), {{"type", "fetchfollower"}}},
    {"kafka.partition.count", "kafka.replication.partition_count", 1,
     FIXED({"type", "ReplicaManager"}, {"name", "PartitionCount"}), {{0}}},
    {"kafka.max.lag", "kafka.replication.max_lag", 1,
     FIXED({"type", "ReplicaFetcherManager"}, {"name", "MaxLag"}, {"clientId", "replica"}), {{0}}},
    {"kafka.controller.active.count", "kafka.replication.active_controller_count", 1,
     FIXED({"type", "KafkaController"}, {"name", "ActiveControllerCount"}), {{0}}},
    {"kafka.unclean.election.rate", "kafka.replication.unclean_leader_elections.rate", 1,
     FIXED({"type", "ControllerStats"}, {"name", "UncleanLeaderElectionsPerSec"}), {{0}}},
    {"kafka.request.queue", "kafka.request.channel.queue.size", 1,
     FIXED({"type", "RequestChannel"}, {"name", "RequestQueueSize"}), {{0}}},
    {"kafka.logs.flush.time.count", "kafka.log.flush_rate.rate", 1,
     FIXED({"type", "LogFlushStats"}, {"name", "LogFlushRateAndTimeMs"}), {{0}}},
    {"kafka.consumer.bytes-consumed-rate", "kafka.consumer.bytes_consumed", 1, CONSUMER_FETCH_CLIENT},
    {"kafka.consumer.records-consumed-rate", "kafka.consumer.records_consumed", 1, CONSUMER_FETCH_CLIENT},
    {"kafka.consumer.fetch-size-avg", "kafka.consumer.fetch_size_avg", 1, CONSUMER_FETCH_CLIENT},
    {"kafka.producer.compression-rate", "kafka.producer.compression_rate", 1, PRODUCER_TOPIC},
    {"kafka.producer.record-error-rate", "kafka.producer.record_error_rate", 1, PRODUCER_TOPIC},
    {"kafka.producer.record-retry-rate", "kafka.producer.record_retry_rate", 1, PRODUCER_TOPIC},
    {"kafka.producer.record-send-rate", "kafka.producer.record_send_rate", 1, PRODUCER_TOPIC},
    {"kafka.partition.current_offset", "kafka.broker_offset", 1, GROUP},
    {"kafka.consumer_group.lag", "kafka.consumer_lag", 1, GROUP},
    {"kafka.consumer_group.offset", "kafka.consumer_offset", 1, GROUP},
    /* remapJvmMetrics */
    {"jvm.gc.collections.count", "jvm.gc.minor_collection_count", 1, FIXED({"type", "GarbageCollector"}), {YOUNG_GCS}},
    {"jvm.gc.collections.count", "jvm.gc.major_collection_count", 1, FIXED({"type", "GarbageCollector"}), {OLD_GCS}},
    {"jvm.gc.collections.elapsed", "jvm.gc.minor_collection_time", 1, FIXED({"type", "GarbageCollector"}), {YOUNG_GCS}},
    {"jvm.gc.collections.elapsed", "jvm.gc.major_collection_time", 1, FIXED({"type", "GarbageCollector"}), {OLD_GCS}},
};
// clang-format on

/* kafkaMetricsToRename */
static const char *const KAFKA_RENAMES[] = {
    "kafka.producer.request-rate",        "kafka.producer.response-rate",
    "kafka.producer.request-latency-avg", "kafka.consumer.fetch-size-avg",
    "kafka.producer.compression-rate",    "kafka.producer.record-retry-rate",
    "kafka.producer.record-send-rate",    "kafka.producer.record-error-rate",
};

/* A runtimeMetricAttribute: the point must have `key` with one of `values` (AsString). */
struct rt_attr {
    const char *key;
    const char *values[5];
};

/* A runtimeMetricMapping; no attributes: the whole metric is copied. */
struct rt_rule {
    const char *from, *to;
    struct rt_attr attrs[2];
};

// clang-format off
#define WHOLE {{0}}
#define HEAP {"type", {"heap"}}
#define NON_HEAP {"type", {"non_heap"}}
#define S_HEAP {"jvm.memory.type", {"heap"}}
#define S_NON_HEAP {"jvm.memory.type", {"non_heap"}}
#define OLD_GEN {"G1 Old Gen", "Tenured Gen", "PS Old Gen"}
#define EDEN {"G1 Eden Space", "Eden Space", "Par Eden Space", "PS Eden Space"}
#define SURVIVOR {"G1 Survivor Space", "Survivor Space", "Par Survivor Space", "PS Survivor Space"}

/* goRuntimeMetricsMappings, dotnetRuntimeMetricsMappings, javaRuntimeMetricsMappings,
 * stableJavaRuntimeMetricsMappings; the mappings of one name consecutive, in their order. */
static const struct rt_rule RUNTIME[] = {
    {"process.runtime.go.goroutines", "runtime.go.num_goroutine", WHOLE},
    {"process.runtime.go.cgo.calls", "runtime.go.num_cgo_call", WHOLE},
    {"process.runtime.go.lookups", "runtime.go.mem_stats.lookups", WHOLE},
    {"process.runtime.go.mem.heap_alloc", "runtime.go.mem_stats.heap_alloc", WHOLE},
    {"process.runtime.go.mem.heap_sys", "runtime.go.mem_stats.heap_sys", WHOLE},
    {"process.runtime.go.mem.heap_idle", "runtime.go.mem_stats.heap_idle", WHOLE},
    {"process.runtime.go.mem.heap_inuse", "runtime.go.mem_stats.heap_inuse", WHOLE},
    {"process.runtime.go.mem.heap_released", "runtime.go.mem_stats.heap_released", WHOLE},
    {"process.runtime.go.mem.heap_objects", "runtime.go.mem_stats.heap_objects", WHOLE},
    {"process.runtime.go.gc.pause_total_ns", "runtime.go.mem_stats.pause_total_ns", WHOLE},
    {"process.runtime.go.gc.count", "runtime.go.mem_stats.num_gc", WHOLE},

    {"process.runtime.dotnet.monitor.lock_contention.count", "runtime.dotnet.threads.contention_count", WHOLE},
    {"process.runtime.dotnet.exceptions.count", "runtime.dotnet.exceptions.count", WHOLE},
    {"process.runtime.dotnet.gc.heap.size", "runtime.dotnet.gc.size.gen0", {{"generation", {"gen0"}}}},
    {"process.runtime.dotnet.gc.heap.size", "runtime.dotnet.gc.size.gen1", {{"generation", {"gen1"}}}},
    {"process.runtime.dotnet.gc.heap.size", "runtime.dotnet.gc.size.gen2", {{"generation", {"gen2"}}}},
    {"process.runtime.dotnet.gc.heap.size", "runtime.dotnet.gc.size.loh", {{"generation", {"loh"}}}},
    {"process.runtime.dotnet.gc.collections.count", "runtime.dotnet.gc.count.gen0", {{"generation", {"gen0"}}}},
    {"process.runtime.dotnet.gc.collections.count", "runtime.dotnet.gc.count.gen1", {{"generation", {"gen1"}}}},
    {"process.runtime.dotnet.gc.collections.count", "runtime.dotnet.gc.count.gen2", {{"generation", {"gen2"}}}},

    {"process.runtime.jvm.threads.count", "jvm.thread_count", WHOLE},
    {"process.runtime.jvm.classes.current_loaded", "jvm.loaded_classes", WHOLE},
    {"process.runtime.jvm.system.cpu.utilization", "jvm.cpu_load.system", WHOLE},
    {"process.runtime.jvm.cpu.utilization", "jvm.cpu_load.process", WHOLE},
    {"process.runtime.jvm.memory.usage", "jvm.heap_memory", {HEAP}},
    {"process.runtime.jvm.memory.usage", "jvm.non_heap_memory", {NON_HEAP}},
    {"process.runtime.jvm.memory.usage", "jvm.gc.old_gen_size", {{"pool", OLD_GEN}, HEAP}},
    {"process.runtime.jvm.memory.usage", "jvm.gc.eden_size", {{"pool", EDEN}, HEAP}},
    {"process.runtime.jvm.memory.usage", "jvm.gc.survivor_size", {{"pool", SURVIVOR}, HEAP}},
    {"process.runtime.jvm.memory.usage", "jvm.gc.metaspace_size", {{"pool", {"Metaspace"}}, NON_HEAP}},
    {"process.runtime.jvm.memory.committed", "jvm.heap_memory_committed", {HEAP}},
    {"process.runtime.jvm.memory.committed", "jvm.non_heap_memory_committed", {NON_HEAP}},
    {"process.runtime.jvm.memory.init", "jvm.heap_memory_init", {HEAP}},
    {"process.runtime.jvm.memory.init", "jvm.non_heap_memory_init", {NON_HEAP}},
    {"process.runtime.jvm.memory.limit", "jvm.heap_memory_max", {HEAP}},
    {"process.runtime.jvm.memory.limit", "jvm.non_heap_memory_max", {NON_HEAP}},
    {"process.runtime.jvm.buffer.usage", "jvm.buffer_pool.direct.used", {{"pool", {"direct"}}}},
    {"process.runtime.jvm.buffer.usage", "jvm.buffer_pool.mapped.used", {{"pool", {"mapped"}}}},
    {"process.runtime.jvm.buffer.count", "jvm.buffer_pool.direct.count", {{"pool", {"direct"}}}},
    {"process.runtime.jvm.buffer.count", "jvm.buffer_pool.mapped.count", {{"pool", {"mapped"}}}},
    {"process.runtime.jvm.buffer.limit", "jvm.buffer_pool.direct.limit", {{"pool", {"direct"}}}},
    {"process.runtime.jvm.buffer.limit", "jvm.buffer_pool.mapped.limit", {{"pool", {"mapped"}}}},

    {"jvm.thread.count", "jvm.thread_count", WHOLE},
    {"jvm.class.count", "jvm.loaded_classes", WHOLE},
    {"jvm.system.cpu.utilization", "jvm.cpu_load.system", WHOLE},
    {"jvm.cpu.recent_utilization", "jvm.cpu_load.process", WHOLE},
    {"jvm.memory.used", "jvm.heap_memory", {S_HEAP}},
    {"jvm.memory.used", "jvm.non_heap_memory", {S_NON_HEAP}},
    {"jvm.memory.used", "jvm.gc.old_gen_size", {{"jvm.memory.pool.name", OLD_GEN}, S_HEAP}},
    {"jvm.memory.used", "jvm.gc.eden_size", {{"jvm.memory.pool.name", EDEN}, S_HEAP}},
    {"jvm.memory.used", "jvm.gc.survivor_size", {{"jvm.memory.pool.name", SURVIVOR}, S_HEAP}},
    {"jvm.memory.used", "jvm.gc.metaspace_size", {{"jvm.memory.pool.name", {"Metaspace"}}, S_NON_HEAP}},
    {"jvm.memory.committed", "jvm.heap_memory_committed", {S_HEAP}},
    {"jvm.memory.committed", "jvm.non_heap_memory_committed", {S_NON_HEAP}},
    {"jvm.memory.init", "jvm.heap_memory_init", {S_HEAP}},
    {"jvm.memory.init", "jvm.non_heap_memory_init", {S_NON_HEAP}},
    {"jvm.memory.limit", "jvm.heap_memory_max", {S_HEAP}},
    {"jvm.memory.limit", "jvm.non_heap_memory_max", {S_NON_HEAP}},
    {"jvm.buffer.memory.usage", "jvm.buffer_pool.direct.used", {{"jvm.buffer.pool.name", {"direct"}}}},
    {"jvm.buffer.memory.usage", "jvm.buffer_pool.mapped.used", {{"jvm.buffer.pool.name", {"mapped"}}}},
    {"jvm.buffer.count", "jvm.buffer_pool.direct.count", {{"jvm.buffer.pool.name", {"direct"}}}},
    {"jvm.buffer.count", "jvm.buffer_pool.mapped.count", {{"jvm.buffer.pool.name", {"mapped"}}}},
    {"jvm.buffer.memory.limit", "jvm.buffer_pool.direct.limit", {{"jvm.buffer.pool.name", {"direct"}}}},
    {"jvm.buffer.memory.limit", "jvm.buffer_pool.mapped.limit", {{"jvm.buffer.pool.name", {"mapped"}}}},
};
// clang-format on

static int has_prefix(const char *s, const char *p)
{
    return strncmp(s, p, strlen(p)) == 0;
}

static const char *name_of(const OtlpMetric *m)
{
    return m->name != NULL ? m->name : "";
}

/* ---- building copies in the arena ---- */

static int add(struct o2d_arena *a, struct mtr_added *out, OtlpMetric *m)
{
    if (out->n == out->cap) {
        size_t cap = out->cap ? out->cap * 2 : 8;
        const OtlpMetric **n = o2d_arena_alloc(a, cap * sizeof(*n));
        if (n == NULL) {
            return O2D_ERR_TOO_LARGE;
        }
        if (out->n > 0) {
            memcpy(n, out->m, out->n * sizeof(*n));
        }
        out->m = n;
        out->cap = cap;
    }
    out->m[out->n++] = m;
    return O2D_OK;
}

/* m under another name; its data still m's until the caller replaces it. */
static OtlpMetric *clone_metric(struct o2d_arena *a, const OtlpMetric *m, const char *name)
{
    OtlpMetric *c = o2d_arena_alloc(a, sizeof(*c));
    if (c != NULL) {
        *c = *m;
        c->name = (char *)name; /* a static table's string: never written */
    }
    return c;
}

/* A copy of number metric m (gauge or sum, as m is) named `name` with points pts. */
static int add_numbers(struct o2d_arena *a, struct mtr_added *out, const OtlpMetric *m,
                       const char *name, OtlpNumberPoint **pts, size_t n)
{
    OtlpMetric *c = clone_metric(a, m, name);
    if (c == NULL) {
        return O2D_ERR_TOO_LARGE;
    }
    if (m->data_case == CASE(GAUGE)) {
        Opentelemetry__Proto__Metrics__V1__Gauge *g = o2d_arena_alloc(a, sizeof(*g));
        if (g == NULL) {
            return O2D_ERR_TOO_LARGE;
        }
        *g = *m->gauge;
        g->data_points = pts;
        g->n_data_points = n;
        c->gauge = g;
    } else {
        Opentelemetry__Proto__Metrics__V1__Sum *s = o2d_arena_alloc(a, sizeof(*s));
        if (s == NULL) {
            return O2D_ERR_TOO_LARGE;
        }
        *s = *m->sum;
        s->data_points = pts;
        s->n_data_points = n;
        c->sum = s;
    }
    return add(a, out, c);
}

static const OtlpKeyValue *attr_get(OtlpKeyValue *const *attrs, size_t n, const char *key)
{
    for (size_t i = 0; i < n; i++) {
        if (attrs[i] != NULL && attrs[i]->key != NULL && strcmp(attrs[i]->key, key) == 0) {
            return attrs[i];
        }
    }
    return NULL;
}

/* Map.PutEmpty(key) set to val: replaces key's entry where it is, else appends (kv has room). */
static int attr_put(struct o2d_arena *a, OtlpKeyValue **kv, size_t *n, const char *key,
                    OtlpAnyValue *val)
{
    OtlpKeyValue *e = o2d_arena_alloc(a, sizeof(*e));
    if (e == NULL) {
        return O2D_ERR_TOO_LARGE;
    }
    *e = (OtlpKeyValue)OPENTELEMETRY__PROTO__COMMON__V1__KEY_VALUE__INIT;
    e->key = (char *)key; /* a static table's string: never written */
    e->value = val;
    for (size_t i = 0; i < *n; i++) {
        if (kv[i] != NULL && kv[i]->key != NULL && strcmp(kv[i]->key, key) == 0) {
            kv[i] = e;
            return O2D_OK;
        }
    }
    kv[(*n)++] = e;
    return O2D_OK;
}

/* hasAny: v.Str() == V for one filter (Str() of a value that is not a string is ""). */
static int has_any(const OtlpNumberPoint *p, const struct kv *filter)
{
    if (filter[0].k == NULL) {
        return 1;
    }
    for (size_t i = 0; i < FILTER_MAX && filter[i].k != NULL; i++) {
        const OtlpKeyValue *e = attr_get(p->attributes, p->n_attributes, filter[i].k);
        if (e == NULL) {
            continue;
        }
        const char *s =
            e->value != NULL && e->value->value_case ==
                                    OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE
                ? e->value->string_value
                : "";
        if (strcmp(s, filter[i].v) == 0) {
            return 1;
        }
    }
    return 0;
}

/* A copied point: divided (ints only by a divisor of at least 1, as Go's int64(div)), with the
 * rule's fixed then dynamic attributes. */
static int copy_point(struct o2d_arena *a, const OtlpNumberPoint *src, const struct copy_rule *r,
                      OtlpNumberPoint **out)
{
    OtlpNumberPoint *p = o2d_arena_alloc(a, sizeof(*p));
    if (p == NULL) {
        return O2D_ERR_TOO_LARGE;
    }
    *p = *src;
    if (p->value_case == AS_INT && r->div >= 1) {
        p->as_int = p->as_int / (int64_t)r->div;
    } else if (p->value_case == AS_DOUBLE && r->div != 0) {
        p->as_double = p->as_double / r->div;
    }
    size_t nfixed = 0;
    while (nfixed < NELEM(r->fixed) && r->fixed[nfixed].k != NULL) {
        nfixed++;
    }
    const OtlpKeyValue *dyn =
        r->dynamic.k != NULL ? attr_get(src->attributes, src->n_attributes, r->dynamic.k) : NULL;
    if (nfixed > 0 || dyn != NULL) {
        OtlpKeyValue **kv = o2d_arena_alloc(a, (src->n_attributes + nfixed + 1) * sizeof(*kv));
        OtlpAnyValue *vals = o2d_arena_alloc(a, (nfixed + 1) * sizeof(*vals));
        if (kv == NULL || vals == NULL) {
            return O2D_ERR_TOO_LARGE;
        }
        size_t n = src->n_attributes;
        if (n > 0) {
            memcpy(kv, src->attributes, n * sizeof(*kv));
        }
        for (size_t i = 0; i < nfixed; i++) {
            vals[i] = (OtlpAnyValue)OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__INIT;
            vals[i].value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
            vals[i].string_value = (char *)r->fixed[i].v;
            int rv = attr_put(a, kv, &n, r->fixed[i].k, &vals[i]);
            if (rv != O2D_OK) {
                return rv;
            }
        }
        if (dyn != NULL) {
            int rv = attr_put(a, kv, &n, r->dynamic.v, dyn->value);
            if (rv != O2D_OK) {
                return rv;
            }
        }
        p->attributes = kv;
        p->n_attributes = n;
    }
    *out = p;
    return O2D_OK;
}

/* copyMetricWithAttr: gauges and sums only; nothing when no point is left. */
static int copy_with_attr(struct o2d_arena *a, const OtlpMetric *m, const struct copy_rule *r,
                          struct mtr_added *out)
{
    OtlpNumberPoint *const *src;
    size_t nsrc;
    if (m->data_case == CASE(GAUGE) && m->gauge != NULL) {
        src = m->gauge->data_points;
        nsrc = m->gauge->n_data_points;
    } else if (m->data_case == CASE(SUM) && m->sum != NULL) {
        src = m->sum->data_points;
        nsrc = m->sum->n_data_points;
    } else {
        return O2D_OK;
    }
    OtlpNumberPoint **pts = nsrc > 0 ? o2d_arena_alloc(a, nsrc * sizeof(*pts)) : NULL;
    if (nsrc > 0 && pts == NULL) {
        return O2D_ERR_TOO_LARGE;
    }
    size_t n = 0;
    for (size_t i = 0; i < nsrc; i++) {
        if (src[i] == NULL || !has_any(src[i], r->filter)) {
            continue;
        }
        int rv = copy_point(a, src[i], r, &pts[n]);
        if (rv != O2D_OK) {
            return rv;
        }
        n++;
    }
    return n > 0 ? add_numbers(a, out, m, r->to, pts, n) : O2D_OK;
}

int mtr_remap_copies(struct o2d_arena *a, const OtlpMetric *m, struct mtr_added *out)
{
    const char *name = name_of(m);
    if (!has_prefix(name, "system.") && !has_prefix(name, "container.") &&
        !has_prefix(name, "kafka.") && !has_prefix(name, "jvm.")) {
        return O2D_OK;
    }
    for (size_t i = 0; i < NELEM(COPIES); i++) {
        if (strcmp(COPIES[i].from, name) != 0) {
            continue;
        }
        int rv = copy_with_attr(a, m, &COPIES[i], out);
        if (rv != O2D_OK) {
            return rv;
        }
    }
    return O2D_OK;
}

/* ---- runtime metrics ---- */

/* Whether every attribute of r is on the point with one of its values (AsString). */
static int rt_match(OtlpKeyValue *const *attrs, size_t n, const struct rt_rule *r)
{
    for (size_t i = 0; i < NELEM(r->attrs) && r->attrs[i].key != NULL; i++) {
        const OtlpKeyValue *e = attr_get(attrs, n, r->attrs[i].key);
        if (e == NULL) {
            return 0;
        }
        int found = 0;
        for (size_t j = 0; j < NELEM(r->attrs[i].values) && r->attrs[i].values[j] != NULL; j++) {
            if (mtr_value_is(e->value, r->attrs[i].values[j])) {
                found = 1;
                break;
            }
        }
        if (!found) {
            return 0;
        }
    }
    return 1;
}

/* The point's attributes without the keys r selects on (RemoveIf). */
static int rt_strip(struct o2d_arena *a, OtlpKeyValue *const *attrs, size_t n,
                    const struct rt_rule *r, OtlpKeyValue ***out, size_t *nout)
{
    OtlpKeyValue **kv = n > 0 ? o2d_arena_alloc(a, n * sizeof(*kv)) : NULL;
    if (n > 0 && kv == NULL) {
        return O2D_ERR_TOO_LARGE;
    }
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        int selected = 0;
        for (size_t j = 0; j < NELEM(r->attrs) && r->attrs[j].key != NULL; j++) {
            if (attrs[i] != NULL && attrs[i]->key != NULL &&
                strcmp(attrs[i]->key, r->attrs[j].key) == 0) {
                selected = 1;
            }
        }
        if (!selected) {
            kv[k++] = attrs[i];
        }
    }
    *out = kv;
    *nout = k;
    return O2D_OK;
}

/* map{Sum,Gauge}RuntimeMetricWithAttributes: one copy per point selected. */
static int rt_numbers(struct o2d_arena *a, const OtlpMetric *m, const struct rt_rule *r,
                      struct mtr_added *out)
{
    OtlpNumberPoint *const *src =
        m->data_case == CASE(GAUGE) ? m->gauge->data_points : m->sum->data_points;
    size_t nsrc = m->data_case == CASE(GAUGE) ? m->gauge->n_data_points : m->sum->n_data_points;
    for (size_t i = 0; i < nsrc; i++) {
        if (src[i] == NULL || !rt_match(src[i]->attributes, src[i]->n_attributes, r)) {
            continue;
        }
        OtlpNumberPoint *p = o2d_arena_alloc(a, sizeof(*p));
        OtlpNumberPoint **pts = o2d_arena_alloc(a, sizeof(*pts));
        if (p == NULL || pts == NULL) {
            return O2D_ERR_TOO_LARGE;
        }
        *p = *src[i];
        int rv = rt_strip(a, src[i]->attributes, src[i]->n_attributes, r, &p->attributes,
                          &p->n_attributes);
        if (rv != O2D_OK) {
            return rv;
        }
        pts[0] = p;
        rv = add_numbers(a, out, m, r->to, pts, 1);
        if (rv != O2D_OK) {
            return rv;
        }
    }
    return O2D_OK;
}

/* mapHistogramRuntimeMetricWithAttributes: a copy of the first point selected only. */
static int rt_histogram(struct o2d_arena *a, const OtlpMetric *m, const struct rt_rule *r,
                        struct mtr_added *out)
{
    const Opentelemetry__Proto__Metrics__V1__Histogram *h = m->histogram;
    for (size_t i = 0; i < h->n_data_points; i++) {
        const OtlpHistogramPoint *sp = h->data_points[i];
        if (sp == NULL || !rt_match(sp->attributes, sp->n_attributes, r)) {
            continue;
        }
        OtlpMetric *c = clone_metric(a, m, r->to);
        Opentelemetry__Proto__Metrics__V1__Histogram *ch = o2d_arena_alloc(a, sizeof(*ch));
        OtlpHistogramPoint *p = o2d_arena_alloc(a, sizeof(*p));
        OtlpHistogramPoint **pts = o2d_arena_alloc(a, sizeof(*pts));
        if (c == NULL || ch == NULL || p == NULL || pts == NULL) {
            return O2D_ERR_TOO_LARGE;
        }
        *p = *sp;
        int rv = rt_strip(a, sp->attributes, sp->n_attributes, r, &p->attributes, &p->n_attributes);
        if (rv != O2D_OK) {
            return rv;
        }
        *ch = *h;
        pts[0] = p;
        ch->data_points = pts;
        ch->n_data_points = 1;
        c->histogram = ch;
        return add(a, out, c);
    }
    return O2D_OK;
}

int mtr_remap_runtime(struct o2d_arena *a, const OtlpMetric *m, struct mtr_added *out)
{
    const char *name = name_of(m);
    if (!has_prefix(name, "process.runtime.") && !has_prefix(name, "jvm.")) {
        return O2D_OK;
    }
    for (size_t i = 0; i < NELEM(RUNTIME); i++) {
        const struct rt_rule *r = &RUNTIME[i];
        if (strcmp(r->from, name) != 0) {
            continue;
        }
        if (r->attrs[0].key == NULL) {
            /* duplicated whole, whatever its type */
            OtlpMetric *c = clone_metric(a, m, r->to);
            return c != NULL ? add(a, out, c) : O2D_ERR_TOO_LARGE;
        }
        int rv = O2D_OK;
        if ((m->data_case == CASE(GAUGE) && m->gauge != NULL) ||
            (m->data_case == CASE(SUM) && m->sum != NULL)) {
            rv = rt_numbers(a, m, r, out);
        } else if (m->data_case == CASE(HISTOGRAM) && m->histogram != NULL) {
            rv = rt_histogram(a, m, r, out);
        }
        if (rv != O2D_OK) {
            return rv;
        }
    }
    return O2D_OK;
}

/* ---- renames ---- */

static const char *prefixed(struct o2d_arena *a, const char *prefix, const char *name)
{
    size_t pl = strlen(prefix), nl = strlen(name);
    char *s = o2d_arena_alloc(a, pl + nl + 1);
    if (s != NULL) {
        memcpy(s, prefix, pl);
        memcpy(s + pl, name, nl + 1);
    }
    return s;
}

const char *mtr_remap_name(struct o2d_arena *a, const char *name)
{
    if (name == NULL) {
        return "";
    }
    /* renameHostMetrics, then renameKafkaMetrics and renameAgentInternalOTelMetric, each on
     * what the one before left; a renamed host metric matches neither of the others. */
    if (has_prefix(name, "system.") || has_prefix(name, "process.")) {
        return prefixed(a, "otel.", name);
    }
    if (has_prefix(name, "kafka.")) {
        for (size_t i = 0; i < NELEM(KAFKA_RENAMES); i++) {
            if (strcmp(name, KAFKA_RENAMES[i]) == 0) {
                return prefixed(a, "otel.", name);
            }
        }
    }
    if (has_prefix(name, "datadog_trace_agent") || has_prefix(name, "datadog_otlp")) {
        return prefixed(a, "otelcol_", name);
    }
    return name;
}
