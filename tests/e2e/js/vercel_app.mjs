#!/usr/bin/env node
/*
 * vercel_app.mjs: a small Vercel AI SDK application with telemetry on, calling an
 * OpenAI-compatible server, exporting with the OpenTelemetry JS SDK (BatchSpanProcessor with
 * its default timers) over OTLP/HTTP protobuf.
 *
 *   node vercel_app.mjs --sdk 6|7 --llm <base url of the OpenAI-compatible server>
 *                       --url <otlp http url> [--service NAME] [--encoding proto|json]
 *
 * sdk 6: ai@6 (npm alias ai6) with @ai-sdk/openai@3 (openai6), experimental_telemetry spans
 *        (ai.generateText, ai.generateText.doGenerate, ai.toolCall, ...);
 * sdk 7: ai@7 with @ai-sdk/openai@4 (openai7) and @ai-sdk/otel (registerTelemetry(new
 *        OpenTelemetry())): OTel GenAI spans (invoke_agent, agent_step, chat, execute_tool,
 *        embeddings).
 *
 * What it does, with functionId "weather-agent" / "streamer" / "embedder":
 *   1. generateText with a get_weather tool and two steps: a tool round (the model asks for
 *      the tool, the tool runs, the model answers);
 *   2. streamText (the server streams and reports usage in its last chunk);
 *   3. embedMany of two texts.
 * Prints one JSON line on stdout: {"ok":true,"trace_ids":[...],"answers":[...],"spans":N,
 * "failed":N,"errors":[...]}; exits 1 on any failure.
 */
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const api = require('@opentelemetry/api');
const { AsyncLocalStorageContextManager } = require('@opentelemetry/context-async-hooks');
const { resourceFromAttributes } = require('@opentelemetry/resources');
const { BasicTracerProvider, BatchSpanProcessor } = require('@opentelemetry/sdk-trace-base');
const { OTLPTraceExporter } = require('@opentelemetry/exporter-trace-otlp-proto');
const { OTLPTraceExporter: OTLPJsonExporter } = require('@opentelemetry/exporter-trace-otlp-http');

function parseArgs(argv) {
    const o = { sdk: null, llm: null, url: null, service: 'vercel-e2e-app', json: false };
    for (let i = 0; i < argv.length; i += 2) {
        const [a, v] = [argv[i], argv[i + 1]];
        if (v === undefined) {
            throw new Error(`${a} needs a value`);
        }
        if (a === '--sdk') o.sdk = v;
        else if (a === '--llm') o.llm = v;
        else if (a === '--url') o.url = v;
        else if (a === '--service') o.service = v;
        else if (a === '--encoding') o.json = v === 'json';
        else throw new Error(`unknown argument ${a}`);
    }
    if (!['6', '7'].includes(o.sdk) || !o.llm || !o.url) {
        throw new Error('usage: vercel_app.mjs --sdk 6|7 --llm URL --url URL [--service NAME]');
    }
    return o;
}

async function main() {
    const o = parseArgs(process.argv.slice(2));
    const stats = { spans: 0, failed: 0, errors: [] };
    const Exporter = o.json ? OTLPJsonExporter : OTLPTraceExporter;
    const exporter = new Exporter({ url: new URL('/v1/traces', o.url).toString() });
    const orig = exporter.export.bind(exporter);
    exporter.export = (spans, cb) => orig(spans, (result) => {
        if (result.code === 0) {
            stats.spans += spans.length;
        } else {
            stats.failed += spans.length;
            stats.errors.push(String(result.error && result.error.message));
        }
        cb(result);
    });
    const provider = new BasicTracerProvider({
        resource: resourceFromAttributes({
            'service.name': o.service,
            'deployment.environment.name': 'e2e',
        }),
        spanProcessors: [new BatchSpanProcessor(exporter)],
    });
    api.context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
    api.trace.setGlobalTracerProvider(provider);
    const tracer = provider.getTracer('vercel-e2e');

    let ai, openaiPkg;
    if (o.sdk === '6') {
        ai = await import('ai6');
        openaiPkg = await import('openai6');
    } else {
        ai = await import('ai');
        openaiPkg = await import('openai7');
        const { OpenTelemetry } = await import('@ai-sdk/otel');
        ai.registerTelemetry(new OpenTelemetry({ tracer }));
    }
    const openai = openaiPkg.createOpenAI({ baseURL: new URL('/v1', o.llm).toString(),
                                           apiKey: 'test-key' });
    const telemetry = (functionId) => (o.sdk === '6'
        ? { experimental_telemetry: { isEnabled: true, functionId, tracer,
                                      metadata: { sessionId: 'sess-42', team: 'geo' } } }
        : { telemetry: { isEnabled: true, functionId } });
    const traceIds = [];
    const answers = [];
    // Each call in a root span of its own, so its trace id is known.
    const inRoot = (name, fn) => tracer.startActiveSpan(name, async (span) => {
        traceIds.push(span.spanContext().traceId);
        try {
            return await fn();
        } finally {
            span.end();
        }
    });

    const weather = ai.tool({
        description: 'Weather of a city',
        inputSchema: ai.jsonSchema({
            type: 'object',
            properties: { city: { type: 'string' } },
            required: ['city'],
        }),
        execute: async ({ city }) => ({ city, forecast: 'rainy', temperature_f: 57 }),
    });
    const stop = o.sdk === '6' ? { stopWhen: ai.stepCountIs(3) } : { stopWhen: ai.isStepCount(3) };

    await inRoot('chat-request', async () => {
        const r = await ai.generateText({
            model: openai.chat('gpt-4o-mini'),
            system: 'You are a weather assistant.',
            prompt: 'What is the weather in Paris?',
            tools: { get_weather: weather },
            temperature: 0.2,
            ...stop,
            ...telemetry('weather-agent'),
        });
        answers.push(r.text);
    });
    await inRoot('stream-request', async () => {
        const r = ai.streamText({
            model: openai.chat('gpt-4o-mini'),
            prompt: 'Tell me a short story.',
            ...telemetry('streamer'),
        });
        let text = '';
        for await (const chunk of r.textStream) {
            text += chunk;
        }
        answers.push(text);
    });
    await inRoot('embed-request', async () => {
        const r = await ai.embedMany({
            model: openai.embedding('text-embedding-3-small'),
            values: ['sunny day', 'rainy night'],
            ...telemetry('embedder'),
        });
        answers.push(`${r.embeddings.length}x${r.embeddings[0].length}`);
    });

    await provider.forceFlush();
    await provider.shutdown();
    const ok = stats.failed === 0 && stats.errors.length === 0;
    process.stdout.write(JSON.stringify({ ok, trace_ids: traceIds, answers, ...stats }) + '\n');
    process.exit(ok ? 0 : 1);
}

main().catch((e) => {
    process.stdout.write(JSON.stringify({ ok: false, errors: [String(e && e.stack || e)] }) + '\n');
    process.exit(1);
});
