#!/usr/bin/env node
/*
 * langchain_app.js: a small LangChain JS application, instrumented the way users do it, that
 * sends its traces to an OTLP endpoint with the OpenTelemetry JS SDK.
 *
 *   node langchain_app.js --instrumentation traceloop|openinference --protocol grpc|proto
 *                         --url <url> [--service NAME] [--question TEXT] [--log]
 *
 * instrumentation: traceloop     = @traceloop/instrumentation-langchain (OpenLLMetry JS)
 *                  openinference = @arizeai/openinference-instrumentation-langchain (Arize)
 *   both attached with manuallyInstrument() on @langchain/core/callbacks/manager.
 * protocol: grpc  = @opentelemetry/exporter-trace-otlp-grpc (url "http://127.0.0.1:4317")
 *           proto = @opentelemetry/exporter-trace-otlp-proto (url "http://127.0.0.1:4318";
 *                   /v1/traces is added)
 *
 * What it does, inside an application SERVER span "POST /chat" (APM only, no gen_ai): a
 * `qa_pipeline` runnable runs the chain ChatPromptTemplate | FakeChatModel | StrOutputParser
 * and then a DynamicTool `lookup_weather` with the answer. FakeChatModel is a BaseChatModel
 * that answers from a script (no network) and reports what a real provider reports: a model
 * name (invocation params, llmOutput, response_metadata) and token usage (llmOutput.tokenUsage
 * and the message's usage_metadata).
 *
 * --question replaces the human message (no template variables in it); --log also emits one
 * log record through the OpenTelemetry JS logs SDK (same protocol and endpoint) whose body
 * and attribute `chat.question` hold the question, as an app that logs its prompts does.
 *
 * Prints one JSON line on stdout: {"ok":true,"answer":...,"trace_id":...,"root_span_id":...,
 * "model":...,"usage":{...},"exports":N,"failed":N,"errors":[...]}; exits 1 on any failure.
 */
'use strict';

// LangChain awaits its callback handlers, so every span has ended when invoke() returns.
process.env.LANGCHAIN_CALLBACKS_BACKGROUND = 'false';

const api = require('@opentelemetry/api');
const { AsyncLocalStorageContextManager } = require('@opentelemetry/context-async-hooks');
const { resourceFromAttributes } = require('@opentelemetry/resources');
const { BasicTracerProvider, BatchSpanProcessor } = require('@opentelemetry/sdk-trace-base');

const MODEL = 'fake-gpt-e2e-1';
const USAGE = { input_tokens: 21, output_tokens: 9, total_tokens: 30 };
const ANSWER = 'Paris is the capital of France.';
const EXPORT_SUCCESS = 0;

function usage(msg) {
    if (msg) {
        process.stderr.write(`langchain_app.js: ${msg}\n`);
    }
    process.stderr.write('usage: node langchain_app.js --instrumentation traceloop|openinference ' +
                         '--protocol grpc|proto --url <url> [--service NAME] [--question TEXT] ' +
                         '[--log on]\n');
    process.exit(2);
}

function parseArgs(argv) {
    const o = { instrumentation: null, protocol: null, url: null, service: 'llm-e2e-app',
                question: null, log: false };
    for (let i = 0; i < argv.length; i++) {
        const a = argv[i];
        const v = argv[++i];
        if (v === undefined) {
            usage(`${a} needs a value`);
        }
        switch (a) {
        case '--instrumentation': o.instrumentation = v; break;
        case '--protocol': o.protocol = v; break;
        case '--url': o.url = v; break;
        case '--service': o.service = v; break;
        case '--question': o.question = v; break;
        case '--log': o.log = v === 'on'; break;
        default: usage(`unknown argument ${a}`);
        }
    }
    if (!['traceloop', 'openinference'].includes(o.instrumentation)) {
        usage('--instrumentation must be traceloop or openinference');
    }
    if (!['grpc', 'proto'].includes(o.protocol)) {
        usage('--protocol must be grpc or proto');
    }
    if (!o.url) {
        usage('--url is required');
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
        const u = new URL(o.url);
        if (u.pathname === '' || u.pathname === '/') {
            u.pathname = '/v1/traces';
        }
        exporter = new OTLPTraceExporter({ url: u.toString(), timeoutMillis: 10000 });
    }
    const orig = exporter.export.bind(exporter);
    exporter.export = (spans, cb) => {
        stats.exports++;
        orig(spans, (result) => {
            if (result.code === EXPORT_SUCCESS) {
                stats.spans += spans.length;
            } else {
                stats.failed += spans.length;
                stats.errors.push(String(result.error && result.error.message));
            }
            cb(result);
        });
    };
    return exporter;
}

/* Instrumentation first, LangChain after: the callback manager is patched before use. */
function instrument(o, provider) {
    const callbackManagerModule = require('@langchain/core/callbacks/manager');
    if (o.instrumentation === 'traceloop') {
        const { LangChainInstrumentation } = require('@traceloop/instrumentation-langchain');
        const inst = new LangChainInstrumentation({ traceContent: true });
        inst.setTracerProvider(provider);
        inst.manuallyInstrument({ callbackManagerModule });
        return inst;
    }
    const { LangChainInstrumentation } = require('@arizeai/openinference-instrumentation-langchain');
    const inst = new LangChainInstrumentation({ tracerProvider: provider });
    inst.manuallyInstrument(callbackManagerModule);
    return inst;
}

function defineFakeChatModel() {
    const { BaseChatModel } = require('@langchain/core/language_models/chat_models');
    const { AIMessage } = require('@langchain/core/messages');

    /* A chat model that answers from a script and reports model and usage like a provider. */
    class FakeChatModel extends BaseChatModel {
        constructor(fields = {}) {
            super(fields);
            this.model = fields.model || MODEL;
            this.answers = fields.answers || [ANSWER];
            this.i = 0;
        }

        static lc_name() {
            return 'FakeChatModel';
        }

        _llmType() {
            return 'fake-chat-e2e';
        }

        invocationParams() {
            return { model: this.model, temperature: 0.2, max_tokens: 64 };
        }

        async _generate(messages, _options, _runManager) {
            const text = this.answers[this.i++ % this.answers.length];
            const message = new AIMessage({
                content: text,
                usage_metadata: { ...USAGE },
                response_metadata: { model_name: this.model, finish_reason: 'stop' },
            });
            return {
                generations: [{ text, message, generationInfo: { finish_reason: 'stop' } }],
                llmOutput: {
                    model_name: this.model,
                    tokenUsage: { promptTokens: USAGE.input_tokens,
                                  completionTokens: USAGE.output_tokens,
                                  totalTokens: USAGE.total_tokens },
                },
            };
        }
    }
    return FakeChatModel;
}

/* One log record holding the question, through the logs SDK to the same endpoint. */
async function emitLog(o, resource, question, stats) {
    const { LoggerProvider, BatchLogRecordProcessor } = require('@opentelemetry/sdk-logs');
    let exporter;
    if (o.protocol === 'grpc') {
        const { OTLPLogExporter } = require('@opentelemetry/exporter-logs-otlp-grpc');
        exporter = new OTLPLogExporter({ url: o.url, timeoutMillis: 10000 });
    } else {
        const { OTLPLogExporter } = require('@opentelemetry/exporter-logs-otlp-proto');
        const u = new URL(o.url);
        u.pathname = '/v1/logs';
        exporter = new OTLPLogExporter({ url: u.toString(), timeoutMillis: 10000 });
    }
    const orig = exporter.export.bind(exporter);
    exporter.export = (records, cb) => {
        orig(records, (result) => {
            if (result.code !== EXPORT_SUCCESS) {
                stats.errors.push(`logs: ${result.error && result.error.message}`);
            } else {
                stats.logs += records.length;
            }
            cb(result);
        });
    };
    const provider = new LoggerProvider({
        resource, processors: [new BatchLogRecordProcessor({ exporter, scheduledDelayMillis: 100 })],
    });
    provider.getLogger('llm-e2e-app', '1.0.0').emit({
        severityText: 'INFO', body: `chat question: ${question}`,
        attributes: { 'chat.question': question },
    });
    await provider.forceFlush();
    await provider.shutdown();
}

async function runApp(tracer, question) {
    const { ChatPromptTemplate } = require('@langchain/core/prompts');
    const { StringOutputParser } = require('@langchain/core/output_parsers');
    const { RunnableLambda } = require('@langchain/core/runnables');
    const { DynamicTool } = require('@langchain/core/tools');
    const FakeChatModel = defineFakeChatModel();

    const prompt = ChatPromptTemplate.fromMessages([
        ['system', 'You are a terse geography assistant.'],
        ['human', question !== null ? question : 'What is the capital of {country}?'],
    ]);
    const chain = prompt.pipe(new FakeChatModel()).pipe(new StringOutputParser());
    const weather = new DynamicTool({
        name: 'lookup_weather',
        description: 'Looks up the weather of the city named in the text.',
        func: async (text) => `Sunny in ${text.split(' ')[0]}, 21 C`,
    });
    const pipeline = RunnableLambda.from(async (input, config) => {
        const answer = await chain.invoke(input, config);
        const forecast = await weather.invoke(answer, config);
        return { answer, forecast };
    }).withConfig({ runName: 'qa_pipeline' });

    return tracer.startActiveSpan('POST /chat', {
        kind: api.SpanKind.SERVER,
        attributes: { 'http.request.method': 'POST', 'http.route': '/chat',
                      'url.path': '/chat', 'http.response.status_code': 200 },
    }, async (root) => {
        try {
            const out = await pipeline.invoke({ country: 'France' });
            root.setStatus({ code: api.SpanStatusCode.OK });
            return { out, traceId: root.spanContext().traceId,
                     rootSpanId: root.spanContext().spanId };
        } finally {
            root.end();
        }
    });
}

async function main() {
    const o = parseArgs(process.argv.slice(2));
    const stats = { exports: 0, spans: 0, failed: 0, errors: [], logs: 0 };
    api.diag.setLogger({
        error: (...a) => stats.errors.push(`diag: ${a.join(' ')}`.slice(0, 300)),
        warn: () => {}, info: () => {}, debug: () => {}, verbose: () => {},
    }, api.DiagLogLevel.ERROR);
    api.context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
    const resource = resourceFromAttributes({
        'service.name': o.service,
        'service.version': '0.9.0',
        'deployment.environment.name': 'e2e',
        'telemetry.sdk.language': 'nodejs',
    });
    const provider = new BasicTracerProvider({
        resource,
        spanProcessors: [new BatchSpanProcessor(makeExporter(o, stats),
                                                { scheduledDelayMillis: 100 })],
    });
    api.trace.setGlobalTracerProvider(provider);
    instrument(o, provider);

    const { out, traceId, rootSpanId } = await runApp(provider.getTracer('llm-e2e-app', '1.0.0'),
                                                      o.question);
    await provider.forceFlush();
    await provider.shutdown();
    if (o.log) {
        await emitLog(o, resource, o.question !== null ? o.question : 'no question', stats);
    }
    const ok = stats.failed === 0 && stats.errors.length === 0 && out.answer === ANSWER;
    process.stdout.write(JSON.stringify({
        ok, answer: out.answer, forecast: out.forecast, trace_id: traceId,
        root_span_id: rootSpanId, model: MODEL, usage: USAGE, exports: stats.exports,
        spans: stats.spans, failed: stats.failed, errors: stats.errors, logs: stats.logs,
    }) + '\n');
    process.exitCode = ok ? 0 : 1;
}

main().catch((e) => {
    process.stdout.write(JSON.stringify({ ok: false, errors: [`fatal: ${e && e.stack ? e.stack : e}`] }) +
                         '\n');
    process.exit(1);
});
