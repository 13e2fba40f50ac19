#!/usr/bin/env node
/*
 * gateway_app.js: an application that keeps sending traces with LLM spans to a shared
 * collector for a while, through the stock OpenTelemetry JS SDK and OTLP exporter, and says
 * which spans were acknowledged. For tests/e2e/test_scale_out.py.
 *
 *   node gateway_app.js --protocol grpc|proto --url <url> --service NAME
 *                       --seconds S [--interval-ms M]
 *
 * Every M ms (default 100) one trace: a SERVER span "POST /chat" (APM only) with an
 * OpenLLMetry workflow span "qa_pipeline" under it, and under that an llm span (gen_ai
 * chat, model, token usage) and a tool span. The trace's spans are exported together
 * (forceFlush after each trace), so one export request carries one whole trace; the SDK's own
 * retry stays on, as in any application.
 *
 * Prints one JSON line: {"acked":[[trace_id_hex, [span_id_hex, ...]], ...],"traces":N,
 * "failed_spans":N,"errors":[...]}: "acked" lists the spans of every export that succeeded.
 * Exits 0 unless it could not run; failed exports are reported, not fatal (a test that kills
 * a collector expects some).
 */
'use strict';

const api = require('@opentelemetry/api');
const { resourceFromAttributes } = require('@opentelemetry/resources');
const { BasicTracerProvider, BatchSpanProcessor } = require('@opentelemetry/sdk-trace-base');

const EXPORT_SUCCESS = 0;

function usage(msg) {
    process.stderr.write(`gateway_app.js: ${msg}\n` +
                         'usage: node gateway_app.js --protocol grpc|proto --url <url> ' +
                         '--service NAME --seconds S [--interval-ms M]\n');
    process.exit(2);
}

function parseArgs(argv) {
    const o = { protocol: null, url: null, service: null, seconds: null, intervalMs: 100 };
    for (let i = 0; i < argv.length; i++) {
        const v = argv[i + 1];
        switch (argv[i]) {
        case '--protocol': o.protocol = v; i++; break;
        case '--url': o.url = v; i++; break;
        case '--service': o.service = v; i++; break;
        case '--seconds': o.seconds = Number(v); i++; break;
        case '--interval-ms': o.intervalMs = Number(v); i++; break;
        default: usage(`unknown argument ${argv[i]}`);
        }
    }
    if (!['grpc', 'proto'].includes(o.protocol) || !o.url || !o.service || !(o.seconds > 0)) {
        usage('--protocol, --url, --service and --seconds are required');
    }
    return o;
}

function makeExporter(o, stats) {
    let exporter;
    if (o.protocol === 'grpc') {
        const { OTLPTraceExporter } = require('@opentelemetry/exporter-trace-otlp-grpc');
        exporter = new OTLPTraceExporter({ url: o.url, timeoutMillis: 10000 });
    } else {
        const { OTLPTraceExporter } = require('@opentelemetry/exporter-trace-otlp-proto');
        exporter = new OTLPTraceExporter({ url: o.url + '/v1/traces', timeoutMillis: 10000 });
    }
    const orig = exporter.export.bind(exporter);
    exporter.export = (spans, cb) => {
        orig(spans, (result) => {
            if (result.code === EXPORT_SUCCESS) {
                const byTrace = new Map();
                for (const s of spans) {
                    const c = s.spanContext();
                    if (!byTrace.has(c.traceId)) {
                        byTrace.set(c.traceId, []);
                    }
                    byTrace.get(c.traceId).push(c.spanId);
                }
                for (const [t, ids] of byTrace) {
                    stats.acked.push([t, ids]);
                }
            } else {
                stats.failedSpans += spans.length;
                if (stats.errors.length < 20) {
                    stats.errors.push(String(result.error && result.error.message).slice(0, 200));
                }
            }
            cb(result);
        });
    };
    return exporter;
}

/* One trace, all its spans ended before it returns. */
function oneTrace(tracer, n) {
    const root = tracer.startSpan('POST /chat', {
        kind: api.SpanKind.SERVER,
        attributes: { 'http.request.method': 'POST', 'http.route': '/chat',
                      'http.response.status_code': 200, 'url.scheme': 'http' },
    });
    const rootCtx = api.trace.setSpan(api.context.active(), root);
    const wf = tracer.startSpan('qa_pipeline.workflow', {
        attributes: { 'traceloop.span.kind': 'workflow', 'traceloop.entity.name': 'qa_pipeline',
                      'traceloop.entity.input': JSON.stringify({ question: `q${n}` }) },
    }, rootCtx);
    const wfCtx = api.trace.setSpan(rootCtx, wf);
    const llm = tracer.startSpan('chat fake-gpt-gw', {
        kind: api.SpanKind.CLIENT,
        attributes: { 'gen_ai.operation.name': 'chat', 'gen_ai.system': 'openai',
                      'gen_ai.request.model': 'fake-gpt-gw', 'gen_ai.response.model': 'fake-gpt-gw',
                      'gen_ai.usage.input_tokens': 12, 'gen_ai.usage.output_tokens': 5 },
    }, wfCtx);
    llm.end();
    const tool = tracer.startSpan('lookup_weather.tool', {
        attributes: { 'traceloop.span.kind': 'tool', 'traceloop.entity.name': 'lookup_weather' },
    }, wfCtx);
    tool.end();
    wf.end();
    root.end();
}

async function main() {
    const o = parseArgs(process.argv.slice(2));
    const stats = { acked: [], failedSpans: 0, errors: [] };
    api.diag.setLogger({
        error: (...a) => stats.errors.length < 20 && stats.errors.push(`diag: ${a.join(' ')}`.slice(0, 200)),
        warn: () => {}, info: () => {}, debug: () => {}, verbose: () => {},
    }, api.DiagLogLevel.ERROR);
    const provider = new BasicTracerProvider({
        resource: resourceFromAttributes({
            'service.name': o.service,
            'service.version': '1.0.0',
            'deployment.environment.name': 'e2e',
            'telemetry.sdk.language': 'nodejs',
        }),
        // One export per trace: the test flushes after each; the batch never splits one.
        spanProcessors: [new BatchSpanProcessor(makeExporter(o, stats), {
            maxExportBatchSize: 512, maxQueueSize: 4096, scheduledDelayMillis: 60000,
        })],
    });
    const tracer = provider.getTracer('gateway-app', '1.0.0');
    const end = Date.now() + o.seconds * 1000;
    let n = 0;
    while (Date.now() < end) {
        oneTrace(tracer, n++);
        try {
            await provider.forceFlush();
        } catch (e) {
            // A failed export rejects the flush; the exporter wrapper has counted it.
        }
        await new Promise((r) => setTimeout(r, o.intervalMs));
    }
    try {
        await provider.shutdown();
    } catch (e) {
        // as above
    }
    process.stdout.write(JSON.stringify({ acked: stats.acked, traces: n,
                                          failed_spans: stats.failedSpans,
                                          errors: stats.errors }) + '\n');
}

main().catch((e) => {
    process.stderr.write(`gateway_app.js: ${(e && e.stack) || String(e)}\n`);
    process.exit(1);
});
