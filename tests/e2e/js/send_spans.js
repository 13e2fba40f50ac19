#!/usr/bin/env node
/*
 * send_spans.js: sends N spans (or N log records) to an OTLP endpoint with the real
 * OpenTelemetry JS SDK and its stock OTLP exporters, and reports what the exporter said.
 *
 *   node send_spans.js --protocol grpc|proto|http --url <url> --spans N --gzip on|off
 *                      [--batch B] [--signal traces|logs] [--timeout-ms T]
 *                      [--big-body BYTES] [--service NAME]
 *
 * protocol: grpc  = @opentelemetry/exporter-{trace,logs}-otlp-grpc (OTLP/gRPC)
 *           proto = @opentelemetry/exporter-{trace,logs}-otlp-proto (OTLP/HTTP protobuf)
 *           http  = @opentelemetry/exporter-{trace,logs}-otlp-http  (OTLP/HTTP JSON)
 * url: for grpc "http://127.0.0.1:4317"; for proto/http the full URL, or a base URL
 *      without a path ("http://127.0.0.1:4318") to which /v1/traces or /v1/logs is added.
 *
 * Exactly N items are produced. Traces come in groups of up to three: a SERVER span
 * "GET /api/v1/items/{id}" with HTTP semantic-convention attributes and an event, a CLIENT
 * child (database call) and an INTERNAL child; every 7th group ends with an error status.
 * Logs carry the trace context of a (never exported) span so receivers can join them;
 * with --big-body, the first record's body is that many bytes ("B"s).
 *
 * Prints one JSON line on stdout:
 *   {"sent":<items acknowledged>,"failed":<items in failed exports>,"errors":[...],...}
 * and exits 1 if any export failed, any item went missing, or a partial success was
 * reported; 2 on bad usage.
 *
 * It is the only client here: the SDK's own retry (on 429/503/UNAVAILABLE) stays on, as in
 * any application; a retried export that finally succeeds counts as sent.
 */
'use strict';

const api = require('@opentelemetry/api');
const { resourceFromAttributes } = require('@opentelemetry/resources');

// ExportResultCode.SUCCESS in @opentelemetry/core (not a direct dependency).
const EXPORT_SUCCESS = 0;

function usage(msg) {
    if (msg) {
        process.stderr.write(`send_spans.js: ${msg}\n`);
    }
    process.stderr.write(
        'usage: node send_spans.js --protocol grpc|proto|http --url <url> --spans N ' +
            '--gzip on|off [--batch B] [--signal traces|logs] [--timeout-ms T]\n');
    process.exit(2);
}

function parseArgs(argv) {
    const opts = { protocol: null, url: null, spans: null, gzip: 'off', batch: 512,
                   signal: 'traces', timeoutMs: 10000, bigBody: 0,
                   service: 'otel2dd-e2e-js' };
    for (let i = 0; i < argv.length; i++) {
        const a = argv[i];
        const v = argv[i + 1];
        const need = () => {
            if (v === undefined) {
                usage(`${a} needs a value`);
            }
            i++;
            return v;
        };
        switch (a) {
        case '--protocol': opts.protocol = need(); break;
        case '--url': opts.url = need(); break;
        case '--spans': case '--items': case '-n': opts.spans = Number(need()); break;
        case '--gzip': opts.gzip = need(); break;
        case '--batch': opts.batch = Number(need()); break;
        case '--signal': opts.signal = need(); break;
        case '--timeout-ms': opts.timeoutMs = Number(need()); break;
        case '--big-body': opts.bigBody = Number(need()); break;
        case '--service': opts.service = need(); break;
        case '-h': case '--help': usage(); break;
        default: usage(`unknown argument ${a}`);
        }
    }
    if (!['grpc', 'proto', 'http'].includes(opts.protocol)) {
        usage('--protocol must be grpc, proto or http');
    }
    if (!opts.url) {
        usage('--url is required');
    }
    if (!Number.isInteger(opts.spans) || opts.spans < 0) {
        usage('--spans must be a non-negative integer');
    }
    if (!['on', 'off'].includes(opts.gzip)) {
        usage('--gzip must be on or off');
    }
    if (!Number.isInteger(opts.batch) || opts.batch < 1) {
        usage('--batch must be a positive integer');
    }
    if (!['traces', 'logs'].includes(opts.signal)) {
        usage('--signal must be traces or logs');
    }
    return opts;
}

/* proto/http exporters want the full URL; add the signal path when none was given. */
function exporterUrl(opts) {
    if (opts.protocol === 'grpc') {
        return opts.url;
    }
    const u = new URL(opts.url);
    if (u.pathname === '' || u.pathname === '/') {
        u.pathname = opts.signal === 'traces' ? '/v1/traces' : '/v1/logs';
    }
    return u.toString();
}

function makeExporter(opts) {
    const pkgs = {
        traces: { grpc: '@opentelemetry/exporter-trace-otlp-grpc',
                  proto: '@opentelemetry/exporter-trace-otlp-proto',
                  http: '@opentelemetry/exporter-trace-otlp-http' },
        logs: { grpc: '@opentelemetry/exporter-logs-otlp-grpc',
                proto: '@opentelemetry/exporter-logs-otlp-proto',
                http: '@opentelemetry/exporter-logs-otlp-http' },
    };
    const mod = require(pkgs[opts.signal][opts.protocol]);
    const Exporter = opts.signal === 'traces' ? mod.OTLPTraceExporter : mod.OTLPLogExporter;
    return new Exporter({
        url: exporterUrl(opts),
        compression: opts.gzip === 'on' ? 'gzip' : 'none',
        timeoutMillis: opts.timeoutMs,
    });
}

/*
 * Wraps exporter.export so every result is counted; the processor above it never learns
 * more than "failed", so this is the only place the error is visible.
 */
function instrumentExporter(exporter, stats) {
    const orig = exporter.export.bind(exporter);
    exporter.export = (items, resultCallback) => {
        stats.exports++;
        stats.pending++;
        orig(items, (result) => {
            stats.pending--;
            if (result.code === EXPORT_SUCCESS) {
                stats.sent += items.length;
            } else {
                stats.failed += items.length;
                const e = result.error;
                const msg = e ? `${e.name || 'Error'}: ${e.message}${e.code !== undefined ? ` (code ${e.code})` : ''}` : 'failed';
                if (stats.errors.length < 20) {
                    stats.errors.push(msg);
                }
            }
            resultCallback(result);
        });
    };
    return exporter;
}

/*
 * The exporters report partial success (and some other trouble) only through the diag
 * logger, so keep what it says at WARN and above.
 */
function captureDiag(stats) {
    const keep = (level) => (...args) => {
        const text = args.map((a) => (a instanceof Error ? a.message
            : typeof a === 'object' ? safeJson(a) : String(a))).join(' ');
        if (/partial success/i.test(text)) {
            stats.partial_success.push(text.slice(0, 500));
        } else if (stats.diag.length < 20) {
            stats.diag.push(`${level}: ${text.slice(0, 500)}`);
        }
    };
    const none = () => {};
    api.diag.setLogger({ error: keep('error'), warn: keep('warn'), info: none, debug: none,
                         verbose: none }, api.DiagLogLevel.WARN);
}

function safeJson(o) {
    try {
        return JSON.stringify(o);
    } catch (e) {
        return String(o);
    }
}

function makeResource(opts) {
    return resourceFromAttributes({
        'service.name': opts.service,
        'service.version': '1.2.3',
        'deployment.environment.name': 'e2e',
        'service.instance.id': `send-spans-${process.pid}`,
        'telemetry.sdk.language': 'nodejs',
        'telemetry.sdk.name': 'opentelemetry',
        'e2e.protocol': opts.protocol,
        'e2e.gzip': opts.gzip === 'on',
    });
}

const HTTP_METHODS = ['GET', 'GET', 'GET', 'POST', 'PUT', 'DELETE'];

function serverAttributes(g, isError) {
    const id = 1000 + (g % 5000);
    const method = HTTP_METHODS[g % HTTP_METHODS.length];
    return {
        'http.request.method': method,
        'http.route': '/api/v1/items/{id}',
        'url.path': `/api/v1/items/${id}`,
        'url.scheme': 'http',
        'http.response.status_code': isError ? 500 : 200,
        'server.address': 'api.example.internal',
        'server.port': 8080,
        'network.protocol.version': '1.1',
        'user_agent.original': 'e2e-load/1.0',
        'client.address': `10.0.${g % 256}.${(g * 7) % 256}`,
        'http.request.body.size': 128 + (g % 512),
    };
}

function clientAttributes(g) {
    return {
        'db.system.name': 'postgresql',
        'db.namespace': 'items',
        'db.operation.name': 'SELECT',
        'db.collection.name': 'items',
        'db.query.text': 'SELECT * FROM items WHERE id = $1',
        'server.address': 'db.example.internal',
        'server.port': 5432,
        'network.peer.address': '10.1.0.5',
        'db.response.returned_rows': g % 3,
        'e2e.cached': false,
    };
}

function internalAttributes(g) {
    return {
        'code.function.name': 'renderItem',
        'code.file.path': '/srv/app/render.js',
        'code.line.number': 42,
        'template.name': 'item.html',
        'template.cache_hit': g % 2 === 0,
        'items.count': 1,
        'render.bytes': 2048 + g,
        'feature.flag': 'new-layout',
        'e2e.group': g,
        'e2e.ratio': 0.5,
    };
}

/* Creates exactly n spans; returns how many were created. */
function emitSpans(tracer, n) {
    const base = Date.now(); // ms; each group gets its own 5 ms slot
    let made = 0;
    for (let g = 0; made < n; g++) {
        const isError = g % 7 === 6;
        const t0 = base + g * 5;
        const tAt = (ms) => t0 + ms;
        const root = tracer.startSpan('GET /api/v1/items/{id}', {
            kind: api.SpanKind.SERVER,
            attributes: serverAttributes(g, isError),
            startTime: t0,
        });
        made++;
        root.addEvent('cache.miss', { 'cache.key': `item:${g}`, 'cache.layer': 'l1' }, tAt(1));
        const ctx = api.trace.setSpan(api.context.active(), root);
        if (made < n) {
            const db = tracer.startSpan('SELECT items', {
                kind: api.SpanKind.CLIENT, attributes: clientAttributes(g), startTime: tAt(1),
            }, ctx);
            made++;
            db.end(tAt(3));
        }
        if (made < n) {
            const r = tracer.startSpan('render item', {
                kind: api.SpanKind.INTERNAL, attributes: internalAttributes(g), startTime: tAt(3),
            }, ctx);
            made++;
            r.end(tAt(4));
        }
        if (isError) {
            root.recordException({ name: 'ItemStoreError', message: `item ${g} unavailable` },
                                 tAt(4));
            root.setStatus({ code: api.SpanStatusCode.ERROR, message: 'item store unavailable' });
        } else {
            root.setStatus({ code: api.SpanStatusCode.OK });
        }
        root.end(tAt(4.5));
    }
    return made;
}

function emitLogs(logger, n, bigBody) {
    const { SeverityNumber } = require('@opentelemetry/api-logs');
    for (let i = 0; i < n; i++) {
        // A span context of our own so that records carry trace_id/span_id like a real app's.
        const sc = {
            traceId: (BigInt(0x1000 + Math.floor(i / 4)).toString(16)).padStart(32, 'a'),
            spanId: ((i + 1).toString(16)).padStart(16, 'b'),
            traceFlags: api.TraceFlags.SAMPLED,
            isRemote: false,
        };
        const isError = i % 9 === 8;
        logger.emit({
            severityNumber: isError ? SeverityNumber.ERROR : SeverityNumber.INFO,
            severityText: isError ? 'ERROR' : 'INFO',
            body: i === 0 && bigBody > 0 ? 'B'.repeat(bigBody)
                : isError ? `failed to load item ${i}` : `served item ${i}`,
            attributes: {
                'log.source': 'e2e',
                'http.request.method': 'GET',
                'http.route': '/api/v1/items/{id}',
                'http.response.status_code': isError ? 500 : 200,
                'e2e.index': i,
                'code.function.name': 'handleItem',
            },
            context: api.trace.setSpanContext(api.ROOT_CONTEXT, sc),
        });
    }
    return n;
}

async function main() {
    const opts = parseArgs(process.argv.slice(2));
    const stats = { sent: 0, failed: 0, errors: [], exports: 0, pending: 0, created: 0,
                    partial_success: [], diag: [] };
    captureDiag(stats);
    const exporter = instrumentExporter(makeExporter(opts), stats);
    const resource = makeResource(opts);
    // Queue large enough to hold everything: a full queue drops silently, which would make
    // a receiver bug look like a client one.
    const procOpts = { maxExportBatchSize: opts.batch, maxQueueSize: Math.max(opts.spans, 2048),
                       scheduledDelayMillis: 100, exportTimeoutMillis: opts.timeoutMs * 3 };
    const started = process.hrtime.bigint();
    let provider;
    if (opts.signal === 'traces') {
        const { BasicTracerProvider, BatchSpanProcessor } = require('@opentelemetry/sdk-trace-base');
        provider = new BasicTracerProvider({
            resource, spanProcessors: [new BatchSpanProcessor(exporter, procOpts)],
        });
        const tracer = provider.getTracer('otel2dd-e2e', '1.0.0');
        stats.created = emitSpans(tracer, opts.spans);
    } else {
        const { LoggerProvider, BatchLogRecordProcessor } = require('@opentelemetry/sdk-logs');
        provider = new LoggerProvider({
            resource, processors: [new BatchLogRecordProcessor({ exporter, ...procOpts })],
        });
        const logger = provider.getLogger('otel2dd-e2e', '1.0.0');
        stats.created = emitLogs(logger, opts.spans, opts.bigBody);
    }
    let flushError = null;
    try {
        await provider.forceFlush();
    } catch (e) {
        flushError = e;
    }
    try {
        await provider.shutdown();
    } catch (e) {
        flushError = flushError || e;
    }
    if (flushError) {
        stats.errors.push(`flush: ${flushError.message || flushError}`);
    }
    const missing = stats.created - stats.sent - stats.failed;
    const out = {
        sent: stats.sent,
        failed: stats.failed,
        errors: stats.errors,
        signal: opts.signal,
        protocol: opts.protocol,
        gzip: opts.gzip === 'on',
        created: stats.created,
        missing,
        exports: stats.exports,
        partial_success: stats.partial_success,
        diag: stats.diag,
        elapsed_ms: Number(process.hrtime.bigint() - started) / 1e6,
    };
    process.stdout.write(JSON.stringify(out) + '\n');
    const bad = stats.failed > 0 || missing !== 0 || stats.partial_success.length > 0 ||
        flushError !== null;
    process.exitCode = bad ? 1 : 0;
}

main().catch((e) => {
    process.stdout.write(JSON.stringify({ sent: 0, failed: 0,
                                          errors: [`fatal: ${e && e.stack ? e.stack : e}`] }) + '\n');
    process.exit(1);
});
