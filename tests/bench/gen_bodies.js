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
 *   m280.pb, m280.grpc         ExportMetricsServiceRequest from the JS metrics SDK
 *                              (MeterProvider, collected once): 280 data points of counters,
 *                              up-down counters, gauges and explicit-bucket histograms, 3-5
 *                              attributes each (makeMetrics), cumulative temporality
 *   m280.rounds                100 cumulative collections of the same SDK one after the other
 *                              (values growing), each as long as m280.pb: the dd-metrics-
 *                              cumul-* scenarios replay them in turn
 *   m280d.pb, m280d.grpc       the same instruments and values with the delta temporality
 *                              preference (counters and histograms delta, up-down counters
 *                              and gauges cumulative, as the OTLP exporters' "delta" does)
 *   l100.pb, l100.grpc         ExportLogsServiceRequest from the JS logs SDK: 100 records
 *                              emitted inside spans (trace and span ids), severities from
 *                              DEBUG to ERROR, 4-6 attributes each (makeLogs)
 *   bodies.json                sizes and item counts (spans, points or records); tmix100: its
 *                              10 trace ids, which bench.py rewrites in place for --llm-ids
 *                              rotate; m280: the collection time (time_unix_nano of every
 *                              point), which bench.py rewrites in place for the cumulative
 *                              replay
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
const { ProtobufTraceSerializer, ProtobufMetricsSerializer, ProtobufLogsSerializer } =
    load('@opentelemetry/otlp-transformer');
const { MeterProvider, MetricReader, AggregationTemporality, InstrumentType } =
    load('@opentelemetry/sdk-metrics');
const { LoggerProvider, SimpleLogRecordProcessor, InMemoryLogRecordExporter } =
    load('@opentelemetry/sdk-logs');
const { SeverityNumber } = load('@opentelemetry/api-logs');

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

function makeMixSpans(traces, content = true) {
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
            ...(content ? {
                'gen_ai.input.messages': JSON.stringify([
                    { role: 'system', parts: [{ type: 'text', content: SYSTEM }] },
                    { role: 'user', parts: [{ type: 'text', content: question }] },
                ]),
                'gen_ai.output.messages': JSON.stringify([
                    { role: 'assistant', parts: [{ type: 'text', content: LONG_A }],
                      finish_reason: 'stop' },
                ]),
            } : {}),
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

/*
 * The metrics of one service as the JS metrics SDK reports them in one collection: HTTP server
 * and client durations, database call durations (explicit-bucket histograms, the semantic
 * conventions' boundaries), business and consumer counters, in-flight requests and queue
 * depths (up-down counters), pool sizes (observable gauges). 280 data points:
 *
 *   http.server.request.duration     Histogram      40  route x method x status
 *   http.client.request.duration     Histogram      20  server x method x status
 *   db.client.operation.duration     Histogram      20  operation x collection
 *   app.orders.created               Counter        60  region x channel x payment
 *   messaging.client.consumed.messages Counter      40  topic x group x outcome
 *   app.cache.lookups                Counter        40  cache x result x tier
 *   http.server.active_requests      UpDownCounter  20  route x method
 *   app.queue.depth                  ObservableUpDownCounter 20  queue
 *   app.pool.connections             ObservableGauge 20  pool x state x db
 *
 * The same values are recorded before each of `rounds` collections (histograms: 12 values a
 * series, from 1 ms to 3 s), so cumulative points grow round after round. Returns, per
 * collection, the request bytes, the point count and the collection time (ns, as a decimal
 * string: every point carries it as time_unix_nano).
 */
const ROUTES = ['/api/v1/items/{id}', '/api/v1/items', '/api/v1/orders/{id}', '/api/v1/orders',
                '/api/v1/users/{id}', '/api/v1/cart', '/api/v1/search', '/api/v1/checkout',
                '/healthz', '/api/v1/recommendations'];
const CUMUL_ROUNDS = 100;
const MS_BUCKETS_S = [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10];

class CollectingReader extends MetricReader {
    async onForceFlush() {}
    async onShutdown() {}
}

function deltaSelector(type) {
    switch (type) {
    case InstrumentType.COUNTER:
    case InstrumentType.OBSERVABLE_COUNTER:
    case InstrumentType.HISTOGRAM:
        return AggregationTemporality.DELTA;
    default:
        return AggregationTemporality.CUMULATIVE;
    }
}

async function makeMetrics(temporality, rounds = 1) {
    const reader = new CollectingReader(temporality === 'delta'
        ? { aggregationTemporalitySelector: deltaSelector } : {});
    const provider = new MeterProvider({
        resource: resourceFromAttributes({
            'service.name': 'bench-api',
            'service.version': '1.4.2',
            'deployment.environment.name': 'bench',
            'host.name': 'bench-host-01',
            'service.instance.id': '6f1c2a90-3b7e-4d5a-9c1e-2f8b7a6d5c4e',
        }),
        readers: [reader],
    });
    const meter = provider.getMeter('bench-instrumentation', '0.1.0');
    const hist = (name, unit) => meter.createHistogram(name, {
        unit, advice: { explicitBucketBoundaries: MS_BUCKETS_S } });
    const record12 = (h, attrs, k) => {
        for (let j = 0; j < 12; j++) {
            h.record(0.001 * Math.pow(1.9, j) * (1 + (k % 5) / 10), attrs);
        }
    };
    const srv = hist('http.server.request.duration', 's');
    const cli = hist('http.client.request.duration', 's');
    const db = hist('db.client.operation.duration', 's');
    const orders = meter.createCounter('app.orders.created', { unit: '{order}' });
    const consumed = meter.createCounter('messaging.client.consumed.messages',
                                         { unit: '{message}' });
    const cache = meter.createCounter('app.cache.lookups', { unit: '{lookup}' });
    const active = meter.createUpDownCounter('http.server.active_requests',
                                             { unit: '{request}' });
    const recordRound = () => {
        let k = 0;
        for (const route of ROUTES) {
            for (const method of ['GET', 'POST']) {
                for (const status of [200, 500]) {
                    record12(srv, { 'http.request.method': method, 'http.route': route,
                                    'http.response.status_code': status, 'url.scheme': 'https',
                                    'network.protocol.version': '1.1' }, k++);
                }
            }
        }
        for (const host of ['payments.internal', 'inventory.internal', 'users.internal',
                            'search.internal', 'api.stripe.com']) {
            for (const method of ['GET', 'POST']) {
                for (const status of [200, 503]) {
                    record12(cli, { 'http.request.method': method, 'server.address': host,
                                    'server.port': 443, 'http.response.status_code': status }, k++);
                }
            }
        }
        for (const op of ['SELECT', 'INSERT', 'UPDATE', 'DELETE']) {
            for (const coll of ['items', 'orders', 'users', 'carts', 'sessions']) {
                record12(db, { 'db.system.name': 'postgresql', 'db.operation.name': op,
                               'db.collection.name': coll, 'db.namespace': 'shop' }, k++);
            }
        }
        for (const region of ['eu-west-1', 'eu-central-1', 'us-east-1', 'ap-south-1']) {
            for (const channel of ['web', 'ios', 'android']) {
                for (const payment of ['card', 'paypal', 'invoice', 'voucher', 'giftcard']) {
                    orders.add(3 + (k++ % 17), { 'cloud.region': region, 'app.channel': channel,
                                                 'app.payment.method': payment });
                }
            }
        }
        for (let t = 0; t < 10; t++) {
            for (const group of ['indexer', 'mailer']) {
                for (const outcome of ['ok', 'retry']) {
                    consumed.add(100 + (k++ % 31), {
                        'messaging.system': 'kafka', 'messaging.destination.name': `shop.events.${t}`,
                        'messaging.consumer.group.name': group, 'app.outcome': outcome });
                }
            }
        }
        for (const name of ['items', 'prices', 'sessions', 'users', 'carts']) {
            for (const result of ['hit', 'miss']) {
                for (const tier of ['l1', 'l2', 'redis', 'origin']) {
                    cache.add(50 + (k++ % 13), { 'cache.name': name, 'cache.result': result,
                                                 'cache.tier': tier });
                }
            }
        }
        for (const route of ROUTES) {
            for (const method of ['GET', 'POST']) {
                active.add(1 + (k++ % 4), { 'http.request.method': method, 'http.route': route,
                                            'url.scheme': 'https' });
            }
        }
    };
    const depth = meter.createObservableUpDownCounter('app.queue.depth', { unit: '{job}' });
    depth.addCallback((r) => {
        for (let q = 0; q < 20; q++) {
            r.observe(q * 3, { 'app.queue.name': `jobs.${q}`, 'app.queue.kind': 'fifo' });
        }
    });
    const pool = meter.createObservableGauge('app.pool.connections', { unit: '{connection}' });
    pool.addCallback((r) => {
        for (let p = 0; p < 5; p++) {
            for (const state of ['idle', 'used']) {
                for (const dbname of ['primary', 'replica']) {
                    r.observe(p + (state === 'used' ? 4 : 1), {
                        'db.client.connection.pool.name': `pool-${p}`,
                        'db.client.connection.state': state, 'app.db.role': dbname });
                }
            }
        }
    });
    const out = [];
    for (let r = 0; r < rounds; r++) {
        recordRound();
        const { resourceMetrics, errors } = await reader.collect();
        if (errors.length > 0) {
            throw new Error(`metric collection failed: ${errors}`);
        }
        let points = 0;
        const times = new Set();
        for (const sm of resourceMetrics.scopeMetrics) {
            for (const m of sm.metrics) {
                points += m.dataPoints.length;
                for (const dp of m.dataPoints) {
                    times.add(BigInt(dp.endTime[0]) * 1000000000n + BigInt(dp.endTime[1]));
                }
            }
        }
        if (points !== 280 || times.size !== 1) {
            throw new Error(`expected 280 points at one time, got ${points} at ${times.size}`);
        }
        out.push({ pb: Buffer.from(ProtobufMetricsSerializer.serializeRequest(resourceMetrics)),
                   points, timeNs: String([...times][0]) });
    }
    await provider.shutdown();
    return out;
}

/*
 * What the JS logs SDK exports for 100 records an HTTP service writes while handling requests:
 * each record emitted inside a span (so it carries the trace and span ids, sampled flag),
 * severities from DEBUG to ERROR with their texts, a message of 60-140 characters, 4-6
 * attributes (route, method, status, user, duration; an exception type on errors). 10 traces
 * of 10 records.
 */
const LOG_LINES = [
    [SeverityNumber.INFO, 'INFO', 'request started'],
    [SeverityNumber.DEBUG, 'DEBUG', 'cache lookup for item prices returned a stale entry, ' +
                                    'refreshing from origin'],
    [SeverityNumber.INFO, 'INFO', 'loaded 24 items for the listing page in 12 ms'],
    [SeverityNumber.DEBUG, 'DEBUG', 'query plan: index scan on items_pkey, 1 loop'],
    [SeverityNumber.INFO, 'INFO', 'price computed with promotion SPRING26 for cart'],
    [SeverityNumber.WARN, 'WARN', 'inventory service answered slowly (840 ms), serving the ' +
                                  'cached stock level for the item page'],
    [SeverityNumber.INFO, 'INFO', 'user session refreshed'],
    [SeverityNumber.ERROR, 'ERROR', 'payment provider refused the charge: card_declined ' +
                                    '(insufficient funds), order left pending'],
    [SeverityNumber.INFO, 'INFO', 'order confirmation mail queued for delivery'],
    [SeverityNumber.INFO, 'INFO', 'request completed'],
];

async function makeLogs(n) {
    const exporter = new InMemoryLogRecordExporter();
    const provider = new LoggerProvider({
        resource: resourceFromAttributes({
            'service.name': 'bench-api',
            'service.version': '1.4.2',
            'deployment.environment.name': 'bench',
            'host.name': 'bench-host-01',
        }),
        processors: [new SimpleLogRecordProcessor({ exporter })],
    });
    const logger = provider.getLogger('bench-logger', '0.1.0');
    const ids = new SeqIdGenerator(0x10c5);
    const base = Date.UTC(2026, 0, 15, 12, 0, 0);
    let traceId = null;
    for (let i = 0; i < n; i++) {
        if (i % 10 === 0) {
            traceId = ids.generateTraceId();
        }
        const ctx = api.trace.setSpanContext(api.context.active(), {
            traceId, spanId: ids.generateSpanId(), traceFlags: api.TraceFlags.SAMPLED });
        const [sev, text, msg] = LOG_LINES[i % LOG_LINES.length];
        const attributes = {
            'http.route': ROUTES[i % ROUTES.length],
            'http.request.method': i % 4 === 3 ? 'POST' : 'GET',
            'enduser.id': `user-${1000 + (i * 37) % 500}`,
            'code.function.name': `handlers.${['items', 'orders', 'cart'][i % 3]}.handle`,
        };
        if (i % 10 === 9) {
            attributes['http.response.status_code'] = 200;
            attributes['app.duration_ms'] = 12.5 + i;
        }
        if (sev === SeverityNumber.ERROR) {
            attributes['exception.type'] = 'PaymentDeclinedError';
        }
        logger.emit({ timestamp: base + i, observedTimestamp: base + i, severityNumber: sev,
                      severityText: text, body: `${msg} (req ${5000 + i})`, attributes,
                      context: ctx });
    }
    await provider.forceFlush();
    await new Promise((res) => setImmediate(res)); // each record's export ends in a promise
    const records = exporter.getFinishedLogRecords();
    if (records.length !== n) {
        throw new Error(`expected ${n} log records, got ${records.length}`);
    }
    return Buffer.from(ProtobufLogsSerializer.serializeRequest(records));
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

async function main() {
    const out = process.argv[2];
    if (!out) {
        process.stderr.write('usage: node gen_bodies.js <outdir>\n');
        process.exit(2);
    }
    fs.mkdirSync(out, { recursive: true });
    const meta = {};
    const write = (name, buf, spans, unit = 'spans') => {
        fs.writeFileSync(path.join(out, name), buf);
        meta[name] = { bytes: buf.length, [unit]: spans };
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
    // The same mix with content-less LLM spans, as the OTel GenAI instrumentations send them
    // when the messages go to log records (none here): each is held its log join window.
    const nc = makeMixSpans(10, false);
    const ncpb = Buffer.from(ProtobufTraceSerializer.serializeRequest(nc.spans));
    write('tmixnc100.pb', ncpb, 100);
    write('tmixnc100.grpc', grpcFrame(ncpb), 100);
    meta['tmixnc100.pb'].trace_ids = nc.traceIds;
    meta['tmixnc100.grpc'].trace_ids = nc.traceIds;
    for (const [name, temporality] of [['m280', 'cumulative'], ['m280d', 'delta']]) {
        const [m] = await makeMetrics(temporality);
        for (const ext of ['pb', 'grpc']) {
            write(`${name}.${ext}`, ext === 'pb' ? m.pb : grpcFrame(m.pb), m.points, 'points');
            meta[`${name}.${ext}`].temporality = temporality;
            meta[`${name}.${ext}`].time_unix_nano = m.timeNs;
        }
    }
    // Cumulative collections 1..CUMUL_ROUNDS of one SDK, back to back, all the same length
    // (every value of a point is fixed64 or double on the wire): bench.py's dd-metrics-cumul-*
    // copy round after round into the replayed body, so each series grows.
    const rounds = await makeMetrics('cumulative', CUMUL_ROUNDS);
    if (rounds.some((r) => r.pb.length !== rounds[0].pb.length)) {
        throw new Error('cumulative rounds of different lengths');
    }
    write('m280.rounds', Buffer.concat(rounds.map((r) => r.pb)), rounds[0].points, 'points');
    meta['m280.rounds'].rounds = rounds.length;
    meta['m280.rounds'].round_bytes = rounds[0].pb.length;
    meta['m280.rounds'].time_unix_nano = rounds.map((r) => r.timeNs);
    const lpb = await makeLogs(100);
    write('l100.pb', lpb, 100, 'records');
    write('l100.grpc', grpcFrame(lpb), 100, 'records');
    fs.writeFileSync(path.join(out, 'bodies.json'), JSON.stringify(meta, null, 1) + '\n');
    process.stdout.write(JSON.stringify(meta) + '\n');
}

if (require.main === module) {
    main().catch((e) => {
        process.stderr.write(`gen_bodies.js: ${e.stack || e}\n`);
        process.exit(1);
    });
}

module.exports = { makeSpans, makeMixSpans, makeMetrics, makeLogs };
