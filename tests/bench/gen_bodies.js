#!/usr/bin/env node
/*
 * gen_bodies.js: writes the OTLP request bodies the benchmark replays, encoded by the real
 * OpenTelemetry JS SDK (ProtobufTraceSerializer from @opentelemetry/otlp-transformer), so
 * the bytes are what an application's exporter puts on the wire.
 *
 *   node tests/bench/gen_bodies.js <outdir>
 *
 * Each body: one resource (4 attributes), one scope, N SERVER spans named
 * "GET /api/v1/items/{id}", each with 10 HTTP semantic-convention attributes (strings,
 * ints, a bool): about 392 bytes a span, the same shape as the fluent-bit measurements in
 * performance-reliability.md section B3.
 *
 *   t10.pb, t100.pb, t1000.pb  ExportTraceServiceRequest (application/x-protobuf)
 *   t10.grpc, t100.grpc, ...   the same bytes behind the 5-byte gRPC message prefix
 *   t100.pb.gz                 t100.pb, gzip level 9
 *   bodies.json                sizes and span counts
 *
 * Dependencies come from tests/e2e/js/node_modules (run `npm ci` there first).
 */
'use strict';

const fs = require('fs');
const path = require('path');
const zlib = require('zlib');
const { createRequire } = require('module');

const JS_DIR = path.resolve(__dirname, '..', 'e2e', 'js');
const jsRequire = createRequire(path.join(JS_DIR, 'package.json'));

function load(name) {
    try {
        return jsRequire(name);
    } catch (e) {
        process.stderr.write(`gen_bodies.js: cannot load ${name} from ${JS_DIR}/node_modules ` +
                             `(run \`npm ci\` in tests/e2e/js): ${e.message}\n`);
        process.exit(2);
    }
}

const api = load('@opentelemetry/api');
const { BasicTracerProvider, SimpleSpanProcessor, InMemorySpanExporter } =
    load('@opentelemetry/sdk-trace-base');
const { resourceFromAttributes } = load('@opentelemetry/resources');
const { ProtobufTraceSerializer } = load('@opentelemetry/otlp-transformer');

const METHODS = ['GET', 'GET', 'GET', 'POST'];

function makeSpans(n) {
    const exporter = new InMemorySpanExporter();
    const provider = new BasicTracerProvider({
        resource: resourceFromAttributes({
            'service.name': 'bench-api',
            'service.version': '1.4.2',
            'deployment.environment.name': 'bench',
            'host.name': 'bench-host-01',
        }),
        spanProcessors: [new SimpleSpanProcessor(exporter)],
    });
    const tracer = provider.getTracer('bench-instrumentation', '0.1.0');
    const base = Date.UTC(2026, 0, 15, 12, 0, 0); // fixed: bodies are reproducible in size
    for (let i = 0; i < n; i++) {
        const id = 10000 + i;
        const status = i % 10 === 9 ? 404 : 200;
        const span = tracer.startSpan('GET /api/v1/items/{id}', {
            kind: api.SpanKind.SERVER,
            startTime: base + i,
            attributes: {
                'http.request.method': METHODS[i % METHODS.length],
                'http.route': '/api/v1/items/{id}',
                'url.path': `/api/v1/items/${id}`,
                'url.scheme': 'https',
                'http.response.status_code': status,
                'server.address': 'api.example.com',
                'server.port': 443,
                'client.address': `10.0.${i % 256}.${(i * 7) % 256}`,
                'user_agent.original': 'okhttp/4.12.0',
                'http.cache_hit': i % 3 === 0,
            },
        });
        span.end(base + i + 3);
    }
    const spans = exporter.getFinishedSpans();
    if (spans.length !== n) {
        throw new Error(`expected ${n} spans, got ${spans.length}`);
    }
    return spans;
}

function serialize(n) {
    return Buffer.from(ProtobufTraceSerializer.serializeRequest(makeSpans(n)));
}

function grpcFrame(pb) {
    const hdr = Buffer.alloc(5);
    hdr.writeUInt8(0, 0); // not compressed
    hdr.writeUInt32BE(pb.length, 1);
    return Buffer.concat([hdr, pb]);
}

function main() {
    const out = process.argv[2];
    if (!out) {
        process.stderr.write('usage: node gen_bodies.js <outdir>\n');
        process.exit(2);
    }
    fs.mkdirSync(out, { recursive: true });
    const meta = {};
    const write = (name, buf, spans) => {
        fs.writeFileSync(path.join(out, name), buf);
        meta[name] = { bytes: buf.length, spans };
    };
    for (const n of [10, 100, 1000]) {
        const pb = serialize(n);
        write(`t${n}.pb`, pb, n);
        write(`t${n}.grpc`, grpcFrame(pb), n);
        if (n === 100) {
            write('t100.pb.gz', zlib.gzipSync(pb, { level: 9 }), n);
        }
    }
    fs.writeFileSync(path.join(out, 'bodies.json'), JSON.stringify(meta, null, 1) + '\n');
    process.stdout.write(JSON.stringify(meta) + '\n');
}

main();
