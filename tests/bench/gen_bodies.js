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
 *   apm.bodies                 loadgen's bodies file (see loadgenFile): 64 distinct APM bodies of
 *                              100 spans each (makeApmBody), several services, routes, SQL
 *   apm.gz.bodies              apm.bodies with each body gzip'd (level 9)
 *   apm10.bodies, apm1000.bodies  64 distinct APM bodies of 10 and of 1000 spans
 *   llm.bodies                 64 distinct LLM Obs mix bodies of whole agent traces, about 100
 *                              spans each, ~30 % gen_ai spans, messages of 0.2-8 KB (makeLlmBody)
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
const LOADGEN_BODIES = 64;

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

/*
 * Distinct bodies for loadgen (tests/bench/loadgen.c): many different requests, so that no
 * payload repeats the spans of the one before (issue 14). Every value that varies in real
 * traffic varies here: trace and span ids, start times and durations, services, routes and
 * their ids, status codes (some 4xx, some 5xx with an exception event), SQL statements,
 * peer hosts, client addresses. A seeded PRNG keeps the files reproducible.
 */
function mulberry32(seed) {
    let a = seed >>> 0;
    return () => {
        a = (a + 0x6d2b79f5) >>> 0;
        let t = a;
        t = Math.imul(t ^ (t >>> 15), t | 1);
        t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
        return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
}

const BACKENDS = [
    { service: 'orders-svc', routes: ['/orders/{id}', '/orders', '/orders/{id}/items',
                                      '/orders/{id}/cancel'], db: 'postgresql', table: 'orders' },
    { service: 'users-svc', routes: ['/users/{id}', '/users/{id}/addresses', '/users/me',
                                     '/sessions'], db: 'postgresql', table: 'users' },
    { service: 'catalog-svc', routes: ['/items/{id}', '/items', '/categories/{slug}/items',
                                       '/items/{id}/reviews'], db: 'mysql', table: 'items' },
    { service: 'payments-svc', routes: ['/payments', '/payments/{id}', '/refunds',
                                        '/payments/{id}/capture'], db: 'postgresql',
      table: 'payments' },
    { service: 'search-svc', routes: ['/search', '/search/suggest', '/search/facets'],
      db: 'mysql', table: 'search_terms' },
    { service: 'inventory-svc', routes: ['/stock/{sku}', '/stock/reserve', '/warehouses/{id}'],
      db: 'postgresql', table: 'stock' },
];
const GATEWAYS = ['web-gateway', 'mobile-bff'];
const COLUMNS = ['id', 'status', 'created_at', 'updated_at', 'owner_id', 'amount', 'currency',
                 'sku', 'quantity', 'email', 'name', 'price', 'region', 'version'];

function sqlFor(rnd, table) {
    const cols = COLUMNS.filter(() => rnd() < 0.35).slice(0, 6);
    const c = cols.length ? cols.join(', ') : 'id, status';
    switch (Math.floor(rnd() * 4)) {
    case 0:
        return [`SELECT ${c} FROM ${table} WHERE id = $1`, 'SELECT'];
    case 1:
        return [`SELECT ${c} FROM ${table} WHERE owner_id = $1 AND status IN ($2, $3) ` +
                `ORDER BY created_at DESC LIMIT ${10 + Math.floor(rnd() * 40)}`, 'SELECT'];
    case 2:
        return [`UPDATE ${table} SET status = $1, updated_at = now() WHERE id = $2`, 'UPDATE'];
    default:
        return [`INSERT INTO ${table} (${c}) VALUES (${cols.map((_, k) => '$' + (k + 1))
            .join(', ') || '$1, $2'})`, 'INSERT'];
    }
}

function providerFor(exporter, service, version, idGen, host) {
    return new BasicTracerProvider({
        resource: resourceFromAttributes({
            'service.name': service,
            'service.version': version,
            'deployment.environment.name': 'bench',
            'host.name': host,
            'telemetry.sdk.language': 'nodejs',
        }),
        idGenerator: idGen,
        spanProcessors: [new SimpleSpanProcessor(exporter)],
    });
}

/* One APM body: whole traces (gateway SERVER -> CLIENT -> backend SERVER -> handler ->
 * DB and cache CLIENT spans) until exactly `n` spans. */
function makeApmBody(b, n) {
    const rnd = mulberry32(0xa9b0 + b * 7919);
    const exporter = new InMemorySpanExporter();
    const ids = new SeqIdGenerator(0x1000 + b * 104729);
    const host = `bench-host-${String(b % 8).padStart(2, '0')}`;
    const gwName = GATEWAYS[b % GATEWAYS.length];
    const gw = providerFor(exporter, gwName, '3.1.' + (b % 4), ids, host)
        .getTracer('@opentelemetry/instrumentation-http', '0.57.0');
    const be = BACKENDS.map((d) => providerFor(exporter, d.service, '1.' + (b % 7) + '.0', ids,
                                               host).getTracer('@opentelemetry/instrumentation-pg',
                                                               '0.50.0'));
    const K = api.SpanKind;
    let t = Date.UTC(2026, 0, 15, 12, 0, 0) + b * 60000;
    let left = n;
    while (left > 0) {
        // trace size: 4 + db spans (+1 cache); the last trace takes what is left (5..12)
        let size = left <= 12 ? left : 5 + Math.floor(rnd() * Math.min(8, left - 12));
        const cache = size >= 6 && rnd() < 0.5;
        const dbN = size - 4 - (cache ? 1 : 0);
        const bi = Math.floor(rnd() * BACKENDS.length);
        const d = BACKENDS[bi];
        const route = d.routes[Math.floor(rnd() * d.routes.length)];
        const id = 1000 + Math.floor(rnd() * 900000);
        const path = route.replace(/\{[a-z]+\}/, String(id));
        const method = route.endsWith('s') && rnd() < 0.3 ? 'POST' : (rnd() < 0.1 ? 'PUT' : 'GET');
        const r = rnd();
        const status = r < 0.03 ? 500 : r < 0.05 ? 503 : r < 0.1 ? 404 : r < 0.12 ? 400
            : method === 'POST' ? 201 : 200;
        const total = 2 + Math.floor(rnd() * rnd() * 400);
        const t0 = t;
        t += 1 + Math.floor(rnd() * 20);
        const ctxOf = (s) => api.trace.setSpan(api.context.active(), s);
        const root = gw.startSpan(`${method} /api/v1${route}`, {
            kind: K.SERVER, startTime: t0, root: true,
            attributes: {
                'http.request.method': method,
                'http.route': `/api/v1${route}`,
                'url.path': `/api/v1${path}`,
                'url.scheme': 'https',
                'http.response.status_code': status,
                'server.address': 'api.example.com',
                'server.port': 443,
                'client.address': `10.${b % 256}.${Math.floor(rnd() * 256)}.${Math.floor(rnd() * 256)}`,
                'user_agent.original': rnd() < 0.5 ? 'okhttp/4.12.0'
                    : 'Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) Safari/605.1.15',
                'network.protocol.version': '1.1',
            },
        });
        const cli = gw.startSpan(`${method}`, {
            kind: K.CLIENT, startTime: t0 + 1, attributes: {
                'http.request.method': method,
                'url.full': `http://${d.service}.internal:8080${path}`,
                'server.address': `${d.service}.internal`,
                'server.port': 8080,
                'http.response.status_code': status,
                'peer.service': d.service,
            },
        }, ctxOf(root));
        const srv = be[bi].startSpan(`${method} ${route}`, {
            kind: K.SERVER, startTime: t0 + 2, attributes: {
                'http.request.method': method,
                'http.route': route,
                'url.path': path,
                'url.scheme': 'http',
                'http.response.status_code': status,
                'server.address': `${d.service}.internal`,
                'server.port': 8080,
                'network.peer.address': `10.1.${bi}.${Math.floor(rnd() * 250) + 2}`,
            },
        }, ctxOf(cli));
        const handler = be[bi].startSpan(`handle ${route}`, {
            kind: K.INTERNAL, startTime: t0 + 2, attributes: {
                'code.function.name': `${d.table}Controller.${method.toLowerCase()}`,
            },
        }, ctxOf(srv));
        let at = t0 + 3;
        for (let q = 0; q < dbN; q++) {
            const [sql, op] = sqlFor(rnd, d.table);
            const dur = 1 + Math.floor(rnd() * rnd() * 60);
            const s = be[bi].startSpan(`${op} ${d.table}`, {
                kind: K.CLIENT, startTime: at, attributes: {
                    'db.system.name': d.db,
                    'db.namespace': 'shop',
                    'db.collection.name': d.table,
                    'db.operation.name': op,
                    'db.query.text': sql,
                    'server.address': `${d.db}-${bi % 3}.db.internal`,
                    'server.port': d.db === 'mysql' ? 3306 : 5432,
                    'network.peer.address': `10.2.${bi}.${10 + q}`,
                },
            }, ctxOf(handler));
            s.end(at + dur);
            at += dur;
        }
        if (cache) {
            const s = be[bi].startSpan('GET', {
                kind: K.CLIENT, startTime: at, attributes: {
                    'db.system.name': 'redis',
                    'db.operation.name': 'GET',
                    'db.query.text': `GET ${d.table}:${id}`,
                    'server.address': 'redis.cache.internal', 'server.port': 6379,
                },
            }, ctxOf(handler));
            s.end(at + 1);
            at += 1;
        }
        const end = Math.max(at + 1, t0 + total);
        if (status >= 500) {
            const err = new Error(`upstream ${d.service} failed: connection reset by peer`);
            handler.recordException(err, end - 1);
            handler.setStatus({ code: api.SpanStatusCode.ERROR, message: err.message });
            srv.setStatus({ code: api.SpanStatusCode.ERROR });
            root.setStatus({ code: api.SpanStatusCode.ERROR });
            root.setAttribute('error.type', String(status));
        }
        handler.end(end);
        srv.end(end + 1);
        cli.end(end + 2);
        root.end(end + 3);
        left -= size;
    }
    const spans = exporter.getFinishedSpans();
    if (spans.length !== n) {
        throw new Error(`APM body ${b}: expected ${n} spans, got ${spans.length}`);
    }
    return Buffer.from(ProtobufTraceSerializer.serializeRequest(spans));
}

/* Text of about `bytes` bytes from a vocabulary of support and product words. */
const WORDS = ('the order parcel delivery address return refund warranty invoice customer ' +
    'account payment card declined shipping tracking carrier warehouse size colour stock ' +
    'available replacement exchange discount code subscription plan upgrade cancel renewal ' +
    'password login email phone support ticket agent escalate manager policy days within ' +
    'please could you help me with my last week yesterday today tomorrow because however ' +
    'also still never always would should will can cannot thanks regards hello sorry for ' +
    'the delay we have checked your request and found that it was sent to an old address ' +
    'so a new label is created free of charge as soon as possible').split(' ');

function text(rnd, bytes) {
    const out = [];
    let len = 0;
    while (len < bytes) {
        const w = WORDS[Math.floor(rnd() * WORDS.length)];
        out.push(w);
        len += w.length + 1;
        if (rnd() < 0.08) {
            out.push(String(10000 + Math.floor(rnd() * 90000)) + '.');
            len += 7;
        }
    }
    return out.join(' ');
}

/* 0.2-8 KB, log-uniform. */
function msgSize(rnd) {
    return Math.floor(200 * Math.pow(40, rnd()));
}

const TOOLS = [
    { name: 'get_order_status', arg: (rnd) => ({ order_id: String(80000 + Math.floor(rnd() * 9999)) }) },
    { name: 'search_faq', arg: (rnd) => ({ query: text(rnd, 40), top_k: 4 }) },
    { name: 'create_return_label', arg: (rnd) => ({ order_id: String(80000 + Math.floor(rnd() * 9999)),
                                                      reason: 'size' }) },
];
const MODELS = [['openai', 'gpt-4o-mini', 'gpt-4o-mini-2024-07-18'],
                ['openai', 'gpt-4.1', 'gpt-4.1-2025-04-14'],
                ['anthropic', 'claude-3-5-haiku', 'claude-3-5-haiku-20241022']];

/*
 * One LLM Obs body: whole traces of a FastAPI + LangChain agent, half of them instrumented
 * with the OpenTelemetry GenAI conventions (gen_ai.input.messages / gen_ai.output.messages
 * JSON, gen_ai.system_instructions, tool calls as parts, execute_tool spans), half with
 * OpenLLMetry (traceloop.span.kind, gen_ai.prompt.N.* / gen_ai.completion.N.*, llm.request.type):
 *
 *   POST /v1/chat                SERVER    FastAPI
 *   |- agent.workflow            INTERNAL  traceloop.span.kind=workflow, entity input/output
 *   |  |- retrieve.task          INTERNAL  traceloop.span.kind=task
 *   |  |  |- embeddings <model>  CLIENT    gen_ai (the question's embedding)
 *   |  |  '- POST                CLIENT    vector store
 *   |  |- chat <model>           CLIENT    gen_ai (asks for a tool; 3 traces in 4)
 *   |  |- execute_tool <name>    INTERNAL  gen_ai (tool call, arguments, result)
 *   |  |  '- SELECT orders       CLIENT    postgresql
 *   |  |- chat <model>           CLIENT    gen_ai (the answer)
 *   |  '- parse.task             INTERNAL  traceloop.span.kind=task
 *   '- POST /v1/chat http send   INTERNAL  ASGI
 *
 * 11 spans, 4 of them gen_ai; without the tool round 8 spans, 2 gen_ai: about 1/3 gen_ai.
 * Traces are added whole until a body holds at least `minSpans`.
 */
function makeLlmBody(b, minSpans) {
    const rnd = mulberry32(0x11a0 + b * 6007);
    const exporter = new InMemorySpanExporter();
    const ids = new SeqIdGenerator(0x77000 + b * 15485863);
    const host = `bench-host-${String(b % 8).padStart(2, '0')}`;
    const app = ['support-bot', 'sales-assistant', 'doc-qa'][b % 3];
    const tracer = providerFor(exporter, app, '2.' + (b % 5) + '.0', ids, host)
        .getTracer('opentelemetry.instrumentation.langchain', '0.40.0');
    const K = api.SpanKind;
    const ctxOf = (s) => api.trace.setSpan(api.context.active(), s);
    let t = Date.UTC(2026, 0, 15, 12, 0, 0) + b * 60000;
    let count = 0;
    let traces = 0;
    let genai = 0;
    while (count < minSpans) {
        const otel = (b + traces) % 2 === 0; // OTel GenAI, else OpenLLMetry
        const [provider, model, respModel] = MODELS[Math.floor(rnd() * MODELS.length)];
        const useTool = rnd() < 0.75;
        const tool = TOOLS[Math.floor(rnd() * TOOLS.length)];
        const system = text(rnd, 400 + Math.floor(rnd() * 1600));
        const question = text(rnd, msgSize(rnd));
        const history = rnd() < 0.5 ? [text(rnd, msgSize(rnd)), text(rnd, msgSize(rnd))] : [];
        const answer = text(rnd, msgSize(rnd));
        const toolResult = JSON.stringify({ result: text(rnd, msgSize(rnd) / 2) });
        const callId = `call_${b}_${traces}_${Math.floor(rnd() * 1e9).toString(36)}`;
        const args = JSON.stringify(tool.arg(rnd));
        const t0 = t;
        t += 500 + Math.floor(rnd() * 3000);
        const root = tracer.startSpan('POST /v1/chat', {
            kind: K.SERVER, startTime: t0, root: true,
            attributes: {
                'http.request.method': 'POST', 'http.route': '/v1/chat', 'url.path': '/v1/chat',
                'url.scheme': 'https', 'http.response.status_code': 200,
                'server.address': `${app}.example.com`, 'server.port': 443,
                'client.address': `10.3.${b % 256}.${Math.floor(rnd() * 256)}`,
                'user_agent.original': 'python-httpx/0.27.2', 'network.protocol.version': '1.1',
            },
        });
        const wf = tracer.startSpan('agent.workflow', {
            kind: K.INTERNAL, startTime: t0 + 2, attributes: {
                'traceloop.span.kind': 'workflow', 'traceloop.entity.name': 'agent',
                'traceloop.workflow.name': 'agent',
                'traceloop.association.properties.session_id': `sess-${b}-${traces % 3}`,
                'traceloop.entity.input': JSON.stringify({ inputs: { question } }),
                'traceloop.entity.output': JSON.stringify({ outputs: { answer } }),
            },
        }, ctxOf(root));
        const ret = tracer.startSpan('retrieve.task', {
            kind: K.INTERNAL, startTime: t0 + 3, attributes: {
                'traceloop.span.kind': 'task', 'traceloop.entity.name': 'retrieve',
            },
        }, ctxOf(wf));
        const emb = tracer.startSpan('embeddings text-embedding-3-small', {
            kind: K.CLIENT, startTime: t0 + 3, attributes: {
                'gen_ai.operation.name': 'embeddings',
                'gen_ai.provider.name': 'openai',
                'gen_ai.system': 'openai',
                'gen_ai.request.model': 'text-embedding-3-small',
                'gen_ai.usage.input_tokens': Math.floor(question.length / 4),
                'server.address': 'api.openai.com', 'server.port': 443,
            },
        }, ctxOf(ret));
        emb.end(t0 + 4);
        const vs = tracer.startSpan('POST', {
            kind: K.CLIENT, startTime: t0 + 4, attributes: {
                'http.request.method': 'POST',
                'url.full': 'http://vectors.internal:6333/collections/faq/points/search',
                'server.address': 'vectors.internal', 'server.port': 6333,
                'http.response.status_code': 200,
            },
        }, ctxOf(ret));
        vs.end(t0 + 15);
        ret.end(t0 + 16);
        let at = t0 + 17;
        const inTok = Math.floor((system.length + question.length) / 4);
        const llmSpan = (final, start, end) => {
            const outText = final ? answer : '';
            const attrs = {
                'gen_ai.operation.name': 'chat',
                'gen_ai.request.model': model,
                'gen_ai.response.model': respModel,
                'gen_ai.request.temperature': 0.2,
                'gen_ai.request.max_tokens': 1024,
                'gen_ai.response.id': `resp-${b}-${traces}-${final ? 2 : 1}`,
                'gen_ai.response.finish_reasons': [final ? 'stop' : 'tool_calls'],
                'gen_ai.usage.input_tokens': inTok + (final ? 60 : 0),
                'gen_ai.usage.output_tokens': final ? Math.floor(answer.length / 4) : 24,
                'server.address': provider === 'openai' ? 'api.openai.com' : 'api.anthropic.com',
                'server.port': 443,
            };
            const hist = history.map((h, k) => ({ role: k % 2 ? 'assistant' : 'user', text: h }));
            if (otel) {
                attrs['gen_ai.provider.name'] = provider;
                attrs['gen_ai.system_instructions'] =
                    JSON.stringify([{ type: 'text', content: system }]);
                const input = hist.map((h) => ({ role: h.role, parts: [{ type: 'text', content: h.text }] }));
                input.push({ role: 'user', parts: [{ type: 'text', content: question }] });
                if (final && useTool) {
                    input.push({ role: 'assistant', parts: [{ type: 'tool_call', id: callId,
                                                              name: tool.name, arguments: JSON.parse(args) }] });
                    input.push({ role: 'tool', parts: [{ type: 'tool_call_response', id: callId,
                                                         response: JSON.parse(toolResult) }] });
                }
                attrs['gen_ai.input.messages'] = JSON.stringify(input);
                attrs['gen_ai.output.messages'] = JSON.stringify([final
                    ? { role: 'assistant', parts: [{ type: 'text', content: outText }], finish_reason: 'stop' }
                    : { role: 'assistant', parts: [{ type: 'tool_call', id: callId, name: tool.name,
                                                     arguments: JSON.parse(args) }],
                        finish_reason: 'tool_calls' }]);
            } else {
                attrs['gen_ai.system'] = provider;
                attrs['llm.request.type'] = 'chat';
                attrs['traceloop.span.kind'] = 'llm';
                attrs['gen_ai.usage.prompt_tokens'] = attrs['gen_ai.usage.input_tokens'];
                attrs['gen_ai.usage.completion_tokens'] = attrs['gen_ai.usage.output_tokens'];
                attrs['llm.usage.total_tokens'] = attrs['gen_ai.usage.input_tokens'] +
                    attrs['gen_ai.usage.output_tokens'];
                const msgs = [{ role: 'system', content: system }, ...hist.map((h) => ({ role: h.role, content: h.text })),
                              { role: 'user', content: question }];
                if (final && useTool) {
                    msgs.push({ role: 'tool', content: toolResult });
                }
                msgs.forEach((m, k) => {
                    attrs[`gen_ai.prompt.${k}.role`] = m.role;
                    attrs[`gen_ai.prompt.${k}.content`] = m.content;
                });
                attrs['gen_ai.completion.0.role'] = 'assistant';
                if (final) {
                    attrs['gen_ai.completion.0.content'] = outText;
                    attrs['gen_ai.completion.0.finish_reason'] = 'stop';
                } else {
                    attrs['gen_ai.completion.0.finish_reason'] = 'tool_calls';
                    attrs['gen_ai.completion.0.tool_calls.0.id'] = callId;
                    attrs['gen_ai.completion.0.tool_calls.0.name'] = tool.name;
                    attrs['gen_ai.completion.0.tool_calls.0.arguments'] = args;
                }
            }
            const s = tracer.startSpan(`chat ${model}`, { kind: K.CLIENT, startTime: start,
                                                           attributes: attrs }, ctxOf(wf));
            s.end(end);
            count += 1;
            genai += 1;
        };
        if (useTool) {
            const d1 = 300 + Math.floor(rnd() * 900);
            llmSpan(false, at, at + d1);
            at += d1 + 1;
            const ts = tracer.startSpan(`execute_tool ${tool.name}`, {
                kind: K.INTERNAL, startTime: at, attributes: {
                    'gen_ai.operation.name': 'execute_tool',
                    'gen_ai.tool.name': tool.name,
                    'gen_ai.tool.type': 'function',
                    'gen_ai.tool.call.id': callId,
                    'gen_ai.tool.call.arguments': args,
                    'gen_ai.tool.call.result': toolResult,
                },
            }, ctxOf(wf));
            const db = tracer.startSpan('SELECT orders', {
                kind: K.CLIENT, startTime: at + 1, attributes: {
                    'db.system.name': 'postgresql', 'db.namespace': 'shop',
                    'db.collection.name': 'orders', 'db.operation.name': 'SELECT',
                    'db.query.text': 'SELECT id, status, carrier, tracking_no FROM orders WHERE id = $1',
                    'server.address': 'pg-0.db.internal', 'server.port': 5432,
                },
            }, ctxOf(ts));
            db.end(at + 6);
            ts.end(at + 8);
            at += 9;
            count += 2;
            genai += 1;
        }
        const d2 = 400 + Math.floor(rnd() * 2500);
        llmSpan(true, at, at + d2);
        at += d2 + 1;
        const ps = tracer.startSpan('parse.task', {
            kind: K.INTERNAL, startTime: at, attributes: {
                'traceloop.span.kind': 'task', 'traceloop.entity.name': 'parse',
            },
        }, ctxOf(wf));
        ps.end(at + 1);
        wf.end(at + 2);
        const send = tracer.startSpan('POST /v1/chat http send', {
            kind: K.INTERNAL, startTime: at + 3, attributes: { 'asgi.event.type': 'http.response.body' },
        }, ctxOf(root));
        send.end(at + 4);
        root.end(at + 5);
        count += 7;
        genai += 1;
        traces += 1;
    }
    const spans = exporter.getFinishedSpans();
    if (spans.length !== count) {
        throw new Error(`LLM body ${b}: expected ${count} spans, got ${spans.length}`);
    }
    return { pb: Buffer.from(ProtobufTraceSerializer.serializeRequest(spans)), spans: count,
             genai, traces };
}

/* loadgen's bodies file: "O2DLOAD1", then per body a 4-byte big-endian length, a 4-byte
 * big-endian span count and the protobuf bytes (loadgen adds the gRPC prefix itself). */
function loadgenFile(bodies) {
    const parts = [Buffer.from('O2DLOAD1')];
    for (const { pb, spans } of bodies) {
        const hdr = Buffer.alloc(8);
        hdr.writeUInt32BE(pb.length, 0);
        hdr.writeUInt32BE(spans, 4);
        parts.push(hdr, pb);
    }
    return Buffer.concat(parts);
}

function describe(bodies, extra = {}) {
    const bytes = bodies.map((x) => x.pb.length);
    const spans = bodies.map((x) => x.spans);
    const sum = (a) => a.reduce((p, v) => p + v, 0);
    return {
        bodies: bodies.length, spans: sum(spans), spans_per_body: spans,
        bytes: sum(bytes), bytes_min: Math.min(...bytes), bytes_max: Math.max(...bytes),
        bytes_per_span: Math.round(sum(bytes) / sum(spans)),
        gzip_bytes_per_span: Math.round(sum(bodies.map((x) => zlib.gzipSync(x.pb, { level: 1 })
            .length)) / sum(spans)),
        ...extra,
    };
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
    // Distinct bodies for loadgen: 64 APM bodies of 100 spans, 64 LLM Obs mix bodies.
    const apm = [];
    for (let b = 0; b < LOADGEN_BODIES; b++) {
        apm.push({ pb: makeApmBody(b, 100), spans: 100 });
    }
    fs.writeFileSync(path.join(out, 'apm.bodies'), loadgenFile(apm));
    meta['apm.bodies'] = describe(apm);
    // the same bodies gzip'd (level 9, as t100.pb.gz), for Content-Encoding: gzip
    const apmGz = apm.map((x) => ({ pb: zlib.gzipSync(x.pb, { level: 9 }), spans: x.spans }));
    fs.writeFileSync(path.join(out, 'apm.gz.bodies'), loadgenFile(apmGz));
    meta['apm.gz.bodies'] = describe(apmGz);
    // 10- and 1000-span bodies of the same traces (per-request cost, big requests)
    for (const n of [10, 1000]) {
        const set = [];
        for (let b = 0; b < LOADGEN_BODIES; b++) {
            set.push({ pb: makeApmBody(b, n), spans: n });
        }
        fs.writeFileSync(path.join(out, `apm${n}.bodies`), loadgenFile(set));
        meta[`apm${n}.bodies`] = describe(set);
    }
    const llm = [];
    for (let b = 0; b < LOADGEN_BODIES; b++) {
        llm.push(makeLlmBody(b, 90));
    }
    fs.writeFileSync(path.join(out, 'llm.bodies'), loadgenFile(llm));
    meta['llm.bodies'] = describe(llm, {
        genai_spans: llm.reduce((p, x) => p + x.genai, 0),
        traces: llm.reduce((p, x) => p + x.traces, 0),
    });
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

module.exports = { makeSpans, makeMixSpans, makeMetrics, makeLogs, makeApmBody, makeLlmBody,
                   loadgenFile };
