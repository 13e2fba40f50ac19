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
 *   tmix100.pb, tmix100.grpc   a LangChain-shaped mix for the LLM Obs benchmark: 10 traces of
 *                              10 spans (see makeMixSpans), 1 LLM span in every 10
 *   bodies.json                sizes and span counts (tmix100: also its 10 trace ids, which
 *                              bench.py rewrites in place for --llm-ids rotate)
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

/*
 * The LangChain-shaped mix: what a FastAPI + LangChain app instrumented with OpenLLMetry
 * exports for one POST /chat, 10 spans a trace, in the order a BatchSpanProcessor exports
 * them (children end first, the HTTP SERVER root last):
 *
 *   POST /chat                          SERVER  HTTP server attributes           (root)
 *   |- chat_pipeline.workflow           INTERNAL traceloop.span.kind=workflow, entity input/output JSON
 *   |  |- retriever.search              INTERNAL
 *   |  |  '- POST                       CLIENT  HTTP client to the vector store
 *   |  |- prompt.format                 INTERNAL
 *   |  |- chat gpt-4o-mini              CLIENT  gen_ai.* with input/output messages (the LLM span)
 *   |  |  '- POST                       CLIENT  HTTP client to api.openai.com
 *   |  |- output_parser.parse           INTERNAL
 *   |  '- GET                           CLIENT  HTTP client to the session store
 *   '- POST /chat http send             INTERNAL (ASGI send)
 *
 * So per trace 2 spans become LLM Obs events (the workflow and the LLM span) and 8 stay
 * APM-only. Ids come from a fixed sequence so the bodies are reproducible; the 10 trace ids
 * are returned so that bench.py can find them in the bytes.
 */
const LONG_Q = 'I ordered a pair of trail running shoes (order 88231) two weeks ago and the ' +
    'tracking page still says label created. Can you tell me where the parcel is, whether ' +
    'I can still change the delivery address to my office, and how returns work if they ' +
    'do not fit?';
const LONG_A = 'Your order 88231 left our warehouse on Monday and is with the carrier; the ' +
    'tracking page updates once the parcel is scanned at the first hub, usually within 48 ' +
    'hours. You can still change the delivery address from the order page until it is out ' +
    'for delivery. Returns are free within 30 days: start one from the same page and drop ' +
    'the parcel at any partner point.';
const SYSTEM = 'You are the support assistant of an outdoor equipment shop. Answer briefly, ' +
    'cite the order number, never invent tracking data.';

class SeqIdGenerator {
    constructor(seed) { this.n = seed; }
    next(hexLen) {
        // splitmix-like, never zero: 32-bit steps concatenated
        let out = '';
        while (out.length < hexLen) {
            this.n = (Math.imul(this.n ^ (this.n >>> 15), 0x2c1b3c6d) + 0x6a09e667) >>> 0;
            out += ((this.n | 0x10000000) >>> 0).toString(16);
        }
        return out.slice(0, hexLen);
    }
    generateTraceId() { return this.next(32); }
    generateSpanId() { return this.next(16); }
}

function makeMixSpans(traces) {
    const exporter = new InMemorySpanExporter();
    const provider = new BasicTracerProvider({
        resource: resourceFromAttributes({
            'service.name': 'support-bot',
            'service.version': '2.3.0',
            'deployment.environment.name': 'bench',
            'host.name': 'bench-host-01',
        }),
        idGenerator: new SeqIdGenerator(0x5eed1),
        spanProcessors: [new SimpleSpanProcessor(exporter)],
    });
    const tracer = provider.getTracer('opentelemetry.instrumentation.langchain', '0.40.0');
    const K = api.SpanKind;
    const base = Date.UTC(2026, 0, 15, 12, 0, 0);
    const traceIds = [];
    for (let i = 0; i < traces; i++) {
        const t0 = base + i * 2000;
        const child = (parent, name, kind, start, attributes) =>
            tracer.startSpan(name, { kind, startTime: start, attributes },
                             api.trace.setSpan(api.context.active(), parent));
        const root = tracer.startSpan('POST /chat', {
            kind: K.SERVER, startTime: t0, root: true,
            attributes: {
                'http.request.method': 'POST',
                'http.route': '/chat',
                'url.path': '/chat',
                'url.scheme': 'https',
                'http.response.status_code': 200,
                'server.address': 'support-bot.example.com',
                'server.port': 443,
                'client.address': `10.0.${i}.${(i * 7) % 256}`,
                'user_agent.original': 'Mozilla/5.0 (X11; Linux x86_64) Firefox/133.0',
                'network.protocol.version': '1.1',
            },
        });
        traceIds.push(root.spanContext().traceId);
        const question = `${LONG_Q} (conversation ${i})`;
        const wf = child(root, 'chat_pipeline.workflow', K.INTERNAL, t0 + 2, {
            'traceloop.span.kind': 'workflow',
            'traceloop.entity.name': 'chat_pipeline',
            'traceloop.workflow.name': 'chat_pipeline',
            'traceloop.entity.input': JSON.stringify({ inputs: { question, order_id: '88231' },
                                                       tags: [], metadata: {} }),
            'traceloop.entity.output': JSON.stringify({ outputs: { answer: LONG_A } }),
        });
        const ret = child(wf, 'retriever.search', K.INTERNAL, t0 + 3, {
            'code.function': 'search', 'code.namespace': 'app.retriever', 'retriever.top_k': 4,
        });
        const vs = child(ret, 'POST', K.CLIENT, t0 + 4, {
            'http.request.method': 'POST',
            'url.full': 'http://vectors.internal:6333/collections/faq/points/search',
            'server.address': 'vectors.internal', 'server.port': 6333,
            'http.response.status_code': 200,
        });
        vs.end(t0 + 18);
        ret.end(t0 + 19);
        const pf = child(wf, 'prompt.format', K.INTERNAL, t0 + 20, {
            'code.function': 'format_messages', 'code.namespace': 'langchain_core.prompts',
        });
        pf.end(t0 + 21);
        const llm = child(wf, 'chat gpt-4o-mini', K.CLIENT, t0 + 22, {
            'gen_ai.operation.name': 'chat',
            'gen_ai.provider.name': 'openai',
            'gen_ai.request.model': 'gpt-4o-mini',
            'gen_ai.response.model': 'gpt-4o-mini-2024-07-18',
            'gen_ai.request.temperature': 0.2,
            'gen_ai.request.max_tokens': 512,
            'gen_ai.response.id': `chatcmpl-bench${1000 + i}`,
            'gen_ai.response.finish_reasons': ['stop'],
            'gen_ai.input.messages': JSON.stringify([
                { role: 'system', parts: [{ type: 'text', content: SYSTEM }] },
                { role: 'user', parts: [{ type: 'text', content: question }] },
            ]),
            'gen_ai.output.messages': JSON.stringify([
                { role: 'assistant', parts: [{ type: 'text', content: LONG_A }],
                  finish_reason: 'stop' },
            ]),
            'gen_ai.usage.input_tokens': 112 + i,
            'gen_ai.usage.output_tokens': 78,
            'server.address': 'api.openai.com',
            'server.port': 443,
        });
        const oa = child(llm, 'POST', K.CLIENT, t0 + 23, {
            'http.request.method': 'POST',
            'url.full': 'https://api.openai.com/v1/chat/completions',
            'server.address': 'api.openai.com', 'server.port': 443,
            'http.response.status_code': 200,
        });
        oa.end(t0 + 830);
        llm.end(t0 + 832);
        const op = child(wf, 'output_parser.parse', K.INTERNAL, t0 + 833, {
            'code.function': 'parse', 'code.namespace': 'langchain_core.output_parsers',
        });
        op.end(t0 + 834);
        const ss = child(wf, 'GET', K.CLIENT, t0 + 835, {
            'http.request.method': 'GET',
            'url.full': `http://sessions.internal:8080/v1/sessions/s-${4000 + i}`,
            'server.address': 'sessions.internal', 'server.port': 8080,
            'http.response.status_code': 200,
        });
        ss.end(t0 + 839);
        wf.end(t0 + 840);
        const send = child(root, 'POST /chat http send', K.INTERNAL, t0 + 841, {
            'asgi.event.type': 'http.response.body',
        });
        send.end(t0 + 842);
        root.end(t0 + 843);
    }
    const spans = exporter.getFinishedSpans();
    if (spans.length !== traces * 10) {
        throw new Error(`expected ${traces * 10} spans, got ${spans.length}`);
    }
    return { spans, traceIds };
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
    const mix = makeMixSpans(10);
    const mpb = Buffer.from(ProtobufTraceSerializer.serializeRequest(mix.spans));
    write('tmix100.pb', mpb, 100);
    write('tmix100.grpc', grpcFrame(mpb), 100);
    meta['tmix100.pb'].trace_ids = mix.traceIds;
    meta['tmix100.grpc'].trace_ids = mix.traceIds;
    fs.writeFileSync(path.join(out, 'bodies.json'), JSON.stringify(meta, null, 1) + '\n');
    process.stdout.write(JSON.stringify(meta) + '\n');
}

if (require.main === module) {
    main();
}

module.exports = { makeSpans, makeMixSpans };
