#!/usr/bin/env node
/*
 * send_metrics.js: records known values on the OpenTelemetry JS metrics SDK's instruments and
 * exports them to an OTLP endpoint with the SDK's stock OTLP metric exporters, several times.
 *
 *   node send_metrics.js --protocol grpc|proto|http --url <url> --temporality cumulative|delta
 *                        --run <id> [--exports N] [--interval-ms T] [--periodic-ms P]
 *
 * protocol: grpc  = @opentelemetry/exporter-metrics-otlp-grpc (OTLP/gRPC)
 *           proto = @opentelemetry/exporter-metrics-otlp-proto (OTLP/HTTP protobuf)
 *           http  = @opentelemetry/exporter-metrics-otlp-http  (OTLP/HTTP JSON)
 * url: for grpc "http://127.0.0.1:4317"; for proto/http a base URL to which /v1/metrics is
 *      added.
 *
 * Instruments (meter "e2e-metrics"), each export round r = 1..N adding the same amounts:
 *   e2e.requests        Counter            +5 per round, attribute route=/a; +2, route=/b
 *   e2e.queue.depth     UpDownCounter      +3 then -1 per round (net +2)
 *   e2e.latency         Histogram          records 1, 2, 3, 50, 100 ms each round,
 *                                          explicit buckets [0, 5, 10, 25, 50, 75, 100]
 *   e2e.size            Histogram as exponential histogram (a View): 1, 2, 4, 8 per round
 *   e2e.temperature     ObservableGauge    reports 21.5
 * With --periodic-ms, the SDK's PeriodicExportingMetricReader exports on its own every P ms
 * (several export intervals, as an application runs) and the rounds are recorded every P ms
 * until N exports were made; otherwise each round ends with forceFlush().
 * Every data point carries the attribute run=<id> (and the resource service.name
 * e2e-metrics, deployment.environment.name e2e, host.name e2e-host), so a test can pick its
 * own series. After the last round the MeterProvider is shut down (a final export).
 *
 * Prints one JSON line {"exports": n, "failed": n, "errors": [...]} and exits 1 if an export
 * failed, 2 on bad usage.
 */
'use strict';

const { resourceFromAttributes } = require('@opentelemetry/resources');
const {
    MeterProvider, PeriodicExportingMetricReader, AggregationTemporality, AggregationType,
} = require('@opentelemetry/sdk-metrics');

const EXPORT_SUCCESS = 0;

function usage(msg) {
    if (msg) {
        process.stderr.write(`send_metrics.js: ${msg}\n`);
    }
    process.stderr.write('usage: node send_metrics.js --protocol grpc|proto|http --url <url> ' +
                         '--temporality cumulative|delta --run <id> [--exports N] ' +
                         '[--interval-ms T]\n');
    process.exit(2);
}

function parseArgs(argv) {
    const o = { protocol: null, url: null, temporality: null, run: null, exports: 3,
                intervalMs: 300, periodicMs: 0 };
    for (let i = 0; i < argv.length; i++) {
        const a = argv[i];
        const v = argv[++i];
        if (v === undefined) {
            usage(`${a} needs a value`);
        }
        switch (a) {
        case '--protocol': o.protocol = v; break;
        case '--url': o.url = v; break;
        case '--temporality': o.temporality = v; break;
        case '--run': o.run = v; break;
        case '--exports': o.exports = parseInt(v, 10); break;
        case '--interval-ms': o.intervalMs = parseInt(v, 10); break;
        case '--periodic-ms': o.periodicMs = parseInt(v, 10); break;
        default: usage(`unknown option ${a}`);
        }
    }
    if (!['grpc', 'proto', 'http'].includes(o.protocol) || !o.url || !o.run ||
        !['cumulative', 'delta'].includes(o.temporality) || !(o.exports >= 1)) {
        usage();
    }
    return o;
}

function makeExporter(o) {
    const temporalityPreference = o.temporality === 'delta' ? AggregationTemporality.DELTA
                                                            : AggregationTemporality.CUMULATIVE;
    if (o.protocol === 'grpc') {
        const { OTLPMetricExporter } = require('@opentelemetry/exporter-metrics-otlp-grpc');
        return new OTLPMetricExporter({ url: o.url, temporalityPreference });
    }
    const url = o.url.replace(/\/+$/, '') + '/v1/metrics';
    const pkg = o.protocol === 'proto' ? '@opentelemetry/exporter-metrics-otlp-proto'
                                       : '@opentelemetry/exporter-metrics-otlp-http';
    const { OTLPMetricExporter } = require(pkg);
    return new OTLPMetricExporter({ url, temporalityPreference });
}

/* Counts the results of every export the reader makes. */
function counting(exporter, report) {
    const orig = exporter.export.bind(exporter);
    exporter.export = (metrics, cb) => orig(metrics, (res) => {
        report.exports++;
        if (res.code !== EXPORT_SUCCESS) {
            report.failed++;
            report.errors.push(String(res.error && res.error.message || res.error));
        }
        cb(res);
    });
    return exporter;
}

async function main() {
    const o = parseArgs(process.argv.slice(2));
    const report = { exports: 0, failed: 0, errors: [] };
    const exporter = counting(makeExporter(o), report);
    // Exports are driven by forceFlush() unless --periodic-ms sets the reader's own interval.
    const reader = new PeriodicExportingMetricReader({
        exporter,
        exportIntervalMillis: o.periodicMs > 0 ? o.periodicMs : 3600000,
        exportTimeoutMillis: o.periodicMs > 0 ? Math.max(100, o.periodicMs - 10) : 30000,
    });
    const provider = new MeterProvider({
        resource: resourceFromAttributes({
            'service.name': 'e2e-metrics',
            'deployment.environment.name': 'e2e',
            'host.name': 'e2e-host',
        }),
        readers: [reader],
        views: [{ instrumentName: 'e2e.size',
                  aggregation: { type: AggregationType.EXPONENTIAL_HISTOGRAM } }],
    });
    const meter = provider.getMeter('e2e-metrics', '1.0.0');
    const run = { run: o.run };
    const requests = meter.createCounter('e2e.requests', { unit: '{request}' });
    const depth = meter.createUpDownCounter('e2e.queue.depth');
    const latency = meter.createHistogram('e2e.latency', {
        unit: 'ms', advice: { explicitBucketBoundaries: [0, 5, 10, 25, 50, 75, 100] } });
    const size = meter.createHistogram('e2e.size');
    const temp = meter.createObservableGauge('e2e.temperature');
    temp.addCallback((r) => r.observe(21.5, run));

    if (o.periodicMs > 0) {
        // record a round, let the reader export on its own, until it made N exports
        const rounds = [];
        while (report.exports < o.exports) {
            requests.add(5, { ...run, route: '/a' });
            requests.add(2, { ...run, route: '/b' });
            rounds.push(Date.now());
            await new Promise((res) => setTimeout(res, o.periodicMs));
        }
        report.rounds = rounds.length;
        await provider.shutdown();
        process.stdout.write(JSON.stringify(report) + '\n');
        process.exit(report.failed > 0 ? 1 : 0);
    }
    for (let round = 1; round <= o.exports; round++) {
        requests.add(5, { ...run, route: '/a' });
        requests.add(2, { ...run, route: '/b' });
        depth.add(3, run);
        depth.add(-1, run);
        for (const v of [1, 2, 3, 50, 100]) {
            latency.record(v, run);
        }
        for (const v of [1, 2, 4, 8]) {
            size.record(v, run);
        }
        await reader.forceFlush();
        if (round < o.exports) {
            await new Promise((res) => setTimeout(res, o.intervalMs));
        }
    }
    await provider.shutdown();
    process.stdout.write(JSON.stringify(report) + '\n');
    process.exit(report.failed > 0 ? 1 : 0);
}

main().catch((e) => {
    process.stdout.write(JSON.stringify({ exports: 0, failed: 1, errors: [String(e)] }) + '\n');
    process.exit(1);
});
