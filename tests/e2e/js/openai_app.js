#!/usr/bin/env node
/*
 * openai_app.js: an application using the official `openai` client, instrumented with the
 * official @opentelemetry/instrumentation-openai (opentelemetry-js-contrib), exporting with
 * the OpenTelemetry JS SDK's default batch processors: spans (BatchSpanProcessor, 5 s
 * schedule) and log records (BatchLogRecordProcessor, 1 s schedule) leave on their own
 * timers, over OTLP/HTTP protobuf. Message content is captured when the environment says so
 * (OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true): this instrumentation sends it
 * only as log records.
 *
 *   node openai_app.js --url <otlp base url> --openai <OpenAI base url, .../v1>
 *                      [--service NAME] [--linger-ms N]
 *
 * What it does, inside an OTel GenAI agent span `invoke_agent weather-agent` (with
 * gen_ai.conversation.id): a chat completion, a tool round (a call that returns a tool call,
 * then the call with the tool's result), a streamed chat with usage, an embedding, and an
 * OpenAI Responses call with instructions. It then stays alive --linger-ms (default 6000, past
 * the span processor's 5 s schedule) so that both processors export on their timers before
 * shutdown flushes what is left.
 *
 * Prints one JSON line on stdout: {"ok":true,"trace_id":...,"agent_span_id":...,
 * "answers":{...},"errors":[...]}; exits 1 on any failure.
 */
'use strict';

const api = require('@opentelemetry/api');
const logsApi = require('@opentelemetry/api-logs');
const { AsyncLocalStorageContextManager } = require('@opentelemetry/context-async-hooks');
const { resourceFromAttributes } = require('@opentelemetry/resources');
const { BasicTracerProvider, BatchSpanProcessor } = require('@opentelemetry/sdk-trace-base');
const { LoggerProvider, BatchLogRecordProcessor } = require('@opentelemetry/sdk-logs');
const { OTLPTraceExporter } = require('@opentelemetry/exporter-trace-otlp-proto');
const { OTLPLogExporter } = require('@opentelemetry/exporter-logs-otlp-proto');
const { OpenAIInstrumentation } = require('@opentelemetry/instrumentation-openai');

const MODEL = 'gpt-4o-mini';
const EMBED_MODEL = 'text-embedding-3-small';

function usage(msg) {
    process.stderr.write(`openai_app.js: ${msg}\n`);
    process.stderr.write('usage: node openai_app.js --url <otlp url> --openai <base url> ' +
                         '[--service NAME] [--linger-ms N]\n');
    process.exit(2);
}

function parseArgs(argv) {
    const o = { url: null, openai: null, service: 'openai-e2e-app', lingerMs: 6000 };
    for (let i = 0; i < argv.length; i++) {
        const a = argv[i];
        const v = argv[++i];
        if (v === undefined) {
            usage(`${a} needs a value`);
        }
        switch (a) {
        case '--url': o.url = v.replace(/\/+$/, ''); break;
        case '--openai': o.openai = v; break;
        case '--service': o.service = v; break;
        case '--linger-ms': o.lingerMs = Number(v); break;
        default: usage(`unknown argument ${a}`);
        }
    }
    if (!o.url || !o.openai) {
        usage('--url and --openai are required');
    }
    return o;
}

/* Counts what each exporter sent and failed, to report it. */
function counted(exporter, name, stats) {
    const orig = exporter.export.bind(exporter);
    exporter.export = (items, cb) => {
        stats[name].exports++;
        orig(items, (result) => {
            if (result.code === 0) {
                stats[name].items += items.length;
            } else {
                stats.errors.push(`${name}: ${String(result.error && result.error.message)}`);
            }
            cb(result);
        });
    };
    return exporter;
}

const WEATHER_TOOL = {
    type: 'function',
    function: {
        name: 'get_weather',
        description: 'The current weather of a city.',
        parameters: { type: 'object', properties: { city: { type: 'string' } },
                      required: ['city'] },
    },
};

async function calls(client) {
    const answers = {};
    const chat = await client.chat.completions.create({
        model: MODEL,
        messages: [
            { role: 'system', content: 'You are a terse geography assistant.' },
            { role: 'user', content: 'What is the capital of France?' },
        ],
    });
    answers.chat = chat.choices[0].message.content;

    const ask = { role: 'user', content: 'What is the weather in Paris?' };
    const first = await client.chat.completions.create({
        model: MODEL, messages: [ask], tools: [WEATHER_TOOL],
    });
    const call = first.choices[0].message.tool_calls[0];
    answers.tool_call = call.function.name;
    const second = await client.chat.completions.create({
        model: MODEL,
        tools: [WEATHER_TOOL],
        messages: [
            ask,
            first.choices[0].message,
            { role: 'tool', tool_call_id: call.id, content: 'rainy, 12 C' },
        ],
    });
    answers.tool_round = second.choices[0].message.content;

    const stream = await client.chat.completions.create({
        model: MODEL,
        messages: [{ role: 'user', content: 'Count to three.' }],
        stream: true,
        stream_options: { include_usage: true },
    });
    let text = '';
    for await (const chunk of stream) {
        if (chunk.choices.length > 0 && chunk.choices[0].delta.content) {
            text += chunk.choices[0].delta.content;
        }
    }
    answers.stream = text;

    const emb = await client.embeddings.create({ model: EMBED_MODEL, input: 'hello world' });
    answers.embedding_dims = emb.data[0].embedding.length;

    const resp = await client.responses.create({
        model: MODEL, instructions: 'Answer in French.', input: 'Hello',
    });
    answers.responses = resp.output_text;
    return answers;
}

async function main() {
    const o = parseArgs(process.argv.slice(2));
    const stats = { traces: { exports: 0, items: 0 }, logs: { exports: 0, items: 0 },
                    errors: [] };
    const cm = new AsyncLocalStorageContextManager();
    cm.enable();
    api.context.setGlobalContextManager(cm);
    const resource = resourceFromAttributes({
        'service.name': o.service,
        'deployment.environment.name': 'e2e',
    });
    // The SDK's defaults: no schedule, batch or queue option is set.
    const tp = new BasicTracerProvider({
        resource,
        spanProcessors: [new BatchSpanProcessor(counted(
            new OTLPTraceExporter({ url: `${o.url}/v1/traces` }), 'traces', stats))],
    });
    api.trace.setGlobalTracerProvider(tp);
    const lp = new LoggerProvider({
        resource,
        processors: [new BatchLogRecordProcessor({
            exporter: counted(new OTLPLogExporter({ url: `${o.url}/v1/logs` }), 'logs', stats),
        })],
    });
    logsApi.logs.setGlobalLoggerProvider(lp);
    // Enabled as it is made, with the global providers set above (InstrumentationBase); its
    // metric instruments are made when it is given a meter provider (the no-op global one).
    const instrumentation = new OpenAIInstrumentation();
    instrumentation.setMeterProvider(api.metrics.getMeterProvider());
    // After the instrumentation: the module is patched as it loads.
    const { OpenAI } = require('openai');
    const client = new OpenAI({ baseURL: o.openai, apiKey: 'sk-e2e', maxRetries: 0 });

    const tracer = api.trace.getTracer('openai-e2e-app', '1.0.0');
    let report = { ok: false };
    try {
        report = await tracer.startActiveSpan('invoke_agent weather-agent', {
            kind: api.SpanKind.INTERNAL,
            attributes: { 'gen_ai.operation.name': 'invoke_agent',
                          'gen_ai.agent.name': 'weather-agent',
                          'gen_ai.conversation.id': 'conv-e2e-1' },
        }, async (agent) => {
            try {
                const answers = await calls(client);
                return { ok: true, answers, trace_id: agent.spanContext().traceId,
                         agent_span_id: agent.spanContext().spanId };
            } finally {
                agent.end();
            }
        });
    } catch (e) {
        stats.errors.push(`app: ${e && e.stack ? e.stack : e}`);
    }
    // Both processors export on their own schedules while the app lives on.
    await new Promise((resolve) => setTimeout(resolve, o.lingerMs));
    try {
        await tp.shutdown();
        await lp.shutdown();
    } catch (e) {
        stats.errors.push(`shutdown: ${e}`);
    }
    instrumentation.disable();
    report.exports = { traces: stats.traces, logs: stats.logs };
    report.errors = stats.errors;
    report.ok = report.ok && stats.errors.length === 0;
    process.stdout.write(JSON.stringify(report) + '\n');
    process.exit(report.ok ? 0 : 1);
}

main();
